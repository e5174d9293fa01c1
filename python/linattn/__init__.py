"""linattn: linear-attention operators (gdn, kla, gla, gka, kalman, ela,
softmax) on the CPU and OpenCL, from Python through ctypes.

Every operator of the library's table is a function NAME_forward / NAME_step
(gdn_forward, gdn_step, ..., softmax_step with a KVCache) taking NumPy arrays,
PyTorch CPU tensors or other DLPack producers; linear_attention() is ONNX's
LinearAttention; linattn.fla has flash-linear-attention's names.  Errors
raise linattn.Error subclasses carrying the status code and the library's
message.  The library is found through $LINATTN_LIBRARY, a build tree next
to this package, the system's library path or pkg-config.
"""
from ._lib import (Context, Error, NullError, ShapeError, SizeError, ByteOverflowError,
                   HeadDimError, SeqlensError, RangeError, NoMemoryError, UnsupportedError,
                   FileIOError, FormatError, InvalidError, NoDeviceError, DeviceError,
                   default_context, set_default_context, version, lib)
from ._ops import KVCache, Op, table, find, make_function
from ._onnx_la import linear_attention
from . import fla  # noqa: E402,F401 (linattn.fla after `import linattn`)

__version__ = "0.1.0"

__all__ = ["Context", "Error", "NullError", "ShapeError", "SizeError", "ByteOverflowError",
           "HeadDimError", "SeqlensError", "RangeError", "NoMemoryError", "UnsupportedError",
           "FileIOError", "FormatError", "InvalidError", "NoDeviceError", "DeviceError",
           "default_context", "set_default_context", "version", "lib", "KVCache", "Op",
           "table", "find", "linear_attention", "fla", "OPERATORS"]

# NAME_forward and NAME_step for every row of the library's operator table
OPERATORS = []
for _op in table():
    _fn = make_function(_op)
    globals()[_fn.__name__] = _fn
    OPERATORS.append(_fn.__name__)
del _op, _fn
__all__ += OPERATORS

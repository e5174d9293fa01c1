"""Arrays in and out: NumPy arrays, PyTorch CPU tensors and other DLPack
producers described as linattn tensors without copies where the layout allows."""
import ctypes
import os

import numpy as np

from . import _lib

# Fill freshly allocated outputs with NaN (tests set it so that an output the
# library failed to write shows).
POISON = os.environ.get("LINATTN_POISON_OUTPUTS", "") not in ("", "0")

_ML = None


def _bf16_numpy():
    """ml_dtypes.bfloat16 as a NumPy dtype, or None when ml_dtypes is absent."""
    global _ML
    if _ML is None:
        try:
            import ml_dtypes
            _ML = np.dtype(ml_dtypes.bfloat16)
        except ImportError:
            _ML = False
    return _ML or None


_SHAPE = ctypes.c_int64 * _lib.MAX_DIMS
_CODES = {np.dtype(np.float32): _lib.F32, np.dtype(np.float16): _lib.F16}


def _np_code(dtype):
    if dtype == np.float32:
        return _lib.F32
    if dtype == np.float16:
        return _lib.F16
    if dtype.name == "bfloat16":
        return _lib.BF16
    return None


def _np_dtype(code):
    if code == _lib.F32:
        return np.dtype(np.float32)
    if code == _lib.F16:
        return np.dtype(np.float16)
    bf = _bf16_numpy()
    if bf is None:
        raise TypeError("bfloat16 NumPy arrays need the ml_dtypes package")
    return bf


def is_torch(x):
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "data_ptr")


def _torch():
    import torch
    return torch


def _torch_code(x):
    torch = _torch()
    return {torch.float32: _lib.F32, torch.float16: _lib.F16,
            torch.bfloat16: _lib.BF16}.get(x.dtype)


def _torch_dtype(code):
    torch = _torch()
    return (torch.float32, torch.float16, torch.bfloat16)[code]


class Bound:
    """One array as a linattn tensor: `tensor` (the struct), `keep` (the
    object that owns the memory), `orig` (the caller's array when a copy was
    made of an in-place state, to copy back after the call)."""
    __slots__ = ("tensor", "keep", "orig", "kind", "dtype")

    def __init__(self, tensor, keep, orig, kind, dtype):
        self.tensor, self.keep, self.orig, self.kind, self.dtype = tensor, keep, orig, kind, dtype

    def write_back(self):
        if self.orig is None:
            return
        if self.kind == "torch":
            self.orig.copy_(self.keep)
        else:
            np.copyto(self.orig, self.keep.astype(self.orig.dtype, copy=False))


def _fill(t, ptr, shape, strides, item_strides_ok, code):
    t.data = ptr
    t.ndim = len(shape)
    t.dtype = code
    for d, n in enumerate(shape):
        t.shape[d] = n
    if not item_strides_ok:
        for d, s in enumerate(strides):
            t.strides[d] = s
    return t


def _elem_strides(shape, strides):
    """Element strides a linattn tensor can take, with C-order values for
    dimensions of size 1; None when the layout needs a copy (negative
    strides, or all-zero strides over several elements, which would read as
    C order); () when it is C order already."""
    out, c_order, expect = [], True, 1
    for n, s in zip(reversed(shape), reversed(strides)):
        if n == 1:
            s = expect
        if s < 0:
            return None
        if s != expect:
            c_order = False
        out.append(s)
        expect *= n
    if c_order:
        return ()
    if all(s == 0 for s in out):
        return None
    return tuple(reversed(out))


def bind(x, name, inout=False):
    """Describe x (NumPy array, torch CPU tensor, DLPack producer or array-
    like) as a linattn tensor.  Inputs of another float dtype are converted to
    float32 (a copy); an in-place state (inout) that needs a copy is copied
    back by Bound.write_back()."""
    if type(x) is np.ndarray and 0 < x.ndim <= _lib.MAX_DIMS and x.flags.c_contiguous \
            and (not inout or x.flags.writeable):
        code = _CODES.get(x.dtype)
        if code is not None:  # the common case: no checks of strides
            t = _lib.Tensor(x.__array_interface__["data"][0], x.ndim, _SHAPE(*x.shape))
            t.dtype = code
            return Bound(t, x, None, "numpy", code)
    if is_torch(x):
        return _bind_torch(x, name, inout)
    orig = x
    if not isinstance(x, np.ndarray):
        if hasattr(x, "__dlpack__"):
            x = np.from_dlpack(x)
        else:
            if inout:
                raise TypeError(f"{name}: an in-place state must be a NumPy array or a tensor")
            x = np.asarray(x, dtype=np.float32)
        orig = x
    if x.ndim < 1 or x.ndim > _lib.MAX_DIMS:
        raise ValueError(f"{name}: {x.ndim} dimensions (linattn takes 1 to {_lib.MAX_DIMS})")
    if inout and not x.flags.writeable:
        raise ValueError(f"{name}: the state is updated in place but the array is read-only")
    code = _CODES.get(x.dtype)
    if code is None:
        code = _np_code(x.dtype)
    copied = False
    if code is None:
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{name}: dtype {x.dtype} is not a number type")
        x, code, copied = x.astype(np.float32), _lib.F32, True
    if x.flags.c_contiguous:
        st = ()
    else:
        item = x.itemsize
        st = None
        if all(s % item == 0 for s in x.strides):
            st = _elem_strides(x.shape, [s // item for s in x.strides])
        if st is None:
            x, copied, st = np.ascontiguousarray(x), True, ()
    t = _lib.Tensor()
    _fill(t, x.__array_interface__["data"][0], x.shape, st, st == (), code)
    return Bound(t, x, orig if (copied and inout) else None, "numpy", code)


def _bind_torch(x, name, inout):
    torch = _torch()
    if x.device.type != "cpu":
        raise TypeError(f"{name}: a tensor on {x.device} (linattn takes CPU tensors; "
                        "move it with .cpu())")
    orig = x
    if x.requires_grad:
        x = x.detach()
    if x.dim() < 1 or x.dim() > _lib.MAX_DIMS:
        raise ValueError(f"{name}: {x.dim()} dimensions (linattn takes 1 to {_lib.MAX_DIMS})")
    code = _torch_code(x)
    copied = False
    if code is None:
        if x.dtype.is_complex:
            raise TypeError(f"{name}: dtype {x.dtype} is not a real number type")
        x, code, copied = x.to(torch.float32), _lib.F32, True
    st = _elem_strides(tuple(x.shape), x.stride())
    if st is None:
        x, copied, st = x.contiguous(), True, ()
    t = _lib.Tensor()
    _fill(t, x.data_ptr(), tuple(x.shape), st, st == (), code)
    return Bound(t, x, orig if (copied and inout) else None, "torch", code)


def empty(kind, shape, code):
    """A new array for an output: NumPy or torch (kind), of linattn dtype code."""
    shape = tuple(int(n) for n in shape)
    if kind == "torch":
        torch = _torch()
        out = torch.empty(shape, dtype=_torch_dtype(code))
        if POISON:
            out.fill_(float("nan"))
        return out
    out = np.empty(shape, dtype=_np_dtype(code))
    if POISON:
        out.fill(np.nan)
    return out


def bind_out(arr, code):
    """A tensor for an output array empty() made (C order)."""
    t = _lib.Tensor()
    ptr = arr.data_ptr() if not isinstance(arr, np.ndarray) else \
        arr.__array_interface__["data"][0]
    return _fill(t, ptr, tuple(arr.shape), (), True, code)


def int64_array(x, name):
    """cu_seqlens as a C-order int64 NumPy array (from a list, array or tensor)."""
    if is_torch(x):
        x = x.detach().cpu().numpy()
    a = np.ascontiguousarray(np.asarray(x), dtype=np.int64)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d sequence of offsets")
    return a


def ptr(a):
    return ctypes.c_void_p(a.ctypes.data)

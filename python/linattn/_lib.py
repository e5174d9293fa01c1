"""Loading liblinattn with ctypes: its structs, error codes and the context."""
import ctypes
import ctypes.util
import os
import subprocess
import threading
import weakref

MAX_DIMS = 4
OP_MAX_TENSORS = 12
OP_MAX_OPTIONS = 8
OP_LETTERS = 26

F32, F16, BF16 = 0, 1, 2
BACKENDS = {"auto": 0, "ref": 1, "cpu": 2, "opencl": 3}
BACKEND_NAMES = {v: k for k, v in BACKENDS.items()}


class Tensor(ctypes.Structure):
    """struct linattn_tensor."""
    _fields_ = [("data", ctypes.c_void_p), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_int64 * MAX_DIMS), ("buf", ctypes.c_void_p),
                ("strides", ctypes.c_int64 * MAX_DIMS), ("offset", ctypes.c_int64),
                ("dtype", ctypes.c_int)]


class OpTensor(ctypes.Structure):
    """struct linattn_op_tensor."""
    _fields_ = [("name", ctypes.c_char_p), ("ndim", ctypes.c_int),
                ("dims", ctypes.c_char * (MAX_DIMS + 1)), ("tail", ctypes.c_char),
                ("role", ctypes.c_int), ("optional", ctypes.c_int), ("pair", ctypes.c_int),
                ("needs", ctypes.c_int), ("ranged", ctypes.c_int), ("lo", ctypes.c_float),
                ("hi", ctypes.c_float), ("lo_open", ctypes.c_int), ("hi_open", ctypes.c_int),
                ("fill_lo", ctypes.c_float), ("fill_hi", ctypes.c_float)]


class OpOption(ctypes.Structure):
    """struct linattn_op_option."""
    _fields_ = [("name", ctypes.c_char_p), ("type", ctypes.c_int), ("lo", ctypes.c_double),
                ("hi", ctypes.c_double), ("def_", ctypes.c_double), ("nonzero", ctypes.c_int)]


class OpInfo(ctypes.Structure):
    """struct linattn_op_info."""
    _fields_ = [("name", ctypes.c_char_p), ("entry", ctypes.c_char_p),
                ("family", ctypes.c_char_p), ("page", ctypes.c_char_p),
                ("packed", ctypes.c_int), ("cache", ctypes.c_int), ("f32_states", ctypes.c_int),
                ("ntensors", ctypes.c_int), ("noptions", ctypes.c_int),
                ("tensors", OpTensor * OP_MAX_TENSORS), ("options", OpOption * OP_MAX_OPTIONS)]


class OpArgs(ctypes.Structure):
    """struct linattn_op_args."""
    _fields_ = [("t", Tensor * OP_MAX_TENSORS), ("opt", ctypes.c_double * OP_MAX_OPTIONS),
                ("cu_seqlens", ctypes.c_void_p), ("n_seqs", ctypes.c_int64),
                ("cache", ctypes.c_void_p), ("state_indices", ctypes.c_void_p),
                ("has_initial_state", ctypes.c_void_p), ("checkpoint_every", ctypes.c_int64),
                ("checkpoint_offsets", ctypes.c_void_p)]


class Config(ctypes.Structure):
    """struct linattn_config."""
    _fields_ = [("backend", ctypes.c_int), ("threads", ctypes.c_int), ("verbose", ctypes.c_int),
                ("isa", ctypes.c_char_p), ("device", ctypes.c_char_p)]


class LaAttrs(ctypes.Structure):
    """struct linattn_la_attrs."""
    _fields_ = [("q_num_heads", ctypes.c_int), ("kv_num_heads", ctypes.c_int),
                ("update_rule", ctypes.c_int), ("scale", ctypes.c_float),
                ("chunk_size", ctypes.c_int), ("algo", ctypes.c_int)]


class LaIO(ctypes.Structure):
    """struct linattn_la_io."""
    _fields_ = [(n, Tensor) for n in ("query", "key", "value", "past_state", "decay", "beta",
                                      "output", "present_state")]


# ---- errors -----------------------------------------------------------------

class Error(Exception):
    """A linattn call failed: `code` is the status (LINATTN_E*, negative),
    `name` its symbolic name and `message` the library's linattn_last_error()."""

    def __init__(self, code, message):
        self.code = code
        self.name = _CODE_NAMES.get(code, "LINATTN_E?")
        self.message = message
        super().__init__(f"{self.name}: {message}" if message else self.name)


class NullError(Error):
    """LINATTN_ENULL: a required pointer or tensor was missing."""


class ShapeError(Error, ValueError):
    """LINATTN_ESHAPE: wrong rank or shapes that do not agree."""


class SizeError(Error, ValueError):
    """LINATTN_ESIZE: a size is zero or negative."""


class ByteOverflowError(Error, OverflowError):
    """LINATTN_EOVERFLOW: a byte count does not fit in size_t."""


class HeadDimError(Error, ValueError):
    """LINATTN_EHEADDIM: head size above LINATTN_MAX_HEAD_DIM."""


class SeqlensError(Error, ValueError):
    """LINATTN_ESEQLENS: cu_seqlens malformed."""


class RangeError(Error, ValueError):
    """LINATTN_ERANGE: an option or value outside its range."""


class NoMemoryError(Error, MemoryError):
    """LINATTN_ENOMEM: memory allocation failed."""


class UnsupportedError(Error):
    """LINATTN_EUNSUPPORTED: backend, ISA or feature not available."""


class FileIOError(Error, OSError):
    """LINATTN_EIO: a file could not be read or written."""


class FormatError(Error, ValueError):
    """LINATTN_EFORMAT: not a supported .npy file."""


class InvalidError(Error, ValueError):
    """LINATTN_EINVAL: any other invalid argument."""


class NoDeviceError(Error):
    """LINATTN_ENODEV: no OpenCL runtime or no usable OpenCL device."""


class DeviceError(Error):
    """LINATTN_EDEVICE: an OpenCL call failed."""


_CODE_NAMES = {-1: "LINATTN_ENULL", -2: "LINATTN_ESHAPE", -3: "LINATTN_ESIZE",
               -4: "LINATTN_EOVERFLOW", -5: "LINATTN_EHEADDIM", -6: "LINATTN_ESEQLENS",
               -7: "LINATTN_ERANGE", -8: "LINATTN_ENOMEM", -9: "LINATTN_EUNSUPPORTED",
               -10: "LINATTN_EIO", -11: "LINATTN_EFORMAT", -12: "LINATTN_EINVAL",
               -13: "LINATTN_ENODEV", -14: "LINATTN_EDEVICE"}
_CODE_CLASSES = {-1: NullError, -2: ShapeError, -3: SizeError, -4: ByteOverflowError,
                 -5: HeadDimError, -6: SeqlensError, -7: RangeError, -8: NoMemoryError,
                 -9: UnsupportedError, -10: FileIOError, -11: FormatError, -12: InvalidError,
                 -13: NoDeviceError, -14: DeviceError}


def raise_for(code):
    """Raise the Error subclass of a nonzero status, with the library's message."""
    msg = lib().linattn_last_error().decode("utf-8", "replace")
    raise _CODE_CLASSES.get(code, Error)(code, msg)


def check(code):
    if code:
        raise_for(code)
    return code


# ---- loading ------------------------------------------------------------------

def _candidates():
    env = os.environ.get("LINATTN_LIBRARY")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    # the package used from the source tree (python/linattn) next to a build
    yield os.path.join(here, "..", "..", "lib", ".libs", "liblinattn.so")
    found = ctypes.util.find_library("linattn")
    if found:
        yield found
    try:
        libdir = subprocess.run(["pkg-config", "--variable=libdir", "linattn"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        if libdir:
            yield os.path.join(libdir, "liblinattn.so")
    except (OSError, subprocess.SubprocessError):
        pass
    yield "liblinattn.so"


_LIB = None
_LOCK = threading.Lock()
_MIRRORED = (Tensor, OpTensor, OpOption, OpInfo, OpArgs, Config, LaAttrs, LaIO)


def _declare(h):
    P, I, I64, CP = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_char_p
    sigs = {
        "linattn_last_error": (CP, []), "linattn_strerror": (CP, [I]),
        "linattn_version_string": (CP, []), "linattn_version": (I, []),
        "linattn_ctx_create": (I, [ctypes.POINTER(Config), ctypes.POINTER(P)]),
        "linattn_ctx_destroy": (None, [P]), "linattn_ctx_backend": (I, [P]),
        "linattn_ctx_threads": (I, [P]), "linattn_ctx_isa": (CP, [P]),
        "linattn_ctx_device": (CP, [P]), "linattn_config_init": (None, [ctypes.POINTER(Config)]),
        "linattn_isa_compiled": (CP, []), "linattn_isa_usable": (I, [CP]),
        "linattn_op_count": (I, []), "linattn_op_at": (ctypes.POINTER(OpInfo), [I]),
        "linattn_op_find": (ctypes.POINTER(OpInfo), [CP, CP]),
        "linattn_op_args_init": (None, [ctypes.POINTER(OpInfo), ctypes.POINTER(OpArgs)]),
        "linattn_op_dims": (None, [ctypes.POINTER(OpInfo), ctypes.POINTER(OpArgs),
                                   ctypes.POINTER(I64)]),
        "linattn_op_shape": (I, [ctypes.POINTER(OpInfo), I, ctypes.POINTER(I64),
                                 ctypes.POINTER(I64)]),
        "linattn_op_rank": (I, [ctypes.POINTER(OpInfo), I, ctypes.POINTER(I64)]),
        "linattn_op_option_parse": (I, [ctypes.POINTER(OpInfo), I, CP,
                                        ctypes.POINTER(ctypes.c_double)]),
        "linattn_op_call": (I, [P, ctypes.POINTER(OpInfo), ctypes.POINTER(OpArgs)]),
        "linattn_kvcache_create": (I, [P, I64, I64, I64, I64, I64, ctypes.POINTER(P)]),
        "linattn_kvcache_destroy": (None, [P]), "linattn_kvcache_length": (I64, [P]),
        "linattn_kvcache_capacity": (I64, [P]), "linattn_kvcache_bytes": (ctypes.c_size_t, [P]),
        "linattn_kvcache_append": (I, [P, P, ctypes.POINTER(Tensor), ctypes.POINTER(Tensor)]),
        "linattn_kvcache_reset": (I, [P]), "linattn_kvcache_truncate": (I, [P, I64]),
        "linattn_la_attrs_init": (None, [ctypes.POINTER(LaAttrs)]),
        "linattn_la_rule_parse": (I, [CP, ctypes.POINTER(I)]),
        "linattn_linear_attention": (I, [P, ctypes.POINTER(LaIO), ctypes.POINTER(LaAttrs)]),
        "linattn_struct_size": (ctypes.c_size_t, [CP]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(h, name)
        f.restype, f.argtypes = res, args
    # the mirrored structs must have the loaded library's layout: a library
    # built from other headers would be written past (heap corruption)
    bad = []
    for cls in _MIRRORED:
        cname = cls.__doc__.split()[1].rstrip(".")
        theirs = h.linattn_struct_size(cname.encode())
        if theirs != ctypes.sizeof(cls):
            bad.append(f"{cname}: {theirs} bytes in the library, {ctypes.sizeof(cls)} here")
    if bad:
        raise OSError("liblinattn's structs differ from this package's (a library of "
                      "another version?): " + "; ".join(bad))


def lib():
    """The loaded liblinattn (ctypes.CDLL); found via $LINATTN_LIBRARY, then the
    build tree next to this package (lib/.libs), then the system's library path
    and pkg-config's libdir."""
    global _LIB
    if _LIB is not None:
        return _LIB
    with _LOCK:
        if _LIB is None:
            errors = []
            for path in _candidates():
                if os.sep in path and not os.path.exists(path):
                    errors.append(f"{path}: not found")
                    continue
                try:
                    h = ctypes.CDLL(path)
                    _declare(h)  # refuses a library whose structs differ
                except (OSError, AttributeError) as e:
                    errors.append(f"{path}: {e}")
                    continue
                _LIB = h
                break
            else:
                raise OSError("liblinattn not found (set LINATTN_LIBRARY to its path): "
                              + "; ".join(errors))
    return _LIB


def version():
    """The version of the library actually loaded ("0.1.0")."""
    return lib().linattn_version_string().decode()


# ---- the context ------------------------------------------------------------

class Handle:
    """What owns a library object: close() frees it, `with` closes it, and
    so does the garbage collector (close() must be safe to call twice)."""

    def close(self):
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass


class Context(Handle):
    """A linattn context: where and how operators run.

    backend: "auto" (default: an OpenCL GPU or accelerator if there is one,
    else the CPU; honours $LINATTN_DEVICE), "cpu", "ref" (plain C reference)
    or "opencl".  isa: None (the best this CPU runs, or $LINATTN_ISA), or
    "ref", "scalar", "avx2", "avx512", "neon".  threads: 0 for the default.
    device: None, "cpu", "opencl" or "opencl:P.D".

    Attributes backend, isa, device and threads say what the context chose.
    Use it as a context manager or call close(); it also closes when
    collected.
    """

    def __init__(self, backend="auto", isa=None, threads=0, device=None, verbose=False):
        h = lib()
        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r}: expected one of {', '.join(BACKENDS)}")
        cfg = Config()
        h.linattn_config_init(ctypes.byref(cfg))
        cfg.backend = BACKENDS[backend]
        cfg.threads = int(threads)
        cfg.verbose = 1 if verbose else 0
        self._isa_b = isa.encode() if isa else None
        self._dev_b = device.encode() if device else None
        cfg.isa, cfg.device = self._isa_b, self._dev_b
        ptr = ctypes.c_void_p()
        self._h = None
        self._children = weakref.WeakSet()  # KV caches, closed before the context
        check(h.linattn_ctx_create(ctypes.byref(cfg), ctypes.byref(ptr)))
        self._h = ptr
        self._lib = h

    @property
    def handle(self):
        if self._h is None:
            raise ValueError("the context is closed")
        return self._h

    @property
    def backend(self):
        return BACKEND_NAMES.get(self._lib.linattn_ctx_backend(self.handle), "?")

    @property
    def isa(self):
        return self._lib.linattn_ctx_isa(self.handle).decode()

    @property
    def device(self):
        return self._lib.linattn_ctx_device(self.handle).decode()

    @property
    def threads(self):
        return self._lib.linattn_ctx_threads(self.handle)

    def close(self):
        """Destroy the context, after the KV caches made on it."""
        if self._h is not None:
            for child in list(self._children):
                child.close()
            self._lib.linattn_ctx_destroy(self._h)
            self._h = None

    def __repr__(self):
        if self._h is None:
            return "<linattn.Context closed>"
        return (f"<linattn.Context backend={self.backend} isa={self.isa} "
                f"device={self.device!r} threads={self.threads}>")


_DEFAULT = None


def default_context():
    """The context operators use when none is given (created on first use
    with the defaults: Context())."""
    global _DEFAULT
    if _DEFAULT is None:
        with _LOCK:
            if _DEFAULT is None:
                _DEFAULT = Context()
    return _DEFAULT


def set_default_context(ctx):
    """Make ctx (a Context) the one operators use when none is given."""
    global _DEFAULT
    if not isinstance(ctx, Context):
        raise TypeError("set_default_context takes a linattn.Context")
    _DEFAULT = ctx

"""Failures raise linattn.Error subclasses with the code and the library's message."""
import numpy as np
import pytest

import linattn
from test_ops import u


def test_shape_error_carries_message(rng):
    q = u(rng, 1, 4, 2, 8)
    with pytest.raises(linattn.ShapeError) as e:
        linattn.gla_forward(q, q, u(rng, 1, 5, 2, 8))
    assert e.value.code == -2 and e.value.name == "LINATTN_ESHAPE"
    assert "v: dimension 1 is 5" in e.value.message and isinstance(e.value, ValueError)


def test_range_errors(rng):
    q = u(rng, 1, 4, 2, 8)
    with pytest.raises(linattn.RangeError) as e:  # a positive log-decay
        linattn.gla_forward(q, q, q, np.full((1, 4, 2), 0.5, np.float32))
    assert "g" in e.value.message
    with pytest.raises(linattn.RangeError, match="chunk"):  # an option out of range
        linattn.gla_forward(q, q, q, chunk=100000)
    with pytest.raises(linattn.InvalidError, match="expected auto, recurrent or chunk"):
        linattn.gla_forward(q, q, q, algo="fast")
    with pytest.raises(linattn.SeqlensError):
        linattn.gla_forward(q, q, q, cu_seqlens=[0, 3, 2, 4])


def test_python_side_errors(rng):
    q = u(rng, 1, 4, 2, 8)
    with pytest.raises(TypeError, match="missing tensor 'beta'"):
        linattn.gdn_forward(q, q, q)
    with pytest.raises(TypeError, match="unexpected argument 'eps'"):
        linattn.gdn_forward(q, q, q, beta=q[..., 0], eps=1.0)
    with pytest.raises(TypeError, match="needs a KVCache"):
        linattn.softmax_step(q[:, 0], q[:, 0], q[:, 0])
    with pytest.raises(ValueError, match="backend"):
        linattn.Context(backend="gpu")


def test_context_errors_and_attributes():
    with pytest.raises(linattn.Error) as e:
        linattn.Context(backend="cpu", isa="no-such-isa")
    assert e.value.message
    with linattn.Context(backend="ref") as c:
        assert c.backend == "ref" and c.device == "cpu" and c.threads >= 1 and c.isa
    with linattn.Context(backend="cpu", threads=1) as c:
        assert c.backend == "cpu" and c.threads == 1
    with pytest.raises(ValueError, match="closed"):
        c.backend


def test_closing_a_context_closes_its_caches():
    c = linattn.Context(backend="cpu")
    cache = linattn.KVCache(1, 2, 4, 4, ctx=c)
    c.close()
    with pytest.raises(ValueError, match="closed"):
        len(cache)
    cache.close()  # nothing left to free


def test_struct_layout_checked(monkeypatch):
    """A mirrored struct whose size differs from the library's is refused at
    load time (instead of the library writing past it)."""
    import ctypes
    from linattn import _lib

    class Short(ctypes.Structure):
        """struct linattn_op_args."""
        _fields_ = [("x", ctypes.c_int)]

    monkeypatch.setattr(_lib, "_MIRRORED", (Short,))
    with pytest.raises(OSError, match="linattn_op_args: [0-9]+ bytes in the library, 4 here"):
        _lib._declare(ctypes.CDLL(_lib.lib()._name))

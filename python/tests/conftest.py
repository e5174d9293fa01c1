"""pytest setup: the package from this source tree (unless LINATTN_PY_INSTALLED
is set, to test an installed one), outputs poisoned with NaN, fresh seeds."""
import os
import secrets
import sys

import numpy as np
import pytest

os.environ.setdefault("LINATTN_POISON_OUTPUTS", "1")
if not os.environ.get("LINATTN_PY_INSTALLED"):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def rng(request):
    """A generator on a fresh seed, printed with the test's outcome."""
    seed = secrets.randbits(32)
    print(f"{request.node.name}: seed {seed}")
    return np.random.default_rng(seed)


def backends():
    """The backends the operator tests run on: $LINATTN_PY_BACKENDS, default
    "cpu ref" (OpenCL when LINATTN_DEVICE asks for it)."""
    names = os.environ.get("LINATTN_PY_BACKENDS", "cpu ref").split()
    if os.environ.get("LINATTN_DEVICE", "").startswith("opencl") and "opencl" not in names:
        names.append("opencl")
    return names


_CTX = {}


@pytest.fixture(params=backends())
def ctx(request):
    import linattn
    if request.param not in _CTX:
        _CTX[request.param] = linattn.Context(backend=request.param)
    return _CTX[request.param]

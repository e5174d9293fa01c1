"""Layouts and element types: strided and transposed views (zero copy),
negative strides (copied), in-place states that need a copy, f16, bf16
(ml_dtypes), torch tensors (skipped when torch is absent)."""
import numpy as np
import pytest

import linattn
import refs
from test_ops import check, u


def gdn_case(rng, B=2, T=13, H=3, K=8, V=4):
    x = dict(q=u(rng, B, T, H, K), k=u(rng, B, T, H, K) * 0.5, v=u(rng, B, T, H, V),
             g=u(rng, B, T, H, lo=-0.5, hi=0), beta=u(rng, B, T, H, lo=0, hi=1))
    return x, refs.delta("gdn", **x)[0]


def test_transposed_views_zero_copy(rng):
    x, want = gdn_case(rng)
    # head-first storage [B,H,T,K] read through a transposed view, and q as
    # every other element of a wider array
    hf = {n: np.ascontiguousarray(np.swapaxes(a, 1, 2)) for n, a in x.items() if a.ndim == 4}
    views = {n: np.swapaxes(a, 1, 2) for n, a in hf.items()}
    wide = np.zeros(x["q"].shape[:3] + (2 * x["q"].shape[3],), np.float32)
    wide[..., ::2] = x["q"]
    views["q"] = wide[..., ::2]
    gb = np.zeros(x["g"].shape + (3,), np.float32)
    gb[..., 1] = x["g"]
    views["g"] = gb[..., 1]
    views["beta"] = np.asfortranarray(x["beta"])
    for n, a in views.items():
        assert not a.flags.c_contiguous, n
    from linattn import _array
    b = _array.bind(views["q"], "q")
    assert b.keep is views["q"] and b.tensor.strides[3] == 2  # no copy, element strides
    check(linattn.gdn_forward(**views), want)


def test_broadcast_and_negative_strides(rng):
    x, _ = gdn_case(rng)
    x["beta"] = np.broadcast_to(np.float32(0.7), x["beta"].shape)  # all strides 0
    x["k"] = np.ascontiguousarray(x["k"][:, ::-1])[:, ::-1]        # negative stride view
    x["g"] = np.broadcast_to(x["g"][:, :, :1], x["g"].shape)        # one stride 0
    check(linattn.gdn_forward(**x), refs.delta("gdn", **x)[0])


def test_state_copied_back(rng):
    x, _ = gdn_case(rng, T=1)
    h0 = u(rng, 2, 3, 8, 4)
    _, want = refs.delta("gdn", **x, h0=h0)
    # a float64 state and a reversed view: both need a copy, written back
    for state in (h0.astype(np.float64), np.ascontiguousarray(h0[:, ::-1])[:, ::-1]):
        linattn.gdn_step(**{n: a[:, 0] for n, a in x.items()}, state_h=state)
        check(state, want)
    ro = h0.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        linattn.gdn_step(**{n: a[:, 0] for n, a in x.items()}, state_h=ro)


def test_float16(rng):
    x, _ = gdn_case(rng)
    x16 = {n: a.astype(np.float16) for n, a in x.items()}
    o, hT = linattn.gdn_forward(**x16, output_final_state=True)
    assert o.dtype == np.float16 and hT.dtype == np.float32
    ro, rh = refs.delta("gdn", **x16)
    check(o, ro, 3e-3)
    check(hT, rh, 1e-3)


def test_bfloat16_numpy(rng):
    ml = pytest.importorskip("ml_dtypes")
    x, _ = gdn_case(rng)
    xb = {n: a.astype(ml.bfloat16) for n, a in x.items()}
    o = linattn.gdn_forward(**xb)
    assert o.dtype == ml.bfloat16
    check(o.astype(np.float32), refs.delta("gdn", **{n: a.astype(np.float32)
                                                      for n, a in xb.items()})[0], 2e-2)


def test_torch_tensors(rng):
    torch = pytest.importorskip("torch")
    x, want = gdn_case(rng)
    t = {n: torch.from_numpy(a) for n, a in x.items()}
    t["q"] = t["q"].transpose(1, 2).contiguous().transpose(1, 2)  # a strided view
    o, hT = linattn.gdn_forward(**t, output_final_state=True)
    assert isinstance(o, torch.Tensor) and o.dtype == torch.float32
    check(o.numpy(), want)
    tb = {n: a.to(torch.bfloat16) for n, a in t.items()}
    ob = linattn.gdn_forward(**tb)
    assert ob.dtype == torch.bfloat16
    check(ob.float().numpy(), refs.delta("gdn", **{n: a.float().numpy()
                                                   for n, a in tb.items()})[0], 2e-2)
    state = torch.zeros(2, 3, 8, 4)
    linattn.gdn_step(*(a[:, 0] for a in t.values()), state_h=state)
    check(state.numpy(), refs.delta("gdn", **{n: a[:, :1] for n, a in x.items()})[1])


def test_dlpack_producer(rng):
    x, want = gdn_case(rng)

    class Producer:  # anything with __dlpack__, e.g. another array library
        def __init__(self, a):
            self.a = a

        def __dlpack__(self, **kw):
            return self.a.__dlpack__(**kw)

        def __dlpack_device__(self):
            return self.a.__dlpack_device__()

    check(linattn.gdn_forward(**{n: Producer(a) for n, a in x.items()}), want)

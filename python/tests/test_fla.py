"""linattn.fla's flash-linear-attention-named functions against the float64
references (fla's layouts: [B,T,H,K], states [N,HV,K,V], log-space gates)."""
import numpy as np
import pytest

from linattn import fla
import refs
from test_ops import check, u


def case(rng, B=2, T=21, H=2, HV=4, K=8, V=6, per_channel=False):
    return dict(q=u(rng, B, T, H, K), k=u(rng, B, T, H, K), v=u(rng, B, T, HV, V),
                g=u(rng, B, T, HV, *((K,) if per_channel else ()), lo=-0.4, hi=0),
                beta=u(rng, B, T, HV, lo=0, hi=1))


@pytest.mark.parametrize("fn", [fla.chunk_gated_delta_rule, fla.fused_recurrent_gated_delta_rule])
def test_gated_delta_rule(rng, fn):
    x = case(rng)
    h0 = u(rng, 2, 4, 8, 6)
    o, ht = fn(x["q"], x["k"], x["v"], g=x["g"], beta=x["beta"], scale=0.4, initial_state=h0,
               output_final_state=True, use_qk_l2norm_in_kernel=True)
    ro, rh = refs.delta("gdn", **x, h0=h0, scale=0.4, l2norm=True)
    check(o, ro, what="o")
    check(ht, rh, what="final_state")
    o2, none = fn(x["q"], x["k"], x["v"], g=x["g"], beta=x["beta"])
    assert none is None
    check(o2, refs.delta("gdn", **x)[0])


def test_gated_delta_rule_varlen_and_layouts(rng):
    x = case(rng, B=1, T=30)
    cu = np.array([0, 4, 17, 30])
    h0 = u(rng, 3, 4, 8, 6)
    ro, rh = refs.delta("gdn", **x, h0=h0, cu=cu)
    o, ht = fla.chunk_gated_delta_rule(**x, initial_state=h0, output_final_state=True,
                                       cu_seqlens=cu)
    check(o, ro, what="o")
    check(ht, rh, what="final_state")
    # state_v_first: states [N,HV,V,K]; head_first: [B,H,T,K] inputs and output
    hf = {n: np.ascontiguousarray(np.swapaxes(a, 1, 2)) for n, a in x.items()}
    o, ht = fla.chunk_gated_delta_rule(**hf, initial_state=np.swapaxes(h0, 2, 3).copy(),
                                       output_final_state=True, cu_seqlens=cu,
                                       state_v_first=True, head_first=True)
    check(np.swapaxes(o, 1, 2), ro, what="head_first o")
    check(np.swapaxes(ht, 2, 3), rh, what="v-first state")


def test_gated_delta_rule_gate_and_beta_in_kernel(rng):
    x = case(rng)
    raw, logits = u(rng, 2, 21, 4, lo=-2, hi=2), u(rng, 2, 21, 4, lo=-3, hi=3)
    A_log, dt_bias = u(rng, 4, lo=-1, hi=0.5), u(rng, 4)
    g = -np.exp(A_log.astype(np.float64)) * np.logaddexp(0, raw + dt_bias.astype(np.float64))
    beta = 1 / (1 + np.exp(-logits.astype(np.float64)))
    o, _ = fla.chunk_gated_delta_rule(x["q"], x["k"], x["v"], raw, logits,
                                      use_gate_in_kernel=True, A_log=A_log, dt_bias=dt_bias,
                                      use_beta_sigmoid_in_kernel=True)
    check(o, refs.delta("gdn", x["q"], x["k"], x["v"], g, beta)[0], what="sigmoid beta")
    o, _ = fla.chunk_gated_delta_rule(x["q"], x["k"], x["v"], x["g"], logits,
                                      use_beta_sigmoid_in_kernel=True, allow_neg_eigval=True)
    check(o, refs.delta("gdn", x["q"], x["k"], x["v"], x["g"], 2 * beta)[0], what="2 sigmoid")


def test_fused_recurrent_gk(rng):
    x = case(rng, per_channel=True)
    gh = u(rng, 2, 21, 4, lo=-0.3, hi=0)
    o, _ = fla.fused_recurrent_gated_delta_rule(x["q"], x["k"], x["v"], g=gh, gk=x["g"],
                                                beta=x["beta"])
    check(o, refs.delta("gdn", x["q"], x["k"], x["v"], x["g"] + gh[..., None], x["beta"])[0])
    o, _ = fla.fused_recurrent_gated_delta_rule(x["q"], x["k"], x["v"], gk=x["g"])
    check(o, refs.delta("gdn", x["q"], x["k"], x["v"], x["g"], np.ones((2, 21, 4)))[0])
    with pytest.raises(NotImplementedError):
        fla.fused_recurrent_gated_delta_rule(x["q"], x["k"], x["v"], gv=x["g"])


@pytest.mark.parametrize("fn", [fla.chunk_simple_gla, fla.fused_recurrent_simple_gla])
def test_simple_gla(rng, fn):
    x = case(rng, HV=2)
    gamma = u(rng, 2, lo=-0.2, hi=0)
    h0 = u(rng, 2, 2, 8, 6)
    cu = [0, 9, 21]
    o, ht = fn(x["q"][:1], x["k"][:1], x["v"][:1], g=x["g"][:1], g_gamma=gamma, scale=0.5,
               initial_state=h0, output_final_state=True, cu_seqlens=cu)
    ro, rh = refs.delta("gla", x["q"][:1], x["k"][:1], x["v"][:1], x["g"][:1] + gamma, h0=h0,
                        scale=0.5, cu=cu)
    check(o, ro, what="o")
    check(ht, rh, what="final_state")
    o, _ = fn(x["q"], x["k"], x["v"])
    check(o, refs.delta("gla", x["q"], x["k"], x["v"])[0], what="no gate")


@pytest.mark.parametrize("fn", [fla.chunk_gla, fla.fused_recurrent_gla])
def test_gla_per_channel(rng, fn):
    x = case(rng, HV=2, per_channel=True)
    h0 = u(rng, 2, 2, 8, 6)
    o, ht = fn(x["q"], x["k"], x["v"], x["g"], initial_state=h0, output_final_state=True)
    ro, rh = refs.delta("gla", x["q"], x["k"], x["v"], x["g"], h0=h0)
    check(o, ro, what="o")
    check(ht, rh, what="final_state")


@pytest.mark.parametrize("fn", [fla.chunk_kda, fla.fused_recurrent_kda])
def test_kda(rng, fn):
    x = case(rng, per_channel=True)
    h0 = u(rng, 2, 4, 8, 6)
    o, ht = fn(**x, initial_state=h0, output_final_state=True, use_qk_l2norm_in_kernel=True)
    ro, rh = refs.delta("gdn", **x, h0=h0, l2norm=True)
    check(o, ro, what="o")
    check(ht, rh, what="final_state")


def test_kda_gate_in_kernel(rng):
    x = case(rng, per_channel=True)
    A_log, dt_bias = u(rng, 4, lo=-1, hi=0.5), u(rng, 4 * 8)
    g = -np.exp(A_log.astype(np.float64))[:, None] * np.logaddexp(
        0, x["g"] + dt_bias.reshape(4, 8).astype(np.float64))
    o, _ = fla.chunk_kda(**x, use_gate_in_kernel=True, A_log=A_log, dt_bias=dt_bias)
    check(o, refs.delta("gdn", x["q"], x["k"], x["v"], g, x["beta"])[0])


def test_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    x = case(rng)
    t = {n: torch.from_numpy(a) for n, a in x.items()}
    o, ht = fla.chunk_gated_delta_rule(**t, output_final_state=True)
    assert isinstance(o, torch.Tensor) and ht.dtype == torch.float32
    ro, rh = refs.delta("gdn", **x)
    check(o.numpy(), ro)
    check(ht.numpy(), rh)

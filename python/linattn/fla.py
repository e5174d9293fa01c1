"""flash-linear-attention's function names and signatures on linattn's CPU
kernels, so that code written against `fla.ops` runs where Triton does not:

    from linattn.fla import chunk_gated_delta_rule      # instead of fla.ops
    o, state = chunk_gated_delta_rule(q, k, v, g, beta, initial_state=h0,
                                      output_final_state=True)

Layouts are fla's (time-first, head_first=False): q, k [B,T,H,K], v [B,T,HV,V]
(HV a multiple of H: grouped value heads), gates in log space ([B,T,HV] per
head, [B,T,HV,K] per key channel), beta [B,T,HV], states [N,HV,K,V]
(state_v_first=True: [N,HV,V,K]), float32 final states.  Inputs are torch
CPU tensors or NumPy arrays (float32, float16, bfloat16); outputs come back
in the same kind and dtype.  Each function returns (o, final_state), with
final_state None unless output_final_state.

Differences: forward only (no autograd); the `chunk_*` and
`fused_recurrent_*` names both run the library's own plan (algo="auto" by
default; pass algo="chunk" or "recurrent" to choose); fla's tuning and
context-parallel arguments (chunk_indices, cu_seqlens_cpu, cp_context,
disable_recompute, ...) are accepted and ignored; gv (fused recurrent
value gate), reverse=True, safe_gate/lower_bound and
return_intermediate_states are refused with NotImplementedError.
"""
import numpy as np

from . import _array

__all__ = ["chunk_gated_delta_rule", "fused_recurrent_gated_delta_rule", "chunk_simple_gla",
           "fused_recurrent_simple_gla", "chunk_gla", "fused_recurrent_gla", "chunk_kda",
           "fused_recurrent_kda"]

_IGNORED = {"cu_seqlens_cpu", "chunk_indices", "cp_context", "disable_recompute",
            "chunk_size"}


def _pkg():
    import linattn
    return linattn


def _swap(x, a, b):
    if x is None:
        return None
    return x.transpose(a, b) if _array.is_torch(x) else np.swapaxes(x, a, b)


def _sigmoid(x):
    if _array.is_torch(x):
        return x.float().sigmoid()
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float32)))


def _softplus(x):
    if _array.is_torch(x):
        import torch
        return torch.nn.functional.softplus(x.float())
    x = np.asarray(x, dtype=np.float32)
    return np.logaddexp(0.0, x).astype(np.float32)


def _exp(x):
    return x.float().exp() if _array.is_torch(x) else np.exp(np.asarray(x, np.float32))


def _check_kwargs(name, kw):
    for k, v in kw.items():
        if k in _IGNORED:
            continue
        if k in ("reverse", "safe_gate", "return_intermediate_states") and not v:
            continue
        if k == "lower_bound" and v is None:
            continue
        if k in ("gv",) and v is None:
            continue
        raise NotImplementedError(f"{name}: {k}={v!r} is not supported by linattn")


def _gate(g, use_gate_in_kernel, A_log, dt_bias):
    """fla's in-kernel gate per head: g = -exp(A_log) * softplus(g + dt_bias),
    A_log and dt_bias [HV] (a new float32 array)."""
    if not use_gate_in_kernel or g is None:
        return g
    if A_log is None:
        raise ValueError("use_gate_in_kernel=True needs A_log")
    x = g if dt_bias is None else g + dt_bias
    return -_exp(A_log) * _softplus(x)


def _run(fname, op, q, k, v, g, beta, scale, initial_state, output_final_state, cu_seqlens,
         use_qk_l2norm_in_kernel, head_first, state_v_first, beta_logits=False, algo=None,
         ctx=None):
    L = _pkg()
    if head_first:
        q, k, v, g, beta = (_swap(x, 1, 2) for x in (q, k, v, g, beta))
    if state_v_first:
        initial_state = _swap(initial_state, -1, -2)
    fn = getattr(L, op + "_forward")
    kw = dict(scale=0.0 if scale is None else float(scale),
              qk_l2norm=bool(use_qk_l2norm_in_kernel), algo=algo, ctx=ctx,
              output_final_state=bool(output_final_state), cu_seqlens=cu_seqlens, h0=initial_state)
    if op != "gla":
        kw["beta"] = beta
        if beta_logits:
            kw["beta_logits"] = True
    elif beta is not None:
        raise TypeError(f"{fname} takes no beta")
    res = fn(q, k, v, g, **kw)
    o, ht = res if output_final_state else (res, None)
    if head_first:
        o = _swap(o, 1, 2)
    if ht is not None and state_v_first:
        ht = _swap(ht, -1, -2)
    return o, ht


def _beta(beta, use_beta_sigmoid_in_kernel, allow_neg_eigval):
    """(beta for the library, beta_logits): sigmoid in the library when only
    logits are given; 2 sigmoid(beta) computed here for allow_neg_eigval."""
    if use_beta_sigmoid_in_kernel and allow_neg_eigval:
        return 2.0 * _sigmoid(beta), False
    return beta, bool(use_beta_sigmoid_in_kernel)


def chunk_gated_delta_rule(q, k, v, g, beta, scale=None, initial_state=None,
                           output_final_state=False, use_qk_l2norm_in_kernel=False,
                           use_beta_sigmoid_in_kernel=False, allow_neg_eigval=False,
                           state_v_first=False, cu_seqlens=None, head_first=False,
                           use_gate_in_kernel=False, A_log=None, dt_bias=None, algo=None,
                           ctx=None, **kwargs):
    """Gated delta rule (fla.ops.gated_delta_rule.chunk_gated_delta_rule):
    S_t = exp(g_t) S_{t-1} + beta_t k_t (v_t - (exp(g_t) S_{t-1})^T k_t)^T,
    o_t = scale S_t^T q_t.  g [B,T,HV] log-space (with use_gate_in_kernel:
    raw, and g = -exp(A_log) softplus(g + dt_bias) is applied), beta [B,T,HV]
    (logits with use_beta_sigmoid_in_kernel).  Returns (o, final_state)."""
    _check_kwargs("chunk_gated_delta_rule", kwargs)
    g = _gate(g, use_gate_in_kernel, A_log, dt_bias)
    beta, logits = _beta(beta, use_beta_sigmoid_in_kernel, allow_neg_eigval)
    return _run("chunk_gated_delta_rule", "gdn", q, k, v, g, beta, scale, initial_state,
                output_final_state, cu_seqlens, use_qk_l2norm_in_kernel, head_first,
                state_v_first, logits, algo, ctx)


def fused_recurrent_gated_delta_rule(q, k, v, g=None, gk=None, gv=None, beta=None, scale=None,
                                     initial_state=None, output_final_state=False,
                                     use_qk_l2norm_in_kernel=False, use_gate_in_kernel=False,
                                     A_log=None, dt_bias=None, use_beta_sigmoid_in_kernel=False,
                                     allow_neg_eigval=False, state_v_first=False,
                                     cu_seqlens=None, head_first=False, algo=None, ctx=None,
                                     **kwargs):
    """fla.ops.gated_delta_rule.fused_recurrent_gated_delta_rule: as
    chunk_gated_delta_rule, with g [B,T,HV] and/or gk [B,T,HV,K] (per key
    channel; both given: their sum).  beta None means 1; gv is refused."""
    _check_kwargs("fused_recurrent_gated_delta_rule", dict(kwargs, gv=gv))
    g = _gate(g, use_gate_in_kernel, A_log, dt_bias)
    if gk is not None:
        g = gk if g is None else gk + g[..., None]
    if beta is None:
        beta = _ones_like_heads(v)
    beta, logits = _beta(beta, use_beta_sigmoid_in_kernel, allow_neg_eigval)
    return _run("fused_recurrent_gated_delta_rule", "gdn", q, k, v, g, beta, scale,
                initial_state, output_final_state, cu_seqlens, use_qk_l2norm_in_kernel,
                head_first, state_v_first, logits, algo, ctx)


def _ones_like_heads(v):
    """Ones of v's leading three dims (a stride-0 view: no memory)."""
    shape = tuple(v.shape[:3])
    if _array.is_torch(v):
        import torch
        return torch.ones((1,), dtype=torch.float32).expand(*shape)
    return np.broadcast_to(np.ones((1,), np.float32), shape)


def _simple_gate(g, g_gamma, like):
    """g [B,T,H] plus a per-head constant g_gamma [H] (a stride-0 view)."""
    if g_gamma is None:
        return g
    shape = tuple(like.shape[:2]) + (g_gamma.shape[0],)
    if _array.is_torch(g_gamma):
        gg = g_gamma.float().expand(*shape)
    else:
        gg = np.broadcast_to(np.asarray(g_gamma, np.float32), shape)
    return gg if g is None else g + gg


def chunk_simple_gla(q, k, v, g=None, g_gamma=None, scale=None, initial_state=None,
                     output_final_state=False, state_v_first=False, cu_seqlens=None,
                     head_first=False, algo=None, ctx=None, **kwargs):
    """fla.ops.simple_gla.chunk_simple_gla: S_t = exp(g_t) S_{t-1} + k_t v_t^T,
    o_t = scale S_t^T q_t with g [B,T,H] log-space per head and/or g_gamma [H]
    a constant per head (both None: no decay).  Returns (o, final_state)."""
    _check_kwargs("chunk_simple_gla", kwargs)
    if head_first and g_gamma is not None:
        raise NotImplementedError("chunk_simple_gla: g_gamma with head_first")
    g = _simple_gate(g, g_gamma, q)
    return _run("chunk_simple_gla", "gla", q, k, v, g, None, scale, initial_state,
                output_final_state, cu_seqlens, False, head_first, state_v_first, algo=algo,
                ctx=ctx)


def fused_recurrent_simple_gla(q, k, v, g=None, g_gamma=None, scale=None, initial_state=None,
                               output_final_state=False, reverse=False, state_v_first=False,
                               cu_seqlens=None, head_first=False, algo=None, ctx=None, **kwargs):
    """fla.ops.simple_gla.fused_recurrent_simple_gla: as chunk_simple_gla
    (reverse=True is refused)."""
    _check_kwargs("fused_recurrent_simple_gla", dict(kwargs, reverse=reverse))
    g = _simple_gate(g, g_gamma, q)
    return _run("fused_recurrent_simple_gla", "gla", q, k, v, g, None, scale, initial_state,
                output_final_state, cu_seqlens, False, head_first, state_v_first, algo=algo,
                ctx=ctx)


def chunk_gla(q, k, v, g, scale=None, initial_state=None, output_final_state=False,
              state_v_first=False, cu_seqlens=None, head_first=False, algo=None, ctx=None,
              **kwargs):
    """fla.ops.gla.chunk_gla: gated linear attention with a per-key-channel
    gate, S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T, g [B,T,H,K] log-space.
    Returns (o, final_state)."""
    _check_kwargs("chunk_gla", kwargs)
    return _run("chunk_gla", "gla", q, k, v, g, None, scale, initial_state, output_final_state,
                cu_seqlens, False, head_first, state_v_first, algo=algo, ctx=ctx)


def fused_recurrent_gla(q, k, v, gk=None, gv=None, scale=None, initial_state=None,
                        output_final_state=False, reverse=False, state_v_first=False,
                        cu_seqlens=None, head_first=False, algo=None, ctx=None, **kwargs):
    """fla.ops.gla.fused_recurrent_gla: as chunk_gla with the gate named gk
    (gv and reverse=True are refused)."""
    _check_kwargs("fused_recurrent_gla", dict(kwargs, gv=gv, reverse=reverse))
    return _run("fused_recurrent_gla", "gla", q, k, v, gk, None, scale, initial_state,
                output_final_state, cu_seqlens, False, head_first, state_v_first, algo=algo,
                ctx=ctx)


def chunk_kda(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
              use_qk_l2norm_in_kernel=False, use_gate_in_kernel=False,
              use_beta_sigmoid_in_kernel=False, allow_neg_eigval=False, state_v_first=False,
              cu_seqlens=None, head_first=False, A_log=None, dt_bias=None, algo=None, ctx=None,
              **kwargs):
    """fla.ops.kda.chunk_kda (Kimi delta attention): the gated delta rule with
    a per-key-channel gate g [B,T,HV,K] (log-space; with use_gate_in_kernel
    raw, and g = -exp(A_log) softplus(g + dt_bias) with A_log [HV] and
    dt_bias [HV*K] or [HV,K] is applied).  Returns (o, final_state)."""
    _check_kwargs("chunk_kda", kwargs)
    if use_gate_in_kernel:
        if dt_bias is not None:
            dt_bias = dt_bias.reshape(g.shape[-2], g.shape[-1])
        if A_log is None:
            raise ValueError("use_gate_in_kernel=True needs A_log")
        a = _exp(A_log).reshape(-1, 1)
        x = g if dt_bias is None else g + dt_bias
        g = -a * _softplus(x)
    beta, logits = _beta(beta, use_beta_sigmoid_in_kernel, allow_neg_eigval)
    return _run("chunk_kda", "gdn", q, k, v, g, beta, scale, initial_state, output_final_state,
                cu_seqlens, use_qk_l2norm_in_kernel, head_first, state_v_first, logits, algo,
                ctx)


def fused_recurrent_kda(q, k, v, g, beta, scale=None, initial_state=None,
                        output_final_state=False, use_qk_l2norm_in_kernel=False,
                        cu_seqlens=None, head_first=False, algo=None, ctx=None, **kwargs):
    """fla.ops.kda.fused_recurrent_kda: as chunk_kda (in-kernel gate options
    are accepted by chunk_kda only)."""
    return chunk_kda(q, k, v, g, beta, scale=scale, initial_state=initial_state,
                     output_final_state=output_final_state,
                     use_qk_l2norm_in_kernel=use_qk_l2norm_in_kernel, cu_seqlens=cu_seqlens,
                     head_first=head_first, algo=algo, ctx=ctx, **kwargs)


"""ONNX's LinearAttention (opset 27) over linattn_linear_attention (linattn_onnx(3))."""
import ctypes

from . import _array, _lib

_RULES = ("linear", "gated", "delta", "gated_delta")


def linear_attention(query, key, value, past_state=None, decay=None, beta=None, *,
                     q_num_heads, kv_num_heads, update_rule="gated_delta", scale=0.0,
                     chunk_size=64, algo="auto", ctx=None):
    """ONNX's LinearAttention (opset 27), inputs and attributes by ONNX's names.

    query [B,T,q_num_heads*d_k], key [B,T,kv_num_heads*d_k],
    value [B,T,kv_num_heads*d_v]; past_state [B,kv_num_heads,d_k,d_v]
    (None: zeros); decay: log-space, [B,T,kv_num_heads] or
    [B,T,kv_num_heads*d_k] (gated rules); beta [B,T,kv_num_heads] or
    [B,T,1] (delta rules).  update_rule: "linear", "gated", "delta" or
    "gated_delta"; scale 0 means 1/sqrt(d_k); chunk_size is a hint that does
    not change the result.  Query head r reads state r // (q_num_heads //
    kv_num_heads).  algo ("auto", "recurrent", "chunk") is not ONNX's.

    Returns (output [B,T,q_num_heads*d_v] in query's kind and dtype,
    present_state [B,kv_num_heads,d_k,d_v]: past_state's dtype, else query's
    for the delta rules and float32 for linear and gated).
    The places where linattn differs from ONNX are listed in linattn_onnx(3).
    """
    h = _lib.lib()
    attrs = _lib.LaAttrs()
    h.linattn_la_attrs_init(ctypes.byref(attrs))
    attrs.q_num_heads, attrs.kv_num_heads = int(q_num_heads), int(kv_num_heads)
    if update_rule not in _RULES:
        rule = ctypes.c_int()
        _lib.check(h.linattn_la_rule_parse(str(update_rule).encode(), ctypes.byref(rule)))
    attrs.update_rule = _RULES.index(update_rule)
    attrs.scale = float(scale)
    attrs.chunk_size = int(chunk_size)
    algos = {"auto": 0, "recurrent": 1, "chunk": 2}
    if algo not in algos:
        raise ValueError(f"algo {algo!r}: expected auto, recurrent or chunk")
    attrs.algo = algos[algo]
    io = _lib.LaIO()
    keep = []
    for name, x in (("query", query), ("key", key), ("value", value),
                    ("past_state", past_state), ("decay", decay), ("beta", beta)):
        if x is None:
            continue
        b = _array.bind(x, name)
        setattr(io, name, b.tensor)
        keep.append(b)
    qb, vb = keep[0], keep[2]
    if qb.tensor.ndim != 3 or vb.tensor.ndim != 3:
        raise _lib.ShapeError(-2, "query and value must be 3-d [B,T,heads*size]")
    B, T = qb.tensor.shape[0], qb.tensor.shape[1]
    Hq, Hkv = attrs.q_num_heads, attrs.kv_num_heads
    if Hq <= 0 or Hkv <= 0 or qb.tensor.shape[2] % max(Hq, 1) or \
            vb.tensor.shape[2] % max(Hkv, 1):
        # the library gives the message
        dk = dv = 1
    else:
        dk, dv = qb.tensor.shape[2] // Hq, vb.tensor.shape[2] // Hkv
    out = _array.empty(qb.kind, (B, T, Hq * dv), qb.dtype)
    # ONNX: present_state has past_state's type, else query's; linear and
    # gated keep float32 states (linattn_onnx(3), DIFFERENCES FROM ONNX)
    if past_state is not None:
        scode = keep[3].dtype
    else:
        scode = qb.dtype if attrs.update_rule >= 2 else _lib.F32
    state = _array.empty(qb.kind, (B, max(Hkv, 1), dk, dv), scode)
    io.output = _array.bind_out(out, qb.dtype)
    io.present_state = _array.bind_out(state, scode)
    ctx = ctx or _lib.default_context()
    rc = h.linattn_linear_attention(ctx.handle, ctypes.byref(io), ctypes.byref(attrs))
    if rc:
        _lib.raise_for(rc)
    return out, state

"""Every operator's forward and step against the float64 references."""
import numpy as np
import pytest

import linattn
import refs

TOL = 3e-4  # float32 against float64, chunked forms included


def u(rng, *shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, shape).astype(np.float32)


def check(got, want, tol=TOL, what=""):
    assert not np.isnan(np.asarray(got, np.float64)).any(), f"{what}: NaN (unwritten output)"
    e = refs.relerr(got, want)
    assert e < tol, f"{what}: relative error {e:.3g} >= {tol}"


def delta_inputs(rng, kind, B, T, Hq, Hk, H, K, V, per_channel=False):
    x = dict(q=u(rng, B, T, Hq, K), k=u(rng, B, T, Hk, K) * 0.5, v=u(rng, B, T, H, V),
             g=u(rng, B, T, H, *((K,) if per_channel else ()), lo=-0.5, hi=0.0))
    if kind != "gla":
        x["eta" if kind == "kla" else "beta"] = u(rng, B, T, H, lo=0.0, hi=1.0)
    return x


@pytest.mark.parametrize("kind", ["gdn", "kla", "gla"])
@pytest.mark.parametrize("heads,per_channel,algo", [((2, 2, 2), False, "recurrent"),
                                                    ((2, 2, 2), True, "chunk"),
                                                    ((1, 1, 4), False, "chunk"), ((8, 2, 4), False, "recurrent"),
                                                    ((4, 2, 2), True, "auto")])
def test_delta_forward(ctx, rng, kind, heads, per_channel, algo):
    B, T, K, V = 2, 37, 8, 6
    Hq, Hk, H = heads
    x = delta_inputs(rng, kind, B, T, Hq, Hk, H, K, V, per_channel)
    h0 = u(rng, B, H, K, V)
    fn = getattr(linattn, kind + "_forward")
    o, hT = fn(**x, h0=h0, algo=algo, chunk=16, scale=0.3, ctx=ctx, output_final_state=True)
    ro, rh = refs.delta(kind, **x, h0=h0, scale=0.3)
    check(o, ro, what="o")
    check(hT, rh, what="hT")
    assert o.dtype == np.float32 and hT.dtype == np.float32


@pytest.mark.parametrize("kind", ["gdn", "kla", "gla"])
def test_delta_packed_l2norm(ctx, rng, kind):
    K, V, H = 8, 8, 2
    cu = np.array([0, 5, 19, 40])
    x = delta_inputs(rng, kind, 1, 40, H, H, H, K, V)
    h0 = u(rng, 3, H, K, V)
    fn = getattr(linattn, kind + "_forward")
    o, hT = fn(**x, h0=h0, cu_seqlens=cu, qk_l2norm=True, ctx=ctx, output_final_state=True)
    ro, rh = refs.delta(kind, **x, h0=h0, cu=cu, l2norm=True)
    check(o, ro, what="o")
    check(hT, rh, what="hT")
    assert linattn.gdn_forward(x["q"], x["k"], x["v"], x["g"], u(rng, 1, 40, H, lo=0, hi=1),
                               ctx=ctx).shape == (1, 40, H, V)


@pytest.mark.parametrize("kind", ["gdn", "kla", "gla"])
def test_delta_step(ctx, rng, kind):
    B, T, Hq, Hk, H, K, V = 3, 6, 4, 2, 2, 8, 5
    x = delta_inputs(rng, kind, B, T, Hq, Hk, H, K, V, per_channel=True)
    h0 = u(rng, B, H, K, V)
    ro, rh = refs.delta(kind, **x, h0=h0)
    state = h0.copy()
    step = getattr(linattn, kind + "_step")
    for t in range(T):
        o = step(**{n: a[:, t] for n, a in x.items()}, state_h=state, ctx=ctx)
        check(o, ro[:, t], what=f"o[{t}]")
    check(state, rh, what="state")


def test_gdn_beta_logits(ctx, rng):
    x = delta_inputs(rng, "gdn", 2, 9, 2, 2, 2, 4, 4)
    x["beta"] = u(rng, 2, 9, 2, lo=-4, hi=4)
    o = linattn.gdn_forward(**x, beta_logits=True, ctx=ctx)
    check(o, refs.delta("gdn", **x, logits=True)[0])


def gka_inputs(rng, B, T, H, K, V, lead):
    return dict(q=u(rng, *lead, H, K), k=u(rng, *lead, H, K), v=u(rng, *lead, H, V),
                g=u(rng, *lead, H, lo=-0.3, hi=0), beta=u(rng, *lead, H, lo=0.5, hi=1),
                alpha=u(rng, *lead, H, lo=0, hi=1))


@pytest.mark.parametrize("algo", ["recurrent", "chunk"])
def test_gka(ctx, rng, algo):
    B, T, H, K, V = 2, 20, 2, 6, 5
    x = gka_inputs(rng, B, T, H, K, V, (B, T))
    kk0 = np.einsum("nhik,nhjk->nhij", *(u(rng, B, H, K, K),) * 2).astype(np.float32)
    kv0 = u(rng, B, H, K, V)
    o, kkT, kvT = linattn.gka_forward(**x, kk0=kk0, kv0=kv0, ridge=0.1, iters=200, algo=algo,
                                      chunk=8, ctx=ctx, output_final_state=True)
    ro, rkk, rkv = refs.gka(**x, kk0=kk0, kv0=kv0, ridge=0.1)
    check(o, ro, 1e-3, "o")
    check(kkT, rkk, what="kkT")
    check(kvT, rkv, what="kvT")
    sk, sv = kk0.copy(), kv0.copy()
    for t in range(4):
        o1 = linattn.gka_step(**{n: a[:, t] for n, a in x.items()}, state_kk=sk, state_kv=sv,
                              ridge=0.1, iters=200, ctx=ctx)
        check(o1, ro[:, t], 1e-3, f"step o[{t}]")


def kalman_inputs(rng, B, T, M, S, lead):
    return dict(v=u(rng, *lead, M), lam_v=u(rng, *lead, M, lo=0.5, hi=2), k=u(rng, *lead, S),
                q=u(rng, *lead, S), decay=u(rng, M, S, lo=0.5, hi=0.99),
                noise=u(rng, M, S, lo=0.001, hi=0.1))


@pytest.mark.parametrize("algo", ["recurrent", "chunk"])
def test_kalman(ctx, rng, algo):
    B, T, M, S = 2, 30, 5, 4
    x = kalman_inputs(rng, B, T, M, S, (B, T))
    lam0, eta0 = u(rng, B, M, S, lo=0.5, hi=2), u(rng, B, M, S)
    y, yvar, lamT, etaT = linattn.kalman_forward(**x, lam0=lam0, eta0=eta0, algo=algo, chunk=7,
                                                 ctx=ctx, output_final_state=True,
                                                 outputs=("yvar",))
    ry, ryv, rl, re = refs.kalman(**x, lam0=lam0, eta0=eta0)
    for got, want, n in ((y, ry, "y"), (yvar, ryv, "yvar"), (lamT, rl, "lamT"),
                         (etaT, re, "etaT")):
        check(got, want, what=n)
    sl, se = lam0.copy(), eta0.copy()
    for t in range(T):
        step_x = {n: (a[:, t] if n not in ("decay", "noise") else a) for n, a in x.items()}
        yt = linattn.kalman_step(**step_x, state_lam=sl, state_eta=se, ctx=ctx)
        check(yt, ry[:, t], what=f"step y[{t}]")
    check(sl, rl, what="state_lam")
    check(se, re, what="state_eta")


@pytest.mark.parametrize("feature", ["exp", "elu1", "sqdist_sum", "sqdist_sub"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_ela(ctx, rng, feature, bidirectional):
    B, T, H, K, V = 2, 19, 2, 4, 5
    q, k, v = u(rng, B, T, H, K), u(rng, B, T, H, K), u(rng, B, T, H, V)
    F = K + 2 if feature.startswith("sqdist") else K
    s0, z0 = u(rng, B, H, F, V, lo=0, hi=1), u(rng, B, H, F, lo=1, hi=2)
    o, sT, zT = linattn.ela_forward(q, k, v, s0, z0, feature=feature, qk_scale=0.5,
                                    bidirectional=bidirectional, ctx=ctx, output_final_state=True)
    ro, rs, rz = refs.ela(q, k, v, s0, z0, qk_scale=0.5, feature=feature,
                          bidirectional=bidirectional)
    check(o, ro, what="o")
    check(sT, rs, what="sT")
    check(zT, rz, what="zT")
    if bidirectional:
        return
    ss, sz = s0.copy(), z0.copy()
    for t in range(T):
        ot = linattn.ela_step(q[:, t], k[:, t], v[:, t], ss, sz, feature=feature, qk_scale=0.5,
                              ctx=ctx)
        check(ot, ro[:, t], what=f"step o[{t}]")
    check(ss, rs, what="state_s")


def test_ela_packed(ctx, rng):
    H, K, V = 2, 4, 3
    cu = [0, 7, 8, 20]
    q, k, v = u(rng, 1, 20, H, K), u(rng, 1, 20, H, K), u(rng, 1, 20, H, V)
    o = linattn.ela_forward(q, k, v, cu_seqlens=cu, ctx=ctx)
    check(o, refs.ela(q, k, v, cu=cu)[0])


@pytest.mark.parametrize("Hq,J", [(2, 2), (4, 1), (6, 2)])
def test_softmax(ctx, rng, Hq, J):
    B, T, K, V = 2, 45, 8, 6
    q, k, v = u(rng, B, T, Hq, K), u(rng, B, T, J, K), u(rng, B, T, J, V)
    o = linattn.softmax_forward(q, k, v, chunk=16, ctx=ctx)
    check(o, refs.softmax(q, k, v), what="o")
    cu = [0, 10, 45]
    o = linattn.softmax_forward(q[:1], k[:1], v[:1], cu_seqlens=cu, scale=0.2, ctx=ctx)
    check(o, refs.softmax(q[:1], k[:1], v[:1], scale=0.2, cu=cu), what="packed o")


def test_softmax_step_kvcache(ctx, rng):
    B, P, T, Hq, J, K, V = 2, 11, 5, 4, 2, 8, 4
    pk, pv = u(rng, B, P, J, K), u(rng, B, P, J, V)
    q, k, v = u(rng, B, T, Hq, K), u(rng, B, T, J, K), u(rng, B, T, J, V)
    want = refs.softmax(q, k, v, past_k=pk, past_v=pv)
    with linattn.KVCache(B, J, K, V, capacity=4, ctx=ctx) as cache:
        cache.append(pk, pv)
        assert len(cache) == P
        for t in range(T):
            o = linattn.softmax_step(q[:, t], k[:, t], v[:, t], cache=cache)
            check(o, want[:, t], what=f"o[{t}]")
        assert len(cache) == P + T and cache.capacity >= P + T
        assert cache.nbytes >= B * J * (P + T) * (K + V) * 4
        cache.truncate(P)
        o = linattn.softmax_step(q[:, 0], k[:, 0], v[:, 0], cache=cache)
        check(o, want[:, 0], what="after truncate")
        cache.reset()
        assert len(cache) == 0


def test_every_operator_has_a_function():
    for op in linattn.table():
        fn = getattr(linattn, f"{op.name}_{op.entry}")
        assert op.page in fn.__doc__

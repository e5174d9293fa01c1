"""float64 references of the operators, written for these tests from the
formulas of the manual pages (plain NumPy loops over sequences and heads)."""
import numpy as np


def f64(x):
    return None if x is None else np.asarray(x, dtype=np.float64)


def relerr(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / (n if n > 0 else 1.0))


def seqs(B, T, cu):
    """(batch row, start, end) of each sequence."""
    if cu is None:
        return [(b, 0, T) for b in range(B)]
    return [(0, int(cu[i]), int(cu[i + 1])) for i in range(len(cu) - 1)]


def l2n(x):
    return x / np.sqrt((x * x).sum(-1, keepdims=True) + 1e-6)


def delta(kind, q, k, v, g=None, beta=None, h0=None, scale=None, cu=None, l2norm=False,
          eps=1e-6, logits=False, eta=None):
    """gdn / kla / gla forward: (o, final state [N,H,K,V]); kla's eta may be
    given as beta or eta."""
    beta = eta if eta is not None else beta
    q, k, v, g, beta, h0 = map(f64, (q, k, v, g, beta, h0))
    if l2norm:
        q, k = l2n(q), l2n(k)
    B, T, Hq, K = q.shape
    Hk, H, V = k.shape[2], v.shape[2], v.shape[3]
    scale = 1.0 / np.sqrt(K) if not scale else scale
    Ho = Hq if Hq != Hk else H
    o = np.zeros((B, T, Ho, V))
    sq = seqs(B, T, cu)
    hT = np.zeros((len(sq), H, K, V))
    for n, (b, s, e) in enumerate(sq):
        for h in range(H):
            S = h0[n, h].copy() if h0 is not None else np.zeros((K, V))
            kh = h // (H // Hk)
            for t in range(s, e):
                kt = k[b, t, kh]
                if g is not None:
                    d = np.exp(g[b, t, h])
                    S = S * (d[:, None] if np.ndim(d) else d)
                if kind == "gla":
                    S = S + np.outer(kt, v[b, t, h])
                else:
                    bt = beta[b, t, h]
                    if kind == "kla":
                        bt = bt / (kt @ kt + eps)
                    elif logits:
                        bt = 1.0 / (1.0 + np.exp(-bt))
                    S = S + bt * np.outer(kt, v[b, t, h] - S.T @ kt)
                if Hq == Hk:
                    o[b, t, h] = scale * S.T @ q[b, t, kh]
                else:
                    per = Hq // H
                    for r in range(h * per, (h + 1) * per):
                        o[b, t, r] = scale * S.T @ q[b, t, r]
            hT[n, h] = S
    return o, hT


def gka(q, k, v, g=None, beta=None, alpha=None, kk0=None, kv0=None, scale=None, ridge=0.02,
        cu=None):
    """gka forward with an exact solve: (o, kkT, kvT)."""
    q, k, v, g, beta, alpha, kk0, kv0 = map(f64, (q, k, v, g, beta, alpha, kk0, kv0))
    B, T, H, K = q.shape
    V = v.shape[3]
    scale = 1.0 / np.sqrt(K) if not scale else scale
    o = np.zeros((B, T, H, V))
    sq = seqs(B, T, cu)
    kkT, kvT = np.zeros((len(sq), H, K, K)), np.zeros((len(sq), H, K, V))
    for n, (b, s, e) in enumerate(sq):
        for h in range(H):
            Hm = kk0[n, h].copy() if kk0 is not None else np.zeros((K, K))
            U = kv0[n, h].copy() if kv0 is not None else np.zeros((K, V))
            for t in range(s, e):
                bt = beta[b, t, h] if beta is not None else 1.0
                at = alpha[b, t, h] if alpha is not None else 1.0
                d = np.exp(g[b, t, h]) if g is not None else 1.0
                kh, vh = bt * k[b, t, h], bt * v[b, t, h]
                Hm = d * Hm + np.outer(kh, kh)
                U = d * U + np.outer(kh, vh)
                f = np.linalg.norm(Hm)
                qt = q[b, t, h]
                x = np.linalg.solve(Hm + ridge * f * np.eye(K), qt) if f >= 1e-30 else 0 * qt
                o[b, t, h] = scale * U.T @ ((1 - at) * qt + at * x)
            kkT[n, h], kvT[n, h] = Hm, U
    return o, kkT, kvT


def kalman(v, lam_v, k, q, decay, noise, lam0=None, eta0=None, cu=None):
    """kalman forward: (y, yvar, lamT, etaT); lanes [M,S] per sequence."""
    v, lam_v, k, q, a, p, lam0, eta0 = map(f64, (v, lam_v, k, q, decay, noise, lam0, eta0))
    B, T, M = v.shape
    S = k.shape[2]
    a2 = np.maximum(a * a, 1e-12)
    p = np.maximum(p, 1e-12)
    y, yv = np.zeros((B, T, M)), np.zeros((B, T, M))
    sq = seqs(B, T, cu)
    lamT, etaT = np.zeros((len(sq), M, S)), np.zeros((len(sq), M, S))
    for n, (b, s, e) in enumerate(sq):
        lam = lam0[n].copy() if lam0 is not None else np.ones((M, S))
        eta = eta0[n].copy() if eta0 is not None else np.zeros((M, S))
        for t in range(s, e):
            den = a2 + p * lam
            lv, kt = lam_v[b, t][:, None], k[b, t][None, :]
            lam = lam / den + lv * kt * kt
            eta = a / den * eta + lv * v[b, t][:, None] * kt
            r = 1.0 / np.maximum(lam, 1e-12)
            y[b, t] = (q[b, t][None, :] * eta * r).sum(1)
            yv[b, t] = (q[b, t][None, :] ** 2 * r).sum(1)
        lamT[n], etaT[n] = lam, eta
    return y, yv, lamT, etaT


FEATURES = {
    "exp": (np.exp, np.exp),
    "elu1": (lambda x: np.where(x > 0, x + 1, np.exp(np.minimum(x, 0))),) * 2,
    "sqdist_sum": (lambda a: np.concatenate([a, (a * a).sum(-1, keepdims=True), [1.0]]),
                   lambda b: np.concatenate([2 * b, [1.0], (b * b).sum(-1, keepdims=True)])),
    "sqdist_sub": (lambda a: np.concatenate([a, (a * a).sum(-1, keepdims=True), [1.0]]),
                   lambda b: np.concatenate([-2 * b, [1.0], (b * b).sum(-1, keepdims=True)])),
}


def ela(q, k, v, s0=None, z0=None, qk_scale=0.0, feature="exp", bidirectional=False, cu=None):
    """ela forward on true sums: (o, sT, zT)."""
    q, k, v, s0, z0 = map(f64, (q, k, v, s0, z0))
    phi, psi = FEATURES[feature]
    c = qk_scale or 1.0
    B, T, H, K = q.shape
    V = v.shape[3]
    F = K + 2 if feature.startswith("sqdist") else K
    o = np.zeros((B, T, H, V))
    sq = seqs(B, T, cu)
    sT, zT = np.zeros((len(sq), H, F, V)), np.zeros((len(sq), H, F))
    for n, (b, s, e) in enumerate(sq):
        for h in range(H):
            S = s0[n, h].copy() if s0 is not None else np.zeros((F, V))
            z = z0[n, h].copy() if z0 is not None else np.zeros(F)
            outs = []
            for t in range(s, e):
                pk = psi(c * k[b, t, h])
                S, z = S + np.outer(pk, v[b, t, h]), z + pk
                outs.append((phi(c * q[b, t, h]), S.copy(), z.copy()))
            for i, t in enumerate(range(s, e)):
                pa, St, zt = outs[i]
                if bidirectional:
                    St, zt = S, z
                o[b, t, h] = pa @ St / max(pa @ zt, 1e-8)
            sT[n, h], zT[n, h] = S, z
    return o, sT, zT


def softmax(q, k, v, scale=None, cu=None, past_k=None, past_v=None):
    """Causal softmax attention with grouped heads; past_k/past_v [B,P,J,*]
    are tokens before q's first (a KV cache's contents)."""
    q, k, v = f64(q), f64(k), f64(v)
    if past_k is not None:
        k = np.concatenate([f64(past_k), k], 1)
        v = np.concatenate([f64(past_v), v], 1)
    B, T, Hq, K = q.shape
    P = k.shape[1] - T
    J = k.shape[2]
    scale = 1.0 / np.sqrt(K) if not scale else scale
    o = np.zeros((B, T, Hq, v.shape[3]))
    for b, s, e in seqs(B, T, cu):
        for h in range(Hq):
            j = h // (Hq // J)
            for t in range(s, e):
                lo = s if cu is not None else 0
                ks, vs = k[b, lo:P + t + 1, j], v[b, lo:P + t + 1, j]
                w = scale * ks @ q[b, t, h]
                w = np.exp(w - w.max())
                o[b, t, h] = w @ vs / w.sum()
    return o

#!/usr/bin/env python3
"""Cross-check linattn-run against an independent NumPy float64 recurrence.

Optional (needs NumPy; `make check` does not use it).  For gdn, kla and gla,
with and without h0, B up to 2, H up to 4, T up to 1000, it writes random
inputs, runs linattn-run and prints the RMS relative error of o and ht; for
ela (feature maps exp and sqdist_sub, causal and bidirectional, with and
without s0/z0) that of o, st and zt; for causal softmax attention that of o.
Exit status 1 if any error exceeds --tol (default 2e-3).

usage: scripts/crosscheck.py [--tool tools/linattn-run] [--tol 2e-3] [--backend auto]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np


def recurrence(op, q, k, v, g, beta, h0, eps=1e-6):
    """o_t = scale S_t^T q_t with decay, delta (or plain) write, read."""
    B, T, H, K = q.shape
    V = v.shape[-1]
    scale = K ** -0.5
    q, k, v, g = (x.astype(np.float64) for x in (q, k, v, g))
    o = np.zeros((B, T, H, V))
    S = np.zeros((B, H, K, V)) if h0 is None else h0.astype(np.float64).copy()
    for t in range(T):
        kt, qt, vt = k[:, t], q[:, t], v[:, t]              # [B,H,K], [B,H,V]
        S *= np.exp(g[:, t])[..., None, None]
        if op == "gla":
            u = vt
        else:
            b = beta[:, t].astype(np.float64)
            if op == "kla":
                b = b / ((kt * kt).sum(-1) + eps)
            u = b[..., None] * (vt - np.einsum("bhkv,bhk->bhv", S, kt))
        S += kt[..., :, None] * u[..., None, :]
        o[:, t] = scale * np.einsum("bhkv,bhk->bhv", S, qt)
    return o, S


def ela_maps(feature, x, key):
    """phi (query side, key=False) or psi (key side) of x [..., K] in float64."""
    x = x.astype(np.float64)
    if feature == "exp":
        return np.exp(x)
    if feature == "elu1":
        return np.where(x > 0, x + 1, np.exp(np.minimum(x, 0)))
    if feature == "identity":
        return x
    n2 = (x * x).sum(-1, keepdims=True)
    one = np.ones_like(n2)
    if not key:
        return np.concatenate([x, n2, one], -1)                  # [a, |a|^2, 1]
    m = 2.0 if feature == "sqdist_sum" else -2.0
    return np.concatenate([m * x, one, n2], -1)                  # [+-2b, 1, |b|^2]


def ela(feature, q, k, v, s0, z0, bidirectional):
    """y_i = phi(q_i)^T S / max(phi(q_i)^T z, 1e-8), S = s0 + sum psi(k_j) v_j^T,
    z = z0 + sum psi(k_j), over j <= i (bidirectional: every j)."""
    phi, psi, v = ela_maps(feature, q, False), ela_maps(feature, k, True), v.astype(np.float64)
    B, T, H, F = psi.shape
    S = np.zeros((B, H, F, v.shape[-1])) if s0 is None else s0.astype(np.float64).copy()
    z = np.zeros((B, H, F)) if z0 is None else z0.astype(np.float64).copy()
    o = np.zeros(v.shape)

    def read(t):
        den = np.maximum(np.einsum("bhf,bhf->bh", phi[:, t], z), 1e-8)
        o[:, t] = np.einsum("bhf,bhfv->bhv", phi[:, t], S) / den[..., None]

    for t in range(T):                                           # write token t, then read
        S += psi[:, t, :, :, None] * v[:, t, :, None, :]
        z += psi[:, t]
        if not bidirectional:
            read(t)
    for t in range(T if bidirectional else 0):                   # every token reads the final sums
        read(t)
    return o, S, z


def softmax_attention(q, k, v, scale=None):
    """o_t = sum_{j<=t} softmax_j(scale q_t.k_j) v_j, scale default 1/sqrt(K)."""
    T, K = q.shape[1], q.shape[-1]
    scale = K ** -0.5 if scale is None else scale
    s = scale * np.einsum("bthk,bjhk->bhtj", q.astype(np.float64), k.astype(np.float64))
    s = np.where(np.tril(np.ones((T, T), bool)), s, -np.inf)
    w = np.exp(s - s.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    return np.einsum("bhtj,bjhv->bthv", w, v.astype(np.float64))


def run_tool(a, op, inputs, outputs, opts=()):
    """Save inputs {name: array}, run linattn-run op, load the outputs."""
    with tempfile.TemporaryDirectory() as d:
        os.mkdir(f"{d}/in")
        for n, x in inputs.items():
            np.save(f"{d}/in/{n}.npy", x)
        subprocess.run([a.tool, op, "--in", f"{d}/in", "--out", f"{d}/out",
                        "--backend", a.backend, *opts], check=True)
        return [np.load(f"{d}/out/{n}.npy") for n in outputs]


def rms_rel(x, ref):
    return float(np.sqrt(((x - ref) ** 2).sum() / (ref ** 2).sum()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", default=os.path.join(os.path.dirname(__file__), "..", "tools", "linattn-run"))
    ap.add_argument("--tol", type=float, default=2e-3)
    ap.add_argument("--backend", default="auto")
    a = ap.parse_args()
    rng = np.random.default_rng()
    worst = 0.0
    print(f"{'op':4} {'B':>2} {'T':>5} {'H':>2} {'K':>4} {'V':>4} {'h0':>3} {'o rms-rel':>10} {'ht rms-rel':>10}")
    for op in ("gdn", "kla", "gla"):
        for (B, T, H, K, V) in ((1, 1, 1, 16, 16), (2, 64, 4, 32, 48), (2, 1000, 4, 64, 64), (1, 130, 3, 128, 128)):
            for with_h0 in (False, True):
                q = rng.standard_normal((B, T, H, K), dtype=np.float32)
                k = rng.standard_normal((B, T, H, K), dtype=np.float32)
                if op != "kla":  # gdn/gla models feed unit-norm keys
                    k /= np.linalg.norm(k, axis=-1, keepdims=True)
                q /= np.linalg.norm(q, axis=-1, keepdims=True)
                v = rng.standard_normal((B, T, H, V), dtype=np.float32)
                g = -rng.uniform(0, 0.5, (B, T, H)).astype(np.float32)
                beta = rng.uniform(0.05, 1, (B, T, H)).astype(np.float32)
                h0 = rng.standard_normal((B, H, K, V), dtype=np.float32) * 0.3 if with_h0 else None
                with tempfile.TemporaryDirectory() as d:
                    os.mkdir(f"{d}/in")
                    for n, x in (("q", q), ("k", k), ("v", v), ("g", g)):
                        np.save(f"{d}/in/{n}.npy", x)
                    if op != "gla":
                        np.save(f"{d}/in/{'eta' if op == 'kla' else 'beta'}.npy", beta)
                    if h0 is not None:
                        np.save(f"{d}/in/h0.npy", h0)
                    subprocess.run([a.tool, op, "--in", f"{d}/in", "--out", f"{d}/out",
                                    "--backend", a.backend], check=True)
                    o, ht = np.load(f"{d}/out/o.npy"), np.load(f"{d}/out/hT.npy")
                ro, rh = recurrence(op, q, k, v, g, beta, h0)
                eo, eh = rms_rel(o, ro), rms_rel(ht, rh)
                worst = max(worst, eo, eh)
                print(f"{op:4} {B:>2} {T:>5} {H:>2} {K:>4} {V:>4} {('yes' if with_h0 else 'no'):>3} {eo:10.2e} {eh:10.2e}")
    print(f"\n{'ela':10} {'bidir':>5} {'B':>2} {'T':>5} {'H':>2} {'K':>4} {'V':>4} {'s0':>3} "
          f"{'o rms-rel':>10} {'st rms-rel':>10} {'zt rms-rel':>10}")
    for feature in ("exp", "sqdist_sub"):
        for (B, T, H, K, V) in ((1, 1, 1, 16, 16), (2, 64, 4, 32, 48), (2, 1000, 4, 64, 64)):
            for bidir, with_s0 in ((False, False), (True, False), (False, True), (True, True)):
                F = K + 2 if feature.startswith("sqdist") else K
                q = rng.uniform(-1, 1, (B, T, H, K)).astype(np.float32)
                k = rng.uniform(-1, 1, (B, T, H, K)).astype(np.float32)
                v = rng.standard_normal((B, T, H, V), dtype=np.float32)
                inputs = {"q": q, "k": k, "v": v}
                s0 = z0 = None
                if with_s0:  # the state 8 earlier tokens leave
                    _, s0, z0 = ela(feature, rng.uniform(-1, 1, (B, 8, H, K)),
                                    rng.uniform(-1, 1, (B, 8, H, K)),
                                    rng.standard_normal((B, 8, H, V)), None, None, False)
                    s0, z0 = s0.astype(np.float32), z0.astype(np.float32)
                    inputs.update(s0=s0, z0=z0)
                opts = ["--feature", feature] + (["--bidirectional"] if bidir else [])
                o, st, zt = run_tool(a, "ela", inputs, ("o", "st", "zt"), opts)
                ro, rs, rz = ela(feature, q, k, v, s0, z0, bidir)
                assert st.shape == (B, H, F, V) and zt.shape == (B, H, F)
                eo, es, ez = rms_rel(o, ro), rms_rel(st, rs), rms_rel(zt, rz)
                worst = max(worst, eo, es, ez)
                print(f"{feature:10} {('yes' if bidir else 'no'):>5} {B:>2} {T:>5} {H:>2} {K:>4} "
                      f"{V:>4} {('yes' if with_s0 else 'no'):>3} {eo:10.2e} {es:10.2e} {ez:10.2e}")
    print(f"\n{'softmax':10} {'scale':>5} {'B':>2} {'T':>5} {'H':>2} {'K':>4} {'V':>4} "
          f"{'o rms-rel':>10}")
    for (B, T, H, K, V) in ((1, 1, 1, 16, 16), (2, 64, 4, 32, 48), (2, 1000, 4, 64, 64),
                            (1, 300, 2, 128, 96)):
        for scale in (None, 0.3):
            q = rng.standard_normal((B, T, H, K), dtype=np.float32)
            k = rng.standard_normal((B, T, H, K), dtype=np.float32)
            v = rng.standard_normal((B, T, H, V), dtype=np.float32)
            opts = [] if scale is None else ["--scale", str(scale)]
            (o,) = run_tool(a, "softmax", {"q": q, "k": k, "v": v}, ("o",), opts)
            eo = rms_rel(o, softmax_attention(q, k, v, scale))
            worst = max(worst, eo)
            sc = "auto" if scale is None else f"{scale:g}"
            print(f"{'softmax':10} {sc:>5} {B:>2} {T:>5} {H:>2} {K:>4} {V:>4} {eo:10.2e}")
    print(f"worst {worst:.2e} (tolerance {a.tol:.0e}): {'ok' if worst <= a.tol else 'FAIL'}")
    return 0 if worst <= a.tol else 1


if __name__ == "__main__":
    sys.exit(main())

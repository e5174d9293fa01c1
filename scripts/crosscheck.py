#!/usr/bin/env python3
"""Cross-check linattn-run against an independent NumPy float64 recurrence.

Optional (needs NumPy; `make check` does not use it).  For gdn, kla and gla,
with and without h0, B up to 2, H up to 4, T up to 1000, it writes random
inputs, runs linattn-run and prints the RMS relative error of o and ht.
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
                    o, ht = np.load(f"{d}/out/o.npy"), np.load(f"{d}/out/ht.npy")
                ro, rh = recurrence(op, q, k, v, g, beta, h0)
                eo, eh = rms_rel(o, ro), rms_rel(ht, rh)
                worst = max(worst, eo, eh)
                print(f"{op:4} {B:>2} {T:>5} {H:>2} {K:>4} {V:>4} {('yes' if with_h0 else 'no'):>3} {eo:10.2e} {eh:10.2e}")
    print(f"worst {worst:.2e} (tolerance {a.tol:.0e}): {'ok' if worst <= a.tol else 'FAIL'}")
    return 0 if worst <= a.tol else 1


if __name__ == "__main__":
    sys.exit(main())

"""Python call overhead of one decode step (not a test; prints medians).

    LINATTN_LIBRARY=lib/.libs/liblinattn.so python3 python/tests/bench_step.py [B H K V]

Times linattn.gdn_step (the generic wrapper: binding arrays, allocating o)
against linattn_op_call on prepared arguments through ctypes (the library's
own time plus one foreign call), in one process on one context."""
import ctypes
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import linattn  # noqa: E402
from linattn import _array, _lib  # noqa: E402


def median_us(fn, reps):
    for _ in range(10):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1e6 * float(np.median(ts))


def main():
    B, H, K, V = (int(a) for a in sys.argv[1:5]) if len(sys.argv) > 4 else (1, 16, 128, 128)
    reps = int(os.environ.get("REPS", "500"))
    rng = np.random.default_rng(1)
    q = rng.uniform(-1, 1, (B, H, K)).astype(np.float32)
    k = (q / np.linalg.norm(q, axis=-1, keepdims=True)).astype(np.float32)
    v = rng.uniform(-1, 1, (B, H, V)).astype(np.float32)
    g = np.full((B, H), -0.1, np.float32)
    beta = np.full((B, H), 0.5, np.float32)
    state = np.zeros((B, H, K, V), np.float32)
    ctx = linattn.Context(backend="cpu")
    py = median_us(lambda: linattn.gdn_step(q, k, v, g, beta, state, ctx=ctx), reps)

    op = linattn.find("gdn", "step")
    h = _lib.lib()
    args = _lib.OpArgs()
    h.linattn_op_args_init(op.ptr, ctypes.byref(args))
    o = np.empty((B, H, V), np.float32)
    keep = [_array.bind(a, "x") for a in (q, k, v, g, beta, state)]
    for i, b in enumerate(keep):
        args.t[i] = b.tensor
    args.t[6] = _array.bind_out(o, _lib.F32)
    call = h.linattn_op_call
    c = median_us(lambda: call(ctx.handle, op.ptr, ctypes.byref(args)), reps)
    print(f"gdn_step B={B} H={H} K={K} V={V} threads={ctx.threads}: python {py:.1f} us, "
          f"C (op_call via ctypes) {c:.1f} us, overhead {py - c:.1f} us per step "
          f"(medians of {reps})")


if __name__ == "__main__":
    main()

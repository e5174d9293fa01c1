#!/usr/bin/env python3
"""Time ONNX Runtime's CPU execution of one ONNX LinearAttention node (opset 27).

The peer of `linattn-bench --mode onnx` (linattn-bench(1)): the same node,
shapes, input ranges and timing scheme, so the two print comparable medians.
Two ways ONNX Runtime runs the node (--domain): ONNX's own LinearAttention
(rows "ort"), for which ONNX Runtime has no kernel and runs the function body
ONNX defines (a Scan over the tokens); and the same node in the com.microsoft
domain (rows "ort-ms"), ONNX Runtime's contrib kernel with the same inputs,
outputs and attributes.

  prefill: B=--prefill-B sequences of T tokens (--T), past_state absent (zeros)
  decode:  T=1 with past_state, for each batch in --B

Inputs are drawn as linattn-bench draws them: query and key rows of unit
length per head, value in [-1, 1), decay (log space) in [-1, 0), beta in
[0, 1), past_state in [-0.1, 0.1).  Outputs are bound to preallocated
arrays (IOBinding), so that no call allocates its results.

Prefill prints the median of --reps calls after one untimed call; decode
the median over --reps repetitions of about 50 ms of calls each, per call.

Needs numpy, onnx and onnxruntime (pip install onnx onnxruntime).
"""
import argparse
import sys
import time

import numpy as np


def build_model(B, T, Hq, Hkv, K, V, rule, channel, with_past, domain=""):
    """A one-node model with every shape static.  In ONNX's domain ("")
    ONNX Runtime has no kernel: it runs the operator's function body, whose
    Scan needs the shapes.  "com.microsoft" is ONNX Runtime's own kernel of
    the same node (a contrib operator, same inputs and attributes)."""
    import onnx
    from onnx import TensorProto, helper

    gw = Hkv * K if channel else Hkv
    shapes = {
        "query": (B, T, Hq * K),
        "key": (B, T, Hkv * K),
        "value": (B, T, Hkv * V),
        "past_state": (B, Hkv, K, V),
        "decay": (B, T, gw),
        "beta": (B, T, Hkv),
        "output": (B, T, Hq * V),
        "present_state": (B, Hkv, K, V),
    }
    gated = rule in ("gated", "gated_delta")
    delta = rule in ("delta", "gated_delta")
    names = ["query", "key", "value",
             "past_state" if with_past else "",
             "decay" if gated else "",
             "beta" if delta else ""]
    while names[-1] == "":
        names.pop()
    node = helper.make_node("LinearAttention", names, ["output", "present_state"],
                            q_num_heads=Hq, kv_num_heads=Hkv, update_rule=rule,
                            domain=domain)
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shapes[n])
              for n in names if n]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shapes[n])
               for n in ("output", "present_state")]
    model = helper.make_model(helper.make_graph([node], "linear_attention", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", 27)] +
                              ([helper.make_opsetid(domain, 1)] if domain else []))
    model.ir_version = 11
    if not domain:
        onnx.checker.check_model(model)
    return model, [n for n in names if n], shapes


def unit_rows(x, d):
    r = x.reshape(-1, d)
    r /= np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-30)
    return x


def make_inputs(rng, names, shapes, K, rot):
    """rot tokens' worth of each input (decode uses them in turn)."""
    ranges = {"query": (-1, 1), "key": (-1, 1), "value": (-1, 1), "decay": (-1, 0),
              "beta": (0, 1), "past_state": (-0.1, 0.1)}
    sets = []
    for _ in range(rot):
        feeds = {}
        for n in names:
            lo, hi = ranges[n]
            x = rng.uniform(lo, hi, size=shapes[n]).astype(np.float32)
            if n in ("query", "key"):
                unit_rows(x, K)
            feeds[n] = x
        sets.append(feeds)
    return sets


def time_node(args, B, T, decode, domain):
    import onnxruntime as ort

    model, names, shapes = build_model(B, T, args.Hq or args.H, args.H, args.K, args.V,
                                       args.update_rule, args.gate == "channel", decode,
                                       domain)
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if args.no_spin:  # as OMP_WAIT_POLICY=passive for linattn
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(12345)
    sets = make_inputs(rng, names, shapes, args.K, 8 if decode else 1)
    out = np.empty(shapes["output"], np.float32)
    state = np.empty(shapes["present_state"], np.float32)
    bindings = []
    for feeds in sets:
        b = sess.io_binding()
        for n, x in feeds.items():
            b.bind_cpu_input(n, x)
        for n, x in (("output", out), ("present_state", state)):
            b.bind_output(n, "cpu", 0, np.float32, list(x.shape), x.ctypes.data)
        bindings.append(b)
    calls = [0]

    def call():
        sess.run_with_iobinding(bindings[calls[0] % len(bindings)])
        calls[0] += 1

    t0 = time.perf_counter()
    call()  # untimed in prefill; sizes the repetitions in decode
    one = time.perf_counter() - t0
    times = []
    if not decode:
        for _ in range(args.reps):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
    else:
        n = int(min(max(0.05 / max(one, 1e-7), 1), 100000))
        for _ in range(args.reps):
            t0 = time.perf_counter()
            for _ in range(n):
                call()
            times.append((time.perf_counter() - t0) / n)
    return float(np.median(times))


def ints(text):
    return [int(x) for x in text.replace(" ", "").split(",") if x]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", default="prefill,decode", help="prefill, decode or both")
    p.add_argument("--T", type=ints, default=[4096], help="prefill lengths (default 4096)")
    p.add_argument("--B", type=ints, default=[1, 64], help="decode batches (default 1,64)")
    p.add_argument("--prefill-B", type=int, default=1, help="prefill batch (default 1)")
    p.add_argument("--H", type=int, default=16, help="kv_num_heads (default 16)")
    p.add_argument("--Hq", type=int, default=0, help="q_num_heads (default --H)")
    p.add_argument("--K", type=int, default=128, help="d_k (default 128)")
    p.add_argument("--V", type=int, default=128, help="d_v (default 128)")
    p.add_argument("--update-rule", default="gated_delta",
                   choices=["linear", "gated", "delta", "gated_delta"])
    p.add_argument("--gate", default="head", choices=["head", "channel"],
                   help="decay per head or per key channel")
    p.add_argument("--threads", type=int, default=0,
                   help="intra-op threads (default 0: ONNX Runtime's choice)")
    p.add_argument("--no-spin", action="store_true",
                   help="idle intra-op threads sleep instead of spinning (a shared machine)")
    p.add_argument("--domain", default="onnx,com.microsoft",
                   help="the node's domain: onnx (ONNX's LinearAttention, rows 'ort'), "
                        "com.microsoft (ONNX Runtime's contrib kernel, rows 'ort-ms'), or both "
                        "(default)")
    p.add_argument("--reps", type=int, default=5, help="timed repetitions (default 5)")
    args = p.parse_args(argv)
    modes = [m for m in args.mode.split(",") if m]
    if any(m not in ("prefill", "decode") for m in modes):
        p.error("--mode: expected prefill, decode or prefill,decode")
    domains = [d for d in args.domain.split(",") if d]
    if not domains or any(d not in ("onnx", "com.microsoft") for d in domains):
        p.error("--domain: expected onnx, com.microsoft or onnx,com.microsoft")
    try:
        import onnxruntime as ort
    except ImportError:
        print("ort_linear_attention.py: onnxruntime is not installed "
              "(pip install onnxruntime)", file=sys.stderr)
        return 77
    print(f"# onnxruntime {ort.__version__}: LinearAttention (ort: ONNX's, opset 27, run as its "
          f"function body; ort-ms: com.microsoft's kernel), update_rule "
          f"{args.update_rule}, decay per {'key channel' if args.gate == 'channel' else 'head'}, "
          f"CPUExecutionProvider, intra-op threads {args.threads or 'default'}"
          f"{', no spinning' if args.no_spin else ''}")
    print(f"{'entry':<7} {'mode':<7} {'B':>5} {'T':>6} {'Hq':>4} {'Hkv':>4} {'K':>4} {'V':>4} "
          f"{'median_ms':>10} {'tokens/s':>12}")
    rows = [("prefill", args.prefill_B, T) for T in args.T] if "prefill" in modes else []
    rows += [("decode", B, 1) for B in args.B] if "decode" in modes else []
    for (mode, B, T), dom in ((r, d) for r in rows for d in domains):
        sec = time_node(args, B, T, mode == "decode", "" if dom == "onnx" else dom)
        entry = "ort" if dom == "onnx" else "ort-ms"
        print(f"{entry:<7} {mode:<7} {B:>5} {T:>6} {args.Hq or args.H:>4} {args.H:>4} "
              f"{args.K:>4} {args.V:>4} {sec * 1e3:>10.3f} {B * T / sec:>12.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""linear_attention() against ONNX: its own backend node tests for
LinearAttention, and its reference implementation on generated cases."""
import glob
import os
import warnings

import numpy as np
import pytest

import linattn
import refs

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

try:
    onnx.defs.get_schema("LinearAttention", 27)
except Exception:  # an onnx without opset 27
    pytest.skip("onnx has no LinearAttention (opset 27)", allow_module_level=True)

INPUTS = ["query", "key", "value", "past_state", "decay", "beta"]


def attrs_of(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def run_ours(node, feeds, **extra):
    kw = attrs_of(node)
    if isinstance(kw.get("update_rule"), bytes):
        kw["update_rule"] = kw["update_rule"].decode()
    return linattn.linear_attention(**feeds, **kw, **extra)


def node_cases():
    """(name, node, feeds, expected outputs) of ONNX's node tests: the .pb
    files when the onnx package ships them, else its case generators."""
    cases = []
    root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")
    for d in sorted(glob.glob(os.path.join(root, "test_linear_attention*"))):
        if d.endswith("_expanded"):
            continue
        model = onnx.load(os.path.join(d, "model.onnx"))
        node = model.graph.node[0]
        names = [n for n in node.input if n]
        for ds in sorted(glob.glob(os.path.join(d, "test_data_set_*"))):
            def load(f):
                t = TensorProto()
                with open(f, "rb") as fh:
                    t.ParseFromString(fh.read())
                return numpy_helper.to_array(t)
            ins = [load(f) for f in sorted(glob.glob(os.path.join(ds, "input_*.pb")))]
            outs = [load(f) for f in sorted(glob.glob(os.path.join(ds, "output_*.pb")))]
            cases.append((os.path.basename(d), node, dict(zip(names, ins)), outs))
    if cases:
        return cases
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings():  # its other operators' generators warn on import
        warnings.simplefilter("ignore")
        generated = collect_testcases("LinearAttention")
    for c in generated:
        node = c.model.graph.node[0]
        if node.op_type != "LinearAttention":
            continue  # the _expanded (function body) variants
        names = [n for n in node.input if n]
        for ins, outs in c.data_sets:
            cases.append((c.name, node, dict(zip(names, ins)), outs))
    return cases


NODE_CASES = node_cases()


def test_node_cases_found():
    assert len(NODE_CASES) >= 10, "ONNX's LinearAttention node tests were not found"


@pytest.mark.parametrize("case", NODE_CASES, ids=[c[0] for c in NODE_CASES])
def test_onnx_node(case):
    name, node, feeds, (want_o, want_s) = case
    o, s = run_ours(node, feeds)
    assert o.shape == want_o.shape and s.shape == want_s.shape
    assert o.dtype == want_o.dtype
    tol = 5e-3 if want_o.dtype == np.float16 else 5e-4
    assert refs.relerr(o, want_o) < tol, name
    assert refs.relerr(s, want_s) < tol, name


def model(attrs, given):
    node = helper.make_node("LinearAttention", [n if n in given else "" for n in INPUTS],
                            ["output", "present_state"], **attrs)
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in INPUTS if n in given]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
            for n in ("output", "present_state")]
    g = helper.make_graph([node], "la", vi, outs)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 27)])


@pytest.mark.parametrize("rule", ["linear", "gated", "delta", "gated_delta"])
@pytest.mark.parametrize("Hq,H", [(4, 4), (4, 2), (6, 1)])
@pytest.mark.parametrize("past", [False, True])
@pytest.mark.parametrize("decay_k,beta_one,algo", [(False, False, "recurrent"),
                                                  (True, True, "chunk")])
def test_reference_evaluator(rng, rule, Hq, H, past, decay_k, beta_one, algo):
    from onnx.reference import ReferenceEvaluator
    B, T, dk, dv = 2, 19, 8, 6
    x = {"query": rng.uniform(-1, 1, (B, T, Hq * dk)),
         "key": rng.uniform(-1, 1, (B, T, H, dk)),
         "value": rng.uniform(-1, 1, (B, T, H * dv))}
    x["key"] = (x["key"] / np.linalg.norm(x["key"], axis=-1, keepdims=True)).reshape(B, T, -1)
    if past:
        x["past_state"] = rng.uniform(-0.5, 0.5, (B, H, dk, dv))
    if rule in ("gated", "gated_delta"):
        x["decay"] = rng.uniform(-0.5, 0, (B, T, H * dk if decay_k else H))
    if rule in ("delta", "gated_delta"):
        x["beta"] = rng.uniform(0.05, 1, (B, T, 1 if beta_one else H))
    x = {k: v.astype(np.float32) for k, v in x.items()}
    attrs = dict(q_num_heads=Hq, kv_num_heads=H, update_rule=rule, chunk_size=5,
                 scale=0.0 if past else 0.25)
    want_o, want_s = ReferenceEvaluator(model(attrs, x)).run(None, x)
    o, s = linattn.linear_attention(**x, **attrs, algo=algo)
    assert refs.relerr(o, want_o) < 5e-4
    assert refs.relerr(s, want_s) < 5e-4
    if past:  # the state carries: two halves equal the whole
        o1, s1 = linattn.linear_attention(**{k: (v[:, :7] if v.ndim == 3 else v)
                                             for k, v in x.items()}, **attrs)
        rest = {k: v[:, 7:] for k, v in x.items() if v.ndim == 3}
        o2, s2 = linattn.linear_attention(**rest, past_state=s1, **attrs)
        assert refs.relerr(np.concatenate([o1, o2], 1), want_o) < 5e-4
        assert refs.relerr(s2, want_s) < 5e-4


def test_refusals_are_errors(rng):
    q = rng.uniform(-1, 1, (1, 3, 8)).astype(np.float32)
    with pytest.raises(linattn.RangeError):
        linattn.linear_attention(q, q, q, q_num_heads=3, kv_num_heads=2)
    with pytest.raises(linattn.InvalidError):
        linattn.linear_attention(q, q, q, q_num_heads=1, kv_num_heads=1, update_rule="fast")
    with pytest.raises(linattn.RangeError, match="decay"):
        linattn.linear_attention(q, q, q, decay=np.ones((1, 3, 1), np.float32), q_num_heads=1,
                                 kv_num_heads=1, update_rule="gated")

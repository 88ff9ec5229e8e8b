"""The int8 tail stays channels-last (exporters/optimize.py, rewrites 4 and 5): a flatten reads NHWC order with the
Dense weights permuted to match, and a GlobalMaxPool over a static map becomes a MaxPool. Both are exact in float,
and after static quantization onnxruntime runs the tail with no Transpose, no float pooling and no
Dequantize/Quantize pair in it."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgecls.exporters.optimize import channels_last_tail
from edgecls.exporters.quantize import QuantOptions, quantize_static_int8
from edgecls.runtime.preprocess import to_batch
from edgecls.runtime.session import DISABLED_OPTIMIZERS
from edgecls.runtime.spec import InputSpec

SPEC = InputSpec(12, 12, 3, layout="NCHW")


def _model(tail: str) -> onnx.ModelProto:
    """Conv(3->8) + Relu over 12x12, then `flatten` (Reshape to 8*12*12 -> MatMul) or `gmp` (GlobalMaxPool ->
    Squeeze axes 2,3 -> MatMul)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(8, 3, 3, 3)).astype(np.float32) / 40, "w"),
             numpy_helper.from_array(rng.normal(size=(8,)).astype(np.float32) / 10, "b")]
    nodes = [helper.make_node("Conv", ["pixels", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu")]
    if tail == "flatten":
        inits += [numpy_helper.from_array(np.array([-1, 8 * 12 * 12], np.int64), "shape"),
                  numpy_helper.from_array(rng.normal(size=(8 * 12 * 12, 5)).astype(np.float32) / 30, "dense")]
        nodes += [helper.make_node("Reshape", ["r", "shape"], ["f"], name="flatten")]
    else:
        inits += [numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
                  numpy_helper.from_array(rng.normal(size=(8, 5)).astype(np.float32), "dense")]
        nodes += [helper.make_node("GlobalMaxPool", ["r"], ["g"], name="gmp"),
                  helper.make_node("Squeeze", ["g", "axes"], ["f"], name="squeeze")]
    nodes += [helper.make_node("MatMul", ["f", "dense"], ["logits"], name="dense"),
              helper.make_node("Softmax", ["logits"], ["probs"], name="softmax")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("pixels", TensorProto.FLOAT,
                                                                         [None, 3, 12, 12])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [None, 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what the installed onnxruntime reads
    return model


def _run(model_bytes: bytes, x: np.ndarray, optimized_to=None) -> np.ndarray:
    options = ort.SessionOptions()
    if optimized_to is not None:
        options.optimized_model_filepath = str(optimized_to)
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"],
                                   disabled_optimizers=DISABLED_OPTIMIZERS)
    return session.run(None, {"pixels": x})[0]


@pytest.mark.parametrize("tail", ["flatten", "gmp"])
def test_rewrite_is_exact_in_float(tail):
    x = np.random.default_rng(1).uniform(0, 1, (16, 3, 12, 12)).astype(np.float32)
    model = _model(tail)
    before = _run(model.SerializeToString(), x)
    done = channels_last_tail(model)
    onnx.checker.check_model(model, full_check=True)
    ops = [n.op_type for n in model.graph.node]
    assert done == {"channels_last_flatten": 1, "global_max_pool_as_max_pool": int(tail == "gmp")}
    assert "Transpose" in ops and "GlobalMaxPool" not in ops
    assert np.allclose(_run(model.SerializeToString(), x), before, atol=1e-6)


@pytest.mark.parametrize("tail", ["flatten", "gmp"])
def test_int8_tail_runs_channels_last(tail, tmp_path):
    rng = np.random.default_rng(2)
    calib = rng.integers(0, 256, (64, 12, 12, 3), dtype=np.uint8)
    x = to_batch(rng.integers(0, 256, (64, 12, 12, 3), dtype=np.uint8), SPEC)  # raw pixels, as calibrated
    model = _model(tail)
    fp32 = model.SerializeToString()
    int8 = quantize_static_int8(fp32, calib, SPEC, QuantOptions())
    _run(int8, x, optimized_to=tmp_path / "opt.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node]
    dense = next(i for i, op in enumerate(ops) if op in ("QGemm", "QLinearMatMul"))
    tail_ops = ops[ops.index("QLinearConv") + 1 : dense]
    assert "Transpose" not in tail_ops and "DequantizeLinear" not in tail_ops and "GlobalMaxPool" not in tail_ops, ops
    assert np.abs(_run(int8, x) - _run(fp32, x)).max() < 0.05  # still the float model, to int8 precision


def test_other_graphs_are_left_alone():
    """A Reshape not followed by a constant MatMul, or a Squeeze of other axes, is not touched."""
    model = _model("flatten")
    dense = next(n for n in model.graph.node if n.op_type == "MatMul")
    dense.input[1], dense.input[0] = dense.input[0], dense.input[1]  # weight no longer the constant right side
    assert channels_last_tail(model)["channels_last_flatten"] == 0
    model = _model("gmp")
    next(t for t in model.graph.initializer if t.name == "axes").CopyFrom(
        numpy_helper.from_array(np.array([0, 2], np.int64), "axes"))
    assert channels_last_tail(model)["channels_last_flatten"] == 0

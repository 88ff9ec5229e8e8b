"""How int8 exports read the image: constant input normalization stays float; a stem conv
over one channel stays float with its activation and pool (onnxruntime's int8 conv is slow at a 3x3x1
reduction depth); a stem over 2-3 channels is quantized with its input padded to 4 channels, the count
onnxruntime's fast int8 conv needs (exact: zero channels meet zero weights)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgecls.exporters.quantize import float_nodes


def _graph(tmp_path, normalization: bool, channels: int = 1):
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(16, channels, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(size=(16, 16, 3, 3)).astype(np.float32) / 12, "w2"),
             numpy_helper.from_array(np.array(1 / 255, np.float32), "scale"),
             numpy_helper.from_array(np.array(-0.5, np.float32), "shift")]
    nodes, x = [], "pixels"
    if normalization:
        nodes += [helper.make_node("Mul", [x, "scale"], ["scaled"], name="norm_mul"),
                  helper.make_node("Add", ["scaled", "shift"], ["normed"], name="norm_add")]
        x = "normed"
    nodes += [helper.make_node("Conv", [x, "w1"], ["c1"], name="stem", pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["c1"], ["r1"], name="stem_relu"),
              helper.make_node("MaxPool", ["r1"], ["p1"], name="stem_pool", kernel_shape=[2, 2], strides=[2, 2]),
              helper.make_node("Conv", ["p1", "w2"], ["c2"], name="body"),
              helper.make_node("Relu", ["c2"], ["r2"], name="body_relu"),
              helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
              helper.make_node("Flatten", ["g"], ["f"], name="flat"),
              helper.make_node("Softmax", ["f"], ["probs"], name="softmax")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("pixels", TensorProto.FLOAT,
                                                                         [None, channels, 8, 8])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [None, 16])], inits)
    path = tmp_path / f"m{int(normalization)}c{channels}.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what the installed onnxruntime reads
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("normalization", [False, True])
def test_stem_stays_float_through_unfolded_normalization(tmp_path, normalization):
    path = _graph(tmp_path, normalization)
    expected = ["softmax"] + (["norm_mul", "norm_add"] if normalization else []) + ["stem", "stem_relu", "stem_pool"]
    assert float_nodes(path, float_stem=True) == expected
    # asked to quantize the stem: only the softmax and the normalization stay float
    assert float_nodes(path, float_stem=False) == ["softmax"] + (["norm_mul", "norm_add"] if normalization else [])


def _run(model, x):
    import onnxruntime as ort

    data = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"pixels": x})[0]


@pytest.mark.parametrize("normalization", [False, True])
def test_a_three_channel_stem_is_padded_to_four_and_quantized(tmp_path, normalization):
    from edgecls.exporters.quantize import QuantOptions, describe_stem, pad_stem_channels, quantize_static_int8
    from edgecls.runtime.spec import InputSpec

    path = _graph(tmp_path, normalization, channels=3)
    original = path.read_bytes()
    x = np.random.default_rng(1).uniform(0, 255, (5, 3, 8, 8)).astype(np.float32)
    before = _run(path, x)
    assert pad_stem_channels(path, float_stem=True)
    graph = onnx.load(str(path)).graph
    weight = next(t for t in graph.initializer if t.name == "w1")
    assert numpy_helper.to_array(weight).shape == (16, 4, 3, 3)
    assert np.allclose(_run(path, x), before, atol=1e-5)  # exact rewrite
    kept = float_nodes(path, float_stem=True)
    assert "stem" not in kept and "edgecls_stem_channel_pad" in kept
    assert ("norm_mul" in kept) == normalization

    spec = InputSpec(height=8, width=8, channels=3, layout="NCHW")
    pixels = np.random.default_rng(2).integers(0, 256, (64, 8, 8, 3)).astype(np.uint8)
    int8 = quantize_static_int8(original, pixels, spec, QuantOptions())
    assert describe_stem(int8) == "int8, input padded 3->4 channels"
    assert describe_stem(original) == "float"


def test_one_channel_stem_is_padded_only_when_quantized(tmp_path):
    from edgecls.exporters.quantize import pad_stem_channels

    path = _graph(tmp_path, normalization=False, channels=1)
    assert not pad_stem_channels(path, float_stem=True)  # stays float, unpadded
    assert pad_stem_channels(path, float_stem=False)


def test_shipped_int8_models_read_the_image_in_float(artifacts_root):
    """Every shipped int8 model: the graph input feeds float ops (no QuantizeLinear on the raw image)."""
    for name in ("mnist", "fashion", "cifar10", "emotion"):
        graph = onnx.load(str(artifacts_root / name / f"{name}.int8.onnx")).graph
        readers = [n.op_type for n in graph.node if graph.input[0].name in n.input]
        assert readers and "QuantizeLinear" not in readers, (name, readers)

"""The float stem: the image-reading conv (and any constant input normalization in front of it) stays float in
int8 exports, because onnxruntime's int8 conv is slow at a 1-3 channel reduction depth (README, int8 levers)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgecls.exporters.quantize import float_nodes


def _graph(tmp_path, normalization: bool):
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 1, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(size=(4, 4, 3, 3)).astype(np.float32), "w2"),
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
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [None, 1, 8, 8])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [None, 4])], inits)
    path = tmp_path / f"m{int(normalization)}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize("normalization", [False, True])
def test_stem_stays_float_through_unfolded_normalization(tmp_path, normalization):
    path = _graph(tmp_path, normalization)
    expected = ["softmax"] + (["norm_mul", "norm_add"] if normalization else []) + ["stem", "stem_relu", "stem_pool"]
    assert float_nodes(path, float_stem=True) == expected
    assert float_nodes(path, float_stem=False) == ["softmax"]  # the body conv is always quantized


def test_shipped_int8_models_read_the_image_in_float(artifacts_root):
    """Every shipped int8 model: the graph input feeds float ops (no QuantizeLinear on the raw image)."""
    for name in ("mnist", "fashion", "cifar10", "emotion"):
        graph = onnx.load(str(artifacts_root / name / f"{name}.int8.onnx")).graph
        readers = [n.op_type for n in graph.node if graph.input[0].name in n.input]
        assert readers and "QuantizeLinear" not in readers, (name, readers)

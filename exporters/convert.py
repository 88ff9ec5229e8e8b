"""Keras 3 -> ONNX with tf2onnx, through a traced tf.function.

`tf2onnx.convert.from_keras` breaks on Keras 3 (KeyError 'keras_tensor_N', tf2onnx #2448),
so we trace the model ourselves with an explicit input signature and convert the function.
The input is exported as NCHW: tf2onnx then drops the NHWC<->NCHW transposes it would
otherwise wrap around every convolution (1.7x faster on the mnist model, see README).
"""

from __future__ import annotations

import logging
from typing import Any

from ..runtime.spec import InputSpec
from .errors import ExportError
from .optimize import optimize_graph

DEFAULT_OPSET = 17  # ONNX 1.12+: supported by every onnxruntime >= 1.13, CPU, CUDA and mobile builds
INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"
STANDARD_DOMAINS = ("", "ai.onnx")


def image_input_spec(model: Any) -> InputSpec:
    """The NHWC input spec of a Keras image classifier, or a clear error if it is not one."""
    inputs = model.inputs
    if len(inputs) != 1:
        raise ExportError(f"model {model.name!r} has {len(inputs)} inputs; an image classifier takes one")
    shape = tuple(inputs[0].shape)
    if len(shape) != 4 or any(d is None for d in shape[1:]):
        raise ExportError(f"model {model.name!r} input shape {shape} is not an image batch (N, height, width, channels)")
    _, h, w, c = shape
    if c not in (1, 3):
        raise ExportError(f"model {model.name!r} takes {c} channels; edgecls exports grey (1) or RGB (3) image models")
    outputs = model.outputs
    if len(outputs) != 1 or len(outputs[0].shape) != 2:
        raise ExportError(f"model {model.name!r} output is not a single (N, classes) tensor")
    return InputSpec(int(h), int(w), int(c))


def ends_in_softmax(model: Any) -> bool:
    import keras

    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return True
    activation = getattr(last, "activation", None)
    return activation is not None and getattr(activation, "__name__", "") == "softmax"


def probability_fn(model: Any):
    """A callable giving probabilities: the model itself, or model + softmax for logit models."""
    import keras

    if ends_in_softmax(model):
        return lambda x: model(x, training=False)
    return lambda x: keras.ops.softmax(model(x, training=False), axis=-1)


def _unsupported_ops(proto) -> list[str]:
    """TF ops tf2onnx could not map are left in the graph under their TF names; list them with their layer."""
    import onnx

    bad = {}
    for node in proto.graph.node:
        domain = node.domain if node.domain not in STANDARD_DOMAINS else ""
        if not onnx.defs.has(node.op_type, domain):
            layer = node.name.split("/")[1] if node.name.count("/") >= 2 else node.name
            bad.setdefault(node.op_type, layer)
    return [f"{op} (in {layer})" for op, layer in sorted(bad.items())]


def keras_to_onnx(model: Any, spec: InputSpec, opset: int = DEFAULT_OPSET, nchw: bool = True, optimize: bool = True):
    """Convert, check, optimise, shape-infer. Returns (onnx.ModelProto, exported input spec, rewrites applied)."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    logging.getLogger("tf2onnx").setLevel(logging.CRITICAL)  # we report failures ourselves, once
    forward = probability_fn(model)
    signature = [tf.TensorSpec((None, spec.height, spec.width, spec.channels), tf.float32, name=INPUT_NAME)]

    @tf.function(input_signature=signature)
    def serve(pixels):
        return {OUTPUT_NAME: forward(pixels)}

    try:
        proto, _ = tf2onnx.convert.from_function(
            serve, input_signature=signature, opset=opset, inputs_as_nchw=[INPUT_NAME] if nchw else None)
    except Exception as exc:  # noqa: BLE001 - tf2onnx raises assorted errors for unsupported graphs
        raise ExportError(f"model {model.name!r} cannot be converted to ONNX: {type(exc).__name__}: {exc}") from None
    unsupported = _unsupported_ops(proto)
    if unsupported:
        raise ExportError(f"model {model.name!r} uses operations ONNX cannot express: {', '.join(unsupported)} "
                          "(replace those layers with standard ones)")
    try:
        onnx.checker.check_model(proto, full_check=True)
        rewrites = optimize_graph(proto) if optimize else {}
        proto = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"model {model.name!r}: converted graph fails the ONNX checker: {exc}") from None
    proto.producer_name = "edgecls"
    exported = InputSpec(spec.height, spec.width, spec.channels, layout="NCHW" if nchw else "NHWC")
    return proto, exported, rewrites

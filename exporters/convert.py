"""Keras 3 -> ONNX with tf2onnx, through a traced tf.function.

`tf2onnx.convert.from_keras` breaks on Keras 3 (KeyError 'keras_tensor_N', tf2onnx #2448),
so we trace the model ourselves with an explicit input signature and convert the function.
The input is exported as NCHW: tf2onnx then drops the NHWC<->NCHW transposes it would
otherwise wrap around every convolution (1.7x faster on the mnist model, see README).

The exported graph computes exactly what the user's model computes (no activation is appended);
what the output means is detected by `heads.detect_head` and recorded as metadata `edgecls.output`.
Every edgecls file takes raw pixels as an image batch; models whose own input is channels-first or
has no channel axis get the layout change traced in front of them (`ModelInput`).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..runtime.spec import InputSpec
from .errors import ExportError
from .optimize import optimize_graph

DEFAULT_OPSET = 17  # ONNX 1.12+: supported by every onnxruntime >= 1.13, CPU, CUDA and mobile builds
INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"  # tensor name kept for every head; edgecls.output says what it holds
STANDARD_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class ModelInput:
    """How an NHWC pixel batch reaches the model: `layout` is the model's own input layout.

    channels_last: (N,H,W,C) as is; channels_first: transposed to (N,C,H,W); no_channel: (N,H,W) grey."""

    spec: InputSpec  # what edgecls feeds (NHWC pixels)
    layout: str = "channels_last"

    def adapt(self, x):
        """Traceable (keras.ops) change from the NHWC pixel batch to the model's own input."""
        import keras

        if self.layout == "channels_first":
            return keras.ops.transpose(x, (0, 3, 1, 2))
        if self.layout == "no_channel":
            return keras.ops.squeeze(x, axis=-1)
        return x


def parse_image_size(text: Optional[str]) -> Optional[tuple[int, int]]:
    """'224x160' or '224' -> (224, 160) / (224, 224); None stays None."""
    if text is None:
        return None
    parts = text.lower().replace("*", "x").split("x")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        raise ExportError(f"--image-size {text!r}: expected HEIGHTxWIDTH, e.g. 224x224") from None
    if len(sizes) == 1:
        sizes *= 2
    if len(sizes) != 2 or min(sizes) <= 0:
        raise ExportError(f"--image-size {text!r}: expected two positive numbers HEIGHTxWIDTH, e.g. 224x224")
    return sizes[0], sizes[1]


def model_input(model: Any, image_size: Optional[tuple[int, int]] = None) -> ModelInput:
    """The image input of a Keras classifier and its layout, or one clear line saying why it is not one."""
    shape = _input_shape(model)
    if len(shape) == 3:  # (N, H, W): grey images without a channel axis
        layout, (h, w), c = "no_channel", shape[1:], 1
    elif len(shape) == 4:
        last, first = shape[3], shape[1]
        if last in (1, 3):
            layout, h, w, c = "channels_last", shape[1], shape[2], last
        elif first in (1, 3):
            layout, h, w, c = "channels_first", shape[2], shape[3], first
        else:
            raise ExportError(f"model {model.name!r} input shape {shape}: neither the last nor the second axis is "
                              "1 (grey) or 3 (RGB) channels; edgecls exports grey or RGB image models")
    else:
        raise ExportError(f"model {model.name!r} input shape {shape} is not an image batch "
                          "(N, height, width, channels), (N, channels, height, width) or (N, height, width)")
    if image_size is not None:
        for have, want, what in ((h, image_size[0], "height"), (w, image_size[1], "width")):
            if have is not None and have != want:
                raise ExportError(f"model {model.name!r} has a fixed {what} of {have}; --image-size asks for {want}")
        h, w = image_size
    if h is None or w is None:
        raise ExportError(f"model {model.name!r} takes any image size (input shape {shape}); "
                          "give the size to export with --image-size HEIGHTxWIDTH, e.g. --image-size 224x224")
    outputs = _graph_outputs(model)
    if outputs is not None and (len(outputs) != 1 or len(outputs[0].shape) != 2):
        raise ExportError(f"model {model.name!r} output is not a single (N, classes) tensor")
    return ModelInput(InputSpec(int(h), int(w), int(c)), layout)


def _graph_outputs(model: Any):
    try:
        return model.outputs or None
    except AttributeError:  # a subclassed model has no symbolic outputs
        return None


def _input_shape(model: Any) -> tuple:
    """A functional/Sequential model's input shape, or a subclassed model's from the shape it was built with."""
    try:
        inputs = model.inputs
    except AttributeError:
        inputs = None
    if inputs:
        if len(inputs) != 1:
            raise ExportError(f"model {model.name!r} has {len(inputs)} inputs; an image classifier takes one")
        return tuple(inputs[0].shape)
    config = model.get_build_config() if hasattr(model, "get_build_config") else None
    shape = (config or {}).get("input_shape")
    if not shape or not isinstance(shape, (list, tuple)) or isinstance(shape[0], (list, tuple, dict)):
        raise ExportError(f"model {model.name!r} has no known input shape (a subclassed model that was never "
                          "called, or one with several inputs); call it once on an image batch before saving")
    return tuple(shape)


def image_input_spec(model: Any, image_size: Optional[tuple[int, int]] = None) -> InputSpec:
    """The NHWC pixel spec edgecls feeds this model (see `model_input`)."""
    return model_input(model, image_size).spec


def forward_fn(model: Any, adapter: ModelInput):
    """The user's model on NHWC pixels, in inference mode, output untouched."""
    return lambda x: model(adapter.adapt(x), training=False)


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


def _rewrite_erfc(proto) -> int:
    """Exact gelu (Keras `gelu(approximate=False)`) uses Erfc, which tf2onnx leaves unmapped; ONNX has Erf,
    and erfc(x) = 1 - erf(x)."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    changed = 0
    for i, node in enumerate(list(graph.node)):
        if node.op_type != "Erfc":
            continue
        one = node.name + "_one"
        graph.initializer.append(numpy_helper.from_array(np.array(1.0, np.float32), one))
        erf = helper.make_node("Erf", [node.input[0]], [node.name + "_erf"], name=node.name + "_erf")
        sub = helper.make_node("Sub", [one, erf.output[0]], [node.output[0]], name=node.name + "_sub")
        idx = list(graph.node).index(node)
        graph.node.remove(node)
        graph.node.insert(idx, sub)
        graph.node.insert(idx, erf)
        changed += 1
    return changed


def _freeze_captured_inputs(proto, concrete) -> int:
    """tf2onnx lists tensors the function captured by value (e.g. the mean and variance of an adapted
    Normalization layer) as graph inputs; they are constants: turn them into initializers."""
    from onnx import numpy_helper

    values = {}
    for value, placeholder in zip(concrete.captured_inputs, concrete.graph.internal_captures):
        if value.dtype.name != "resource":
            values[placeholder.name] = np.asarray(value)
    frozen = 0
    for inp in list(proto.graph.input):
        if inp.name in values:
            proto.graph.initializer.append(numpy_helper.from_array(values[inp.name], inp.name))
            proto.graph.input.remove(inp)
            frozen += 1
    return frozen


class _NoJitTf:
    """`tensorflow` as Keras' TF backend sees it, except that `tf.function(jit_compile=True)` is a plain call.
    Keras runs grouped convolutions (ConvNeXt's depthwise conv, `Conv2D(groups=...)`) through an XLA-compiled
    function because TF's CPU kernel lacks them; tf2onnx cannot inline such a function (it would stay a
    StatefulPartitionedCall), while ONNX Conv has a `group` attribute. Only used while tracing for export."""

    def __init__(self, tf) -> None:
        self._tf = tf

    def __getattr__(self, name: str):
        return getattr(self._tf, name)

    def function(self, func=None, **kwargs):
        if kwargs.get("jit_compile"):
            return func if func is not None else (lambda f: f)
        return self._tf.function(func, **kwargs) if func is not None else self._tf.function(**kwargs)


@contextlib.contextmanager
def _grouped_conv_without_xla():
    try:
        from keras.src.backend.tensorflow import nn as tf_nn
    except ImportError:  # another Keras layout: nothing to patch
        yield
        return
    original = tf_nn.tf
    tf_nn.tf = _NoJitTf(original)
    try:
        yield
    finally:
        tf_nn.tf = original


def keras_to_onnx(model: Any, spec: InputSpec, opset: int = DEFAULT_OPSET, nchw: bool = True, optimize: bool = True,
                  adapter: Optional[ModelInput] = None):
    """Convert, check, optimise, shape-infer. Returns (onnx.ModelProto, exported input spec, rewrites applied)."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    logging.getLogger("tf2onnx").setLevel(logging.CRITICAL)  # we report failures ourselves, once
    adapter = adapter or ModelInput(spec)
    forward = forward_fn(model, adapter)
    signature = [tf.TensorSpec((None, spec.height, spec.width, spec.channels), tf.float32, name=INPUT_NAME)]

    @tf.function(input_signature=signature)
    def serve(pixels):
        return {OUTPUT_NAME: forward(pixels)}

    try:
        with _grouped_conv_without_xla():
            concrete = serve.get_concrete_function()
            proto, _ = tf2onnx.convert.from_function(
                serve, input_signature=signature, opset=opset, inputs_as_nchw=[INPUT_NAME] if nchw else None)
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 - tf2onnx raises assorted errors for unsupported graphs
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ExportError(f"model {model.name!r} cannot be converted to ONNX: {type(exc).__name__}: {first}") from None
    rewrites = {"captured_constants_frozen": _freeze_captured_inputs(proto, concrete),
                "erfc_as_erf": _rewrite_erfc(proto)}
    unsupported = _unsupported_ops(proto)
    if unsupported:
        raise ExportError(f"model {model.name!r} uses TensorFlow operations with no ONNX counterpart: "
                          f"{', '.join(unsupported)}; replace those layers with standard Keras layers")
    extra = [i.name for i in proto.graph.input if i.name != INPUT_NAME]
    if extra:
        raise ExportError(f"model {model.name!r}: the converted graph needs inputs besides the image ({', '.join(extra)}); "
                          "edgecls exports single-input image models")
    try:
        onnx.checker.check_model(proto, full_check=True)
        if optimize:
            rewrites.update(optimize_graph(proto))
        proto = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"model {model.name!r}: converted graph fails the ONNX checker: {exc}") from None
    proto.producer_name = "edgecls"
    exported = InputSpec(spec.height, spec.width, spec.channels, layout="NCHW" if nchw else "NHWC")
    return proto, exported, rewrites

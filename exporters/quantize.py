"""int8 and fp16 variants with onnxruntime's own tools.

Static int8: QDQ format, per-channel int8 weights, uint8 activations (the U8S8 combination
onnxruntime's x86 kernels are fastest at), calibrated on real training images.
Dynamic int8: weights only, for MatMul/Gemm; the fallback for models where static
calibration does not hold accuracy (and the natural choice for MLPs).
fp16: for GPU targets; inputs and outputs stay float32 so callers need not change.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..runtime.spec import InputSpec
from .chatter import library_chatter
from .errors import ExportError

CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
STATIC_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")  # weights static int8 stores in int8
DYNAMIC_OPS = ("MatMul", "Gemm")  # weights dynamic int8 stores in int8
QUANT_MODES = ("static", "dynamic", "auto")


@dataclass(frozen=True)
class QuantOptions:
    mode: str = "auto"  # static | dynamic | auto (static, or dynamic if static fails its gate)
    calibration: str = "minmax"
    calib_size: int = 512
    per_channel: bool = True
    float_stem: bool = True  # keep a one-channel image-reading conv in float (see float_nodes)
    seed: int = 1337

    def __post_init__(self) -> None:
        if self.mode not in QUANT_MODES:
            raise ExportError(f"quantization mode must be one of {', '.join(QUANT_MODES)}, got {self.mode!r}")
        if self.calibration not in CALIBRATION_METHODS:
            raise ExportError(f"calibration method must be one of {', '.join(CALIBRATION_METHODS)}, got {self.calibration!r}")
        if self.calib_size < 1:
            raise ExportError("calibration size must be at least 1 image")


def stratified_sample(y: Optional[np.ndarray], n_total: int, size: int, seed: int) -> np.ndarray:
    """Indices of `size` items with every class represented in proportion (all classes when labels exist)."""
    rng = np.random.default_rng(seed)
    if y is None or size >= n_total:
        return np.sort(rng.permutation(n_total)[: min(size, n_total)])
    classes, counts = np.unique(y, return_counts=True)
    exact = counts / counts.sum() * size
    quota = np.minimum(counts, np.maximum(1, np.floor(exact).astype(int)))
    for i in np.argsort(-(exact - np.floor(exact))):  # hand out the remainder by largest fraction
        if quota.sum() >= size:
            break
        if quota[i] < counts[i]:
            quota[i] += 1
    while quota.sum() > max(size, len(classes)):  # small classes' one image came out of the big classes' shares
        quota[np.argmax(np.where(quota > 1, quota - exact, -np.inf))] -= 1
    picked = [rng.permutation(np.flatnonzero(y == c))[:q] for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(picked))


def _reader(pixels: np.ndarray, spec: InputSpec, batch_size: int = 64):
    """Calibration batches, all the same size: the percentile and entropy calibrators stack batches and fail
    on a ragged last one, so the last batch is filled up with images from the start (all images are seen)."""
    from onnxruntime.quantization import CalibrationDataReader

    from ..runtime.preprocess import to_batch

    size = min(batch_size, len(pixels))
    n_batches = -(-len(pixels) // size)
    order = np.arange(n_batches * size) % len(pixels)

    class PixelReader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches: Iterator = (
                {"pixels": to_batch(pixels[order[i : i + size]], spec)} for i in range(0, len(order), size))

        def get_next(self):
            return next(self._batches, None)

    return PixelReader()


def static_config(calib_pixels: np.ndarray, spec: InputSpec, options: QuantOptions,
                  nodes_to_exclude: list[str]):
    """Our options as onnxruntime's own StaticQuantConfig (QDQ, U8S8, per-channel weights)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, StaticQuantConfig

    method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
              "entropy": CalibrationMethod.Entropy}[options.calibration]
    return StaticQuantConfig(
        _reader(calib_pixels, spec), calibrate_method=method, quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=options.per_channel,
        nodes_to_exclude=nodes_to_exclude)


def preprocess_for_quantization(src: Path, dst: Path) -> str:
    """onnxruntime's quant_pre_process (shape inference + graph cleanup). Its symbolic shape inference fails
    on some graphs (attention with dynamic reshapes); then ONNX shape inference alone, then none."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    for skip_symbolic in (False, True):
        try:
            # its symbolic shape inference writes temp files into the working directory: keep them in ours
            with library_chatter(), contextlib.chdir(dst.parent):
                quant_pre_process(str(src), str(dst), skip_symbolic_shape=skip_symbolic)
            return "quant_pre_process" + (" (ONNX shape inference only)" if skip_symbolic else "")
        except Exception:  # noqa: BLE001 - assorted inference errors; the next step is less demanding
            continue
    dst.write_bytes(src.read_bytes())
    return "none (pre-processing failed)"


@dataclass(frozen=True)
class Quantized:
    """A static int8 graph and the nodes it was asked to keep in float (names of the pre-processed graph)."""

    data: bytes
    kept_float: tuple[str, ...]


def prepare_float_graph(fp32: bytes, folder: Path, float_stem: bool) -> Path:
    """The float graph static int8 quantizes, written to `folder`: the int8 tail kept channels-last, onnxruntime's
    pre-processing, and the stem's input padded to 4 channels when it will be quantized."""
    import onnx

    from .optimize import channels_last_tail

    src, pre = folder / "fp32.onnx", folder / "pre.onnx"
    model = onnx.load_from_string(fp32)
    channels_last_tail(model)  # the int8 convs run channels-last: keep the flatten and pooling there too
    src.write_bytes(model.SerializeToString())
    preprocess_for_quantization(src, pre)
    pad_stem_channels(pre, float_stem)
    return pre


def quantize_static(fp32: bytes, calib_pixels: np.ndarray, spec: InputSpec, options: QuantOptions,
                    extra_float_nodes: tuple[str, ...] = ()) -> Quantized:
    """calib_pixels: uint8 (N,H,W,C) real images; spec: the exported (ONNX) input spec."""
    from onnxruntime.quantization import quantize

    if len(calib_pixels) == 0:
        raise ExportError("calibration needs at least one image")
    with tempfile.TemporaryDirectory(prefix="edgecls-quant-") as tmp:
        pre, out = prepare_float_graph(fp32, Path(tmp), options.float_stem), Path(tmp, "int8.onnx")
        exclude = float_nodes(pre, options.float_stem) + list(extra_float_nodes)
        with library_chatter():  # calibration progress and the quantizer's warnings: --verbose only
            quantize(str(pre), str(out), static_config(calib_pixels, spec, options, exclude))
        return Quantized(out.read_bytes(), tuple(exclude))


def quantize_static_int8(fp32: bytes, calib_pixels: np.ndarray, spec: InputSpec, options: QuantOptions,
                         extra_float_nodes: tuple[str, ...] = ()) -> bytes:
    """The static int8 graph alone (see `quantize_static`)."""
    return quantize_static(fp32, calib_pixels, spec, options, extra_float_nodes).data


# onnxruntime's fast int8 conv (MLAS's symmetric indirect conv) needs input channels in multiples of this; other
# counts fall back to im2col + GEMM, which is slow at a 3x3x3 reduction depth.
CHANNEL_MULTIPLE = 4
FLOAT_STEM_MAX_CHANNELS = 1  # stems reading at most this many channels stay float (with float_stem)
STEM_PAD_NAME = "edgecls_stem_channel_pad"


def _stem(graph):
    """(constant normalization nodes, and our channel Pad, between the image and the first conv; that conv;
    consumers map); the conv is None when the image does not feed a plain (ungrouped, constant-weight) Conv."""
    from onnx import helper

    from .optimize import graph_maps

    inits, consumers, _, _ = graph_maps(graph)
    x, norm = graph.input[0].name, []
    # input normalization the exporter could not fold into the stem conv (a zero-padded conv makes folding
    # inexact): constant Mul/Add/Sub/Div between the image and the stem
    while len(consumers.get(x, [])) == 1 and consumers[x][0].op_type in ("Mul", "Add", "Sub", "Div") and \
            any(name in inits for name in consumers[x][0].input):
        norm.append(consumers[x][0])
        x = consumers[x][0].output[0]
    if len(consumers.get(x, [])) == 1 and consumers[x][0].name == STEM_PAD_NAME:  # added by pad_stem_channels
        norm.append(consumers[x][0])
        x = consumers[x][0].output[0]
    stems = [n for n in consumers.get(x, []) if n.op_type == "Conv" and n.input[1] in inits and
             all(a.name != "group" or helper.get_attribute_value(a) == 1 for a in n.attribute)]
    return norm, (stems[0] if len(stems) == 1 else None), consumers


def _stem_weight(graph, stem):
    return next(t for t in graph.initializer if t.name == stem.input[1])


def float_nodes(path: Path, float_stem: bool, max_float_channels: int = FLOAT_STEM_MAX_CHANNELS) -> list[str]:
    """Nodes kept in float.

    - Softmax: quantizing it would round the output probabilities to steps of 1/255.
    - any constant input normalization in front of the stem conv (the image enters the net at full precision),
      and the channel Pad `pad_stem_channels` put there.
    - when `float_stem`, a stem conv that reads a one-channel image, with its activation and first pooling:
      onnxruntime's int8 conv is slow at a 3x3x1 reduction depth, and the fp32 NCHWc kernel is faster there
      even counting the quantization after the pool (mnist, fashion, emotion; README, int8 levers). Stems
      that read 2-4 channels are quantized (their input padded to 4 channels, `pad_stem_channels`): measured
      faster than the float stem on cifar10.
    """
    import onnx

    graph = onnx.load(str(path)).graph
    keep = [n.name for n in graph.node if n.op_type == "Softmax"]
    norm, stem, consumers = _stem(graph)
    keep += [n.name for n in norm]
    if stem is None:
        return keep
    padded = any(n.name == STEM_PAD_NAME for n in norm)
    if float_stem and not padded and _stem_weight(graph, stem).dims[1] <= max_float_channels:
        keep.append(stem.name)
        # ...and its activation and first pooling, so quantization starts on the pooled tensor
        # (a float pool left between int8 ops would run in slow plain-NCHW layout).
        current = stem
        while len(consumers.get(current.output[0], [])) == 1:
            current = consumers[current.output[0]][0]
            if current.op_type not in ("Relu", "Clip", "MaxPool", "AveragePool"):
                break
            keep.append(current.name)
            if current.op_type in ("MaxPool", "AveragePool"):
                break
    return keep


def describe_stem(int8_model: bytes) -> str:
    """How a quantized model reads the image, for the export card: 'float', 'int8' or 'int8, input padded
    C->P channels'."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(int8_model).graph
    producer = {o: n for n in graph.node for o in n.output}
    inits = {t.name: t for t in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    if not convs:
        return "none (no Conv)"
    stem = convs[0]
    source = producer.get(stem.input[1])  # int8 weights reach the conv through a DequantizeLinear
    if source is None or source.op_type != "DequantizeLinear":
        return "float"
    pad = next((n for n in graph.node if n.name == STEM_PAD_NAME), None)
    if pad is None:
        return "int8"
    wide = inits[source.input[0]].dims[1]
    pads = numpy_helper.to_array(inits[pad.input[1]])
    added = int(pads[len(pads) // 2 + 1])  # end of the channel axis
    return f"int8, input padded {wide - added}->{wide} channels"


def pad_stem_channels(path: Path, float_stem: bool, max_float_channels: int = FLOAT_STEM_MAX_CHANNELS) -> bool:
    """Rewrite the model at `path` so a stem conv that will be quantized reads a multiple of CHANNEL_MULTIPLE
    channels: zero channels appended to its input (a float Pad) and zero weights for them. Exact: the extra
    channels are 0 and meet 0 weights. cifar10 (3 channels) int8 measured 1.06x faster at batch 256 on one
    core and 1.08x at batch 1 than with the stem in float (README, int8 levers). True when rewritten."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    norm, stem, _ = _stem(graph)
    if stem is None or any(n.name == STEM_PAD_NAME for n in norm):
        return False
    weight = _stem_weight(graph, stem)
    channels = int(weight.dims[1])
    if channels % CHANNEL_MULTIPLE == 0 or (float_stem and channels <= max_float_channels):
        return False
    padded_channels = -(-channels // CHANNEL_MULTIPLE) * CHANNEL_MULTIPLE
    w = numpy_helper.to_array(weight)
    wide = np.zeros((w.shape[0], padded_channels, *w.shape[2:]), w.dtype)
    wide[:, :channels] = w
    weight.CopyFrom(numpy_helper.from_array(wide, weight.name))
    rank = len(w.shape)
    pads = np.zeros(2 * rank, np.int64)
    pads[rank + 1] = padded_channels - channels  # end of the channel axis
    pads_name, out_name = STEM_PAD_NAME + "_pads", STEM_PAD_NAME + "_out"
    graph.initializer.append(numpy_helper.from_array(pads, pads_name))
    at = list(graph.node).index(stem)
    graph.node.insert(at, helper.make_node("Pad", [stem.input[0], pads_name], [out_name], name=STEM_PAD_NAME))
    stem.input[0] = out_name
    for vi in list(graph.value_info):  # the stem's input shape changed: let inference redo it
        if vi.name == out_name:
            graph.value_info.remove(vi)
    onnx.save(model, str(path))
    return True


def quantize_dynamic_int8(fp32: bytes) -> bytes:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="edgecls-quant-") as tmp:
        src, out = Path(tmp, "fp32.onnx"), Path(tmp, "int8.onnx")
        src.write_bytes(fp32)
        with library_chatter():
            quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=list(DYNAMIC_OPS))
        return out.read_bytes()


def to_fp16(fp32: bytes) -> bytes:
    """fp16 weights and compute, float32 inputs/outputs. convert_float_to_float16 appends its input casts at
    the end of the node list, which the ONNX checker rejects (nodes must be topologically sorted): sort."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = convert_float_to_float16(onnx.load_from_string(fp32), keep_io_types=True)
    OnnxModel(model).topological_sort()
    return model.SerializeToString()

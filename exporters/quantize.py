"""int8 and fp16 variants with onnxruntime's own tools.

Static int8: QDQ format, per-channel int8 weights, uint8 activations (the U8S8 combination
onnxruntime's x86 kernels are fastest at), calibrated on real training images.
Dynamic int8: weights only, for MatMul/Gemm; the fallback for models where static
calibration does not hold accuracy (and the natural choice for MLPs).
fp16: for GPU targets; inputs and outputs stay float32 so callers need not change.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..runtime.spec import InputSpec
from .errors import ExportError

CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
QUANT_MODES = ("static", "dynamic", "auto")


@dataclass(frozen=True)
class QuantOptions:
    mode: str = "auto"  # static | dynamic | auto (static, or dynamic if static fails its gate)
    calibration: str = "minmax"
    calib_size: int = 512
    per_channel: bool = True
    float_stem: bool = True  # keep the image-reading conv in float (see float_nodes)
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
            with contextlib.redirect_stdout(io.StringIO()), contextlib.chdir(dst.parent):
                quant_pre_process(str(src), str(dst), skip_symbolic_shape=skip_symbolic)
            return "quant_pre_process" + (" (ONNX shape inference only)" if skip_symbolic else "")
        except Exception:  # noqa: BLE001 - assorted inference errors; the next step is less demanding
            continue
    dst.write_bytes(src.read_bytes())
    return "none (pre-processing failed)"


def quantize_static_int8(fp32: bytes, calib_pixels: np.ndarray, spec: InputSpec, options: QuantOptions,
                         extra_float_nodes: tuple[str, ...] = ()) -> bytes:
    """calib_pixels: uint8 (N,H,W,C) real images; spec: the exported (ONNX) input spec."""
    from onnxruntime.quantization import quantize

    if len(calib_pixels) == 0:
        raise ExportError("calibration needs at least one image")
    with tempfile.TemporaryDirectory(prefix="edgecls-quant-") as tmp:
        src, pre, out = Path(tmp, "fp32.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        src.write_bytes(fp32)
        preprocess_for_quantization(src, pre)
        exclude = float_nodes(pre, options.float_stem) + list(extra_float_nodes)
        with contextlib.redirect_stdout(io.StringIO()):  # the calibrators print progress; keep stdout clean
            quantize(str(pre), str(out), static_config(calib_pixels, spec, options, exclude))
        return out.read_bytes()


def float_nodes(path: Path, float_stem: bool) -> list[str]:
    """Nodes kept in float.

    - Softmax: quantizing it would round the output probabilities to steps of 1/255.
    - the stem Conv (reads the image, <= 4 input channels) when `float_stem`: onnxruntime's int8 conv
      kernels are slow at such a small reduction depth (3x3x1 = 9), and the fp32 NCHWc kernel is ~10x
      faster there; measured on the mnist model in README. It also keeps full precision where the
      image enters the net.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {t.name: t for t in graph.initializer}
    keep = [n.name for n in graph.node if n.op_type == "Softmax"]
    if float_stem:
        consumers: dict[str, list] = {}
        for node in graph.node:
            for name in node.input:
                consumers.setdefault(name, []).append(node)
        x = graph.input[0].name
        # input normalization the exporter could not fold into the stem conv (a zero-padded conv makes folding
        # inexact): constant Mul/Add/Sub/Div between the image and the stem stay float with it
        while len(consumers.get(x, [])) == 1 and consumers[x][0].op_type in ("Mul", "Add", "Sub", "Div") and \
                any(name in inits for name in consumers[x][0].input):
            keep.append(consumers[x][0].name)
            x = consumers[x][0].output[0]
        for node in consumers.get(x, []):
            if node.op_type == "Conv" and node.input[1] in inits and \
                    numpy_helper.to_array(inits[node.input[1]]).shape[1] <= 4:
                keep.append(node.name)
                # ...and its activation and first pooling, so quantization starts on the pooled tensor
                # (a float pool left between int8 ops would run in slow plain-NCHW layout).
                current = node
                while len(consumers.get(current.output[0], [])) == 1:
                    current = consumers[current.output[0]][0]
                    if current.op_type not in ("Relu", "Clip", "MaxPool", "AveragePool"):
                        break
                    keep.append(current.name)
                    if current.op_type in ("MaxPool", "AveragePool"):
                        break
    return keep


def quantize_dynamic_int8(fp32: bytes) -> bytes:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="edgecls-quant-") as tmp:
        src, out = Path(tmp, "fp32.onnx"), Path(tmp, "int8.onnx")
        src.write_bytes(fp32)
        quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Gemm"])
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

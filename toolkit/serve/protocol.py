"""Open Inference Protocol (KServe v2) semantics shared by REST and gRPC: the checked inference request, the
output tensors of a response, and model metadata.

Pure functions over plain values and numpy arrays: rest.py and grpc_api.py turn their wire formats into
`Tensor`s and parameters, call `build_request`, and encode `output_tensors`. Spec:
https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np

from .. import __version__
from ..runtime.classifier import Classifier, Prediction
from . import tensors
from .errors import ApiError
from .scores import Scores

INPUT_NAME = "pixels"
PIXEL_TYPES = {"UINT8": np.uint8, "FP32": np.float32}
PLATFORM = "onnxruntime_onnx"
VERSION = "1"


@dataclass(frozen=True)
class Tensor:
    """An input tensor as it arrived: JSON `data` (flat or nested lists) or `raw` bytes (binary extension, gRPC)."""
    name: str
    datatype: str
    shape: Any  # checked in build_request
    data: Any = None
    raw: Optional[tensors.Buffer] = None


@dataclass(frozen=True)
class InferRequest:
    pixels: np.ndarray  # (N, H, W, C), uint8 or float32
    top_k: int
    outputs: tuple[str, ...]  # in the order the response lists them
    id: str
    binary: frozenset[str] = field(default=frozenset())  # outputs REST sends as raw bytes (gRPC always does)


@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str
    shape: list[int]
    values: Union[np.ndarray, list[str]]  # flat, row-major


# Every output a model offers, in the default order: datatype and how it is read from a request's scores.
OutputFn = Callable[[Scores, Classifier, int], Union[np.ndarray, list[str]]]
OUTPUTS: dict[str, tuple[str, OutputFn]] = {
    "probabilities": ("FP32", lambda s, clf, k: s.probabilities.ravel()),
    "labels": ("BYTES", lambda s, clf, k: s.top_labels(clf.labels, k)),
    "scores": ("FP32", lambda s, clf, k: s.top_scores(k).ravel()),
    "unsure": ("BOOL", lambda s, clf, k: s.unsure),
}


def build_request(inputs: Sequence[Tensor], outputs: Optional[Sequence[str]], parameters: Mapping[str, Any],
                  request_id: Optional[str], clf: Classifier, default_top_k: int,
                  binary: frozenset[str] = frozenset()) -> InferRequest:
    """Decoded inputs and options -> pixels ready for the batcher, checked against the model's input.
    `parameters`: the request's and the input's parameters (top_k is read from them)."""
    if len(inputs) != 1:
        raise ApiError(400, f"'inputs' must be a list holding one tensor named {INPUT_NAME!r}")
    tensor = inputs[0]
    if tensor.name != INPUT_NAME:
        raise ApiError(400, f"unknown input {tensor.name!r}; this model's input is {INPUT_NAME!r}")
    pixels = _to_nhwc(_decode_pixels(tensor), clf)
    top_k = _top_k(parameters.get("top_k", default_top_k), len(clf.labels))
    names = tuple(OUTPUTS) if outputs is None else tuple(outputs)
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown:
        raise ApiError(400, f"unknown output {unknown[0]!r}; this model offers {', '.join(OUTPUTS)}")
    if request_id is not None and not isinstance(request_id, str):
        raise ApiError(400, "'id' must be a string")
    return InferRequest(pixels, top_k, names, request_id or os.urandom(16).hex(), binary)


def output_tensors(request: InferRequest, scores: Scores, clf: Classifier) -> list[OutputTensor]:
    """The requested outputs of one request's scores (tensors flat, row-major)."""
    n, k = len(scores), request.top_k
    shapes = {"probabilities": [n, scores.probabilities.shape[1]], "labels": [n, k], "scores": [n, k],
              "unsure": [n]}
    out = []
    for name in request.outputs:
        datatype, values = OUTPUTS[name]
        out.append(OutputTensor(name, datatype, shapes[name], values(scores, clf, k)))
    return out


def response_parameters(request: InferRequest, clf: Classifier) -> dict[str, Any]:
    """What every inference response says besides its tensors: the top_k used and the variant that answered."""
    return {"top_k": request.top_k, "variant": clf.info.variant}


def server_metadata() -> dict[str, Any]:
    return {"name": "edgecls", "version": __version__, "extensions": ["model_repository", "binary_tensor_data"]}


def model_metadata(name: str, clf: Classifier) -> dict[str, Any]:
    """v2 model metadata; labels, the variant served and what the model is travel in `parameters`."""
    spec, classes = clf.spec, len(clf.labels)
    return {
        "name": name,
        "versions": [VERSION],
        "platform": PLATFORM,
        "inputs": [{"name": INPUT_NAME, "datatype": "UINT8", "shape": [-1, spec.height, spec.width, spec.channels],
                    "parameters": {"accepts": list(PIXEL_TYPES), "pixel_range": [0, 255],
                                   "model_layout": [-1, *spec.shape]}}],
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, classes]},
            {"name": "labels", "datatype": "BYTES", "shape": [-1, -1]},
            {"name": "scores", "datatype": "FP32", "shape": [-1, -1]},
            {"name": "unsure", "datatype": "BOOL", "shape": [-1]},
        ],
        "parameters": {"labels": list(clf.labels), "variant": clf.info.variant, "dataset": clf.info.dataset,
                       "file": clf.path.name, "provider": clf.provider},
    }


def prediction_json(p: Prediction, source: Optional[str] = None) -> dict[str, Any]:
    """One image's prediction for the image endpoint and the web page."""
    out: dict[str, Any] = {"label": p.label, "index": p.index, "score": p.score, "unsure": bool(p.unsure),
                           "top_k": [{"label": label, "score": score} for label, score in p.top_k]}
    if source is not None:
        out["source"] = source
    return out


def _decode_pixels(tensor: Tensor) -> np.ndarray:
    datatype, shape = tensor.datatype, tensor.shape
    if datatype not in PIXEL_TYPES:
        raise ApiError(400, f"unsupported datatype {datatype!r}; send pixels as {' or '.join(PIXEL_TYPES)}")
    if (not isinstance(shape, list) or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise ApiError(400, f"'shape' must be a list of non-negative integers, got {json.dumps(shape)[:100]}")
    if tensor.raw is not None:
        values = tensors.from_raw(tensor.name, datatype, shape, tensor.raw)
        if datatype == "FP32":
            _check_fp32(values)
        return values
    return _decode_data(datatype, shape, tensor.data)


def _decode_data(datatype: str, shape: list[int], data: Any) -> np.ndarray:
    """JSON `data` (flat or nested lists) -> an array of `shape`, strictly checked."""
    if not isinstance(data, list):
        raise ApiError(400, "'data' must be a JSON array of numbers (flat row-major, or nested)")
    expected = math.prod(shape)
    if datatype == "UINT8" and len(data) == expected:
        try:  # fast path for the common case, flat 0-255 ints: 4x faster than np.array, and as strict
            return np.frombuffer(bytes(data), dtype=np.uint8).reshape(shape)
        except (TypeError, ValueError):
            pass  # nested, or not bytes: the checks below say what is wrong
    try:
        values = np.array(data)
    except ValueError:
        raise ApiError(400, "'data' is a ragged nested array; send it flat or as a full nested array") from None
    if values.size != expected:
        raise ApiError(400, f"'data' holds {values.size} values but shape {shape} needs {expected}")
    if values.size and values.dtype.kind not in "iuf":
        raise ApiError(400, "'data' must hold only numbers")
    if datatype == "UINT8":
        if values.size and (values.dtype.kind == "f" or values.min() < 0 or values.max() > 255):
            raise ApiError(400, "UINT8 data must be integers from 0 to 255")
    else:
        _check_fp32(values)
    return values.astype(PIXEL_TYPES[datatype], copy=False).reshape(shape)


def _check_fp32(values: np.ndarray) -> None:
    if values.size and (not np.isfinite(values).all() or values.min() < 0 or values.max() > 255):
        raise ApiError(400, "FP32 pixels must be finite values from 0 to 255 (the model normalises them itself)")


def _to_nhwc(pixels: np.ndarray, clf: Classifier) -> np.ndarray:
    """Any accepted shape -> (N, H, W, C), so requests in different layouts can share one batch."""
    spec = clf.spec
    hwc = (spec.height, spec.width, spec.channels)
    shape = pixels.shape
    if len(shape) >= 2 and shape[0] >= 1:
        if shape[1:] == hwc:
            return pixels
        if spec.channels == 1 and shape[1:] == (spec.height, spec.width):
            return pixels[..., None]
        if spec.layout == "NCHW" and shape[1:] == (spec.channels, spec.height, spec.width):
            return pixels.transpose(0, 2, 3, 1)
    model = ",".join(map(str, spec.shape))
    raise ApiError(400, f"input shape {list(shape)} does not fit this model: send [N,{spec.height},{spec.width},"
                        f"{spec.channels}] pixels (N >= 1) or the model's own layout [N,{model}]")


def _top_k(value: Any, classes: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApiError(400, f"top_k must be a positive integer, got {json.dumps(value)}")
    return min(value, classes)

"""Open Inference Protocol (KServe v2) REST JSON: parse inference requests, build responses and metadata.

Pure functions over dicts and numpy arrays, no HTTP: the routes call these, the tests can too.
Spec: https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import orjson

from ..runtime.classifier import Classifier, Prediction
from .errors import ApiError

INPUT_NAME = "pixels"
DATATYPES = {"UINT8": np.uint8, "FP32": np.float32}
# Outputs every model offers; a request's optional "outputs" list picks some of them.
OUTPUTS = ("probabilities", "labels", "scores", "unsure")
PLATFORM = "onnxruntime_onnx"
VERSION = "1"


@dataclass(frozen=True)
class InferRequest:
    pixels: np.ndarray  # (N, H, W, C), uint8 or float32
    top_k: int
    outputs: tuple[str, ...]
    id: str


def decode_json(body: bytes) -> dict[str, Any]:
    """Request body -> JSON object, or a 400 that says what is wrong with it."""
    if not body:
        raise ApiError(400, "empty request body; send an inference request as JSON")
    try:
        doc = orjson.loads(body)  # 4-5x faster than json.loads on pixel arrays; the same errors for bad input
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ApiError(400, f"the request must be a JSON object, got {type(doc).__name__}")
    return doc


def parse_infer_request(doc: dict[str, Any], clf: Classifier, default_top_k: int) -> InferRequest:
    """A v2 inference request -> pixels ready for Classifier.run, checked against the model's input."""
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise ApiError(400, f"'inputs' must be a list holding one tensor named {INPUT_NAME!r}")
    tensor = inputs[0]
    for key in ("name", "shape", "datatype", "data"):
        if key not in tensor:
            raise ApiError(400, f"input tensor is missing {key!r}")
    if tensor["name"] != INPUT_NAME:
        raise ApiError(400, f"unknown input {tensor['name']!r}; this model's input is {INPUT_NAME!r}")
    pixels = _to_nhwc(_decode_tensor(tensor), clf)
    params = {**_dict(doc.get("parameters"), "parameters"), **_dict(tensor.get("parameters"), "input parameters")}
    top_k = _top_k(params.get("top_k", default_top_k), len(clf.labels))
    outputs = _requested_outputs(doc.get("outputs"))
    req_id = doc.get("id")
    if req_id is not None and not isinstance(req_id, str):
        raise ApiError(400, "'id' must be a string")
    return InferRequest(pixels, top_k, outputs, req_id or uuid.uuid4().hex)


def infer_response(model_name: str, request: InferRequest, probabilities: np.ndarray,
                   predictions: Sequence[Prediction]) -> dict[str, Any]:
    """Probabilities and their decoded predictions -> a v2 inference response (tensors row-major, flat)."""
    n, k = len(predictions), len(predictions[0].top_k) if predictions else 0
    tensors = {
        "probabilities": ("FP32", [n, probabilities.shape[1]], probabilities.ravel().tolist()),
        "labels": ("BYTES", [n, k], [label for p in predictions for label, _ in p.top_k]),
        "scores": ("FP32", [n, k], [score for p in predictions for _, score in p.top_k]),
        "unsure": ("BOOL", [n], [bool(p.unsure) for p in predictions]),
    }
    return {
        "model_name": model_name,
        "model_version": VERSION,
        "id": request.id,
        "parameters": {"top_k": request.top_k},
        "outputs": [{"name": name, "datatype": tensors[name][0], "shape": tensors[name][1], "data": tensors[name][2]}
                    for name in request.outputs],
    }


def model_metadata(name: str, clf: Classifier) -> dict[str, Any]:
    """v2 model metadata; labels and what the model is travel in `parameters`."""
    spec, classes = clf.spec, len(clf.labels)
    return {
        "name": name,
        "versions": [VERSION],
        "platform": PLATFORM,
        "inputs": [{"name": INPUT_NAME, "datatype": "UINT8", "shape": [-1, spec.height, spec.width, spec.channels],
                    "parameters": {"accepts": ["UINT8", "FP32"], "pixel_range": [0, 255],
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


def _decode_tensor(tensor: dict[str, Any]) -> np.ndarray:
    datatype, shape, data = tensor["datatype"], tensor["shape"], tensor["data"]
    if datatype not in DATATYPES:
        raise ApiError(400, f"unsupported datatype {datatype!r}; send pixels as {' or '.join(DATATYPES)}")
    if (not isinstance(shape, list) or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise ApiError(400, f"'shape' must be a list of non-negative integers, got {json.dumps(shape)[:100]}")
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
    elif values.size and (not np.isfinite(values).all() or values.min() < 0 or values.max() > 255):
        raise ApiError(400, "FP32 pixels must be finite values from 0 to 255 (the model normalises them itself)")
    return values.astype(DATATYPES[datatype], copy=False).reshape(shape)


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


def _dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, f"'{what}' must be a JSON object")
    return value


def _top_k(value: Any, classes: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApiError(400, f"top_k must be a positive integer, got {json.dumps(value)}")
    return min(value, classes)


def _requested_outputs(value: Any) -> tuple[str, ...]:
    if value is None:
        return OUTPUTS
    if not isinstance(value, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in value):
        raise ApiError(400, "'outputs' must be a list of objects with a 'name'")
    names = tuple(o["name"] for o in value)
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown:
        raise ApiError(400, f"unknown output {unknown[0]!r}; this model offers {', '.join(OUTPUTS)}")
    return names

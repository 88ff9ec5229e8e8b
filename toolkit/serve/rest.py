"""REST inference bodies: v2 tensor JSON, and the binary tensor extension (as Triton and KServe define it).

A binary request starts with a JSON header of `Inference-Header-Content-Length` bytes; each input whose
`parameters.binary_data_size` is set takes that many raw bytes from what follows, in input order. A response
sends an output as raw bytes when the request asks (`binary_data` on the output, or `binary_data_output` for
all), after a JSON header whose length it names in the same header. JSON and binary tensors mix freely.
"""

from __future__ import annotations

from typing import Any, Optional

import orjson

from ..runtime.classifier import Classifier
from . import tensors
from .errors import ApiError
from .protocol import (INPUT_NAME, OUTPUTS, VERSION, InferRequest, Tensor, build_request, output_tensors,
                       response_parameters)
from .scores import Scores

HEADER_LENGTH = "Inference-Header-Content-Length"
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def decode_json(body: Any, binary_header: bool = False) -> dict[str, Any]:
    """Request body (or its JSON header) -> JSON object, or a 400 that says what is wrong with it."""
    if not body:
        raise ApiError(400, "empty request body; send an inference request as JSON")
    try:
        doc = orjson.loads(body)  # 4-5x faster than json.loads on pixel arrays; the same errors for bad input
    except orjson.JSONDecodeError as exc:
        hint = "" if binary_header or "UTF-8" not in str(exc) else \
            f" (binary tensor data must follow a JSON header whose length the {HEADER_LENGTH} header gives)"
        raise ApiError(400, f"malformed JSON: {exc}{hint}") from None
    if not isinstance(doc, dict):
        raise ApiError(400, f"the request must be a JSON object, got {type(doc).__name__}")
    return doc


def parse_infer(body: bytes, header_length: Optional[bytes], clf: Classifier, default_top_k: int) -> InferRequest:
    """An inference request body, JSON or JSON header + binary tensors -> a checked InferRequest."""
    header, binary = _split(body, header_length)
    doc = decode_json(header, header_length is not None)
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise ApiError(400, f"'inputs' must be a list holding one tensor named {INPUT_NAME!r}")
    parameters = _dict(doc.get("parameters"), "parameters")
    input_parameters = _dict(inputs[0].get("parameters"), "input parameters")
    tensor = _input_tensor(inputs[0], input_parameters, binary)
    binary_default = parameters.get("binary_data_output", False)
    if not isinstance(binary_default, bool):
        raise ApiError(400, "'binary_data_output' must be true or false")
    outputs, binary_outputs = _requested_outputs(doc.get("outputs"), binary_default)
    return build_request([tensor], outputs, {**parameters, **input_parameters}, doc.get("id"), clf, default_top_k,
                         binary_outputs)


def encode_infer(model_name: str, request: InferRequest, scores: Scores, clf: Classifier) -> tuple[bytes, Optional[int]]:
    """A response body and, when some output travels as raw bytes, the length of its JSON header."""
    outputs, blobs = [], []
    for tensor in output_tensors(request, scores, clf):
        doc: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape}
        if tensor.name in request.binary:
            raw = tensors.to_raw(tensor.datatype, tensor.values)
            doc["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            doc["data"] = tensor.values
        outputs.append(doc)
    header = orjson.dumps({"model_name": model_name, "model_version": VERSION, "id": request.id,
                           "parameters": response_parameters(request, clf), "outputs": outputs},
                          option=_JSON_OPTIONS, default=_as_list)
    if not blobs:
        return header, None
    return b"".join([header, *blobs]), len(header)


def _split(body: bytes, header_length: Optional[bytes]) -> tuple[Any, memoryview]:
    """The JSON header and the binary part after it (empty without the header)."""
    view = memoryview(body)
    if header_length is None:
        return view, view[len(view):]
    text = header_length.decode("latin-1").strip()
    if not (text.isascii() and text.isdigit()):
        raise ApiError(400, f"{HEADER_LENGTH} must be a byte count, got {text[:40]!r}")
    length = int(text)
    if length > len(body):
        raise ApiError(400, f"{HEADER_LENGTH} is {length} but the body has only {len(body)} bytes")
    return view[:length], view[length:]


def _input_tensor(doc: dict[str, Any], parameters: dict[str, Any], binary: memoryview) -> Tensor:
    for key in ("name", "shape", "datatype"):
        if key not in doc:
            raise ApiError(400, f"input tensor is missing {key!r}")
    name, size = doc["name"], parameters.get("binary_data_size")
    if size is None:
        if "data" not in doc:
            raise ApiError(400, "input tensor is missing 'data'")
        if len(binary):
            raise ApiError(400, f"{len(binary)} bytes follow the JSON header but no input has binary_data_size")
        return Tensor(name, doc["datatype"], doc["shape"], data=doc["data"])
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ApiError(400, f"binary_data_size of input {name!r} must be a byte count, got {size!r}")
    if "data" in doc:
        raise ApiError(400, f"input {name!r} has both 'data' and binary_data_size; send one")
    if size != len(binary):
        raise ApiError(400, f"input {name!r} has binary_data_size {size} but {len(binary)} bytes follow the JSON "
                            f"header ({HEADER_LENGTH})")
    return Tensor(name, doc["datatype"], doc["shape"], raw=binary)


def _requested_outputs(value: Any, binary_default: bool) -> tuple[Optional[list[str]], frozenset[str]]:
    """Output names (None: all) and which of them go back as raw bytes."""
    if value is None:
        return None, frozenset(OUTPUTS) if binary_default else frozenset()
    if not isinstance(value, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in value):
        raise ApiError(400, "'outputs' must be a list of objects with a 'name'")
    binary = set()
    for output in value:
        flag = _dict(output.get("parameters"), "output parameters").get("binary_data", binary_default)
        if not isinstance(flag, bool):
            raise ApiError(400, f"binary_data of output {output['name']!r} must be true or false")
        if flag:
            binary.add(output["name"])
    return [o["name"] for o in value], frozenset(binary)


def _dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, f"'{what}' must be a JSON object")
    return value


def _as_list(value: Any) -> Any:
    """orjson's fallback for arrays it cannot write directly (not contiguous)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot encode {type(value).__name__}")

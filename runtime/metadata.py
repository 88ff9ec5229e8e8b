"""The metadata keys an edgecls ONNX model carries, so any app can use it without edgecls.

Every value is a string (ONNX metadata_props); structured values are JSON. The exporters
write these keys and the runtime reads them; both import them from here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

from .errors import EdgeclsError
from .heads import check_kind
from .model_check import check_input_spec, check_labels
from .spec import InputSpec

PREFIX = "edgecls."
FORMAT_VERSION = "1"

KEYS = {
    "format_version": "metadata layout version (\"1\")",
    "name": "model name (zoo name or the user's)",
    "variant": "fp32 | int8 | int8-dynamic | fp16",
    "labels": "JSON list of class names, index = output column",
    "input": "JSON input spec: height, width, channels (1 grey / 3 RGB), layout (NCHW|NHWC), dtype, pixel_min, pixel_max",
    "output": "what the output holds: probabilities (softmax) | logits | multilabel (sigmoid per label) | "
              "multilabel-logits | binary (one sigmoid unit = P(labels[1])) | binary-logit; see runtime/heads.py",
    "dataset": "training data set",
    "source_sha256": "sha256 of the Keras model it was exported from",
    "versions": "JSON: edgecls, tensorflow, keras, tf2onnx, onnx, onnxruntime versions and opset",
    "quantization": "JSON: method, calibration method and size, per-channel, format (int8 variants only)",
    "validation": "JSON: data, samples, accuracy of Keras and of this variant, top-1 agreement, max/mean abs diff, gates",
    "preprocess": "JSON list of declared preprocessing steps ({\"op\": name, ...params}); absent: stretch resize",
    "unsure": "JSON: when a prediction is flagged unsure (max probability floor, input statistic limit, calibration)",
}


@dataclass(frozen=True)
class ModelInfo:
    """What an exported model says about itself."""

    name: str
    variant: str
    labels: tuple[str, ...]
    input_spec: InputSpec
    output: str = "probabilities"
    dataset: str = ""
    source_sha256: str = ""
    versions: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    preprocess: Any = ()  # declared steps as stored (validated by Pipeline.parse); empty = before them (stretch)
    unsure: dict[str, Any] = field(default_factory=dict)  # calibrated rule; empty = never flagged

    def to_metadata(self) -> dict[str, str]:
        values: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "variant": self.variant,
            "labels": list(self.labels),
            "input": self.input_spec.to_dict(),
            "output": self.output,
            "dataset": self.dataset,
            "source_sha256": self.source_sha256,
            "versions": self.versions,
            "quantization": self.quantization,
            "validation": self.validation,
        }
        if self.preprocess:
            values["preprocess"] = list(self.preprocess)
        if self.unsure:
            values["unsure"] = self.unsure
        return {PREFIX + k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str], source: str = "<model>") -> "ModelInfo":
        def get(key: str, default: Any = None, as_json: bool = False) -> Any:
            raw = meta.get(PREFIX + key)
            if raw is None:
                return default
            try:
                return json.loads(raw) if as_json else raw
            except json.JSONDecodeError:
                raise EdgeclsError(f"{source}: metadata {PREFIX + key} is not valid JSON") from None

        labels = get("labels", as_json=True)
        spec = get("input", as_json=True)
        if labels is None or spec is None:
            raise EdgeclsError(f"{source}: not an edgecls model (no {PREFIX}labels / {PREFIX}input metadata); "
                               "export it with `edgecls export`")
        return cls(
            name=get("name", ""),
            variant=get("variant", "fp32"),
            labels=check_labels(labels, source),
            input_spec=check_input_spec(spec, source),
            output=check_kind(get("output", "probabilities"), source),
            dataset=get("dataset", ""),
            source_sha256=get("source_sha256", ""),
            versions=get("versions", {}, as_json=True),
            quantization=get("quantization", {}, as_json=True),
            validation=get("validation", {}, as_json=True),
            preprocess=get("preprocess", (), as_json=True),
            unsure=get("unsure", {}, as_json=True),
        )


def read_info(path: Union[str, os.PathLike]) -> ModelInfo:
    """What the edgecls model at `path` says about itself, read straight from the file's metadata (no
    inference session is built); a one-line EdgeclsError naming the file when it cannot be."""
    from .files import open_regular_file
    from .onnx_props import NotOnnx, parse_metadata_file

    name = str(path)
    try:
        with open_regular_file(path) as fh:
            meta = parse_metadata_file(fh)
    except FileNotFoundError:
        raise EdgeclsError(f"{name}: no such model file") from None
    except NotOnnx as exc:
        raise EdgeclsError(f"{name}: not an ONNX model ({exc})") from None
    except OSError as exc:
        raise EdgeclsError(f"{name}: unreadable ({exc.strerror or exc})") from None
    return ModelInfo.from_metadata(meta, name)

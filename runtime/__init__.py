"""edgecls.runtime: light, embeddable inference. Depends on numpy and Pillow (and onnxruntime
for model execution); it never imports TensorFlow, Keras or tf2onnx, directly or indirectly.

The names below load on first use, so that a module such as `edgecls.runtime.preprocess` imports without
onnxruntime (decoding worker processes start with only what decoding needs).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> the module that defines it
_EXPORTS = {
    "Classifier": "classifier",
    "Prediction": "predictions",
    "EdgeclsError": "errors",
    "ImageError": "errors",
    "classification_report": "metrics",
    "confusion_matrix": "metrics",
    "ImageSource": "preprocess",
    "load_pixels": "preprocess",
    "open_image": "preprocess",
    "to_batch": "preprocess",
    "to_pixels": "preprocess",
    "InputSpec": "spec",
    "VariantChoice": "variant_policy",
    "choose_variant": "variant_policy",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .classifier import Classifier
    from .errors import EdgeclsError, ImageError
    from .metrics import classification_report, confusion_matrix
    from .predictions import Prediction
    from .preprocess import ImageSource, load_pixels, open_image, to_batch, to_pixels
    from .spec import InputSpec
    from .variant_policy import VariantChoice, choose_variant


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

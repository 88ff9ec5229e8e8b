"""edgecls.runtime: light, embeddable inference. Depends on numpy and Pillow (and onnxruntime
for model execution); it never imports TensorFlow, Keras or tf2onnx, directly or indirectly."""

from .classifier import Classifier, Prediction
from .errors import EdgeclsError, ImageError
from .metrics import classification_report, confusion_matrix
from .preprocess import ImageSource, load_pixels, open_image, to_batch, to_pixels
from .spec import InputSpec
from .variant_policy import VariantChoice, choose_variant

__all__ = [
    "Classifier",
    "EdgeclsError",
    "ImageError",
    "ImageSource",
    "InputSpec",
    "Prediction",
    "VariantChoice",
    "choose_variant",
    "classification_report",
    "confusion_matrix",
    "load_pixels",
    "open_image",
    "to_batch",
    "to_pixels",
]

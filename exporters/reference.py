"""The reference every exported variant is measured against: a `Reference` answers for the model it stands for.

- `KerasReference`: the user's own model in inference mode (what `model.predict` computes), output untouched;
  what `edgecls export` validates against.
- `OnnxReference`: an fp32 .onnx file, for files whose Keras source is gone or never at hand
  (`edgecls quantize model.onnx`, `edgecls validate model.int8.onnx` beside its fp32 file).

Validation takes either; `to_scores` then reads the raw outputs the way the runtime will (runtime/heads.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol

import numpy as np

from ..runtime.heads import to_scores
from ..runtime.spec import InputSpec


class Reference(Protocol):
    """What a candidate must answer like."""

    name: str  # how reports name it: "Keras" | "fp32 ONNX"
    kind: str  # its output head (runtime.heads.OUTPUT_KINDS)

    def outputs(self, pixels: np.ndarray) -> np.ndarray:
        """Raw outputs for model-ready uint8 (N,H,W,C) pixels."""
        ...


@dataclass
class KerasReference:
    model: Any  # keras.Model
    adapter: Any = None  # convert.ModelInput: how NHWC pixels reach the model (None: read from the model)
    kind: str = ""  # decided by `heads.detect_head` from its outputs when empty
    name: str = "Keras"

    def outputs(self, pixels: np.ndarray) -> np.ndarray:
        return keras_outputs(self.model, pixels, self.adapter)


@dataclass
class OnnxReference:
    data: bytes  # the fp32 graph
    spec: InputSpec
    kind: str
    name: str = "fp32 ONNX"

    @classmethod
    def from_file(cls, path: Path) -> "OnnxReference":
        from ..runtime.metadata import read_info

        info = read_info(path)
        return cls(Path(path).read_bytes(), info.input_spec, info.output)

    def outputs(self, pixels: np.ndarray) -> np.ndarray:
        from ..runtime.inference import run_batches
        from ..runtime.session import create_session

        return run_batches(create_session(self.data, "cpu"), pixels, self.spec)


def keras_outputs(model: Any, pixels: np.ndarray, adapter: Any = None, batch_size: int = 256) -> np.ndarray:
    """The model's raw outputs for uint8 (N,H,W,C) pixels, streamed in float32 batches."""
    import tensorflow as tf

    from .convert import ModelInput, forward_fn, image_input_spec

    adapter = adapter or ModelInput(image_input_spec(model, pixels.shape[1:3]))
    forward = tf.function(forward_fn(model, adapter), reduce_retracing=True)
    out = [np.asarray(forward(tf.constant(pixels[i : i + batch_size], dtype=tf.float32)))
           for i in range(0, len(pixels), batch_size)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)


def keras_probabilities(model: Any, pixels: np.ndarray, kind: Optional[str] = None, batch_size: int = 256) -> np.ndarray:
    """Per-label scores for uint8 (N,H,W,C) pixels, read as the model's head `kind` (detected when None)."""
    raw = keras_outputs(model, pixels, batch_size=batch_size)
    if kind is None:
        from .heads import detect_head

        kind = detect_head(model, raw)[0]
    return to_scores(raw, kind)

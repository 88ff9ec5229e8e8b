"""Keras-side outputs: the reference every exported variant is measured against.

The reference is the user's own model in inference mode (what `model.predict` computes), its
output untouched; `to_scores` then reads it the way the runtime will (see runtime/heads.py)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..runtime.heads import to_scores


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

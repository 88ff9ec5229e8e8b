"""Keras-side predictions: the reference every exported variant is measured against."""

from __future__ import annotations

from typing import Any

import numpy as np


def keras_probabilities(model: Any, pixels: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Probabilities for uint8 (N,H,W,C) pixels, streamed in float32 batches (no full-size float copy)."""
    import tensorflow as tf

    from .convert import probability_fn

    forward = tf.function(probability_fn(model), reduce_retracing=True)
    out = [np.asarray(forward(tf.constant(pixels[i : i + batch_size], dtype=tf.float32)))
           for i in range(0, len(pixels), batch_size)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)

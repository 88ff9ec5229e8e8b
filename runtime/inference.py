"""A plain batched run of an ONNX session over raw pixels, for validation and calibration (the runtime's own
calls go through runtime/engine.py)."""

from __future__ import annotations

import numpy as np

from .preprocess import to_batch
from .spec import InputSpec


def run_batches(session, pixels: np.ndarray, spec: InputSpec, batch_size: int = 512) -> np.ndarray:
    """pixels: uint8 or float (N,H,W,C). Returns the model's (N, classes) output as float32."""
    input_name = session.get_inputs()[0].name
    outputs = []
    for start in range(0, len(pixels), batch_size):
        outputs.append(session.run(None, {input_name: to_batch(pixels[start : start + batch_size], spec)})[0])
    if not outputs:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(outputs).astype(np.float32, copy=False)

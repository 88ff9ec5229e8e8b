"""What a model's output means (metadata `edgecls.output`), and how it becomes per-label scores.

An exported file computes exactly what the user's Keras model computes; no activation is appended.
The runtime turns that raw output into one score per label so every consumer (decode, unsure flag,
evaluation, serving) reads the same (N, labels) array:

- probabilities:     softmax over the labels, one class per image (identity)
- logits:            raw class scores, one class per image (softmax applied here)
- multilabel:        an independent sigmoid per label; every label over the threshold applies (identity)
- multilabel-logits: independent per-label logits (sigmoid applied here)
- binary:            one sigmoid unit = probability of labels[1]; labels[0] gets 1 - p
- binary-logit:      one logit unit for labels[1] (sigmoid applied here)
"""

from __future__ import annotations

import numpy as np

from .errors import EdgeclsError

OUTPUT_KINDS = ("probabilities", "logits", "multilabel", "multilabel-logits", "binary", "binary-logit")
MULTILABEL = ("multilabel", "multilabel-logits")
BINARY = ("binary", "binary-logit")
DEFAULT_THRESHOLD = 0.5  # multi-label: a label applies when its sigmoid score is at least this


def check_kind(kind: str, source: str = "<model>") -> str:
    if kind not in OUTPUT_KINDS:
        raise EdgeclsError(f"{source}: metadata edgecls.output {kind!r} is unknown; known: {', '.join(OUTPUT_KINDS)}")
    return kind


def output_width(kind: str, n_labels: int) -> int:
    """Columns the graph's output has for `n_labels` labels (a binary head has one unit for two labels)."""
    return 1 if kind in BINARY else n_labels


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.float64) - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def to_scores(raw: np.ndarray, kind: str) -> np.ndarray:
    """The model's raw (N, width) output -> (N, labels) scores in 0..1."""
    raw = np.asarray(raw, dtype=np.float32)
    if kind in ("probabilities", "multilabel"):
        return raw
    if kind == "logits":
        return _softmax(raw) if raw.size else raw
    if kind == "multilabel-logits":
        return _sigmoid(raw)
    if kind in BINARY:
        p = raw[:, :1] if kind == "binary" else _sigmoid(raw[:, :1])
        return np.concatenate([1.0 - p, p], axis=1).astype(np.float32)
    raise EdgeclsError(f"unknown output kind {kind!r}; known: {', '.join(OUTPUT_KINDS)}")

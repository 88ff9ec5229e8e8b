"""Which head a Keras classifier ends in, so the export keeps its meaning (metadata `edgecls.output`).

Read from the graph first: the activation of the operation that produces the output (a Dense or
Activation layer's `activation`, a Softmax layer, a `keras.ops.softmax/sigmoid` call), looking into
nested models. Subclassed models and Lambda heads have no readable graph: there the output values
decide (rows summing to 1 -> probabilities; all in 0..1 -> sigmoid; else logits).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..runtime.heads import OUTPUT_KINDS
from .errors import ExportError

_SOFTMAX = {"softmax", "log_softmax"}
_SIGMOID = {"sigmoid", "hard_sigmoid"}


def _final_activation(model: Any) -> Optional[str]:
    """'softmax' | 'sigmoid' | 'linear' | None (unknown) from the op producing the model's output."""
    try:
        history = model.outputs[0]._keras_history
    except (AttributeError, IndexError, TypeError):
        return None
    op = history.operation
    name = type(op).__name__.lower()
    if hasattr(op, "outputs") and hasattr(op, "layers") and op is not model:  # nested model
        return _final_activation(op)
    if name in ("softmax", "logsoftmax"):
        return "softmax" if name == "softmax" else "log_softmax"
    if name in ("sigmoid", "hardsigmoid"):
        return "sigmoid"
    activation = getattr(op, "activation", "absent")
    if activation == "absent":
        return None
    fn_name = getattr(activation, "__name__", None) if activation is not None else None
    return fn_name


def detect_head(model: Any, raw: np.ndarray, override: Optional[str] = None) -> tuple[str, str]:
    """(output kind, how it was decided). `raw`: the model's own outputs on real inputs."""
    width = raw.shape[1]
    if override:
        if override not in OUTPUT_KINDS:
            raise ExportError(f"--head {override!r}: choose one of {', '.join(OUTPUT_KINDS)}")
        if (width == 1) != override.startswith("binary"):
            raise ExportError(f"--head {override}: the model has {width} output unit(s); binary heads have one")
        return override, "given with --head"
    activation = _final_activation(model)
    if activation == "log_softmax":
        raise ExportError(f"model {model.name!r} ends in log_softmax; edgecls needs probabilities or logits "
                          "(remove the final log_softmax, or use softmax)")
    if activation in _SOFTMAX:
        if width == 1:
            raise ExportError(f"model {model.name!r} ends in a softmax over one unit (always 1.0); a binary "
                              "classifier needs Dense(1, activation='sigmoid') or Dense(2, activation='softmax')")
        return "probabilities", "final softmax"
    if activation in _SIGMOID:
        return ("binary", "one sigmoid unit") if width == 1 else ("multilabel", "final sigmoid: independent labels")
    if activation in ("linear", "identity"):
        return ("binary-logit", "one linear unit") if width == 1 else ("logits", "final layer has no activation")
    # No readable activation: decide from the values.
    finite = np.isfinite(raw).all()
    in_unit = finite and raw.min() >= 0.0 and raw.max() <= 1.0
    if in_unit and width > 1 and np.allclose(raw.sum(axis=1), 1.0, atol=1e-3):
        return "probabilities", "outputs are non-negative and sum to 1"
    if in_unit:
        return ("binary", "one output in 0..1") if width == 1 else ("multilabel", "outputs in 0..1, not summing to 1")
    return ("binary-logit", "one unbounded output") if width == 1 else ("logits", "outputs outside 0..1")

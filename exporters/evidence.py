"""Per-layer evidence for static int8, for the export report and `edgecls report`: when int8 is refused or
layers stay in float, which layers quantize badly (the SQNR of each layer's quantized output,
`int8_control.activation_sqnr`, worst first), which were kept in float and why, and what keeping them cost
against an all-int8 build, in bytes and in speed.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path
from typing import Any, Optional

from .builders import BuildInputs, Candidate, build_static_int8
from .int8_control import rank_sensitive_nodes
from .quantize import prepare_float_graph
from .speed import cost_of

LISTED_LAYERS = 20  # the noisiest layers the report lists


def _weights(inits: dict, node) -> int:
    """Elements of a node's weight input (its second input, when constant)."""
    return sum(math.prod(int(d) for d in inits[name].dims) for name in node.input[1:2] if name in inits)


def _why(node, control: set[str]) -> str:
    if node.name in control:
        return "accuracy control"
    if node.op_type == "Softmax":
        return "softmax (int8 would round probabilities to steps of 1/255)"
    if node.op_type in ("Mul", "Add", "Sub", "Div", "Pad"):
        return "input normalization (the image enters at full precision)"
    return "one-channel image stem (faster in float on onnxruntime)"


def kept_float_layers(fp32: bytes, kept_float: tuple[str, ...], control: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The nodes a static int8 was asked to keep in float, with their op, weight count and reason."""
    import onnx

    graph = onnx.load_from_string(fp32).graph
    by_name, inits = {n.name: n for n in graph.node}, {t.name: t for t in graph.initializer}
    return [{"node": name, "op": by_name[name].op_type, "weights": _weights(inits, by_name[name]),
             "why": _why(by_name[name], set(control))} for name in kept_float if name in by_name]


def _layers(fp32: bytes, int8: bytes, inputs: BuildInputs) -> list[dict[str, Any]]:
    import onnx

    with tempfile.TemporaryDirectory(prefix="edgecls-evidence-") as tmp:  # the graph the names refer to
        graph = onnx.load(str(prepare_float_graph(fp32, Path(tmp), inputs.quant.float_stem))).graph
    by_name, inits = {n.name: n for n in graph.node}, {t.name: t for t in graph.initializer}
    ranked = rank_sensitive_nodes(fp32, int8, inputs.calibration, inputs.spec, inputs.quant.float_stem)
    return [{"nodes": unit, "op": by_name[unit[0]].op_type if unit[0] in by_name else "",
             "weights": _weights(inits, by_name[unit[0]]) if unit[0] in by_name else 0, "sqnr_db": round(sqnr, 2)}
            for unit, sqnr in ranked[:LISTED_LAYERS]]


def int8_evidence(candidates: list[Candidate], inputs: BuildInputs,
                  timed: bool) -> Optional[tuple[Candidate, dict[str, Any]]]:
    """(the static int8 candidate it explains: the one that ships, else the last attempt; the evidence), or None
    when static int8 shipped with no weighted layer in float (nothing to explain)."""
    static = [c for c in candidates if c.variant == "int8" and c.data is not None]
    if not static or inputs.calibration is None:
        return None
    final = next((c for c in static if c.ships), static[-1])
    refused = not any(c.ships for c in candidates if c.gate == "int8")
    kept = kept_float_layers(inputs.fp32, final.kept_float, tuple(final.quantization.get("float_nodes", ())))
    if not refused and not any(k["weights"] for k in kept):
        return None
    inputs.on_log("int8: measuring each layer's quantization error")
    evidence: dict[str, Any] = {"refused": refused, "layers": _layers(inputs.fp32, final.data, inputs),
                                "kept_float": kept, "kept_float_weights": sum(k["weights"] for k in kept)}
    if any(k["weights"] for k in kept):
        everything = dataclasses.replace(inputs.quant, float_stem=False)
        alternative = build_static_int8(dataclasses.replace(inputs, on_log=lambda m: None), everything)
        evidence["kept_float_cost"] = {"against": "the same int8 with every weighted layer in int8",
                                       **cost_of(final.data, alternative.data, inputs.spec,
                                                 inputs.calibration if timed else None)}
    return final, evidence

"""Accuracy-controlled int8: when plain static QDQ misses the accuracy budget, search for one that holds it.

1. try the other calibration methods (percentile, entropy) and keep the best;
2. rank the compute nodes (Conv/MatMul/Gemm with the activation that follows) by sensitivity: the
   signal-to-quantization-noise ratio of the unit's float output through its QuantizeLinear/DequantizeLinear
   pair (activations collected with onnxruntime.quantization.qdq_loss_debug), on a few calibration images;
3. keep the worst in float, a growing number at a time, re-quantizing and re-validating until the gates hold.

What stayed float, and what each attempt scored, is reported; the export's size gate and the fp32-vs-int8
timing then say what keeping nodes in float cost. Selection uses the validation images (never the
calibration ones), as NNCF's accuracy-aware quantization does with its validation set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..runtime.spec import InputSpec
from .builders import BuildInputs, Candidate, build_static_int8
from .chatter import library_chatter
from .formats import FORMATS
from .gates import GateFailure
from .quantize import _reader, prepare_float_graph

PROBE_IMAGES = 32  # images whose activations rank sensitivity (memory: every intermediate tensor is kept)
STEPS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)  # nodes kept in float per attempt
Validate = Callable[[Candidate], Candidate]


COMPUTE_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
FOLLOWERS = ("Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Add", "BatchNormalization")


def _sqnr_db(signal: np.ndarray, noisy: np.ndarray) -> float:
    noise = float(np.linalg.norm(signal - noisy))
    return float("inf") if noise == 0 else 20 * np.log10(max(float(np.linalg.norm(signal)), 1e-30) / noise)


def activation_sqnr(fp32: bytes, int8: bytes, pixels: np.ndarray, spec: InputSpec,
                    float_stem: bool = True) -> dict[str, float]:
    """SQNR (dB) of every activation the int8 graph quantizes: the float graph's activation on a few images
    against the same values through that tensor's QuantizeLinear/DequantizeLinear (the int8 graph's scale and
    zero point). Local to each layer: upstream errors do not add up. (qdq_loss_debug's own qdq_err compares the
    tensor before and after the pair inside the int8 graph, where the quantizer has removed a Conv's Relu into
    the uint8 range: every ReLU layer would read as noise.)"""
    import onnx
    from onnx import numpy_helper
    from onnxruntime.quantization.qdq_loss_debug import collect_activations, modify_model_output_intermediate_tensors

    graph = onnx.load_from_string(int8).graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    params = {n.input[0]: (consts[n.input[1]], consts[n.input[2]]) for n in graph.node
              if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[1] in consts and n.input[2] in consts
              and consts[n.input[1]].size == 1}
    probe = pixels[:PROBE_IMAGES]
    with tempfile.TemporaryDirectory(prefix="edgecls-sensitivity-") as tmp:
        augmented = Path(tmp, "augmented.onnx")
        with library_chatter(), contextlib.chdir(tmp):
            modify_model_output_intermediate_tensors(str(prepare_float_graph(fp32, Path(tmp), float_stem)),
                                                     str(augmented))
            activations = collect_activations(str(augmented), _reader(probe, spec, batch_size=len(probe)))
    out = {}
    for name, (scale, zero) in params.items():
        if name in activations:
            x = np.concatenate(activations[name]).astype(np.float64).ravel()
            limits = np.iinfo(zero.dtype)
            q = np.clip(np.round(x / float(scale)) + int(zero), limits.min, limits.max)
            out[name] = _sqnr_db(x, (q - int(zero)) * float(scale))
    return out


def rank_sensitive_nodes(fp32: bytes, int8: bytes, pixels: np.ndarray, spec: InputSpec,
                         float_stem: bool = True) -> list[tuple[list[str], float]]:
    """Compute nodes (Conv/MatMul/Gemm, with the activation that follows them, kept together so a float unit
    does not leave a pre-activation tensor to quantize) and the SQNR in dB of the unit's quantized output
    (`activation_sqnr`), noisiest first. Names refer to the float graph int8 was quantized from
    (`quantize.prepare_float_graph`); units kept in float have no quantized output and are not listed."""
    import onnx

    from .optimize import graph_maps

    errors = activation_sqnr(fp32, int8, pixels, spec, float_stem)
    with tempfile.TemporaryDirectory(prefix="edgecls-sensitivity-") as tmp:
        graph = onnx.load(str(prepare_float_graph(fp32, Path(tmp), float_stem))).graph
    _, consumers, _, _ = graph_maps(graph)
    ranked = []
    for node in graph.node:
        if node.op_type not in COMPUTE_OPS:
            continue
        unit, tensor = [node.name], node.output[0]
        while len(consumers.get(tensor, [])) == 1 and consumers[tensor][0].op_type in FOLLOWERS:
            follower = consumers[tensor][0]
            unit.append(follower.name)
            tensor = follower.output[0]
        if tensor in errors:
            ranked.append((unit, errors[tensor]))
    ranked.sort(key=lambda item: item[1])
    return ranked


def _score(c: Candidate) -> tuple:
    """Lower is better: passing first, then accuracy drop (or disagreement when unlabelled)."""
    v = c.validation or {}
    drop = v.get("accuracy_drop_pts", (1 - v.get("top1_agreement", 0)) * 100)
    return (bool(c.failures), drop, -v.get("top1_agreement", 0))


def _summary(c: Candidate) -> dict[str, Any]:
    v = c.validation or {}
    return {"accuracy_drop_pts": v.get("accuracy_drop_pts"), "top1_agreement": v.get("top1_agreement"),
            "size_bytes": len(c.data) if c.data else None, "failures": [str(f) for f in c.failures]}


def _best_calibration(first: Candidate, inputs: BuildInputs, validate: Validate, attempts: list) -> Candidate:
    best = first
    for method in ("minmax", "percentile", "entropy"):
        if method == inputs.quant.calibration:
            continue
        inputs.on_log(f"int8: trying {method} calibration")
        cand = validate(build_static_int8(inputs, dataclasses.replace(inputs.quant, calibration=method)))
        attempts.append({"calibration": method, "float_nodes": 0, **_summary(cand)})
        if _score(cand) < _score(best):
            best = cand
    return best


def _keep_sensitive_in_float(best: Candidate, inputs: BuildInputs, validate: Validate, attempts: list) -> Candidate:
    method = best.quantization["calibration"]
    opts = dataclasses.replace(inputs.quant, calibration=method)
    inputs.on_log("int8: ranking nodes by quantization sensitivity")
    ranked = rank_sensitive_nodes(inputs.fp32, best.data, inputs.calibration, inputs.spec, opts.float_stem)
    stale = 0
    for k in [s for s in STEPS if s <= len(ranked)]:
        if stale >= 3:  # three attempts in a row with no gain: more float nodes will not get there
            break
        keep = [name for unit, _ in ranked[:k] for name in unit]
        inputs.on_log(f"int8: keeping the {k} most sensitive node(s) in float")
        cand = build_static_int8(inputs, opts, tuple(keep))
        cand.quantization.update(float_nodes=keep, float_nodes_sqnr_db=[round(s, 2) for _, s in ranked[:k]])
        cand = validate(cand)
        attempts.append({"calibration": method, "float_nodes": k, **_summary(cand)})
        stale = 0 if _score(cand) < _score(best) else stale + 1
        if _score(cand) < _score(best):
            best = cand
        if not cand.failures:
            break
    return best


def accuracy_controlled_int8(first: Candidate, inputs: BuildInputs, validate: Validate) -> Candidate:
    """`first`: the failed static candidate; `validate` judges a new one. Returns the best candidate found
    (passing if any passed), its quantization info listing every attempt."""
    attempts = [{"calibration": inputs.quant.calibration, "float_nodes": 0, **_summary(first)}]
    best = _best_calibration(first, inputs, validate, attempts)
    if best.failures:
        best = _keep_sensitive_in_float(best, inputs, validate, attempts)
    best.quantization = {**best.quantization, "accuracy_control": {"attempts": attempts,
                                                                    "passed": not best.failures}}
    return best


def settle_int8(candidates: list[Candidate], inputs: BuildInputs, validate: Validate) -> list[Candidate]:
    """Auto mode: a static int8 that misses its gates goes through accuracy control (other calibrations, then
    the most sensitive nodes kept in float), then its format's fallback (dynamic int8) as the last resort. The
    attempts that did not ship stay in the list, marked superseded when another took their place."""
    static = next((c for c in candidates if c.variant == "int8"), None)
    if static is None or static.passed or inputs.quant.mode != "auto" or static.data is None:
        return candidates
    out = list(candidates)
    if inputs.calibration is not None and not any(f.gate in ("size", "disjoint_data") for f in static.failures):
        try:
            controlled = accuracy_controlled_int8(static, inputs, validate)
        except Exception as exc:  # noqa: BLE001 - a search step failed: keep the plain static result
            inputs.on_log(f"int8 accuracy control stopped: {type(exc).__name__}: {exc}")
            controlled = static
        if controlled is not static:
            static.superseded = True  # the plain attempt stays in the report
            out.insert(out.index(static) + 1, controlled)
            static = controlled
        if controlled.passed:
            return out
    fallback = FORMATS[static.variant].fallback
    inputs.on_log(f"static int8 failed its gate; trying {fallback}")
    try:
        replacement = validate(FORMATS[fallback].builder(inputs))
    except Exception as exc:  # noqa: BLE001
        replacement = Candidate(fallback, FORMATS[fallback].gate, None,
                                failures=[GateFailure("build", f"could not be built: {exc}")])
    if replacement.passed:
        static.superseded = True
    out.insert(out.index(static) + 1, replacement)
    return out

"""Accuracy-controlled int8: when plain static QDQ misses the accuracy budget, search for one that holds it.

1. try the other calibration methods (percentile, entropy) and keep the best;
2. rank the compute nodes (Conv/MatMul/Gemm with the activation that follows) by sensitivity: the
   signal-to-quantization-noise ratio of the unit's output before vs after its QuantizeLinear/
   DequantizeLinear pair (onnxruntime.quantization.qdq_loss_debug), on a few calibration images;
3. keep the worst in float, a growing number at a time, re-quantizing and re-validating until the gates hold.

What stayed float, and what each attempt scored, is reported; the export's size gate and the fp32-vs-int8
timing then say what keeping nodes in float cost. Selection uses the validation images (never the
calibration ones), as NNCF's accuracy-aware quantization does with its validation set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..runtime.spec import InputSpec
from .quantize import QuantOptions, _reader, preprocess_for_quantization, quantize_static_int8

PROBE_IMAGES = 32  # images whose activations rank sensitivity (memory: every intermediate tensor is kept)
STEPS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)  # nodes kept in float per attempt


COMPUTE_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
FOLLOWERS = ("Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Add", "BatchNormalization")


def rank_sensitive_nodes(fp32: bytes, int8: bytes, pixels: np.ndarray, spec: InputSpec) -> list[tuple[list[str], float]]:
    """Compute nodes (Conv/MatMul/Gemm, with the activation that follows them, kept together so a float unit
    does not leave a pre-activation tensor to quantize) and the SQNR in dB of the unit's output after its
    quantize/dequantize pair, noisiest first. Names refer to the pre-processed float graph."""
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations, compute_activation_error, create_activation_matching,
        modify_model_output_intermediate_tensors)

    probe = pixels[:PROBE_IMAGES]
    with tempfile.TemporaryDirectory(prefix="edgecls-sensitivity-") as tmp:
        src, pre, q = Path(tmp, "fp32.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        src.write_bytes(fp32)
        q.write_bytes(int8)
        preprocess_for_quantization(src, pre)
        f_aug, q_aug = Path(tmp, "f_aug.onnx"), Path(tmp, "q_aug.onnx")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.chdir(tmp):
            modify_model_output_intermediate_tensors(str(pre), str(f_aug))
            modify_model_output_intermediate_tensors(str(q), str(q_aug))
            float_acts = collect_activations(str(f_aug), _reader(probe, spec, batch_size=len(probe)))
            qdq_acts = collect_activations(str(q_aug), _reader(probe, spec, batch_size=len(probe)))
        errors = compute_activation_error(create_activation_matching(qdq_acts, float_acts))
        graph = onnx.load(str(pre)).graph
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    ranked = []
    for node in graph.node:
        if node.op_type not in COMPUTE_OPS:
            continue
        unit, tensor = [node.name], node.output[0]
        while len(consumers.get(tensor, [])) == 1 and consumers[tensor][0].op_type in FOLLOWERS:
            follower = consumers[tensor][0]
            unit.append(follower.name)
            tensor = follower.output[0]
        err = errors.get(tensor, {}).get("qdq_err")
        if err is not None and np.isfinite(err):
            ranked.append((unit, float(err)))
    ranked.sort(key=lambda item: item[1])
    return ranked


def _score(c: Any) -> tuple:
    """Lower is better: passing first, then accuracy drop (or disagreement when unlabelled)."""
    v = c.validation or {}
    drop = v.get("accuracy_drop_pts", (1 - v.get("top1_agreement", 0)) * 100)
    return (bool(c.failures), drop, -v.get("top1_agreement", 0))


def accuracy_controlled_int8(first: Any, fp32: bytes, calib_pixels: np.ndarray, spec: InputSpec, options: QuantOptions,
                             make: Callable[[bytes, dict[str, Any]], Any], on_log: Callable[[str], None]) -> Any:
    """`first`: the failed static candidate; `make(data, quantization)` validates a new one. Returns the best
    candidate found (passing if any passed), its quantization info listing every attempt."""
    attempts = [{"calibration": options.calibration, "float_nodes": 0, **_summary(first)}]
    best = first
    for method in ("minmax", "percentile", "entropy"):
        if method == options.calibration:
            continue
        on_log(f"int8: trying {method} calibration")
        opts = dataclasses.replace(options, calibration=method)
        cand = make(quantize_static_int8(fp32, calib_pixels, spec, opts), {**first.quantization, "calibration": method})
        attempts.append({"calibration": method, "float_nodes": 0, **_summary(cand)})
        if _score(cand) < _score(best):
            best = cand
    if best.failures:
        method = best.quantization["calibration"]
        opts = dataclasses.replace(options, calibration=method)
        on_log("int8: ranking nodes by quantization sensitivity")
        ranked = rank_sensitive_nodes(fp32, best.data, calib_pixels, spec)
        stale = 0
        for k in [s for s in STEPS if s <= len(ranked)]:
            if stale >= 3:  # three attempts in a row with no gain: more float nodes will not get there
                break
            keep = [name for unit, _ in ranked[:k] for name in unit]
            on_log(f"int8: keeping the {k} most sensitive node(s) in float")
            cand = make(quantize_static_int8(fp32, calib_pixels, spec, opts, tuple(keep)),
                        {**first.quantization, "calibration": method, "float_nodes": keep,
                         "float_nodes_sqnr_db": [round(s, 2) for _, s in ranked[:k]]})
            attempts.append({"calibration": method, "float_nodes": k, **_summary(cand)})
            stale = 0 if _score(cand) < _score(best) else stale + 1
            if _score(cand) < _score(best):
                best = cand
            if not cand.failures:
                break
    best.quantization = {**best.quantization, "accuracy_control": {"attempts": attempts,
                                                                    "passed": not best.failures}}
    return best


def _summary(c: Any) -> dict[str, Any]:
    v = c.validation or {}
    return {"accuracy_drop_pts": v.get("accuracy_drop_pts"), "top1_agreement": v.get("top1_agreement"),
            "size_bytes": len(c.data) if c.data else None, "failures": [str(f) for f in c.failures]}

"""The variant policy: which file of a model runs. One function, `choose_variant`, for every entry point:
`Classifier`, `edgecls infer`, `edgecls serve`, Ray (resolved once on the driver; every actor loads the chosen
file's bytes) and the web bundle's default, so one model name gives one answer however it is run.

- `variant="auto"` (the default): the fastest variant that passed its export gate on this machine, measured
  once and cached (runtime/tuning/variant.py); fp16 only on a GPU. With tuning off: fp32.
- `"fp32" | "int8" | "fp16"`: that variant, or a one-line error naming what there is.
- a path to an .onnx file runs that file; naming a variant it is not is an error, not a silent swap.
The chosen variant is named in every output: `VariantChoice.summary` for summary lines, `.to_dict()` for
metadata.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from .errors import EdgeclsError
from .metadata import read_info
from .store import ModelFolder, find_onnx, locate, looks_like_path
from .tuning import Tuner, as_tuner
from .tuning import variant as variant_tuning
from .variants import split_name

VARIANT_CHOICES = ("auto", "fp32", "int8", "fp16")
PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class VariantChoice:
    """The file that runs, its variant, and why it was chosen."""

    path: Path
    variant: str  # as the file's metadata says: fp32 | int8 | int8-dynamic | fp16
    requested: str  # auto | fp32 | int8 | fp16 | file (a path was given)
    reason: str  # "fastest here (cached)", "asked for", "file given", ...
    measured: dict[str, dict[str, float]] = field(default_factory=dict)  # auto: variant -> latency_ms, per_image_ms
    skipped: dict[str, str] = field(default_factory=dict)  # auto: variant -> why it was not a candidate

    @property
    def summary(self) -> str:
        """For summary lines: `mnist.int8.onnx (int8, auto: fastest here, cached)`."""
        return f"{self.path.name} ({self.variant}, {self.requested}: {self.reason})"

    @property
    def int8_speedup(self) -> Optional[dict[str, float]]:
        return variant_tuning.speedup(self.measured)

    @property
    def warning(self) -> Optional[str]:
        """One line when this machine's measurement says int8 is slower than fp32 at batch 1 or batch 64 and that
        matters: int8 was asked for, or auto ran another variant because of it. None otherwise."""
        s = self.int8_speedup
        asked_int8, auto_ran_other = self.requested == "int8", self.requested == "auto" and self.variant != "int8"
        if s is None or min(s.values()) >= 1 or not (asked_int8 or auto_ran_other):
            return None
        return (f"int8 is not faster than fp32 on this machine ({s['latency']:.2f}x at batch 1, "
                f"{s['throughput']:.2f}x at batch {variant_tuning.THROUGHPUT_BATCH})")

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.path.name, "variant": self.variant, "requested": self.requested, "reason": self.reason,
                "measured": self.measured, "skipped": self.skipped}


def choose_variant(model: PathLike, variant: str = "auto", *, device: str = "auto",
                   workspace: Optional[PathLike] = None, tune: "str | Tuner" = "auto") -> VariantChoice:
    """THE variant policy (see the module docstring): a model name, folder or .onnx path -> the file to run."""
    if variant not in VARIANT_CHOICES:
        raise EdgeclsError(f"unknown variant {variant!r}; choose {', '.join(VARIANT_CHOICES)}")
    ref = locate(model, workspace)
    if ref.file is not None:
        return _given_file(ref.file, variant)
    tuner = as_tuner(tune)
    folder = ref.folder if looks_like_path(model) else None  # a folder named by path, else a model name
    if variant != "auto":
        path = _in_folder(folder, variant) if folder else find_onnx(ref.name, variant, workspace)
        return VariantChoice(path, variant, variant, "asked for", *_cached_comparison(path, device, tuner))
    return _fastest(folder or _reference_folder(ref.name, workspace), device, tuner)


def _reference_folder(name: str, workspace: Optional[PathLike]) -> ModelFolder:
    """The folder model `name`'s fp32 file is read from (workspace, else zoo): its variants are never mixed
    with another folder's."""
    return ModelFolder(name, find_onnx(name, "fp32", workspace).parent)


def _in_folder(folder: ModelFolder, variant: str) -> Path:
    path = folder.variant_path(variant)
    if not path.is_file():
        there = ", ".join(p.name for p in folder.variants().values()) or "no .onnx files"
        raise EdgeclsError(f"{folder.directory}: no {variant} variant ({there})")
    return path


def _fastest(folder: ModelFolder, device: str, tuner: Tuner) -> VariantChoice:
    provider = expected_provider(device)
    files = folder.variants()
    if "fp32" not in files:
        raise EdgeclsError(f"{folder.directory}: no fp32 variant ({folder.name}.onnx), the reference auto needs")
    candidates, skipped = variant_tuning.candidates(files, provider)
    decision = variant_tuning.decide(tuner, candidates, device, provider)
    reason = "fastest here" + {"measured": " (measured now, cached)", "cached": " (cached)"}.get(decision.source, "")
    if decision.source == "default":
        reason = decision.note if decision.note == "the only validated variant" else f"reference ({decision.note})"
    return VariantChoice(candidates[decision.value], decision.value, "auto", reason,
                         dict(decision.timings) if decision.source != "default" else {}, skipped)


def _given_file(path: Path, variant: str) -> VariantChoice:
    if path.suffix != ".onnx":
        raise EdgeclsError(f"{path}: not an ONNX model file (.onnx)")
    actual = read_info(path).variant
    if variant not in ("auto", actual) and not (variant == "int8" and actual == "int8-dynamic"):
        raise EdgeclsError(f"{path}: this file is the {actual} variant, not {variant}; give the {variant} file or "
                           "leave the variant out")
    return VariantChoice(path, actual, "file", "file given")


def _cached_comparison(path: Path, device: str, tuner: Tuner) -> tuple[dict, dict]:
    """For a variant asked for by name: this machine's cached auto measurement of its folder, if any (never
    measures), so an int8 that is not faster here can be said."""
    if tuner.mode == "off":
        return {}, {}
    try:
        folder = ModelFolder(split_name(path.name)[0], path.parent)
        candidates, skipped = variant_tuning.candidates(folder.variants(), expected_provider(device))
        decision = variant_tuning.decide(Tuner("cached"), candidates, device, expected_provider(device))
    except (EdgeclsError, OSError, KeyError, TypeError):
        return {}, {}
    return (dict(decision.timings), skipped) if decision.source == "cached" else ({}, {})


def expected_provider(device: str) -> str:
    """The provider create_session will pick for `device` (CUDA only when this onnxruntime has it)."""
    from .session import available_providers

    has_cuda = "CUDAExecutionProvider" in available_providers()
    return "CUDAExecutionProvider" if device in ("cuda", "auto") and has_cuda else "CPUExecutionProvider"

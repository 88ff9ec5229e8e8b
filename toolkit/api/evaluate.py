"""`edgecls.api.evaluate`: test-set accuracy and per-class metrics of a trained model or an exported .onnx file,
on the held-out split its card records (never its training images) or on a labelled folder."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class Evaluation:
    model: str
    dataset: str
    split: str  # the card's test split, or "folder"
    accuracy: float
    num_samples: int
    per_class: dict[str, dict[str, float]]
    macro_avg: dict[str, float]
    weighted_avg: dict[str, float]
    recorded_accuracy: Optional[float] = None  # what the card (or the export's validation) recorded

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Evaluation":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "dataset": self.dataset, "split": self.split,
                "recorded_accuracy": self.recorded_accuracy, "accuracy": self.accuracy,
                "num_samples": self.num_samples, "per_class": self.per_class, "macro_avg": self.macro_avg,
                "weighted_avg": self.weighted_avg}


@dataclass
class Evaluations:
    """`evaluate_all`: one Evaluation per model that could be evaluated, one line per model that could not."""

    results: list[Evaluation] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def evaluate(model: PathLike, *, data: Optional[PathLike] = None, data_dir: Optional[PathLike] = None,
             workspace: Optional[PathLike] = None) -> Evaluation:
    """A trained model by name (its Keras model, through its declared preprocessing) or an exported .onnx file
    (run by the runtime as users run it); on `data` (a labelled folder) when given."""
    from ..evaluation import evaluate_model, evaluate_onnx
    from ..runtime.errors import EdgeclsError
    from ..runtime.store import looks_like_path, model_folder

    folder = Path(data) if data else None
    if not looks_like_path(model):
        return Evaluation.from_dict(evaluate_model(model_folder(os.fspath(model), workspace), data_dir, folder))
    path = Path(model)
    if path.suffix != ".onnx":
        raise EdgeclsError(f"{path}: evaluation takes a model name or an exported .onnx file")
    if not path.is_file():
        raise EdgeclsError(f"{path}: no such model file")
    return Evaluation.from_dict(evaluate_onnx(path, folder, data_dir, workspace))


def evaluate_all(*, data: Optional[PathLike] = None, data_dir: Optional[PathLike] = None,
                 workspace: Optional[PathLike] = None) -> Evaluations:
    """Every trained model of the workspace and the shipped zoo (the workspace shadows the zoo); a model that
    cannot be evaluated (a broken card, missing data) is named, never fatal. EdgeclsError when there is none."""
    from ..evaluation import evaluate_model
    from ..runtime.errors import EdgeclsError
    from ..runtime.store import CARD_FILE, ModelFolder, search_dirs

    seen: dict[str, Path] = {}
    for root in search_dirs(workspace):
        for card in sorted(root.glob(f"*/{CARD_FILE}")):
            seen.setdefault(card.parent.name, card.parent)
    if not seen:
        raise EdgeclsError(f"no trained models in {' or '.join(str(r) for r in search_dirs(workspace))}")
    out = Evaluations()
    for name, directory in sorted(seen.items()):
        try:
            out.results.append(Evaluation.from_dict(
                evaluate_model(ModelFolder(name, directory), data_dir, Path(data) if data else None)))
        except (EdgeclsError, KeyError, ValueError, OSError) as exc:
            out.failed.append(f"{name}: {exc if isinstance(exc, EdgeclsError) else f'{type(exc).__name__}: {exc}'}")
    return out

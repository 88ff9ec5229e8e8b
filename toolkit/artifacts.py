"""Where a trained model's files live, and reading/writing them safely.

Reads find a model in the workspace first, then in the shipped zoo; writes always go to the workspace
(edgecls.runtime.paths holds the rule). A model folder:

<workspace>/<name>/
    model.keras     the trained model (inference copy: no optimizer state)
    metrics.json    model card: data set, classes, input spec, size, cost, test metrics, training facts
    history.json    per-epoch training curves
    .train/         resume checkpoints and logs (never shipped)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from . import config
from .runtime.atomic import write_json_atomic  # noqa: F401  (re-exported for the toolkit)
from .errors import ModelNotFoundError


@dataclass(frozen=True)
class ModelArtifacts:
    directory: Path

    @classmethod
    def for_name(cls, name: str, root: Optional[config.PathLike] = None) -> "ModelArtifacts":
        """Where model `name` is read from: the workspace if it has it, else the shipped zoo."""
        from .runtime.paths import model_dir

        return cls(model_dir(name, root))

    @classmethod
    def in_workspace(cls, name: str, root: Optional[config.PathLike] = None) -> "ModelArtifacts":
        """Where this run writes model `name` (training, exports, benchmarks, reports)."""
        return cls(config.artifacts_dir(root) / name)

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def keras_path(self) -> Path:
        return self.directory / "model.keras"

    @property
    def metrics_path(self) -> Path:
        return self.directory / "metrics.json"

    @property
    def history_path(self) -> Path:
        return self.directory / "history.json"

    @property
    def work_dir(self) -> Path:
        return self.directory / ".train"

    def exists(self) -> bool:
        return self.keras_path.is_file() and self.metrics_path.is_file()

    def read_card(self) -> Optional[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return None
        return json.loads(self.metrics_path.read_text())


@dataclass(frozen=True)
class ModelSource:
    """A model the user named: its .keras file, export name, model card, the folder it was read from and the
    folder this run writes to (the workspace; differs from `directory` for a shipped model)."""

    keras_path: Path
    name: str
    card: Optional[dict[str, Any]]
    directory: Path
    out_dir: Optional[Path] = None

    @property
    def output_dir(self) -> Path:
        return self.out_dir or self.directory

    def variant_files(self) -> dict[str, Path]:
        """Where each exported variant lives: in the output folder when exported there, else beside the model."""
        from .exporters.export import VARIANT_TABLE

        files = {}
        for v in VARIANT_TABLE.values():
            mine = self.output_dir / f"{self.name}{v.suffix}"
            files[v.name] = mine if mine.is_file() or self.output_dir == self.directory else \
                self.directory / f"{self.name}{v.suffix}"
        return files


def resolve_source(target: str, root: Optional[config.PathLike] = None) -> ModelSource:
    """A model name (<name>/model.keras + metrics.json in the workspace, else the shipped zoo) or a path to a
    .keras file -> ModelSource. The one resolver `export`, `bench` and `report` use, so all find the same files
    for the same argument; what they write goes to the workspace, never into the shipped zoo."""
    from .runtime.paths import looks_like_path

    path = Path(target)
    if path.suffix == ".keras" or path.is_file() or looks_like_path(target):
        if not path.is_file():
            raise ModelNotFoundError(f"{path}: no such file")
        card = _card_beside(path)
        out = config.artifacts_dir(root) / path.parent.name if card is not None and _shipped(path) else None
        return ModelSource(path, path.parent.name if card is not None else path.stem, card, path.parent, out)
    art = ModelArtifacts.for_name(target, root)
    card = art.read_card()
    if card is None or not art.keras_path.is_file():
        raise ModelNotFoundError(missing_model_message(target, art.directory, root))
    return ModelSource(art.keras_path, target, card, art.directory, ModelArtifacts.in_workspace(target, root).directory)


def _shipped(path: Path) -> bool:
    from .runtime.paths import is_shipped

    return is_shipped(path)


def _card_beside(keras_path: Path) -> Optional[dict[str, Any]]:
    """The model card of <folder>/model.keras trained by edgecls (so a path to it works like its name)."""
    card_path = keras_path.parent / "metrics.json"
    if keras_path.name != "model.keras" or not card_path.is_file():
        return None
    return json.loads(card_path.read_text())


def missing_model_message(name: str, looked: Path, root: Optional[config.PathLike] = None) -> str:
    """One line for a model name that is not there: a close name if there is one, else how to train it."""
    from .runtime.paths import did_you_mean, known_models, search_dirs

    where = " or ".join(str(d) for d in search_dirs(root))
    close = did_you_mean(name, known_models(root))
    if close:
        return f"no trained model {name!r} in {where}{close}"
    return (f"no trained model {name!r} in {where} and no such .keras file; train it first "
            f"(`edgecls train {name}`, or `edgecls train {name} --data folder/` for your own images)")


def save_keras_atomic(model, path: Path) -> None:
    """Keras insists on a .keras suffix, so the temp file gets one too before the rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.stem}.{os.getpid()}.tmp.keras"
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_keras_model(path: Path, custom_objects: Optional[dict[str, Any]] = None, unsafe: bool = False):
    """Load a .keras file with safe_mode on: a file that would run arbitrary code (a Lambda layer's
    bytecode) is refused unless the user passed `unsafe` (--unsafe) for a file they trust.
    `custom_objects`: the user's own layer/model classes (--custom-objects)."""
    from .errors import EdgeclsError

    if not path.is_file():
        raise ModelNotFoundError(f"{path}: no such model file")
    import keras

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=not unsafe, custom_objects=custom_objects)
    except Exception as exc:  # noqa: BLE001 - keras raises ValueError/TypeError/zip errors
        text = str(exc)
        if "safe_mode" in text or "Lambda" in text and "unsafe" in text.lower():
            raise EdgeclsError(f"{path}: contains a Lambda layer whose Python code would run on loading; refused "
                               "(safe mode). If you trust this file, pass --unsafe") from None
        missing = _unknown_class(text)
        if missing:
            raise EdgeclsError(f"{path}: uses {missing}, a custom class Keras does not know; give the module that "
                               "defines it with --custom-objects my_layers.py (or an importable module name)") from None
        first = text.strip().splitlines()[0] if text.strip() else ""
        raise EdgeclsError(f"{path}: cannot load as a Keras model ({type(exc).__name__}: {first})") from None


def _unknown_class(text: str) -> Optional[str]:
    import re

    match = re.search(r"Could not locate (?:class|function) '([^']+)'", text) or \
        re.search(r"Unknown (?:layer|object|class)[:]? '?([A-Za-z_][\w.>]*)", text)
    return match.group(1) if match else None

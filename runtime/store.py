"""The model store: where models live, and the one way a name, folder or file becomes a model's files.

Models live in two places:
- the **workspace**, the user's folder of models: everything edgecls writes (trained models, exports,
  benchmarks, reports) goes there. `--workspace DIR` > $EDGECLS_WORKSPACE > `./workspace`.
- the **zoo** shipped inside the package (`edgecls.artifacts`), read-only: found through importlib.resources,
  so an installed wheel has it in any folder.
Reads look in the workspace first, then in the zoo, so a model the user re-exported shadows the shipped one.

A model folder holds `model.keras` and its card `metrics.json` (when trained by edgecls) and its exported
variants side by side, named by the variant table (`<name>.onnx`, `<name>.int8.onnx`, ...).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from .environment import env_path
from .errors import EdgeclsError, ModelNotFoundError
from .variants import LOADABLE, split_name, variant_file

PathLike = Union[str, os.PathLike]

WORKSPACE_ENV = "EDGECLS_WORKSPACE"
LEGACY_WORKSPACE_ENV = "EDGECLS_ARTIFACTS"  # older name, still read
DEFAULT_WORKSPACE = "workspace"
ZOO_PACKAGE = "edgecls.artifacts"
CARD_FILE = "metrics.json"
KERAS_FILE = "model.keras"


def workspace_dir(explicit: Optional[PathLike] = None) -> Path:
    """The folder this run writes models to and reads them from first (see the module docstring)."""
    if explicit:
        return Path(explicit).expanduser()
    return env_path(WORKSPACE_ENV, LEGACY_WORKSPACE_ENV) or Path.cwd() / DEFAULT_WORKSPACE


def zoo_dir() -> Optional[Path]:
    """The shipped zoo's folder (package data), or None in an install without it."""
    from importlib import resources

    try:
        folder = Path(str(resources.files(ZOO_PACKAGE)))
    except (ModuleNotFoundError, TypeError):
        return None
    return folder if folder.is_dir() else None


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def is_shipped(path: PathLike) -> bool:
    """True for a file or folder inside the shipped zoo (which user commands never write)."""
    zoo = zoo_dir()
    if zoo is None:
        return False
    try:
        Path(path).resolve().relative_to(zoo.resolve())
        return True
    except (ValueError, OSError):
        return False


def search_dirs(workspace: Optional[PathLike] = None) -> list[Path]:
    """Folders models are read from, in order: the workspace, then the shipped zoo."""
    dirs = [workspace_dir(workspace)]
    zoo = zoo_dir()
    if zoo is not None and not _same(zoo, dirs[0]):
        dirs.append(zoo)
    return dirs


@dataclass(frozen=True)
class ModelFolder:
    """One model's folder: its card, Keras source and exported variant files."""

    name: str
    directory: Path

    @property
    def shipped(self) -> bool:
        return is_shipped(self.directory)

    @property
    def card_path(self) -> Path:
        return self.directory / CARD_FILE

    @property
    def keras_path(self) -> Path:
        return self.directory / KERAS_FILE

    @property
    def history_path(self) -> Path:
        return self.directory / "history.json"

    @property
    def train_dir(self) -> Path:
        """Resume checkpoints and logs of a training run (never shipped)."""
        return self.directory / ".train"

    def variant_path(self, variant: str) -> Path:
        return variant_file(self.directory, self.name, variant)

    def variants(self) -> dict[str, Path]:
        """The exported variant files present, fp32 first."""
        return {v: self.variant_path(v) for v in LOADABLE if self.variant_path(v).is_file()}

    def has_card(self) -> bool:
        return self.card_path.is_file()

    def trained(self) -> bool:
        """A model edgecls trained: its Keras source and card are both there."""
        return self.keras_path.is_file() and self.card_path.is_file()

    def output_dir(self, workspace: Optional[PathLike] = None) -> Path:
        """Where a command writes for this model: its own folder, or the workspace's for a shipped model."""
        return workspace_dir(workspace) / self.name if self.shipped else self.directory


def _has_onnx(folder: Path) -> bool:
    return folder.is_dir() and any(split_name(p.name) for p in folder.glob("*.onnx"))


def model_folder(name: str, workspace: Optional[PathLike] = None) -> ModelFolder:
    """Where model `name` is read from: the first folder with its card (workspace, then zoo), then the first
    with exported files only; else the workspace's (where training would put it). Never raises."""
    roots = search_dirs(workspace)
    for found in (lambda f: (f / CARD_FILE).is_file(), _has_onnx):
        for root in roots:
            if found(root / name):
                return ModelFolder(name, root / name)
    return workspace_folder(name, workspace)


def workspace_folder(name: str, workspace: Optional[PathLike] = None) -> ModelFolder:
    """Where this run writes model `name` (training, exports, benchmarks, reports)."""
    return ModelFolder(name, workspace_dir(workspace) / name)


def known_models(workspace: Optional[PathLike] = None) -> list[str]:
    """Names of every model folder in the workspace and the shipped zoo."""
    names: set[str] = set()
    for root in search_dirs(workspace):
        if root.is_dir():
            names.update(p.name for p in root.iterdir() if (p / CARD_FILE).is_file() or _has_onnx(p))
    return sorted(names)


def did_you_mean(name: str, candidates: list[str]) -> str:
    """' (did you mean X?)' for a close model name, else ''."""
    close = difflib.get_close_matches(name, [c for c in candidates if c != name], n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def looks_like_path(model: PathLike) -> bool:
    """A file or folder path rather than a model name: has a model file suffix or a path separator, or names
    an existing file."""
    text = os.fspath(model)
    return text.endswith((".onnx", ".keras")) or os.sep in text or (os.altsep or os.sep) in text or \
        os.path.isfile(text)


@dataclass(frozen=True)
class ModelRef:
    """What a user named: the model folder, and the file when they named one (.onnx or .keras)."""

    folder: ModelFolder
    file: Optional[Path] = None
    variant: Optional[str] = None  # of an .onnx file named by path, from its file name (None: not a variant name)

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def is_keras(self) -> bool:
        return self.file is not None and self.file.suffix == ".keras"

    @property
    def is_onnx(self) -> bool:
        return self.file is not None and self.file.suffix == ".onnx"


def locate(target: PathLike, workspace: Optional[PathLike] = None) -> ModelRef:
    """A model name, a model folder, an .onnx or a .keras path -> ModelRef. Names are looked up in the
    workspace, then the zoo; a name found nowhere raises ModelNotFoundError with the close names."""
    if looks_like_path(target):
        return _locate_path(Path(target))
    name = os.fspath(target)
    folder = model_folder(name, workspace)
    if not folder.directory.is_dir():
        raise ModelNotFoundError(not_found_message(name, workspace))
    return ModelRef(folder)


def _locate_path(path: Path) -> ModelRef:
    if path.is_dir():
        return ModelRef(ModelFolder(path.resolve().name, path))
    if not path.is_file():
        what = "not a regular file" if os.path.exists(path) else "no such model file"
        raise ModelNotFoundError(f"{path}: {what}")
    if path.suffix == ".keras":
        # <folder>/model.keras of an edgecls model folder is that model; any other .keras file is named by its stem
        named = path.parent.name if path.name == KERAS_FILE and (path.parent / CARD_FILE).is_file() else path.stem
        return ModelRef(ModelFolder(named, path.parent), path)
    parsed = split_name(path.name)
    name, variant = parsed if parsed else (path.stem, None)
    return ModelRef(ModelFolder(name, path.parent), path, variant)


def not_found_message(name: str, workspace: Optional[PathLike] = None, what: str = "model",
                      otherwise: str = "; no such model (see `edgecls models`)") -> str:
    """One line for a model name that is nowhere: where edgecls looked, and a close name or else `otherwise`."""
    where = " or ".join(str(d) for d in search_dirs(workspace))
    return f"no {what} {name!r} in {where}{did_you_mean(name, known_models(workspace)) or otherwise}"


def find_onnx(model: PathLike, variant: str = "fp32", workspace: Optional[PathLike] = None) -> Path:
    """The .onnx file to load: a path as given, or variant `variant` of a model name (workspace, then zoo)."""
    ref = locate(model, workspace)
    if ref.file is not None:
        if not ref.is_onnx:
            raise EdgeclsError(f"{ref.file}: not an ONNX model file (.onnx)")
        return ref.file
    if variant not in LOADABLE:
        raise EdgeclsError(f"unknown variant {variant!r}; choose {', '.join(LOADABLE)}")
    folder = ref.folder
    for root in search_dirs(workspace):  # a variant exported into the workspace shadows the shipped one
        candidate = ModelFolder(folder.name, root / folder.name).variant_path(variant)
        if candidate.is_file():
            return candidate
    available = ", ".join(p.name for p in folder.variants().values())
    if available:
        hint = f" (available: {available})"
    elif folder.has_card():
        hint = f"; export it with `edgecls export {folder.name}{' --int8' if variant == 'int8' else ''}`"
    else:
        hint = ""
    where = " or ".join(str(root) for root in search_dirs(workspace))
    raise ModelNotFoundError(f"no {variant} ONNX model {folder.name!r} in {where}{hint}")

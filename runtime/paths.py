"""Where models live: the user's workspace (written) and the shipped zoo (read-only reference).

The rule, in one place:
- Writes go to the workspace: `--project DIR` (alias `--artifacts`) > $EDGECLS_ARTIFACTS > `./artifacts` of the
  current directory, except when that folder *is* the shipped zoo (running inside the edgecls checkout): then
  `./workspace`. Naming the shipped folder explicitly (`--project artifacts`) is the maintainer's way to
  regenerate shipped files.
- Reads look in the workspace first, then in the shipped zoo, so `Classifier("mnist")` works anywhere and a
  model the user re-exported shadows the shipped one.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Optional, Union

from .errors import EdgeclsError

ARTIFACTS_ENV = "EDGECLS_ARTIFACTS"
_REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DIR = _REPO_ROOT / "artifacts"  # models shipped with edgecls; user commands never write here
CHECKOUT_WORKSPACE = "workspace"  # the default workspace when ./artifacts is the shipped zoo

PathLike = Union[str, os.PathLike]


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def workspace_dir(explicit: Optional[PathLike] = None) -> Path:
    """Where this run writes models, exports, benchmarks and reports (see the module docstring)."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(ARTIFACTS_ENV):
        return Path(os.environ[ARTIFACTS_ENV]).expanduser()
    here = Path.cwd() / "artifacts"
    return Path.cwd() / CHECKOUT_WORKSPACE if _same(here, SHIPPED_DIR) else here


def artifacts_dir(explicit: Optional[PathLike] = None) -> Path:
    """Kept for callers that want one folder: the workspace."""
    return workspace_dir(explicit)


def shipped_dir() -> Optional[Path]:
    return SHIPPED_DIR if SHIPPED_DIR.is_dir() else None


def is_shipped(path: PathLike) -> bool:
    """True for a file or folder inside the shipped zoo (which user commands must not write)."""
    shipped = shipped_dir()
    if shipped is None:
        return False
    try:
        Path(path).resolve().relative_to(shipped.resolve())
        return True
    except (ValueError, OSError):
        return False


def search_dirs(explicit: Optional[PathLike] = None) -> list[Path]:
    """Folders to read models from, in order: the workspace, then the shipped zoo."""
    dirs = [workspace_dir(explicit)]
    shipped = shipped_dir()
    if shipped is not None and not any(_same(shipped, d) for d in dirs):
        dirs.append(shipped)
    return dirs


def model_dir(name: str, explicit: Optional[PathLike] = None) -> Path:
    """The folder holding model `name`'s card: the workspace's if it has one, else the shipped one; then a folder
    with only exported files; else the workspace's (where training would put it)."""
    roots = search_dirs(explicit)
    for found in (lambda f: (f / "metrics.json").is_file(), lambda f: any(f.glob("*.onnx"))):
        for root in roots:
            if found(root / name):
                return root / name
    return workspace_dir(explicit) / name


def known_models(explicit: Optional[PathLike] = None) -> list[str]:
    """Names of every model folder in the workspace and the shipped zoo."""
    names = set()
    for root in search_dirs(explicit):
        if root.is_dir():
            names.update(p.parent.name for p in root.glob("*/metrics.json"))
            names.update(p.parent.name for p in root.glob("*/*.onnx"))
    return sorted(names)


def did_you_mean(name: str, candidates: list[str]) -> str:
    """' (did you mean X?)' for a close model name, else ''."""
    close = difflib.get_close_matches(name, [c for c in candidates if c != name], n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def looks_like_path(model: Union[str, os.PathLike]) -> bool:
    text = os.fspath(model)
    return text.endswith((".onnx", ".keras")) or os.sep in text or (os.altsep or os.sep) in text


def resolve_model(model: Union[str, os.PathLike], variant: str = "fp32",
                  artifacts: Optional[PathLike] = None) -> Path:
    """A path to an .onnx file, or a model name looked up as <name>/<name>[.int8|.fp16].onnx in the workspace,
    then in the shipped zoo."""
    path = Path(model)
    if path.suffix == ".onnx" or path.is_file() or looks_like_path(model):
        if not path.is_file():
            what = "not a regular file" if os.path.exists(path) else "no such model file"
            raise EdgeclsError(f"{path}: {what}")
        return path
    suffix = {"fp32": ".onnx", "int8": ".int8.onnx", "fp16": ".fp16.onnx"}.get(variant)
    if suffix is None:
        raise EdgeclsError(f"unknown variant {variant!r}; choose fp32, int8 or fp16")
    for root in search_dirs(artifacts):
        candidate = root / str(model) / f"{model}{suffix}"
        if candidate.is_file():
            return candidate
    folder = model_dir(str(model), artifacts)
    available = sorted(p.name for p in folder.glob("*.onnx")) if folder.is_dir() else []
    where = " or ".join(str(root) for root in search_dirs(artifacts))
    if available:
        hint = f" (available: {', '.join(available)})"
    elif (folder / "metrics.json").is_file():
        hint = f"; export it with `edgecls export {model}`" + (" --int8" if variant == "int8" else "")
    else:
        hint = did_you_mean(str(model), known_models(artifacts)) or "; no such model (see `edgecls models`)"
    raise EdgeclsError(f"no {variant} ONNX model {str(model)!r} in {where}{hint}")

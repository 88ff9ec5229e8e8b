"""Find shipped models by name, so apps can say Classifier("mnist") as well as give a path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from .errors import EdgeclsError

ARTIFACTS_ENV = "EDGECLS_ARTIFACTS"
_REPO_ROOT = Path(__file__).resolve().parent.parent


def artifacts_dir(explicit: Optional[Union[str, os.PathLike]] = None) -> Path:
    """Trained models: explicit > $EDGECLS_ARTIFACTS > the source checkout's artifacts/ > ./artifacts."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(ARTIFACTS_ENV):
        return Path(os.environ[ARTIFACTS_ENV]).expanduser()
    shipped = _REPO_ROOT / "artifacts"
    return shipped if shipped.is_dir() else Path.cwd() / "artifacts"


def resolve_model(model: Union[str, os.PathLike], variant: str = "fp32",
                  artifacts: Optional[Union[str, os.PathLike]] = None) -> Path:
    """A path to an .onnx file, or a model name looked up as artifacts/<name>/<name>[.int8|.fp16].onnx."""
    path = Path(model)
    if path.suffix == ".onnx" or path.is_file():
        if not path.is_file():
            what = "not a regular file" if os.path.exists(path) else "no such model file"
            raise EdgeclsError(f"{path}: {what}")
        return path
    suffix = {"fp32": ".onnx", "int8": ".int8.onnx", "fp16": ".fp16.onnx"}.get(variant)
    if suffix is None:
        raise EdgeclsError(f"unknown variant {variant!r}; choose fp32, int8 or fp16")
    folder = artifacts_dir(artifacts) / str(model)
    candidate = folder / f"{model}{suffix}"
    if candidate.is_file():
        return candidate
    available = sorted(p.name for p in folder.glob("*.onnx")) if folder.is_dir() else []
    hint = f" (available: {', '.join(available)})" if available else f"; export it with `edgecls export {model}`"
    raise EdgeclsError(f"no {variant} ONNX model {str(model)!r} at {candidate}{hint}")

"""Keras model files: load one safely (safe_mode on), save one atomically, and checksum it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Optional

from .errors import ModelNotFoundError


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

"""Cache of decoded arrays so JPEG archives are decoded once per machine, not per run.

Stored as plain .npz (no pickle), keyed by the source file's name, size and mtime, and
written atomically so an interrupted run never leaves a half-written cache entry.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np


def fingerprint(path: Path) -> str:
    st = path.stat()
    return f"{path.name}-{st.st_size}-{st.st_mtime_ns}"


def cached_arrays(
    source: Path, tag: str, cache_root: Path, build: Callable[[], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Return build()'s arrays, from cache when the source file is unchanged."""
    entry = cache_root / f"{tag}-v1-{fingerprint(source)}.npz"
    if entry.is_file():
        try:
            with np.load(entry, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError):
            entry.unlink(missing_ok=True)  # corrupt cache entry: rebuild below
    arrays = build()
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_root, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, entry)
    except OSError:
        pass  # a read-only or full cache only costs speed
    return arrays

"""Where edgecls looks for data, caches and artifacts: explicit argument > environment > default."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from .runtime.paths import ARTIFACTS_ENV, artifacts_dir  # noqa: F401  (one definition, in the runtime)

PathLike = Union[str, os.PathLike]

DATA_ENV = "EDGECLS_DATA"
CACHE_ENV = "EDGECLS_CACHE"
OFFLINE_ENV = "EDGECLS_OFFLINE"


def data_dir(explicit: Optional[PathLike] = None) -> Path:
    """The directory holding the data set files (mnist.npz, cifar10.tar.gz, ...)."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return Path.home() / ".edgecls" / "datasets"


def cache_dir(explicit: Optional[PathLike] = None) -> Path:
    """Decoded-array cache (safe to delete). Defaults to ~/.cache/edgecls."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgecls"


def offline() -> bool:
    """True when downloads must not be attempted (EDGECLS_OFFLINE=1)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")

"""Where edgecls looks for data, caches and models: explicit argument > environment > default.

Relative paths in the environment are taken relative to the folder the process started in
(edgecls.runtime.environment), so a command or a test that changes directory still finds them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from .runtime.environment import absolute, cache_dir as _cache_dir, env_path
from .runtime.store import WORKSPACE_ENV, workspace_dir  # noqa: F401  (one definition, in the runtime's store)

PathLike = Union[str, os.PathLike]

DATA_ENV = "EDGECLS_DATA"
DEFAULT_SEED = 1337  # training, splits, samples: every seeded choice defaults to it
OFFLINE_ENV = "EDGECLS_OFFLINE"


def data_dir(explicit: Optional[PathLike] = None) -> Path:
    """The directory holding the data set files (mnist.npz, cifar10.tar.gz, ...)."""
    if explicit:
        return absolute(explicit)
    return env_path(DATA_ENV) or Path.home() / ".edgecls" / "datasets"


def cache_dir(explicit: Optional[PathLike] = None) -> Path:
    """Decoded data sets (safe to delete): the `datasets` folder of edgecls's one cache."""
    return Path(explicit).expanduser() if explicit else _cache_dir("datasets")


def offline() -> bool:
    """True when downloads must not be attempted (EDGECLS_OFFLINE=1)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")

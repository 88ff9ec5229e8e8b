"""The folders edgecls reads from the environment: the workspace, the cache.

A relative path in a variable is taken relative to the folder the process started in, not to wherever the
process has moved since: `EDGECLS_WORKSPACE=ws edgecls ...` means `./ws` of the shell that ran it, and a
library that changes directory later still finds the same folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional


def _start_dir() -> Path:
    try:
        return Path.cwd()
    except OSError:  # the folder was removed under the process
        return Path(os.sep)


START_DIR = _start_dir()  # the folder the process started in (imported early by every entry point)

CACHE_ENV = "EDGECLS_CACHE_DIR"
LEGACY_CACHE_ENV = "EDGECLS_CACHE"  # older name, still read


def env_path(*names: str) -> Optional[Path]:
    """The first of the variables `names` that is set, as a path (`~` expanded; relative to START_DIR)."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return absolute(value)
    return None


def absolute(path: "str | os.PathLike[str]") -> Path:
    """`path` with `~` expanded, relative to the folder the process started in."""
    return START_DIR / Path(path).expanduser()


def cache_dir(kind: str = "") -> Path:
    """edgecls's one cache folder (safe to delete; everything in it is rebuilt or re-measured on demand):
    $EDGECLS_CACHE_DIR, else $XDG_CACHE_HOME/edgecls, else ~/.cache/edgecls; `kind` names a sub-folder
    (datasets: decoded data sets, tuning: per-machine measurements, onnxruntime-web: the web runtime)."""
    root = env_path(CACHE_ENV, LEGACY_CACHE_ENV)
    if root is None:
        root = (env_path("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgecls"
    return root / kind if kind else root

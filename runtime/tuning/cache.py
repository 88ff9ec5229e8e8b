"""What edgecls measured on this machine, kept between runs: one small JSON file per key in the one cache dir
(`environment.cache_dir("tuning")`).

A key names everything the measurement depends on (model file checksums, the CPU and its flags, the
onnxruntime version, ...), so a file measured elsewhere or for another model is never used. Files are
written atomically; one that cannot be read or does not match its key counts as missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from .. import environment
from ..atomic import write_json_atomic


def cache_dir() -> Path:
    """The `tuning` folder of edgecls's cache (runtime/environment.py)."""
    return environment.cache_dir("tuning")


@lru_cache(maxsize=1)
def cpu_id() -> str:
    """CPU model name and its int8/bf16-relevant flags (the same name with different flags ranks differently)."""
    name, flags = "", ""
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16", "avx512_bf16")
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not name:
                    name = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = " ".join(f for f in wanted if f in value.split())
                if name and flags:
                    break
    except OSError:
        pass
    name = name or platform.processor() or platform.machine()
    return f"{name} [{flags}] x{os.cpu_count()}"


def onnxruntime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def file_sha256(path: Path) -> str:
    """The file's checksum, computed once per (path, size, mtime) in a process: a model is keyed by its
    content, and a server loading it again does not read it again."""
    st = os.stat(path)
    return _sha256(os.fspath(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def entry_path(key: dict[str, Any], prefix: str = "") -> Path:
    return cache_dir() / (prefix + hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32] + ".json")


def read_entry(key: dict[str, Any], prefix: str = "") -> Optional[dict[str, Any]]:
    """The cached entry for `key`, or None when missing, unreadable or written for another key."""
    try:
        entry = json.loads(entry_path(key, prefix).read_text())
        return entry if isinstance(entry, dict) and entry.get("key") == key else None
    except (OSError, ValueError):
        return None


def write_entry(key: dict[str, Any], body: dict[str, Any], prefix: str = "") -> None:
    try:
        write_json_atomic(entry_path(key, prefix),
                          {"key": key, **body, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    except OSError:
        pass  # a read-only cache dir costs a re-measurement next time, nothing else

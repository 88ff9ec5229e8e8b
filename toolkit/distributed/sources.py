"""SOURCE -> a Ray Dataset of images: local folders, globs and path listings, or storage URIs.

Local files are listed here on the driver, exactly as local `edgecls infer` lists them, and travel as
absolute paths (every node reads them itself: they must be on a shared file system). A URI folder or
prefix (`s3://bucket/photos/`, `gs://...`, `file:///mnt/nfs/...`) streams through
`ray.data.read_binary_files`, recursively. Problems with SOURCE itself raise EdgeclsError before any work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ..runtime.errors import EdgeclsError
from ..runtime.files import IMAGE_SUFFIXES, Skipped, iter_image_files
from .ray_import import require_ray

if TYPE_CHECKING:
    from ray.data import Dataset

LISTING_SUFFIXES = (".txt", ".lst")
NOT_UTF8 = "file name is not valid UTF-8; Ray Data's Arrow columns cannot carry it (use --engine local)"


@dataclass
class ImageSources:
    """What SOURCE named, checked and listed on the driver before the cluster is involved."""

    paths: list[str]  # absolute local paths and URIs of single files, each answered once
    uri_roots: list[str]  # URI folders/prefixes, listed and read by Ray Data
    skipped: list[Skipped] = field(default_factory=list)  # entries the local walk left out, with the reason

    @property
    def count(self) -> Optional[int]:
        """Number of files when known up front (for progress)."""
        return None if self.uri_roots else len(self.paths)


def is_uri(text: str) -> bool:
    head, sep, _ = text.partition("://")
    return bool(sep) and head.isidentifier()


def resolve_sources(sources: list[str], recursive: bool = False) -> ImageSources:
    """Folders, globs, .txt listings of paths or URIs, URI folders -> files; EdgeclsError if SOURCE is bad."""
    resolved = ImageSources([], [])
    for source in sources:
        if _is_listing(source):
            resolved.paths.extend(_read_listing(source))
        elif is_uri(source):
            if any(ch in source for ch in "*?["):
                resolved.paths.extend(_glob_uri(source))
            else:
                _check_uri(source)
                resolved.uri_roots.append(source)
        else:
            if not any(ch in source for ch in "*?[") and not os.path.exists(source):
                raise EdgeclsError(f"{source}: no such file or folder")
            found = 0
            for path in iter_image_files([source], recursive=recursive, on_skip=resolved.skipped.append):
                found += 1
                if _utf8(path):
                    resolved.paths.append(os.path.abspath(path))
                else:
                    resolved.skipped.append(Skipped(path, NOT_UTF8))
            if not found and not resolved.skipped:
                raise EdgeclsError(_nothing_found(source, recursive))
    return resolved


def image_dataset(sources: ImageSources, batch_size: int = 256) -> "Dataset":
    """A Ray Dataset with a `path` column (plus `bytes` for files Ray Data reads from URI folders).
    Needs a Ray session; EdgeclsError when a URI folder holds no images."""
    ray = require_ray()
    datasets = []
    if sources.paths:
        blocks = max(1, min(-(-len(sources.paths) // batch_size), 100_000))
        datasets.append(ray.data.from_items([{"path": p} for p in sources.paths], override_num_blocks=blocks))
    if sources.uri_roots:
        extensions = sorted(s.lstrip(".") for s in IMAGE_SUFFIXES)
        try:  # Ray Data lists the folders here, on the driver
            datasets.append(ray.data.read_binary_files(sources.uri_roots, include_paths=True,
                                                       file_extensions=extensions,
                                                       # I/O, not compute: reserving a CPU per read task
                                                       # would deadlock once the actors hold every core.
                                                       num_cpus=0))
        except (OSError, ValueError) as exc:
            where = " ".join(sources.uri_roots)
            if "No input files" in str(exc):
                raise EdgeclsError(f"no images found under {where}") from None
            raise EdgeclsError(f"{where}: cannot list ({str(exc).splitlines()[0]})") from None
    return datasets[0] if len(datasets) == 1 else datasets[0].union(*datasets[1:])


def _utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # a surrogate-escaped byte from the walk (PEP 383)
        return False
    return True


def _is_listing(source: str) -> bool:
    return source.lower().endswith(LISTING_SUFFIXES) and not is_uri(source)


def _read_listing(listing: str) -> list[str]:
    """One path or URI per line; '#' comments and blank lines skipped; relative paths are relative to the
    listing's folder. Listed files are taken as they are: a missing one becomes an error row."""
    base = Path(listing).resolve().parent
    try:
        lines = Path(listing).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgeclsError(f"{listing}: cannot read the listing ({exc})") from None
    paths = []
    for line in lines:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        paths.append(item if is_uri(item) else os.path.abspath(os.path.join(base, os.path.expanduser(item))))
    if not paths:
        raise EdgeclsError(f"{listing}: the listing names no files")
    return paths


def _nothing_found(source: str, recursive: bool) -> str:
    if os.path.isdir(source) and not os.access(source, os.R_OK | os.X_OK):
        return f"{source}: folder not readable (permission denied)"
    return f"no images found in {source}" + ("" if recursive else " (try --recursive)")


def _check_uri(uri: str) -> None:
    """Fail before the job starts when the URI's file system or folder cannot be reached."""
    import pyarrow.fs

    try:
        fs, inner = pyarrow.fs.FileSystem.from_uri(uri)
        info = fs.get_file_info(inner)
    except (OSError, ValueError) as exc:
        raise EdgeclsError(f"{uri}: cannot open ({exc})") from None
    if info.type == pyarrow.fs.FileType.NotFound:
        raise EdgeclsError(f"{uri}: no such file or folder")


def _glob_uri(pattern: str) -> list[str]:
    """Expand a URI glob with fsspec (pyarrow file systems do not glob)."""
    try:
        import fsspec
    except ImportError:
        raise EdgeclsError(f"{pattern}: URI globs need fsspec (pip install fsspec)") from None
    try:
        fs, _ = fsspec.core.url_to_fs(pattern)
        protocol = pattern.split("://", 1)[0]
        matches = [m if is_uri(m) else f"{protocol}://{m.lstrip('/') if protocol != 'file' else m}"
                   for m in sorted(fs.glob(pattern))
                   if os.path.splitext(m)[1].lower() in IMAGE_SUFFIXES]
    except (OSError, ValueError, ImportError) as exc:
        raise EdgeclsError(f"{pattern}: cannot list ({exc})") from None
    if not matches:
        raise EdgeclsError(f"no images match {pattern}")
    return matches

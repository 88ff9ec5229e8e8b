"""Lazy discovery of image files: folders, single files and glob patterns, never listed all at once."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Iterable, Iterator

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


def _walk(folder: str, recursive: bool) -> Iterator[str]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    subdirs = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES:
            yield entry.path
        elif recursive and entry.is_dir(follow_symlinks=False):
            subdirs.append(entry.path)
    for sub in subdirs:
        yield from _walk(sub, recursive)


def iter_image_files(inputs: Iterable[str | os.PathLike], recursive: bool = False) -> Iterator[str]:
    """Yield image paths in a stable order. Files named explicitly are yielded whatever their extension
    (so a mislabelled file gets a clear error instead of silently vanishing); missing paths are yielded
    too, and fail with 'no such file' downstream."""
    for item in inputs:
        text = str(item)
        if os.path.isdir(text):
            yield from _walk(text, recursive)
        elif any(ch in text for ch in "*?[") and not os.path.exists(text):
            for match in sorted(glob.iglob(text, recursive=recursive)):
                if os.path.isdir(match):
                    yield from _walk(match, recursive)
                elif os.path.splitext(match)[1].lower() in IMAGE_SUFFIXES:
                    yield match
        else:
            yield str(Path(text))

"""Lazy discovery of image files: folders, single files and glob patterns, never listed all at once.

Walks are hostile-input safe: a symlink loop, a dangling symlink, a FIFO, a device or an unreadable
folder never stops or blocks a run. Each such entry is reported once (`on_skip`) with the reason, so the
caller can count it and say so in its exit code. Only regular files are ever yielded from a folder.
"""

from __future__ import annotations

import errno
import glob
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, Optional, Union

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry a walk did not yield, and why (dangling symlink, symlink loop, FIFO, unreadable folder...)."""

    path: str
    reason: str


OnSkip = Callable[[Skipped], None]


def file_kind(mode: int) -> str:
    """A human name for a non-regular file type, for messages."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


def _stat_problem(path: str, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR) and os.path.islink(path):
        return f"dangling symlink (-> {os.readlink(path)})"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return f"unreadable: {exc.strerror or exc}"


def open_regular_file(path: Union[str, os.PathLike]) -> BinaryIO:
    """Open a file for reading only if it is a regular file. O_NONBLOCK makes opening a FIFO return at once
    (instead of waiting forever for a writer); fstat then refuses it, and devices and sockets likewise.
    Raises OSError (FileNotFoundError, PermissionError, IsADirectoryError, ...) with a clear strerror."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file (a directory)", str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"not a regular file ({file_kind(mode)})", str(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(path: Union[str, os.PathLike], limit: int) -> bytes:
    """The whole content of a regular file, in as few system calls as possible (open, fstat, read, close),
    with `open_regular_file`'s guarantees: a FIFO never blocks, devices and sockets are refused.

    Raises OSError as open_regular_file does, and ValueError (message: the size) when the file is empty or
    holds more than `limit` bytes, before any of it is read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file (a directory)", str(path))
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"not a regular file ({file_kind(st.st_mode)})", str(path))
        if st.st_size == 0 or st.st_size > limit:
            raise ValueError(st.st_size)
        # O_NONBLOCK does not apply to regular files: reads return what is there, up to end of file.
        data = os.read(fd, st.st_size + 1)
        if len(data) > st.st_size:  # the file grew since fstat: read on to its end (or past the limit)
            parts = [data]
            while parts[-1] and sum(map(len, parts)) <= limit:
                parts.append(os.read(fd, 1 << 20))
            data = b"".join(parts)
        if len(data) > limit:
            raise ValueError(len(data))
        return data
    finally:
        os.close(fd)


class _Walker:
    """One walk over the inputs; remembers visited folders (device, inode) so symlinked folders that loop
    back are entered once, never forever."""

    def __init__(self, recursive: bool, on_skip: OnSkip) -> None:
        self.recursive = recursive
        self.on_skip = on_skip
        self.visited: set[tuple[int, int]] = set()

    def skip(self, path: str, reason: str) -> None:
        self.on_skip(Skipped(path, reason))

    def folder(self, folder: str) -> Iterator[str]:
        try:
            st = os.stat(folder)
        except OSError as exc:
            self.skip(folder, _stat_problem(folder, exc))
            return
        key = (st.st_dev, st.st_ino)
        if key in self.visited:
            self.skip(folder, "symlink loop (folder already visited)")
            return
        self.visited.add(key)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self.skip(folder, f"folder not readable ({_stat_problem(folder, exc)})")
            return
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            is_image = os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES
            # The folder listing already says what each entry is (no system call): plain files and folders
            # need no stat; symlinks and anything else (FIFO, device, socket) are looked at closely.
            if not entry.is_symlink():
                if entry.is_file(follow_symlinks=False):
                    if is_image:
                        yield entry.path
                    continue
                if entry.is_dir(follow_symlinks=False):
                    self.note_dir(entry.path, subdirs)
                    continue
            try:
                mode = entry.stat(follow_symlinks=True).st_mode
            except OSError as exc:  # dangling symlink, symlink loop, vanished, no permission
                if is_image or self.recursive:
                    self.skip(entry.path, _stat_problem(entry.path, exc))
                continue
            if stat.S_ISDIR(mode):
                self.note_dir(entry.path, subdirs)
            elif not is_image:
                continue  # not an image name: not an input
            elif stat.S_ISREG(mode):
                yield entry.path
            else:
                self.skip(entry.path, f"not a regular file ({file_kind(mode)})")
        for sub in subdirs:
            yield from self.folder(sub)

    def note_dir(self, path: str, subdirs: list[str]) -> None:
        if self.recursive:
            subdirs.append(path)

    def named(self, text: str) -> Iterator[str]:
        """A path given explicitly: yielded whatever its extension (a mislabelled file gets a clear error
        later instead of vanishing); a missing one is yielded too and fails with 'no such file'."""
        try:
            mode = os.stat(text).st_mode
        except FileNotFoundError:
            if os.path.islink(text):
                self.skip(text, _stat_problem(text, FileNotFoundError(errno.ENOENT, "")))
            else:
                yield str(Path(text))
            return
        except OSError as exc:
            self.skip(text, _stat_problem(text, exc))
            return
        if stat.S_ISDIR(mode):
            yield from self.folder(text)
        elif stat.S_ISREG(mode):
            yield str(Path(text))
        else:
            self.skip(text, f"not a regular file ({file_kind(mode)})")

    def pattern(self, text: str) -> Iterator[str]:
        for match in sorted(glob.iglob(text, recursive=self.recursive)):
            try:
                mode = os.stat(match).st_mode
            except OSError as exc:
                self.skip(match, _stat_problem(match, exc))
                continue
            if stat.S_ISDIR(mode):
                yield from self.folder(match)
            elif os.path.splitext(match)[1].lower() not in IMAGE_SUFFIXES:
                continue
            elif stat.S_ISREG(mode):
                yield match
            else:
                self.skip(match, f"not a regular file ({file_kind(mode)})")


def _ignore(_: Skipped) -> None:
    pass


def iter_image_files(inputs: Iterable[Union[str, os.PathLike]], recursive: bool = False,
                     on_skip: Optional[OnSkip] = None) -> Iterator[str]:
    """Yield image paths in a stable order; call `on_skip` for every entry left out for a reason
    (dangling symlink, symlink loop, FIFO/device/socket, unreadable folder). Files without an image
    suffix inside folders are not inputs and are passed over silently, as are hidden entries."""
    walker = _Walker(recursive, on_skip or _ignore)
    for item in inputs:
        text = os.fspath(item)
        if any(ch in text for ch in "*?[") and not os.path.lexists(text):
            yield from walker.pattern(text)
        else:
            yield from walker.named(text)

"""File discovery for `edgecls infer`: folders, globs, explicit files, hidden entries, order and laziness.

Targets runtime/files.py as hardened by issue 12 (symlinked folders followed once, skips reported)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgecls.runtime.files import IMAGE_SUFFIXES, Skipped, iter_image_files


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """root/{b.png, a.JPG, c.txt, .hidden.png, .secret/x.png, sub/{z.webp, deep/y.tif}, weird.TIFF}"""
    root = tmp_path / "root"
    (root / "sub" / "deep").mkdir(parents=True)
    (root / ".secret").mkdir()
    for rel in ("b.png", "a.JPG", "c.txt", ".hidden.png", ".secret/x.png", "sub/z.webp", "sub/deep/y.tif",
                "weird.TIFF"):
        (root / rel).write_bytes(b"x")
    return root



def test_suffixes():
    assert IMAGE_SUFFIXES == {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def test_folder_lists_images_sorted_skipping_hidden_and_others(tree):
    found = list(iter_image_files([tree]))
    assert found == [str(tree / "a.JPG"), str(tree / "b.png"), str(tree / "weird.TIFF")]


def test_recursive_descends_after_the_folders_own_files(tree):
    found = [os.path.relpath(p, tree) for p in iter_image_files([str(tree)], recursive=True)]
    assert found == ["a.JPG", "b.png", "weird.TIFF", "sub/z.webp", "sub/deep/y.tif"]


def test_recursive_follows_a_symlinked_folder_once_and_reports_the_loop(tree, tmp_path):
    # Issue 12 (hardening) changed this on purpose: a symlinked folder is now followed (once, by device and
    # inode), and a link back into the walk is reported through on_skip instead of being silently ignored.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.png").write_bytes(b"x")
    (tree / "link").symlink_to(outside, target_is_directory=True)
    (tree / "loop").symlink_to(tree, target_is_directory=True)  # would recurse forever
    skipped = []
    found = [os.path.relpath(p, tree) for p in iter_image_files([tree], recursive=True, on_skip=skipped.append)]
    assert found == ["a.JPG", "b.png", "weird.TIFF", "link/o.png", "sub/z.webp", "sub/deep/y.tif"]
    assert skipped == [Skipped(str(tree / "loop"), "symlink loop (folder already visited)")]


def test_explicit_files_are_kept_whatever_their_suffix(tree):
    """A mislabelled or missing file must reach the decoder and fail with a reason, not vanish."""
    missing = tree / "missing.png"
    found = list(iter_image_files([tree / "c.txt", missing, tree / ".hidden.png"]))
    assert found == [str(tree / "c.txt"), str(missing), str(tree / ".hidden.png")]


def test_inputs_keep_their_order(tree):
    found = list(iter_image_files([tree / "b.png", tree / "sub", tree / "a.JPG"]))
    assert found == [str(tree / "b.png"), str(tree / "sub" / "z.webp"), str(tree / "a.JPG")]


def test_glob_matches_images_only_sorted(tree):
    found = list(iter_image_files([str(tree / "*")]))
    assert found == [str(tree / "a.JPG"), str(tree / "b.png"), str(tree / "sub" / "z.webp"), str(tree / "weird.TIFF")]


def test_glob_of_folders_walks_them(tree):
    assert list(iter_image_files([str(tree / "su?")])) == [str(tree / "sub" / "z.webp")]
    assert list(iter_image_files([str(tree / "su?")], recursive=True)) == [
        str(tree / "sub" / "z.webp"), str(tree / "sub" / "deep" / "y.tif")]


def test_recursive_glob(tree):
    found = list(iter_image_files([str(tree / "**" / "*.tif")], recursive=True))
    assert found == [str(tree / "sub" / "deep" / "y.tif")]
    assert list(iter_image_files([str(tree / "**" / "*.tif")])) == []  # ** is one level without --recursive


def test_a_file_whose_name_looks_like_a_glob_is_taken_literally(tmp_path):
    odd = tmp_path / "photo[1].png"
    odd.write_bytes(b"x")
    (tmp_path / "photo1.png").write_bytes(b"x")
    assert list(iter_image_files([odd])) == [str(odd)]


def test_glob_matching_nothing_yields_nothing(tmp_path):
    assert list(iter_image_files([str(tmp_path / "*.png")])) == []


def test_unreadable_folder_yields_nothing(tmp_path, monkeypatch):
    import edgecls.runtime.files as files

    def denied(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(files.os, "scandir", denied)
    (tmp_path / "a.png").write_bytes(b"x")
    assert list(iter_image_files([tmp_path])) == []


def test_discovery_is_lazy(tmp_path):
    """The first file comes before later inputs are even looked at."""
    (tmp_path / "a.png").write_bytes(b"x")

    def inputs():
        yield tmp_path
        raise AssertionError("second input read before the first file was used")

    assert next(iter_image_files(inputs())) == str(tmp_path / "a.png")


def test_read_regular_file_reads_whole_files_and_refuses_the_rest(tmp_path):
    import errno

    from edgecls.runtime.files import read_regular_file

    data = bytes(range(256)) * 40
    (tmp_path / "a.png").write_bytes(data)
    assert read_regular_file(tmp_path / "a.png", limit=len(data)) == data
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError) as empty:
        read_regular_file(tmp_path / "empty.png", limit=100)
    assert empty.value.args == (0,)
    with pytest.raises(ValueError) as big:  # refused from its size, before it is read
        read_regular_file(tmp_path / "a.png", limit=len(data) - 1)
    assert big.value.args == (len(data),)
    with pytest.raises(IsADirectoryError):
        read_regular_file(tmp_path, limit=100)
    os.mkfifo(tmp_path / "pipe.png")  # no writer: must be refused at once, never block
    with pytest.raises(OSError) as fifo:
        read_regular_file(tmp_path / "pipe.png", limit=100)
    assert fifo.value.errno == errno.EINVAL and "FIFO" in fifo.value.strerror


def test_folder_walk_tells_files_from_links_fifos_and_folders(tmp_path):
    """Plain entries are typed from the listing itself; symlinks and special files still get a close look."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "a.png").write_bytes(b"x")
    (root / "sub" / "b.png").write_bytes(b"x")
    (root / "link.png").symlink_to(root / "a.png")
    (root / "dangling.png").symlink_to(root / "missing.png")
    (root / "dirlink").symlink_to(root / "sub")
    os.mkfifo(root / "pipe.png")
    skipped: list[Skipped] = []
    found = list(iter_image_files([root], on_skip=skipped.append))
    assert found == [str(root / "a.png"), str(root / "link.png")]
    assert {(Path(s.path).name, s.reason.split(" (")[0]) for s in skipped} == {
        ("dangling.png", "dangling symlink"), ("pipe.png", "not a regular file")}
    found = list(iter_image_files([root], recursive=True, on_skip=lambda s: None))
    assert found == [str(root / "a.png"), str(root / "link.png"), str(root / "dirlink" / "b.png")]

"""What `edgecls export --web/--mobile` does after (or instead of) the ONNX export: run the package rows of the
format table (`formats.FORMATS`: ort, web) on the written .onnx files. Works from files on disk only, so it
does not depend on how the export itself ran."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from ...runtime.errors import EdgeclsError


def exported_model(target: str, workspace: Optional[Union[str, os.PathLike]] = None,
                   out: Optional[Union[str, os.PathLike]] = None) -> Optional[Path]:
    """The fp32 .onnx an earlier `edgecls export TARGET` wrote (in the workspace, else the shipped one), if any
    (model names only: a .keras path is always exported again)."""
    from ...runtime.store import ModelFolder, find_onnx, looks_like_path

    if looks_like_path(target):
        return None
    if out:
        path = ModelFolder(target, Path(out)).variant_path("fp32")
        return path if path.is_file() else None
    try:
        return find_onnx(target, "fp32", workspace)
    except EdgeclsError:
        return None


def package(fp32_model: Path, requests: dict) -> dict[str, dict]:
    """{format name: its summary} for each asked package format ({name: formats.PackageOptions})."""
    from ..formats import FORMATS, PACKAGE_FORMATS

    unknown = [name for name in requests if name not in PACKAGE_FORMATS]
    if unknown:
        raise EdgeclsError(f"unknown package format(s) {unknown}; choose from {', '.join(PACKAGE_FORMATS)}")
    return {name: FORMATS[name].builder(Path(fp32_model), options) for name, options in requests.items()}

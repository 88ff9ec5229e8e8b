"""What `edgecls export --web/--mobile` does after (or instead of) the ONNX export: package the written
.onnx files. Works from files on disk only, so it does not depend on how the export itself ran."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Union

from ...runtime.errors import EdgeclsError
from ...runtime.store import locate
from .bundle import build_web_bundle, pick_variant
from .mobile import export_mobile


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


def package(fp32_model: Path, web_dir: Optional[Path], web_variant: str, mobile_dir: Optional[Path],
            log: Callable[[str], None] = lambda m: None, web_format: str = "ort") -> dict:
    """Write the web bundle and/or the mobile files for an exported model; returns their summaries."""
    fp32_model = Path(fp32_model)
    done: dict = {}
    if web_dir is not None:
        done["web"] = build_web_bundle(pick_variant(fp32_model, web_variant), web_dir, log=log,
                                       model_format=web_format).summary()
    if mobile_dir is not None:
        folder = locate(fp32_model).folder
        models = [p for v, p in folder.variants().items() if v in ("fp32", "int8")]
        done["mobile"] = export_mobile(models, mobile_dir, log=log).summary()
    return done

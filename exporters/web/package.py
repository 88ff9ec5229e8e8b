"""What `edgecls export --web/--mobile` does after (or instead of) the ONNX export: package the written
.onnx files. Works from files on disk only, so it does not depend on how the export itself ran."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Union

from .bundle import build_web_bundle, pick_variant
from .mobile import export_mobile


def exported_model(target: str, artifacts: Optional[Union[str, os.PathLike]] = None,
                   out: Optional[Union[str, os.PathLike]] = None) -> Optional[Path]:
    """The fp32 .onnx an earlier `edgecls export TARGET` wrote (in the workspace, else the shipped one), if any
    (zoo names only: a .keras path is always exported again)."""
    from ...runtime.paths import search_dirs

    if target.endswith(".keras") or Path(target).is_file():
        return None
    folders = [Path(out)] if out else [root / target for root in search_dirs(artifacts)]  # workspace, then shipped
    return next((f / f"{target}.onnx" for f in folders if (f / f"{target}.onnx").is_file()), None)


def package(fp32_model: Path, web_dir: Optional[Path], web_variant: str, mobile_dir: Optional[Path],
            log: Callable[[str], None] = lambda m: None, web_format: str = "ort") -> dict:
    """Write the web bundle and/or the mobile files for an exported model; returns their summaries."""
    fp32_model = Path(fp32_model)
    done: dict = {}
    if web_dir is not None:
        done["web"] = build_web_bundle(pick_variant(fp32_model, web_variant), web_dir, log=log,
                                       model_format=web_format).summary()
    if mobile_dir is not None:
        stem = fp32_model.name[: -len(".onnx")]
        models = [fp32_model] + [p for p in [fp32_model.with_name(f"{stem}.int8.onnx")] if p.is_file()]
        done["mobile"] = export_mobile(models, mobile_dir, log=log).summary()
    return done

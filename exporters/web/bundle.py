"""`edgecls export NAME --web`: a self-contained static folder that classifies in the browser.

index.html + app.js (the page), edgecls.js + preprocess.js (the model's declared preprocessing, ported
from edgecls.runtime.transforms and checked against it in Chromium by tests/test_web.py), model.json
(labels, input spec, preprocessing and unsure rule: onnxruntime-web does not expose ONNX metadata), the
model itself and onnxruntime-web's WASM runtime in ort/. Serve it from any static host or open it from a
local web server; nothing is fetched from elsewhere."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Optional

from ...runtime.errors import EdgeclsError
from ...runtime.metadata import ModelInfo, read_info
from ...runtime.store import locate
from ...runtime.variant_policy import choose_variant
from ...runtime.variants import VARIANTS
from ..errors import ExportError
from .operators import check_operators
from .ort_format import convert_checked, tolerance
from .runtime_files import FILES, NOTICE, VERSION, ensure_runtime

PAGE_FILES = ("index.html", "app.js", "edgecls.js", "preprocess.js")
WEB_VARIANTS = ("auto", "fp32", "int8")  # what onnxruntime-web runs well in a page (fp16 is for GPUs)

# The steps and parameters static/preprocess.js implements. tests/test_web.py checks this against the Python
# registry (edgecls.runtime.transforms.TRANSFORMS), so a step added or changed there fails CI until it is ported.
PORTED_STEPS: dict[str, frozenset[str]] = {
    "polarity": frozenset({"background"}),
    "levels": frozenset({"floor", "noise"}),
    "crop_to_content": frozenset({"threshold", "margin"}),
    "measure": frozenset({"statistic"}),
    "fit": frozenset({"size", "center", "fill"}),
    "resize": frozenset({"mode", "fill"}),
}


@dataclass
class WebBundle:
    folder: Path
    model_file: str
    variant: str
    model_bytes: int
    total_bytes: int
    files: dict[str, int] = field(default_factory=dict)  # relative path -> bytes

    def summary(self) -> dict:
        return {"folder": str(self.folder), "model_file": self.model_file, "variant": self.variant,
                "model_bytes": self.model_bytes, "total_bytes": self.total_bytes,
                "onnxruntime_web": VERSION, "files": self.files}


def pick_variant(fp32_path: Path, variant: str = "auto") -> Path:
    """The model to ship, by the runtime's one variant policy (edgecls.runtime.variant_policy): auto is the
    variant `edgecls infer`, `serve` and `Classifier` run for this model on this machine (a variant the exporter
    wrote has passed its gate), so the page gives their answers; or the variant asked for (fp32 or int8)."""
    if variant not in WEB_VARIANTS:
        raise ExportError(f"unknown web variant {variant!r}; choose {', '.join(WEB_VARIANTS)}")
    folder = locate(Path(fp32_path)).folder.directory.resolve()  # a path, never read as a model name
    try:
        return choose_variant(folder, variant, device="cpu").path
    except EdgeclsError as exc:
        raise ExportError(f"{exc} (export it first, e.g. with --int8)") from None


def model_json(info: ModelInfo, model_file: str) -> dict:
    """What the page needs to know about the model (the ONNX metadata, read once here)."""
    return {"format_version": 1, "name": info.name, "variant": info.variant, "model_file": model_file,
            "labels": list(info.labels), "input": info.input_spec.to_dict(),
            "preprocess": list(info.preprocess or []),  # none: stretched by Pillow's resize, as the runtime does
            "unsure": info.unsure or None, "validation": info.validation, "onnxruntime_web": VERSION}


def build_web_bundle(model: Path, out_dir: Path, log: Callable[[str], None] = lambda m: None,
                     runtime_dir: Optional[Path] = None, model_format: str = "ort") -> WebBundle:
    """Write the bundle for one exported .onnx model into `out_dir` (replaced as a whole, atomically).

    model_format "ort" (default): ship the model converted to ORT format, pre-optimised, so the page creates its
    session faster (measured, see README); validated against the .onnx before it is written. "onnx": as exported."""
    if model_format not in ("onnx", "ort"):
        raise ExportError(f"unknown web model format {model_format!r}; choose onnx or ort")
    model = Path(model)
    if not model.is_file():
        raise ExportError(f"{model}: no such model file")
    check_operators(model, f"onnxruntime-web {VERSION}")
    info = read_info(model)
    from ...runtime.transforms import Pipeline

    for step in Pipeline.parse(info.preprocess or None, str(model)).to_list():  # the page runs exactly these
        if step["op"] not in PORTED_STEPS or set(step) - {"op"} - PORTED_STEPS[step["op"]]:
            raise ExportError(f"{model}: preprocessing step {step} has no JavaScript port yet; the web page cannot "
                              "reproduce it")
    runtime = runtime_dir or ensure_runtime(log=log)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        static = resources.files(__package__) / "static"
        for name in PAGE_FILES:
            (staging / name).write_bytes((static / name).read_bytes())
        shipped = model.name
        if model_format == "ort":
            shipped = _ort_copy(model, staging, info, log)
        else:
            shutil.copyfile(model, staging / shipped)
        (staging / "model.json").write_text(json.dumps(model_json(info, shipped), indent=1) + "\n")
        (staging / "ort").mkdir()
        for name in (*FILES, NOTICE):
            shutil.copyfile(Path(runtime) / name, staging / "ort" / name)
        staging.chmod(0o755)
        old = out_dir.with_name(f".{out_dir.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if out_dir.exists():
            out_dir.rename(old)
        staging.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files = {str(p.relative_to(out_dir)): p.stat().st_size for p in sorted(out_dir.rglob("*")) if p.is_file()}
    return WebBundle(out_dir, shipped, info.variant, files[shipped], sum(files.values()), files)


def _ort_copy(model: Path, staging: Path, info: ModelInfo, log: Callable[[str], None]) -> str:
    """Convert to ORT format into the staging folder and check it computes what the .onnx does."""
    name = model.name[: -len(".onnx")] + VARIANTS["ort"].suffix
    limit = tolerance(info.variant)
    check = convert_checked(model, staging / name, info.input_spec.shape, limit)
    log(f"{name}: max |diff| vs {model.name} {check['max_abs_diff']:.1e} on {check['samples']} inputs")
    return name

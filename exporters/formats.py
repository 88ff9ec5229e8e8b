"""The format table: every output `edgecls export` can make, in one place (the Ultralytics `export_formats()` idea).

Each row names its runtime variant (the file name it takes: `edgecls.runtime.variants`), how it is built, the
gate family that judges it, the options it accepts and where it is worth running. Two stages:

- **variant**: a graph built in memory from the fp32 graph and validated against the reference (the Keras model,
  or an fp32 .onnx for `edgecls quantize`) before anything is written;
- **package**: made from the written .onnx files, each output checked against the file it came from.

The CLI flags, `edgecls exports`, `edgecls validate`, the benchmark and the packaging read this table; adding
a format is one row here (plus its runtime variant row when it takes a new file name).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ..runtime.errors import EdgeclsError
from ..runtime.variants import VARIANTS, Variant
from .builders import BuildInputs, Candidate, build_dynamic_int8, build_fp16, build_fp32, build_static_int8
from .errors import ExportError
from .gates import GateFailure
from .quantize import DYNAMIC_OPS, STATIC_OPS

INT8_GATE_OPTIONS = ("quant", "max_int8_drop", "min_int8_agreement", "max_int8_error")
CALIBRATION_OPTIONS = ("calib_data", "calib_size", "calib_method")


@dataclass(frozen=True)
class Format:
    """One row of the table."""

    name: str  # the runtime variant it is written as (VARIANTS[name])
    stage: str  # variant | package
    gate: str  # variant: the gate family judging it (fp32 | fp16 | int8); package: "source" (its .onnx)
    builder: Callable[..., Any]  # variant: BuildInputs -> Candidate; package: (fp32 .onnx, PackageOptions) -> dict
    options: tuple[str, ...]  # the export options it reads (API / CLI names)
    devices: tuple[str, ...]  # where it is worth running and benchmarking
    quantizes: tuple[str, ...] = ()  # op types whose weights it stores in int8 (the size rule)
    fallback: str = ""  # tried in its place when it fails its gates (int8 auto mode)

    @property
    def variant(self) -> Variant:
        return VARIANTS[self.name]

    @property
    def summary(self) -> str:
        return self.variant.summary


def _package_ort(fp32_model: Path, options: "PackageOptions") -> dict:
    from ..runtime.store import locate
    from .web.mobile import export_mobile

    models = [p for v, p in locate(fp32_model).folder.variants().items() if v in ("fp32", "int8")]
    return export_mobile(models, options.folder, log=options.log).summary()


def _package_web(fp32_model: Path, options: "PackageOptions") -> dict:
    from .web.bundle import build_web_bundle, pick_variant

    model = pick_variant(fp32_model, options.web_variant)
    return build_web_bundle(model, options.folder, log=options.log, model_format=options.web_format).summary()


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("fp32", "variant", "fp32", build_fp32, ("opset", "image_size", "head", "max_diff", "min_agreement"),
           ("cpu", "cuda")),
    Format("fp16", "variant", "fp16", build_fp16, (), ("cuda",)),
    Format("int8", "variant", "int8", build_static_int8, INT8_GATE_OPTIONS + CALIBRATION_OPTIONS, ("cpu", "cuda"),
           STATIC_OPS, fallback="int8-dynamic"),
    Format("int8-dynamic", "variant", "int8", build_dynamic_int8, INT8_GATE_OPTIONS, ("cpu",), DYNAMIC_OPS),
    Format("ort", "package", "source", _package_ort, ("mobile_dir",), ("cpu",)),
    Format("web", "package", "source", _package_web, ("web_dir", "web_variant", "web_format"), ("cpu",)),
)}
VARIANT_FORMATS = tuple(name for name, f in FORMATS.items() if f.stage == "variant")
PACKAGE_FORMATS = tuple(name for name, f in FORMATS.items() if f.stage == "package")


@dataclass(frozen=True)
class PackageOptions:
    folder: Optional[Path] = None  # where the package goes (None: the model folder's mobile/ or web/)
    web_variant: str = "auto"
    web_format: str = "ort"
    log: Callable[[str], None] = lambda message: None


def get(name: str) -> Format:
    """The row of `name`; a clear error naming the choices for an unknown one."""
    try:
        return FORMATS[name]
    except KeyError:
        raise EdgeclsError(f"unknown format {name!r}; choose from {', '.join(FORMATS)}") from None


def gate_of(variant: str) -> str:
    """The gate family that judges a variant file (read from its metadata) of any format."""
    return get(variant).gate


def int8_format(mode: str) -> str:
    """The int8 row a quantization mode asks for: dynamic -> int8-dynamic; static and auto -> int8 (auto falls
    back to the row's fallback)."""
    return "int8-dynamic" if mode == "dynamic" else "int8"


def runs_on(variant: str, devices: tuple[str, ...]) -> bool:
    """Whether a variant is worth running on any of `devices` (fp16 only where there is a GPU)."""
    return bool(set(get(variant).devices) & set(devices))


def accepting(option: str) -> tuple[str, ...]:
    """The formats that read an export option."""
    return tuple(name for name, f in FORMATS.items() if option in f.options)


def build_variants(names: tuple[str, ...], inputs: BuildInputs) -> list[Candidate]:
    """Each asked variant format, in the order asked, built by its row. A variant that cannot be built becomes a
    failed candidate, never an exception, so it never blocks fp32."""
    out = []
    for name in names:
        row = get(name)
        try:
            out.append(row.builder(inputs))
        except ExportError:
            raise
        except Exception as exc:  # noqa: BLE001 - converter/quantizer internals raise anything
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            out.append(Candidate(name, row.gate, None,
                                 failures=[GateFailure("build", f"could not be built: {type(exc).__name__}: {text}")]))
    return out

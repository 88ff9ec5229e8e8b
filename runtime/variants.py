"""The variant table: every kind of file an exported model can have, and the file name each one takes.

A model named `mnist` keeps its variants side by side in one folder (`mnist.onnx`, `mnist.int8.onnx`, ...),
and the ONNX-format packagings in sub-folders (`mobile/mnist.ort`, `web/`). Every module that names, finds or
writes a variant file reads it here; the exporters' format table adds how each one is built and gated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union


@dataclass(frozen=True)
class Variant:
    """One variant: its name, the suffix its file takes after the model name, and what it is."""

    name: str
    suffix: str
    summary: str
    slot: str = ""  # the variant whose file it is written as (dynamic int8 takes the int8 file); "" = its own
    folder: str = ""  # sub-folder of the model folder it lives in ("" = the model folder itself)
    loadable: bool = True  # an .onnx file the runtime loads by variant name

    @property
    def file_variant(self) -> str:
        """The variant name whose file this one is written as."""
        return self.slot or self.name


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("fp32", ".onnx", "float32 graph, the reference every other variant is validated against"),
    Variant("fp16", ".fp16.onnx", "float16 weights and compute, float32 inputs and outputs (for GPUs)"),
    Variant("int8", ".int8.onnx", "static int8 (QDQ, per-channel weights), calibrated on training images"),
    Variant("int8-dynamic", ".int8.onnx", "dynamic int8 of the MatMul/Gemm weights (no calibration)", slot="int8"),
    Variant("ort", ".ort", "ONNX Runtime format of each .onnx variant, for minimal mobile builds", folder="mobile",
            loadable=False),
    Variant("web", "", "static web page bundle with onnxruntime-web", folder="web", loadable=False),
)}

LOADABLE: tuple[str, ...] = tuple(sorted({v.file_variant for v in VARIANTS.values() if v.loadable},
                                         key=list(VARIANTS).index))  # fp32, fp16, int8

def variant_file(folder: Union[str, Path], name: str, variant: str) -> Path:
    """Where variant `variant` of model `name` lives in `folder` (dynamic int8 takes the int8 file)."""
    v = get(variant)
    return Path(folder) / v.folder / f"{name}{VARIANTS[v.file_variant].suffix}"


def get(variant: str) -> Variant:
    """The table row of `variant`; a clear error naming the choices for an unknown one."""
    try:
        return VARIANTS[variant]
    except KeyError:
        from .errors import EdgeclsError

        raise EdgeclsError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}") from None


def split_name(filename: str) -> Optional[tuple[str, str]]:
    """(model name, variant) of a variant file name (`mnist.int8.onnx` -> ('mnist', 'int8')), or None."""
    for variant in sorted(LOADABLE, key=lambda v: -len(VARIANTS[v].suffix)):  # longest suffix first
        suffix = VARIANTS[variant].suffix
        if filename.endswith(suffix) and len(filename) > len(suffix):
            return filename[: -len(suffix)], variant
    return None

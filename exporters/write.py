"""Write the variants that passed: metadata embedded, each file atomically, the set on disk made consistent.

Nothing unvalidated is ever written under a final name; if fp32 failed nothing is written at all (the other
variants derive from it); after a new fp32, a variant file this run did not rebuild is removed, so the files
beside each other always come from one model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..runtime.atomic import write_bytes_atomic
from ..runtime.metadata import ModelInfo
from ..runtime.spec import InputSpec
from ..runtime.variants import LOADABLE, variant_file
from .builders import Candidate


@dataclass(frozen=True)
class ModelIdentity:
    """What every variant's metadata says about the model, besides its own variant, quantization and validation."""

    name: str
    labels: tuple[str, ...]
    spec: InputSpec  # the exported (ONNX) input
    kind: str  # edgecls.output
    dataset: str = ""
    source_sha256: str = ""
    versions: dict[str, Any] = field(default_factory=dict)
    preprocess: tuple[dict[str, Any], ...] = ()
    unsure: dict[str, Any] = field(default_factory=dict)

    def info(self, c: Candidate, record: dict[str, Any]) -> ModelInfo:
        """The metadata of candidate `c`; `record`: how it was validated (data, reference, gates)."""
        validation = {k: v for k, v in record.items() if k != "gates"}
        return ModelInfo(name=self.name, variant=c.variant, labels=self.labels, input_spec=self.spec,
                         output=self.kind, dataset=self.dataset, source_sha256=self.source_sha256,
                         versions=self.versions, quantization=c.quantization,
                         validation={**validation, **c.validation, "gates": record["gates"]},
                         preprocess=self.preprocess, unsure=self.unsure)


@dataclass
class Written:
    rows: list[dict[str, Any]]  # one report row per candidate
    written: list[str]  # paths written
    removed: list[str]  # stale variant files removed (names relative to the folder)


def embed(model_bytes: bytes, info: ModelInfo) -> bytes:
    import onnx

    proto = onnx.load_from_string(model_bytes)
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, info.to_metadata())
    proto.producer_name = "edgecls"
    proto.doc_string = f"edgecls {info.name} ({info.variant}): image classifier, output: {info.output}"
    return proto.SerializeToString()


def report_row(c: Candidate, path: str) -> dict[str, Any]:
    row = {"variant": c.variant, "quantization": c.quantization, "validation": c.validation,
           "failures": [str(f) for f in c.failures], "failure_types": [f.to_dict() for f in c.failures],
           "notes": list(c.notes), "size_bytes": len(c.data) if c.data else 0, "passed": c.passed, "path": path,
           "written": False, **c.extra}
    if c.superseded:
        row["superseded"] = True
    return row


def write_candidate(path: Path, identity: ModelIdentity, c: Candidate, record: dict[str, Any]) -> int:
    """Embed the metadata and write atomically; returns the bytes written."""
    final = embed(c.data, identity.info(c, record))
    write_bytes_atomic(path, final)
    return len(final)


def remove_stale_variants(out_dir: Path, name: str, written: list[str]) -> list[str]:
    """Make the variants on disk one set: after fp32 is rewritten, any other variant file this run did not
    rebuild (an old .fp16.onnx when --fp16 was not asked again, an old int8 whose new one failed its gate)
    belongs to a different model and would be loaded beside the new one unmarked. Returns what was removed."""
    keep = {Path(p).resolve() for p in written}
    removed = []
    for variant in LOADABLE:
        path = variant_file(out_dir, name, variant)
        if path.resolve() not in keep and (path.is_file() or path.is_symlink()):
            path.unlink()
            removed.append(str(path))
    return removed


def write_variants(out_dir: Path, identity: ModelIdentity, candidates: list[Candidate],
                   record: dict[str, Any]) -> Written:
    """Write what passed as one set (nothing if fp32 failed)."""
    failed_fp32 = not candidates[0].passed
    rows, written = [], []
    for c in candidates:
        target = variant_file(out_dir, identity.name, c.variant)
        # relative to the report (which sits beside the models): no machine's absolute paths in reports
        row = report_row(c, target.name)
        if c.ships and not failed_fp32:
            row["size_bytes"], row["written"] = write_candidate(target, identity, c, record), True
            written.append(str(target))
        rows.append(row)
    removed = [] if failed_fp32 else [Path(p).name for p in remove_stale_variants(out_dir, identity.name, written)]
    return Written(rows, written, removed)

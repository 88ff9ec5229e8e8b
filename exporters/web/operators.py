"""Which operators a model uses, and whether onnxruntime's CPU kernels (what onnxruntime-web's WASM
backend and the mobile packages run) implement them at the model's opset."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..errors import ExportError

Operator = tuple[str, str, int]  # domain, op type, opset version of that domain


def model_operators(path: Path) -> set[Operator]:
    """Every (domain, op, opset) in the graph and its subgraphs."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    opsets = {entry.domain or "ai.onnx": entry.version for entry in model.opset_import}
    found: set[Operator] = set()

    def walk(graph) -> None:
        for node in graph.node:
            domain = node.domain or "ai.onnx"
            found.add((domain, node.op_type, opsets.get(domain, 0)))
            for attribute in node.attribute:
                if attribute.g.node:
                    walk(attribute.g)
                for sub in attribute.graphs:
                    walk(sub)

    walk(model.graph)
    return found


@lru_cache(maxsize=1)
def _cpu_kernels() -> dict[tuple[str, str], list[tuple[int, int]]]:
    from onnxruntime.capi import _pybind_state as C

    kernels: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for d in C.get_all_opkernel_def():
        if d.provider == "CPUExecutionProvider":
            kernels.setdefault((d.domain or "ai.onnx", d.op_name), []).append(tuple(d.version_range))
    return kernels


def unsupported_operators(path: Path) -> list[str]:
    """Operators without a CPU kernel at the model's opset, as 'domain:Op (opset N)'."""
    kernels = _cpu_kernels()
    missing = []
    for domain, op, opset in sorted(model_operators(path)):
        ranges = kernels.get((domain, op), [])
        if not any(lo <= opset <= hi for lo, hi in ranges):
            missing.append(f"{domain}:{op} (opset {opset})")
    return missing


def check_operators(path: Path, target: str) -> None:
    """Refuse, naming the operators, a model the target runtime cannot execute."""
    missing = unsupported_operators(path)
    if missing:
        raise ExportError(f"{path}: {target} cannot run this model: no kernel for {', '.join(missing)}. "
                          "Re-export with a lower --opset or replace these layers.")

"""The report page's int8 section, from the export report (<name>.export.json): when int8 was refused or layers
stayed in float, the layers by their int8 error, which were kept in float and why, and what that cost."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Iterable, Optional

from . import page


def read_evidence(folders: Iterable[Path], name: str) -> Optional[dict[str, Any]]:
    """The int8 evidence of the first export report found in `folders` (None when there is none)."""
    for folder in folders:
        path = Path(folder) / f"{name}.export.json"
        if path.is_file():
            report = json.loads(path.read_text())
            return next((v["int8_layers"] for v in report.get("variants", []) if v.get("int8_layers")), None)
    return None


def int8_section(evidence: dict[str, Any]) -> str:
    """HTML: a summary line, the layers noisiest first, the layers kept in float, and their measured cost."""
    kept = [k for k in evidence["kept_float"] if k["weights"]]
    verdict = ("int8 was refused at export; its layers by quantization error, noisiest first:" if evidence["refused"]
               else f"int8 ships with {len(kept)} weighted layer(s) kept in float.")
    parts = [f"<p>{html.escape(verdict)}</p>",
             page.table(["layer", "op", "weights", "SQNR (dB)"],
                        [[" + ".join(layer["nodes"]), layer["op"], f"{layer['weights']:,}", f"{layer['sqnr_db']:.1f}"]
                         for layer in evidence["layers"]])]
    if evidence["kept_float"]:
        parts.append(page.table(["kept in float", "op", "weights", "why"],
                                [[k["node"], k["op"], f"{k['weights']:,}", k["why"]] for k in evidence["kept_float"]]))
    cost = evidence.get("kept_float_cost")
    if cost:
        parts.append(f"<p class=\"note\">{html.escape(cost_sentence(cost))}</p>")
    return "".join(parts)


def cost_sentence(cost: dict[str, Any]) -> str:
    text = f"Keeping them in float: {cost['size_bytes'] / 1024:+.1f} KiB"
    if "latency_ms" in cost:
        text += (f", batch-1 latency {cost['latency_ms'] * 1e3:+.0f} us, throughput "
                 f"{cost['throughput_ips']:+,.0f} images/s")
    return text + f" against {cost['against']} (measured at export, on the exporting machine)."

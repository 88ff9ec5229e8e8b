"""How fast exported graphs run on the exporting machine, for the export report (never a gate).

Graphs are timed in turns (runtime.timing.take_turns), so load from other processes hits them alike: batch 1
latency (median) and batch 32 throughput.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..runtime.spec import InputSpec
from ..runtime.timing import seconds, take_turns


def _runner(session, feed: str):
    return lambda batch: session.run(None, {feed: batch})


def measure_speeds(graphs: dict[str, bytes], spec: InputSpec, pixels: np.ndarray,
                   budget_s: float = 1.0) -> dict[str, dict[str, float]]:
    """{name: {latency_ms (batch 1, median), throughput_ips (batch 32)}} for each graph, timed in turns."""
    from ..runtime.preprocess import to_batch
    from ..runtime.session import create_session

    one = to_batch(pixels[:1], spec)
    many = to_batch(np.resize(pixels, (32, *pixels.shape[1:])), spec)
    runs = {}
    for name, data in graphs.items():
        session = create_session(data, "cpu")
        feed = session.get_inputs()[0].name
        session.run(None, {feed: one})
        session.run(None, {feed: many})
        runs[name] = _runner(session, feed)
    single = take_turns({k: (lambda r=r: [seconds(r, one)]) for k, r in runs.items()}, budget_s / 2, 5, 200)
    batched = take_turns({k: (lambda r=r: [seconds(r, many)]) for k, r in runs.items()}, budget_s / 2, 2, 100)
    return {k: {"latency_ms": float(np.median(single[k]) * 1e3),
                "throughput_ips": float(32 / np.median(batched[k]))} for k in graphs}


def int8_speed_summary(fp32: bytes, int8: bytes, spec: InputSpec, pixels: np.ndarray) -> dict[str, Any]:
    """fp32 vs int8 on this machine, with a plain verdict."""
    speeds = measure_speeds({"fp32": fp32, "int8": int8}, spec, pixels)
    a, b = speeds["fp32"], speeds["int8"]
    speedup = a["latency_ms"] / b["latency_ms"]
    gain = b["throughput_ips"] / a["throughput_ips"]
    smaller = len(fp32) / len(int8)
    size = f"{smaller:.1f}x smaller" if smaller >= 1 else f"{1 / smaller:.1f}x larger (scales and Q/DQ nodes)"
    verdict = f"int8 is {speedup:.2f}x the fp32 speed at batch 1 and {gain:.2f}x in throughput on this machine; {size}"
    if speedup < 1.05 and gain < 1.05:
        verdict += (" -- int8 is NOT faster here: ship it for size only" if smaller >= 1.05 else
                    " -- int8 is neither faster nor smaller here: fp32 is the better file on this machine")
    return {"fp32": a, "int8": b, "latency_speedup": speedup, "throughput_gain": gain, "size_ratio": smaller,
            "verdict": verdict, "measured": "on the exporting machine (may be under load)"}


def cost_of(kept: bytes, alternative: bytes, spec: InputSpec, pixels: Optional[np.ndarray]) -> dict[str, Any]:
    """What a graph costs against an alternative: bytes, and (given pixels) batch-1 latency and throughput."""
    cost: dict[str, Any] = {"size_bytes": len(kept) - len(alternative)}
    if pixels is not None:
        speeds = measure_speeds({"kept": kept, "alternative": alternative}, spec, pixels)
        cost["latency_ms"] = speeds["kept"]["latency_ms"] - speeds["alternative"]["latency_ms"]
        cost["throughput_ips"] = speeds["kept"]["throughput_ips"] - speeds["alternative"]["throughput_ips"]
        cost["speeds"] = speeds
    return cost

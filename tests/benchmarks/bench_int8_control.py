"""Accuracy-controlled int8 against plain static int8, on shipped models and their test sets.

    python tests/benchmarks/bench_int8_control.py [--models emotion cifar10] [--budget 0.1] [--eval-limit 2000]

For each model: plain static QDQ (minmax, the default) and auto mode (accuracy control: other calibrations,
then the most quantization-sensitive nodes kept in float until the budget holds), both validated on test
images disjoint from the calibration images. Prints accuracy drop, top-1 agreement, size, which nodes
stayed float, and fp32-vs-int8 latency/throughput measured on this machine. Writes nothing under artifacts/.
Not a test: figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(name: str, mode: str, budget: float, eval_limit: int, data_dir: str) -> dict:
    from edgecls.exporters.errors import GateError
    from edgecls.exporters.export import run_export
    from edgecls.exporters.quantize import QuantOptions
    from edgecls.exporters.gates import Gates
    from edgecls.exporting import prepare_job

    with tempfile.TemporaryDirectory(prefix="edgecls-bench-int8-") as out:
        job, _ = prepare_job(name, variants=("fp32", "int8"), data_dir=data_dir, out_dir=Path(out),
                             eval_limit=eval_limit, quant=QuantOptions(mode=mode, calib_size=512),
                             gates=Gates(int8_max_accuracy_drop=budget))
        job = dataclasses.replace(job, unsure=None)  # not what is measured here
        try:
            report = run_export(job)
        except GateError as exc:
            report = exc.report
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["emotion"])
    parser.add_argument("--budget", type=float, default=0.1, help="int8 accuracy budget, points")
    parser.add_argument("--eval-limit", type=int, default=2000)
    parser.add_argument("--data-dir", default=os.environ.get("EDGECLS_DATA", str(REPO.parent / "shared" / "datasets")))
    args = parser.parse_args()
    print(f"budget: int8 may lose at most {args.budget} points; validated on {args.eval_limit} test images "
          "(disjoint from calibration). Timings: this machine, now (may be under load).")
    print("| model | int8 | calibration | nodes in float | accuracy drop | top-1 agreement | size vs fp32 | "
          "batch-1 speed vs fp32 | throughput vs fp32 | gate |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name in args.models:
        for mode in ("static", "auto"):
            report = run(name, mode, args.budget, args.eval_limit, args.data_dir)
            fp32 = report["variants"][0]
            shipped = [v for v in report["variants"][1:] if not v.get("superseded")]
            v = next((s for s in shipped if s["passed"]), shipped[0] if shipped else report["variants"][-1])
            val, q = v["validation"], v["quantization"]
            speed = report.get("int8_speed") or {}
            floats = q.get("float_nodes", [])
            print(f"| {name} | {'plain static' if mode == 'static' else 'accuracy-controlled'} ({v['variant']}) | "
                  f"{q.get('calibration', '-')} | {len(floats)} | {val.get('accuracy_drop_pts', float('nan')):.2f} | "
                  f"{val.get('top1_agreement', 0) * 100:.2f}% | {v['size_bytes'] / fp32['size_bytes']:.0%} | "
                  f"{speed.get('latency_speedup', float('nan')):.2f}x | {speed.get('throughput_gain', float('nan')):.2f}x | "
                  f"{'pass' if v['passed'] else 'FAIL: ' + '; '.join(v['failures'])} |")
            if floats:
                print(f"|  | kept in float: {', '.join(floats)} | | | | | | | | |")
            for a in q.get("accuracy_control", {}).get("attempts", []):
                drop = a["accuracy_drop_pts"]
                print(f"|  | attempt | {a['calibration']} | {a['float_nodes']} | "
                      f"{'n/a' if drop is None else format(drop, '.2f')} | "
                      f"{(a['top1_agreement'] or 0) * 100:.2f}% | | | | {'pass' if not a['failures'] else 'fail'} |")


if __name__ == "__main__":
    main()

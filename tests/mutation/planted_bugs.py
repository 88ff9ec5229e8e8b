"""Plant realistic bugs one at a time (in a throw-away copy of the package) and check the tests catch each one.

    nice -n 15 .venv/bin/python tests/mutation/planted_bugs.py [--with-issue-list]

A second, independent check next to run_mutation.py: these bugs sit in code the mutation run does not cover
(export orchestration, training, the CLI) and are the kind a refactor introduces. Each bug names the tests
that should catch it; the script prints caught/MISSED per bug and exits 1 if any is missed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_mutation import shadow_copy, shadow_path  # noqa: E402

EXPORT_FAILURES = "tests/test_export_failures.py"
TRAINING = "tests/test_training_promises.py"
BUGS = [
    ("fp32 failure no longer blocks the quantized variants", "exporters/write.py",
     "if c.ships and not failed_fp32:", "if c.ships:", EXPORT_FAILURES),
    ("a superseded static int8 is written too", "exporters/write.py",
     "if c.ships and not failed_fp32:", "if c.passed and not failed_fp32:", EXPORT_FAILURES),
    ("the superseded static attempt fails the whole report", "exporters/export.py",
     '"passed": all(r["passed"] for r in written.rows if not r.get("superseded")),',
     '"passed": all(r["passed"] for r in written.rows),', EXPORT_FAILURES),
    ("auto mode tries dynamic even after static passed", "exporters/int8_control.py",
     'if static is None or static.passed or inputs.quant.mode != "auto" or static.data is None:',
     'if static is None or inputs.quant.mode != "auto" or static.data is None:', EXPORT_FAILURES),
    ("the report is written before the models", "exporters/export.py",
     "    written = write_variants(job.out_dir, identity, candidates, record)\n",
     "    write_json_atomic(report_path(job.out_dir, job.name), {})\n"
     "    written = write_variants(job.out_dir, identity, candidates, record)\n", EXPORT_FAILURES),
    ("revalidate gates int8 files as fp32", "exporters/export.py",
     "candidate = Candidate(info.variant, gate_of(info.variant),", 'candidate = Candidate(info.variant, "fp32",',
     "tests/unit/test_validate_unit.py " + EXPORT_FAILURES),
    ("validate no longer checks the Keras source's sha256", "toolkit/exporting.py",
     "if info.source_sha256 and sha256_file(keras_path) != info.source_sha256:", "if False:", EXPORT_FAILURES),
    ("validate prints the failure but exits 0", "toolkit/cli/export.py",
     "    if not result.passed:\n        raise EdgeclsError", "    if result.passed is None:\n        raise EdgeclsError",
     EXPORT_FAILURES),
    ("validate ignores --max-diff", "toolkit/cli/export.py",
     "fp32_max_abs_diff=max_diff,", "fp32_max_abs_diff=1e-4,", "tests/unit/test_validate_unit.py"),
    ("the last epoch ships instead of the best", "toolkit/training/trainer.py",
     "        model.load_weights(best_weights)", "        pass", TRAINING),
    ("the card names the last epoch as best", "toolkit/training/trainer.py",
     'best_epoch = int(np.argmax(history["val_accuracy"]))', 'best_epoch = len(history["val_accuracy"]) - 1',
     TRAINING),
    ("--fresh is ignored", "toolkit/training/trainer.py",
     'resuming = (work / "backup").is_dir() and not fresh', 'resuming = (work / "backup").is_dir()', TRAINING),
    ("metrics.json written before the model is saved", "toolkit/training/trainer.py",
     "    save_keras_atomic(shipped, artifacts.keras_path)\n",
     "    write_json_atomic(artifacts.card_path, {})\n    save_keras_atomic(shipped, artifacts.keras_path)\n",
     TRAINING),
    ("an interrupted infer publishes its partial file", "toolkit/api/infer.py",
     "        return sink.keep_partial()", "        return sink.commit()", "tests/test_infer_output_failures.py"),
    ("infer --output writes straight to the output file", "runtime/outputs.py",
     "self.partial = self.path.with_name(self.path.name + PARTIAL_SUFFIX)", "self.partial = self.path",
     "tests/test_infer_output_failures.py"),
    ("a decoder exception other than ImageError stops the run", "runtime/stream.py",
     "    except Exception as exc:  # noqa: BLE001 - a broken file must never stop the run",
     "    except ValueError as exc:", "tests/unit/test_stream_unit.py"),
    ("metadata loses the gates it was validated with", "exporters/write.py",
     'validation={**validation, **c.validation, "gates": record["gates"]},',
     "validation={**validation, **c.validation},", EXPORT_FAILURES),
]
# The audit's bugs from issue 19 (most survived the suite before these tests), for comparison.
ISSUE_BUGS = [
    ("int8 accuracy drop sign flipped", "exporters/stats.py",
     "return (self.lost - self.gained) * 100 / self.n if self.n else 0.0",
     "return (self.gained - self.lost) * 100 / self.n if self.n else 0.0", "tests/unit/test_validate_unit.py"),
    ("default int8 gate 5 points", "exporters/gates.py", "int8_max_accuracy_drop: float = 0.5",
     "int8_max_accuracy_drop: float = 5.0", "tests/unit/test_validate_unit.py"),
    ("fp32 max diff limit 1e-2", "exporters/gates.py", "fp32_max_abs_diff: float = 1e-4",
     "fp32_max_abs_diff: float = 1e-2", "tests/unit/test_validate_unit.py"),
    ("fp32 gate checks the mean", "exporters/gates.py", 'if result["max_abs_diff"] > gates.fp32_max_abs_diff:',
     'if result["mean_abs_diff"] > gates.fp32_max_abs_diff:', "tests/unit/test_validate_unit.py"),
    ("top-1 agreement check removed", "exporters/gates.py", "    if agreement < floor:", "    if False:",
     "tests/unit/test_validate_unit.py"),
    ("fp16 gate disabled", "exporters/gates.py",
     "return self.fp16_max_accuracy_drop if gate == \"fp16\" else self.int8_max_accuracy_drop",
     "return float(\"inf\") if gate == \"fp16\" else self.int8_max_accuracy_drop", "tests/unit/test_validate_unit.py"),
    ("near ties counted as flips", "exporters/gates.py", "decisive = flipped & (top2[:, 1] - top2[:, 0] > error)",
     "decisive = flipped", "tests/unit/test_validate_unit.py"),
    ("a drop the sample cannot show refuses", "exporters/gates.py", "    if measurable and drop > limit:",
     "    if drop > limit:", "tests/unit/test_validate_unit.py"),
    ("the size rule forgets the Q/DQ overhead", "exporters/size.py",
     "return self.fp32_bytes - self.int8_bytes + self.overhead_bytes", "return self.fp32_bytes - self.int8_bytes",
     "tests/test_gates_real.py"),
    ("metrics.json written in place", "toolkit/training/trainer.py", "write_json_atomic(artifacts.card_path, card)",
     'artifacts.card_path.write_text(__import__("json").dumps(card))', TRAINING),
    ("history.json written in place", "toolkit/training/trainer.py",
     "write_json_atomic(artifacts.history_path, {key: history[key] for key in sorted(history)})",
     'artifacts.history_path.write_text(__import__("json").dumps(history))', TRAINING),
    ("export report written in place", "exporters/export.py", "write_json_atomic(report_path(job.out_dir, job.name), report)",
     'report_path(job.out_dir, job.name).write_text(__import__("json").dumps(report))', EXPORT_FAILURES),
]


def main() -> None:
    missed = []
    bugs = BUGS + (ISSUE_BUGS if "--with-issue-list" in sys.argv else [])
    for what, module, old, new, tests in bugs:
        work = Path(tempfile.mkdtemp(prefix="edgecls-planted-"))
        try:
            shadow_copy(work)
            target = work / shadow_path(module)
            source = target.read_text()
            if source.count(old) != 1:
                sys.exit(f"{module}: the code to break is not there once ({what!r}); update this script")
            target.write_text(source.replace(old, new))
            env = {**os.environ, "PYTHONPATH": str(work / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
            proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                   *tests.split()], cwd=work, env=env, capture_output=True, text=True)
            caught = proc.returncode == 1
            if proc.returncode not in (0, 1):
                sys.exit(f"{what}: pytest could not run ({proc.returncode}):\n{proc.stdout[-2000:]}")
            failed = [line for line in proc.stdout.splitlines() if line.startswith("FAILED")]
            print(f"{'caught' if caught else 'MISSED'}  {what}  ({module})" + (f"\n        {failed[0]}" if failed else ""),
                  flush=True)
            if not caught:
                missed.append(what)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{len(bugs) - len(missed)}/{len(bugs)} planted bugs caught")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()

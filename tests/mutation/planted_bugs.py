"""Plant realistic bugs one at a time (in a throw-away copy of the package) and check the tests catch each one.

    nice -n 15 .venv/bin/python tests/mutation/planted_bugs.py [--with-issue-list] [SUBSTRING ...]

A second, independent check next to run_mutation.py: these bugs sit in code the mutation run does not cover
(export orchestration, training, the CLI) and are the kind a refactor introduces. Each bug names the tests
that should catch it; the script prints caught/MISSED per bug and exits 1 if any is missed.
"""

from __future__ import annotations

import argparse
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
    ("metrics.json written before the model is saved", "toolkit/training/finish.py",
     "    save_keras_atomic(shipped, folder.keras_path)\n",
     "    write_json_atomic(folder.card_path, {})\n    save_keras_atomic(shipped, folder.keras_path)\n",
     TRAINING),
    ("an interrupted infer publishes its partial file", "toolkit/api/infer.py",
     "        return sink.keep_partial()", "        return sink.commit()", "tests/test_infer_output_failures.py tests/test_hostile.py"),
    ("infer --output writes straight to the output file", "runtime/outputs.py",
     "self.partial = self.path.with_name(self.path.name + PARTIAL_SUFFIX)", "self.partial = self.path",
     "tests/test_infer_output_failures.py"),
    ("a decoder exception other than ImageError stops the run", "runtime/decoding.py",
     "    except Exception as exc:  # noqa: BLE001 - a broken file must never stop the run",
     "    except ValueError as exc:", "tests/unit/test_decoding_unit.py"),
    ("metadata loses the gates it was validated with", "exporters/write.py",
     'validation={**validation, **c.validation, "gates": record["gates"]},',
     "validation={**validation, **c.validation},", EXPORT_FAILURES),
]
SAMPLING = "tests/unit/test_sampling_unit.py"
SPLITS = "tests/test_data_splits.py"
FORMS = "tests/test_input_forms.py"
BUGS += [
    ("a stratified sample is the first N items", "exporters/quantize.py",
     "    rng = np.random.default_rng(seed)\n    if y is None",
     "    rng = np.random.default_rng(seed)\n    return np.arange(min(size, n_total))\n    if y is None", SAMPLING),
    ("a stratified sample takes each class's first images", "exporters/quantize.py",
     "picked = [rng.permutation(np.flatnonzero(y == c))[:q]", "picked = [np.flatnonzero(y == c)[:q]", SAMPLING),
    ("small classes' one image comes on top of the sample size", "exporters/quantize.py",
     "    while quota.sum() > max(size, len(classes)):", "    while False:", SAMPLING),
    ("limit_split takes the first N items", "toolkit/data/types.py",
     "return split.take(stratified_sample(split.y, len(split), limit, seed))", "return split.take(np.arange(limit))",
     SAMPLING),
    ("limit_split pairs the images with other labels", "toolkit/data/types.py",
     "return split.take(stratified_sample(split.y, len(split), limit, seed))",
     "return Split(split.x[stratified_sample(split.y, len(split), limit, seed)], split.y[:limit])", SAMPLING),
    ("the holdout takes each class's first images", "toolkit/data/types.py", "        rng.shuffle(idx)\n", "", SAMPLING),
    ("the holdout is the first items of the whole split", "toolkit/data/types.py",
     "    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(hold))",
     "    n = int(round(len(y) * fraction))\n    return np.arange(n, len(y)), np.arange(n)", SAMPLING),
    ("int8 calibrates on every training image, held-out ones included", "toolkit/data/plan.py",
     "train = self._training_parts[0]", "train = self._recorded.train", SPLITS),
    ("the unsure flag calibrates on the images training fitted on", "toolkit/data/plan.py",
     "split = self._training_parts[1]", "split = self._training_parts[0]", SPLITS),
    ("the plan's held-out split is drawn with another seed than training's", "toolkit/data/plan.py",
     "self.card.val_fraction or 0.1, self.card.seed)", "self.card.val_fraction or 0.1, self.card.seed + 1)", SPLITS),
    ("the plan tests on training images", "toolkit/data/plan.py",
     "split, what = self._recorded.test,", "split, what = self._recorded.train,", SPLITS),
    ("export calibrates the unsure flag on the int8 calibration images", "toolkit/exporting.py",
     "_calibration(calib, plan, quant, wants_static), plan.heldout(), labels",
     "_calibration(calib, plan, quant, wants_static), plan.calibration(quant.calib_size, quant.seed), labels", SPLITS),
    ("a folder model's card records other files than the ones training tested on", "toolkit/data/folders.py",
     "test_files = [read[i] for i in hold]", "test_files = [read[i] for i in keep[: len(hold)]]", SPLITS),
    ("a folder model's recorded test files are also read as training images", "toolkit/data/plan.py",
     "train_listed = [(label, f) for label, f in class_files(train_root, classes) if f not in held_out]",
     "train_listed = class_files(train_root, classes)", SPLITS),
    ("a folder model's card records no validation files", "toolkit/data/plan.py",
     "held = by_class(val.y, val.files) if val is not None and val.files is not None else {}", "held = {}",
     f"tests/unit/test_plan_unit.py {SPLITS}"),
    ("a Split loses its file names when sampled", "toolkit/data/types.py",
     "None if self.files is None else [self.files[i] for i in index])", "None)", f"tests/unit/test_plan_unit.py {SPLITS}"),
    ("a finished infer run that gets Ctrl-C while its output is moved into place exits 130", "toolkit/cli/infer.py",
     "    stop = ctx.with_resource(stop_on_interrupt())\n    with _progress() as progress:",
     "    with _progress() as progress, stop_on_interrupt() as stop:", "tests/test_hostile.py"),
    ("arrays skip the declared preprocessing (stretched instead)", "runtime/classifier.py",
     "return prepare_with_stats([working_pixels(s, self.spec) for s in sources]",
     "return prepare_with_stats([load_pixels(s, self.spec) if isinstance(s, np.ndarray) else working_pixels(s, self.spec) "
     "for s in sources]", FORMS),
    ("bytes are decoded without their EXIF orientation", "runtime/preprocess.py",
     "        image = _decode(io.BytesIO(bytes(source)), name)", "        return _decode(io.BytesIO(bytes(source)), name)",
     FORMS),
    ("PIL images are resized to the input size before the declared steps", "runtime/preprocess.py",
     "    name = describe(source)\n    image = open_image(source)\n",
     "    name = describe(source)\n    image = open_image(source)\n    if isinstance(source, Image.Image):\n"
     "        image = image.resize((spec.width, spec.height))\n", FORMS),
    ("0-1 float arrays are read as 0-255", "runtime/preprocess.py",
     "scale = 255.0 if arr.max(initial=0.0) <= 1.0 else 1.0", "scale = 1.0", FORMS),
    ("the infer stream stretches in-memory images before the declared steps", "runtime/decoding.py",
     "        if pipeline is not None and pipeline.declared:\n            return working_pixels(source, spec)",
     "        if pipeline is not None and pipeline.declared and isinstance(source, str):\n"
     "            return working_pixels(source, spec)", FORMS),
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
    ("metrics.json written in place", "toolkit/training/finish.py", "card.write(folder.card_path)",
     'folder.card_path.write_text(__import__("json").dumps(card.to_dict()))', TRAINING),
    ("history.json written in place", "toolkit/training/finish.py",
     "write_json_atomic(folder.history_path, {key: history[key] for key in sorted(history)})",
     'folder.history_path.write_text(__import__("json").dumps(history))', TRAINING),
    ("export report written in place", "exporters/export.py", "write_json_atomic(report_path(job.out_dir, job.name), report)",
     'report_path(job.out_dir, job.name).write_text(__import__("json").dumps(report))', EXPORT_FAILURES),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("only", nargs="*", help="substrings of a bug's description or module (default: all)")
    parser.add_argument("--with-issue-list", action="store_true", help="also the earlier audit's bugs")
    args = parser.parse_args()
    missed = []
    bugs = [bug for bug in BUGS + (ISSUE_BUGS if args.with_issue_list else [])
            if not args.only or any(s in bug[0] or s in bug[1] for s in args.only)]
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

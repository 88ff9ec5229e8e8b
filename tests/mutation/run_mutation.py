"""Mutation testing of the modules that carry the product's promises, with cosmic-ray; prints the score per module.

    nice -n 15 .venv/bin/python tests/mutation/run_mutation.py            # all modules
    nice -n 15 .venv/bin/python tests/mutation/run_mutation.py validate   # modules whose path contains "validate"

Needs cosmic-ray (`pip install -e ".[mutation]"`; not a CI dependency, this does not run in CI). cosmic-ray mutates files in
place, so the script first builds a throw-away copy of the package with a plain `src/edgecls/...` layout (the
repo maps toolkit/, exporters/ and runtime/ onto one namespace, which mutation tools do not follow) and runs
each module's fast tests against that copy with PYTHONPATH (tests that need data read $EDGECLS_DATA, by default ../shared/datasets beside the repo; a module whose tests skip is refused). Your working tree is never touched.

Operators: all of cosmic-ray's core operators except the bit-wise and shift replacements of arithmetic
(`a + b` -> `a << b`, `a | b`, ...), which on this float/str code only produce mutants that crash at once
and would inflate the score. A timed-out mutant counts as killed (cosmic-ray's own convention).
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# module (repo path) -> the fast tests that guard it
MODULES = {
    "exporters/validate.py": ["tests/unit/test_validate_unit.py"],
    "exporters/gates.py": ["tests/unit/test_validate_unit.py", "tests/unit/test_gates_edges_unit.py"],
    "exporters/stats.py": ["tests/unit/test_validate_unit.py", "tests/unit/test_stats_unit.py"],
    "runtime/atomic.py": ["tests/unit/test_atomic_unit.py"],
    "runtime/outputs.py": ["tests/unit/test_outputs_unit.py"],
    "runtime/files.py": ["tests/unit/test_files_unit.py"],
    "runtime/preprocess.py": ["tests/unit/test_preprocess_unit.py"],
    "runtime/metadata.py": ["tests/unit/test_metadata_unit.py"],
    "runtime/store.py": ["tests/unit/test_store_unit.py", "tests/unit/test_store_lookup_unit.py"],
    "runtime/variants.py": ["tests/unit/test_store_unit.py", "tests/unit/test_store_lookup_unit.py"],
    "runtime/onnx_props.py": ["tests/unit/test_onnx_props_unit.py", "tests/unit/test_store_unit.py"],
    "toolkit/card.py": ["tests/unit/test_card_unit.py"],
    "toolkit/data/plan.py": ["tests/unit/test_plan_unit.py"],
    "runtime/engine.py": ["tests/unit/test_engine_plan_unit.py", "tests/unit/test_engine_runners_unit.py",
                          "tests/test_batch1_binding.py",
                          "tests/test_sharded_batches.py"],
}
EXCLUDED_OPERATORS = [r"core/ReplaceBinaryOperator_.*_(BitOr|BitAnd|BitXor|LShift|RShift)$"]
PACKAGE_DIRS = {"toolkit": "src/edgecls", "exporters": "src/edgecls/exporters", "runtime": "src/edgecls/runtime"}


def shadow_copy(dest: Path) -> None:
    """src/edgecls = toolkit + exporters + runtime, as setuptools' package-dir installs them; tests and README beside."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for repo_dir, target in PACKAGE_DIRS.items():
        shutil.copytree(REPO / repo_dir, dest / target, ignore=ignore, dirs_exist_ok=True)
    shutil.copytree(REPO / "tests", dest / "tests", ignore=ignore)
    for name in ("README.md", "pyproject.toml"):
        shutil.copy(REPO / name, dest / name)
    (dest / "artifacts").symlink_to(REPO / "artifacts", target_is_directory=True)  # read by tests, never written


def shadow_path(module: str) -> str:
    top, rest = module.split("/", 1)
    return f"{PACKAGE_DIRS[top]}/{rest}"


def run_module(work: Path, module: str, tests: list[str], timeout: float) -> dict:
    slug = module.replace("/", "_").removesuffix(".py")
    config, db = work / f"{slug}.toml", work / f"{slug}.sqlite"
    test_command = f"{sys.executable} -m pytest -x -q -p no:cacheprovider -p no:randomly {' '.join(tests)}"
    excluded = ", ".join(f"'{e}'" for e in EXCLUDED_OPERATORS)
    config.write_text(f"""[cosmic-ray]
module-path = "{shadow_path(module)}"
timeout = {timeout}
excluded-modules = []
test-command = "{test_command}"

[cosmic-ray.distributor]
name = "local"

[cosmic-ray.filters.operators-filter]
exclude-operators = [{excluded}]
""")
    # The copy lives in a temporary folder, so the tests' default data folder (beside the repo) is named here.
    data = os.environ.get("EDGECLS_DATA") or str(REPO.parent / "shared" / "datasets")
    env = {**os.environ, "PYTHONPATH": str(work / "src"), "PYTHONDONTWRITEBYTECODE": "1", "EDGECLS_DATA": data}
    run = lambda *cmd: subprocess.run(cmd, cwd=work, env=env, check=True, capture_output=True, text=True)  # noqa: E731
    # The unmutated code must pass, and must be the copy (not the editable install) that the tests import.
    probe = subprocess.run([sys.executable, "-c", "import edgecls.runtime, sys; print(edgecls.runtime.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout.strip()
    if not probe.startswith(str(work)):
        sys.exit(f"the tests would import {probe}, not the copy under {work}")
    baseline = subprocess.run(test_command.split(), cwd=work, env=env, capture_output=True, text=True)
    if baseline.returncode != 0:
        sys.exit(f"{module}: its tests fail before any mutation:\n{baseline.stdout[-3000:]}")
    if " skipped" in baseline.stdout:  # a skipped test kills nothing: the score would flatter the tests
        sys.exit(f"{module}: some of its tests skip before any mutation:\n{baseline.stdout[-3000:]}")
    run(str(BIN / "cosmic-ray"), "init", str(config), str(db))
    run(str(BIN / "cr-filter-operators"), str(db), str(config))
    skip_annotations(db, work / shadow_path(module))
    start = time.perf_counter()
    run(str(BIN / "cosmic-ray"), "exec", str(config), str(db))
    return summarise(module, db, time.perf_counter() - start)


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where the type annotations are, when the module never evaluates them (PEP 563)."""
    tree = ast.parse(source)
    if not any(isinstance(n, ast.ImportFrom) and n.module == "__future__" and any(a.name == "annotations" for a in n.names)
               for n in tree.body):
        return []
    nodes = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            nodes.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            nodes.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            nodes.append(node.annotation)
    return [((n.lineno, n.col_offset), (n.end_lineno, n.end_col_offset)) for n in nodes]


def skip_annotations(db: Path, source: Path) -> None:
    """Mutants inside never-evaluated annotations (`str | os.PathLike` -> `str + os.PathLike`) are equivalent by
    construction: mark them skipped, as cosmic-ray's own filters do, so they count neither way."""
    spans = annotation_spans(source.read_text())
    con = sqlite3.connect(db)
    jobs = con.execute("SELECT job_id, start_pos_row, start_pos_col FROM mutation_specs "
                       "WHERE job_id NOT IN (SELECT job_id FROM work_results)").fetchall()
    inside = [job for job, row, col in jobs if any(a <= (row, col) < b for a, b in spans)]
    con.executemany("INSERT INTO work_results (worker_outcome, output, test_outcome, diff, job_id) "
                    "VALUES ('SKIPPED', 'inside a type annotation (never evaluated)', NULL, NULL, ?)",
                    [(job,) for job in inside])
    con.commit()
    con.close()


def summarise(module: str, db: Path, seconds: float) -> dict:
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT m.operator_name, m.occurrence, m.start_pos_row, m.start_pos_col, lower(r.worker_outcome), "
        "lower(r.test_outcome), r.diff FROM mutation_specs m JOIN work_results r ON r.job_id = m.job_id").fetchall()
    pending = con.execute("SELECT count(*) FROM mutation_specs WHERE job_id NOT IN "
                          "(SELECT job_id FROM work_results)").fetchone()[0]
    con.close()
    if pending:
        sys.exit(f"{module}: {pending} mutants were never run")
    counted = [r for r in rows if r[4] != "skipped"]
    killed = [r for r in counted if r[5] in ("killed", "incompetent") or r[4] == "abnormal"]
    survived = [r for r in counted if r not in killed]
    return {"module": module, "mutants": len(counted), "killed": len(killed), "survived": survived,
            "skipped": len(rows) - len(counted), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("only", nargs="*", help="substrings of module paths to run (default: all)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per mutant's test run")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (sessions, diffs)")
    parser.add_argument("--show-survivors", action="store_true", help="print the diff of every surviving mutant")
    args = parser.parse_args()
    if not (BIN / "cosmic-ray").exists():
        sys.exit("cosmic-ray is not installed in this environment: pip install cosmic-ray")
    chosen = {m: t for m, t in MODULES.items() if not args.only or any(s in m for s in args.only)}
    work = Path(tempfile.mkdtemp(prefix="edgecls-mutation-"))
    try:
        shadow_copy(work)
        results = []
        for module, tests in chosen.items():
            print(f"mutating {module} ...", flush=True)
            results.append(run_module(work, module, tests, args.timeout))
            r = results[-1]
            print(f"  {r['killed']}/{r['mutants']} killed ({r['skipped']} filtered) in {r['seconds']:.0f}s", flush=True)
        print(f"\n{'module':28} {'mutants':>8} {'killed':>7} {'survived':>9} {'score':>7}")
        total_m = total_k = 0
        for r in results:
            score = r["killed"] / r["mutants"] * 100 if r["mutants"] else 100.0
            total_m += r["mutants"]
            total_k += r["killed"]
            print(f"{r['module']:28} {r['mutants']:8d} {r['killed']:7d} {len(r['survived']):9d} {score:6.1f}%")
        if total_m:
            print(f"{'all':28} {total_m:8d} {total_k:7d} {total_m - total_k:9d} {total_k / total_m * 100:6.1f}%")
        for r in results:
            for op, occ, row, col, worker, outcome, diff in r["survived"]:
                print(f"\nSURVIVED {r['module']}:{row} {op} #{occ} ({worker}/{outcome})")
                if args.show_survivors and diff:
                    print(diff)
    finally:
        if args.keep:
            print(f"\nwork folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

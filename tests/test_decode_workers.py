"""Folder classification from a user's own script: worker processes where the script guards its work with
`if __name__ == "__main__":`, threads where it does not; the same answers either way, and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from PIL import Image

BODY = """
import json, multiprocessing, sys
from edgecls.runtime import Classifier
from edgecls.runtime.stream import classify_stream

def run():
    clf = Classifier("mnist", variant="fp32", device="cpu")
    files = sorted(sys.argv[1:])
    seen, labels = 0, []
    for result in classify_stream(clf, files, batch_size=4, workers=2):
        seen = max(seen, len(multiprocessing.active_children()))
        labels.append(result.prediction.label)
    print(json.dumps({"labels": labels, "worker_processes": seen}))
"""


@pytest.fixture(scope="module")
def digits(mnist, tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    for i in range(12):
        Image.fromarray(mnist.test.x[i][..., 0]).save(folder / f"{i:02d}.png")
    return sorted(str(p) for p in folder.iterdir()), [str(int(y)) for y in mnist.test.y[:12]]


def _run(tmp_path, script: str, files: list[str]) -> dict:
    path = tmp_path / "classify.py"
    path.write_text(script)
    done = subprocess.run([sys.executable, str(path), *files], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("guarded", [True, False])
def test_a_users_script_classifies_a_folder(tmp_path, digits, guarded):
    files, truth = digits
    script = textwrap.dedent(BODY) + ('\nif __name__ == "__main__":\n    run()\n' if guarded else "\nrun()\n")
    out = _run(tmp_path, script, files)
    assert out["labels"] == truth
    if guarded:
        assert out["worker_processes"] == 2  # decoded in worker processes
    else:
        assert out["worker_processes"] == 0  # would have run the script again: threads

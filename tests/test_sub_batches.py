"""Cache-sized sub-batches (runtime/tuning/sub_batch.py): each core's shard runs in calls of the size timed
fastest when the model loads, cached per machine and model; every size gives the same scores."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgecls.runtime import Classifier
from edgecls.runtime.tuning import sub_batch
from edgecls.runtime.tuning.cache import cache_dir


def test_cut_keeps_order_and_sizes():
    x = np.arange(70)
    calls = []

    def run(b):
        calls.append(len(b))
        return b * 2

    assert np.array_equal(sub_batch.cut(run, x, 32), x * 2) and calls == [32, 32, 6]
    calls.clear()
    assert np.array_equal(sub_batch.cut(run, x, None), x * 2) and calls == [70]


def test_best_size_is_plain_arithmetic():
    assert sub_batch.best_size({128: 3.0, 64: 2.0, 32: 1.0, 16: 1.5, 8: 2.5}) == 32
    assert sub_batch.best_size({128: 1.0, 64: 2.0, 32: 3.0, 16: 4.0, 8: 5.0}) is None
    assert sub_batch.best_size({128: 1.02, 64: 1.0, 32: 1.1, 16: 1.2, 8: 1.3}) is None  # inside the noise margin
    assert sub_batch.best_size({}) == sub_batch.SMALLEST  # heavy: not timed


def test_timing_picks_the_size_that_really_is_faster():
    """A fake engine with a fixed per-call cost and a per-image cost that grows past 32 images (out of
    cache): the timed choice must be 32. The costs are spun, not slept: a busy machine's sleep overshoots by a
    fixed amount per call, which favours the fewest calls."""
    import time

    def spin(seconds):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    def run_at(size):
        images, size = 256, size or 256
        for start in range(0, images, size):
            n = min(size, images - start)
            spin(0.0004 + n * (0.00001 if n <= 32 else 0.00003))

    per_image = sub_batch.time_sizes(run_at, 256, budget_s=0.2)
    assert sub_batch.best_size(per_image) == 32, per_image


def test_a_heavy_model_is_not_timed():
    import time

    calls = []

    def run_at(size):
        calls.append(size)
        time.sleep(sub_batch.HEAVY_CALL_S)

    assert sub_batch.time_sizes(run_at, 256) == {} and calls == [None, None]


@pytest.mark.parametrize("size", [None, 8, 32])
def test_every_size_gives_the_same_scores(mnist, size):
    clf = Classifier("fashion", variant="int8", device="cpu", threads=2, tune="off")
    plain = Classifier("fashion", variant="int8", device="cpu", threads=1, tune="off")  # never splits
    clf._engine.runner.sharded.sub_batch = size
    x = mnist.test.x[:150]  # any 28x28 grey images do
    assert np.allclose(clf.run(x), plain.run(x), atol=1e-6)


def test_measured_when_the_model_loads_once_then_cached():
    path = Classifier("mnist", variant="int8", tune="off").path
    first = Classifier(path, device="cpu", threads=2)  # tune="auto": measured here, before any call
    decision = first.engine.tuning["sub_batch"]
    assert decision.source in ("measured", "cached") and first.engine.sub_batch == decision.value
    assert first.engine.sub_batch in (None, *sub_batch.CANDIDATES)
    entries = [json.loads(p.read_text()) for p in cache_dir().glob(sub_batch.KIND + "-*.json")]
    mine = [e for e in entries if e["key"] == sub_batch.cache_key(path, first.spec.shape, 2)]
    assert len(mine) == 1 and mine[0]["value"] == first.engine.sub_batch
    assert set(mine[0]["timings"]) == {str(c) for c in sub_batch.CANDIDATES}
    again = Classifier(path, device="cpu", threads=2, tune="cached")  # reads, never times
    assert again.engine.tuning["sub_batch"].source == "cached" and again.engine.sub_batch == first.engine.sub_batch
    untuned = Classifier(path, device="cpu", threads=2, tune="off")
    assert untuned.engine.tuning["sub_batch"].source == "default" and untuned.engine.sub_batch is None

"""Cache-sized sub-batches (runtime/sub_batches.py): each core's shard runs in calls of the size timed fastest
on this machine. Same scores in the same order at every size; the choice is the measured fastest, cached per
model and machine, and a heavy model is not timed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgecls.runtime import Classifier
from edgecls.runtime import sub_batches
from edgecls.runtime.inference import ShardedRunner
from edgecls.runtime.machine_cache import cache_dir


def test_cut_keeps_order_and_call_sizes():
    calls = []

    def run(b):
        calls.append(len(b))
        return b * 2

    x = np.arange(70)
    assert np.array_equal(sub_batches.cut(run, x, 32), x * 2) and calls == [32, 32, 6]
    calls.clear()
    assert np.array_equal(sub_batches.cut(run, x, None), x * 2) and calls == [70]


def test_best_size_is_the_fastest_and_the_largest_means_whole():
    assert sub_batches.best_size({128: 3.0, 64: 2.0, 32: 1.0, 16: 1.5, 8: 2.5}) == 32
    assert sub_batches.best_size({128: 1.0, 64: 2.0, 32: 3.0, 16: 4.0, 8: 5.0}) is None
    assert sub_batches.best_size({128: 1.02, 64: 1.0, 32: 1.1, 16: 1.2, 8: 1.3}) is None  # inside the noise margin
    assert sub_batches.best_size({}) == sub_batches.SMALLEST  # heavy: not timed


def test_timing_picks_the_size_that_really_is_faster():
    """A fake engine with a fixed per-call cost and a per-image cost that grows past 32 images (out of
    cache): the timed choice must be 32."""
    import time

    def run_at(size):
        images, size = 256, size or 256
        for start in range(0, images, size):
            n = min(size, images - start)
            time.sleep(0.0004 + n * (0.00001 if n <= 32 else 0.00003))

    per_image = sub_batches.time_sizes(run_at, 256, budget_s=0.2)
    assert sub_batches.best_size(per_image) == 32, per_image


def test_a_heavy_model_is_not_timed():
    import time

    calls = []

    def run_at(size):
        calls.append(size)
        time.sleep(sub_batches.HEAVY_CALL_S)

    assert sub_batches.time_sizes(run_at, 256) == {} and calls == [None, None]


@pytest.mark.parametrize("size", [None, 8, 32])
def test_every_size_gives_the_same_scores(artifacts_root, mnist, size):
    path = artifacts_root / "fashion" / "fashion.int8.onnx"
    clf = Classifier(path, device="cpu", threads=2)
    plain = Classifier(path, device="cpu", threads=1)  # never splits
    clf._sharded.sub_batch = size
    x = mnist.test.x[:150]  # any 28x28 grey images do
    assert np.allclose(clf.run(x), plain.run(x), atol=1e-6)


def test_first_big_batch_measures_once_and_caches(artifacts_root, mnist):
    path = artifacts_root / "mnist" / "mnist.int8.onnx"
    clf = Classifier(path, device="cpu", threads=2)
    runner = clf._sharded
    assert runner.sub_batch == "auto"
    clf.run(mnist.test.x[:64])
    assert runner.sub_batch in (None, *sub_batches.CANDIDATES)
    entries = [json.loads(p.read_text()) for p in cache_dir().glob(sub_batches.CACHE_PREFIX + "*.json")]
    mine = [e for e in entries if e["key"] == sub_batches.cache_key(path, (28, 28, 1), 2)]
    assert len(mine) == 1 and mine[0]["size"] == runner.sub_batch
    assert set(mine[0]["per_image_us"]) == {str(c) for c in sub_batches.CANDIDATES}
    # a second runner reads the cache instead of timing
    fresh = ShardedRunner.for_model(path, "CPUExecutionProvider", 2)
    fresh._ready(mnist.test.x[:64], lambda b: (_ for _ in ()).throw(AssertionError("timed again")))
    assert fresh.sub_batch == runner.sub_batch

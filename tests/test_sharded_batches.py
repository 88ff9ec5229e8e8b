"""Big CPU batches are cut into one shard per core, each run by a one-thread session (runtime/engine.py
ShardedRunner): same scores as one plain session.run in the same order, small batches untouched, and safe when
many threads call at once. (A model with a fixed batch axis is refused when it is loaded, so it never reaches a
split.)"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from edgecls.runtime import Classifier


def _plain(clf, pixels):
    from edgecls.runtime.heads import to_scores
    from edgecls.runtime.preprocess import to_batch

    session = clf._engine.session
    return to_scores(session.run(None, {session.get_inputs()[0].name: to_batch(pixels, clf.spec)})[0], clf.output)


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_big_batch_is_split_per_core_and_keeps_its_order(mnist, variant):
    clf = Classifier("mnist", variant=variant, device="cpu", threads=3, tune="off")
    sharded = clf._engine.runner.sharded
    assert sharded is not None and sharded.shards == 3 and clf.engine.shards == 3
    assert clf.engine.sharded_from == sharded.min_batch
    small = mnist.test.x[: sharded.min_batch - 1]
    assert np.array_equal(clf.run(small), _plain(clf, small)) and sharded._session is None  # not split
    x = mnist.test.x[:200]
    got = clf.run(x)
    assert sharded._session is not None  # split this time
    assert got.shape == (200, 10) and np.allclose(got, _plain(clf, x), atol=1e-5)
    assert np.array_equal(got.argmax(1), _plain(clf, x).argmax(1))
    assert (got.argmax(1) == mnist.test.y[:200]).mean() > 0.97
    # already in the model's layout (float NCHW) takes the same path
    from edgecls.runtime.preprocess import to_batch

    assert np.allclose(clf.run(to_batch(x, clf.spec)), got, atol=1e-6)


def test_one_thread_never_splits():
    clf = Classifier("mnist", variant="int8", device="cpu", threads=1)
    assert clf._engine.runner.sharded is None and clf.engine.shards == 0 and clf.engine.batch1_cores == 1


def test_big_batches_from_many_threads(mnist):
    clf = Classifier("mnist", variant="int8", device="cpu", threads=2)
    batches = [mnist.test.x[i * 100 : (i + 1) * 100] for i in range(6)]
    expected = [_plain(clf, b) for b in batches]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(clf.run, batches * 2))
    for g, e in zip(got, expected * 2):
        assert np.allclose(g, e, atol=1e-5)

"""Batch-1 calls go through preallocated IOBinding buffers (runtime/engine.py BoundRunner): same scores as a plain
session.run, fresh arrays per call, one binding per thread, a plain call when the binding cannot serve; and the
core count they run on is measured when the model loads (runtime/tuning/batch1.py), cached, and said."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from edgecls.runtime import Classifier
from edgecls.runtime.engine import BoundRunner
from edgecls.runtime.tuning import Tuner, batch1


def _plain(clf, pixels):
    from edgecls.runtime.heads import to_scores
    from edgecls.runtime.preprocess import to_batch

    session = clf._engine.session
    return to_scores(session.run(None, {session.get_inputs()[0].name: to_batch(pixels, clf.spec)})[0], clf.output)


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_batch_one_equals_plain_run_and_returns_fresh_arrays(artifacts_root, mnist, variant):
    clf = Classifier("mnist", variant=variant, device="cpu")
    assert isinstance(clf._engine.runner.one, BoundRunner) and clf.engine.batch1_cores in (1, clf.engine.threads)
    first = clf.run(mnist.test.x[:1])
    second = clf.run(mnist.test.x[1:2])
    assert np.allclose(first, _plain(clf, mnist.test.x[:1]), atol=1e-6)  # not overwritten by the second call
    assert np.allclose(second, _plain(clf, mnist.test.x[1:2]), atol=1e-6)
    assert first.argmax() == mnist.test.y[0] and second.argmax() == mnist.test.y[1]


def test_batch_one_from_many_threads(mnist):
    clf = Classifier("mnist", variant="int8", device="cpu")
    x = mnist.test.x[:64]
    expected = _plain(clf, x)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: clf.run(x[i : i + 1])[0], list(range(len(x))) * 4))
    assert np.allclose(np.stack(got), np.concatenate([expected] * 4), atol=1e-6)


def test_binding_failure_falls_back_to_plain_run(mnist):
    clf = Classifier("mnist", variant="fp32", device="cpu")

    class Broken:
        def run(self, batch):
            raise RuntimeError("binding unusable")

    clf._engine.runner.one = Broken()
    assert np.allclose(clf.run(mnist.test.x[:1]), _plain(clf, mnist.test.x[:1]), atol=1e-6)
    assert clf._engine.runner.one is None  # not tried again


def test_core_count_is_the_measured_faster_cached_and_reused(tmp_path, monkeypatch):
    """A fake pair where one way really is slower: the faster is chosen, cached, read back without timing;
    tune="cached" only reads, tune="off" never looks; one core must win by MARGIN."""
    import time

    monkeypatch.setenv("EDGECLS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(batch1, "HEAVY_CALL_S", 10.0)  # a busy machine's sleep overshoots; heavy has its own test
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model bytes")

    def slow(_):
        time.sleep(0.0003)

    def fast(_):
        pass

    def untouched(_):
        raise AssertionError("cached: must not be timed again")

    one = np.zeros((1, 1, 4, 4), np.float32)
    assert batch1.decide(Tuner("cached"), model, 2, untouched, lambda: untouched, one).source == "default"
    first = batch1.decide(Tuner(), model, 2, slow, lambda: fast, one)
    assert (first.value, first.source) == ("one", "measured") and set(first.timings) == {"all_us", "one_us"}
    assert batch1.decide(Tuner(), model, 4, fast, lambda: slow, one).value == "all"  # another key
    again = batch1.decide(Tuner("cached"), model, 2, untouched, lambda: untouched, one)
    assert (again.value, again.source, again.timings) == ("one", "cached", first.timings)
    assert batch1.decide(Tuner("off"), model, 2, untouched, lambda: untouched, one).value == batch1.DEFAULT
    assert batch1.best({"all": 1.02, "one": 1.0}) == "all"  # inside the noise margin
    assert batch1.best({"all": 1.2, "one": 1.0}) == "one"


def test_a_heavy_model_keeps_all_cores_without_building_the_one_core_session(tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("EDGECLS_CACHE_DIR", str(tmp_path))
    model = tmp_path / "m.onnx"
    model.write_bytes(b"heavy")

    def heavy(_):
        time.sleep(batch1.HEAVY_CALL_S * 2)

    def never():
        raise AssertionError("the one-core way must not be built for a heavy model")

    assert batch1.decide(Tuner(), model, 2, heavy, never, np.zeros((1, 1), np.float32)).value == "all"


def test_either_core_count_gives_the_same_scores(mnist):
    """Whichever way the load-time timing picks, the scores are those of a plain run, and both ways agree."""
    from edgecls.runtime.preprocess import to_batch

    clf = Classifier("mnist", variant="int8", device="cpu", threads=2)
    runner = clf._engine.runner
    x = mnist.test.x[:8]
    got = np.concatenate([clf.run(x[i : i + 1]) for i in range(len(x))])
    assert np.allclose(got, _plain(clf, x), atol=1e-6)
    names = (clf._engine.session.get_inputs()[0].name, clf._engine.session.get_outputs()[0].name)
    one_core = BoundRunner(runner.sharded.session(), names, clf.spec.shape, len(clf.labels))
    all_cores = BoundRunner(clf._engine.session, names, clf.spec.shape, len(clf.labels))
    for i in range(len(x)):
        one = to_batch(x[i : i + 1], clf.spec)
        assert np.allclose(one_core.run(one), all_cores.run(one), atol=1e-6)

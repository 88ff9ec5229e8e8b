"""Batch-1 calls go through preallocated IOBinding buffers (runtime/inference.py): same scores as a plain
session.run, fresh arrays per call, one binding per thread, and a plain call when the binding cannot serve."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from edgecls.runtime import Classifier


def _plain(clf, pixels):
    from edgecls.runtime.heads import to_scores
    from edgecls.runtime.preprocess import to_batch

    return to_scores(clf._session.run(None, {clf._input: to_batch(pixels, clf.spec)})[0], clf.output)


def test_batch_one_equals_plain_run_and_returns_fresh_arrays(artifacts_root, mnist):
    for variant in ("fp32", "int8"):
        clf = Classifier(artifacts_root / "mnist" / f"mnist{'.int8' if variant == 'int8' else ''}.onnx", device="cpu")
        assert clf._single is not None
        first = clf.run(mnist.test.x[:1])
        second = clf.run(mnist.test.x[1:2])
        assert np.array_equal(first, _plain(clf, mnist.test.x[:1]))  # not overwritten by the second call
        assert np.array_equal(second, _plain(clf, mnist.test.x[1:2]))
        assert first.argmax() == mnist.test.y[0] and second.argmax() == mnist.test.y[1]


def test_batch_one_from_many_threads(artifacts_root, mnist):
    clf = Classifier(artifacts_root / "mnist" / "mnist.int8.onnx", device="cpu")
    x = mnist.test.x[:64]
    expected = _plain(clf, x)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: clf.run(x[i : i + 1])[0], list(range(len(x))) * 4))
    assert np.allclose(np.stack(got), np.concatenate([expected] * 4), atol=1e-6)


def test_binding_failure_falls_back_to_plain_run(artifacts_root, mnist):
    clf = Classifier(artifacts_root / "mnist" / "mnist.onnx", device="cpu")

    class Broken:
        def run(self, batch):
            raise RuntimeError("binding unusable")

    clf._single = clf._batch1 = Broken()  # the runner batch 1 was measured fastest with
    assert np.array_equal(clf.run(mnist.test.x[:1]), _plain(clf, mnist.test.x[:1]))
    assert clf._single is None and clf._batch1 is None  # not tried again


def test_batch_one_core_count_is_the_measured_faster_and_cached(tmp_path, monkeypatch):
    """runtime/batch1_threads.py: a fake pair where one way really is slower; the faster is chosen, written to
    the cache and read back without timing again; one core must win by MARGIN."""
    import time

    from edgecls.runtime import batch1_threads

    monkeypatch.setenv("EDGECLS_CACHE_DIR", str(tmp_path))
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model bytes")

    def slow(_):
        time.sleep(0.0003)

    def fast(_):
        pass

    one = np.zeros((1, 1, 4, 4), np.float32)
    assert batch1_threads.choose(model, 2, True, slow, lambda: fast, one) == "one"
    assert batch1_threads.choose(model, 4, True, fast, lambda: slow, one) == "all"  # another key

    def untouched(_):
        raise AssertionError("cached: must not be timed again")

    assert batch1_threads.choose(model, 2, True, untouched, lambda: untouched, one) == "one"
    assert batch1_threads.best({"all": 1.02, "one": 1.0}) == "all"  # inside the noise margin
    assert batch1_threads.best({"all": 1.2, "one": 1.0}) == "one"


def test_a_heavy_model_keeps_all_cores_without_building_the_one_core_session(tmp_path, monkeypatch):
    import time

    from edgecls.runtime import batch1_threads

    monkeypatch.setenv("EDGECLS_CACHE_DIR", str(tmp_path))

    def heavy(_):
        time.sleep(batch1_threads.HEAVY_CALL_S * 2)

    def never():
        raise AssertionError("the one-core way must not be built for a heavy model")

    assert batch1_threads.choose(None, 2, True, heavy, never, np.zeros((1, 1), np.float32)) == "all"


def test_batch_one_on_either_core_count_gives_the_same_scores(artifacts_root, mnist):
    """Whichever way the first call's timing picks, the scores are those of a plain run, and both ways agree."""
    from edgecls.runtime.inference import SingleImageRunner
    from edgecls.runtime.preprocess import to_batch

    clf = Classifier(artifacts_root / "mnist" / "mnist.int8.onnx", device="cpu", threads=2)
    x = mnist.test.x[:8]
    got = np.concatenate([clf.run(x[i : i + 1]) for i in range(len(x))])
    assert clf._batch1 is clf._single or clf._batch1._session is clf._sharded.session()  # chosen on call 1
    assert np.allclose(got, _plain(clf, x), atol=1e-6)
    one_core = SingleImageRunner(clf._sharded.session(), clf._input, clf._output, clf.spec.shape, len(clf.labels))
    for i in range(len(x)):
        assert np.allclose(one_core.run(to_batch(x[i : i + 1], clf.spec)), clf._single.run(to_batch(x[i : i + 1], clf.spec)),
                           atol=1e-6)

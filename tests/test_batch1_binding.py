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

    clf._single = Broken()
    assert np.array_equal(clf.run(mnist.test.x[:1]), _plain(clf, mnist.test.x[:1]))
    assert clf._single is None  # not tried again

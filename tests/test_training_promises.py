"""The training promises on a tiny model and a tiny synthetic data set (seconds, no data set on disk):
the best epoch is the one restored and shipped; an interrupted run resumes where it stopped; --fresh starts
over; metrics.json / history.json / model.keras survive an interrupted write."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from edgecls.keras_files import load_keras_model  # noqa: E402
from edgecls.runtime.store import ModelFolder  # noqa: E402
from edgecls.data.types import Dataset, Split  # noqa: E402
from edgecls.runtime import atomic  # noqa: E402
from edgecls.runtime.spec import InputSpec  # noqa: E402
from edgecls.zoo.registry import ModelSpec, TrainConfig  # noqa: E402

pytestmark = pytest.mark.slow  # each test trains (a few seconds each)
SPEC = InputSpec(16, 16, 1)


def _build(spec: InputSpec, k: int):
    import keras
    from keras import layers

    inputs = keras.Input((spec.height, spec.width, spec.channels))
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.Conv2D(4, 3, activation="relu")(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(k, activation="softmax")(x))


TINY = ModelSpec(name="tiny", dataset="synthetic", role="edge", summary="conv4 + dense", build=_build,
                 train=TrainConfig(epochs=3, batch_size=32, learning_rate=1e-2, val_fraction=0.25))


def _split(n: int, seed: int) -> Split:
    """Class c is a bright band at rows 5c..5c+3 over dark noise: learnt in one epoch."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.integers(0, 60, (n, 16, 16, 1), dtype=np.uint8)
    for i, c in enumerate(y):
        x[i, 5 * c : 5 * c + 4] = rng.integers(180, 256, (4, 16, 1), dtype=np.uint8)
    return Split(x, y.astype(np.int64))


@pytest.fixture(scope="module")
def data() -> Dataset:
    return Dataset(name="synthetic", classes=("top", "middle", "bottom"), input_spec=SPEC, train=_split(240, 1),
                   test=_split(60, 2), source="generated in the test")


def _callback(**hooks):
    import keras

    class Hook(keras.callbacks.Callback):
        pass

    for name, fn in hooks.items():
        setattr(Hook, name, lambda self, epoch, logs=None, fn=fn: fn(self.model, epoch))
    return Hook()


def _train(data, art, **kw):
    from edgecls.training.trainer import train_model

    logs: list[str] = []
    result = train_model(TINY, data, art, verbose=0, on_log=logs.append, **kw)
    return result, logs


def _same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_the_best_epoch_is_restored_and_shipped(tmp_path, data):
    """The last epoch is sabotaged (weights zeroed, learning rate 0): what ships must be the best epoch's weights."""
    weights_after: dict[int, list] = {}

    def sabotage(model, epoch):
        if epoch == 2:
            model.set_weights([np.zeros_like(w) for w in model.get_weights()])
            model.optimizer.learning_rate.assign(0.0)

    record = _callback(on_epoch_begin=sabotage,
                       on_epoch_end=lambda model, epoch: weights_after.__setitem__(epoch, model.get_weights()))
    result, _ = _train(data, ModelFolder("tiny", tmp_path / "tiny"), extra_callbacks=[record])
    val = result.history["val_accuracy"]
    best = int(np.argmax(val))
    assert len(val) == 3 and val[2] == pytest.approx(1 / 3) and best < 2  # the zeroed model guesses one class
    assert result.card.training["best_epoch"] == best + 1
    assert result.card.validation["accuracy"] == pytest.approx(val[best])
    shipped = load_keras_model(result.folder.keras_path)
    assert _same(shipped.get_weights(), weights_after[best])
    assert not _same(shipped.get_weights(), weights_after[2])
    from edgecls.exporters.reference import keras_probabilities

    test_acc = float((keras_probabilities(shipped, data.test.x).argmax(1) == data.test.y).mean())
    assert result.card.test.accuracy == pytest.approx(test_acc) and test_acc > 0.9
    assert not (result.folder.train_dir / "best.weights.h5").exists()


def _interrupted_after_first_epoch(data, art) -> list:
    """Train, and kill the run (KeyboardInterrupt) after epoch 1: returns the weights epoch 1 ended with."""
    saved = []

    def stop(model, epoch):
        saved.append(model.get_weights())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train(data, art, epochs=2, extra_callbacks=[_callback(on_epoch_end=stop)])
    assert not art.keras_path.exists() and (art.train_dir / "backup").is_dir()
    return saved[0]


def test_resume_continues_from_the_last_finished_epoch(tmp_path, data):
    art = ModelFolder("tiny", tmp_path / "tiny")
    after_first = _interrupted_after_first_epoch(data, art)
    first_row = (art.train_dir / "history.csv").read_text().splitlines()[1]
    first_wall = json.loads((art.train_dir / "clock.json").read_text())["wall_seconds"]
    started: dict[int, list] = {}
    clock = time.perf_counter()
    result, logs = _train(data, art, epochs=2, extra_callbacks=[
        _callback(on_epoch_begin=lambda model, epoch: started.__setitem__(epoch, model.get_weights()))])
    second_wall = time.perf_counter() - clock
    assert any(m.startswith("resuming tiny") for m in logs)
    assert list(started) == [1]  # only the missing epoch ran
    assert _same(started[1], after_first)  # ... starting from the weights epoch 1 ended with
    assert result.history["epoch"] == [0.0, 1.0] and result.card.training["epochs_run"] == 2
    assert (art.train_dir / "history.csv").read_text().splitlines()[1] == first_row  # epoch 1's record kept
    assert json.loads(art.history_path.read_text())["epoch"] == [0.0, 1.0]
    # the card's wall clock counts both processes: the interrupted one up to its finished epoch, and this one
    training = result.card.training
    assert training["resumed"] and first_wall >= result.history["epoch_seconds"][0]
    assert first_wall + result.history["epoch_seconds"][1] <= training["wall_seconds"] <= first_wall + second_wall + 0.1


def test_fresh_starts_over(tmp_path, data):
    art = ModelFolder("tiny", tmp_path / "tiny")
    clean_start = {}
    _train(data, ModelFolder("clean", tmp_path / "clean"), epochs=1,
           extra_callbacks=[_callback(on_epoch_begin=lambda m, e: clean_start.setdefault(e, m.get_weights()))])
    _interrupted_after_first_epoch(data, art)
    started: dict[int, list] = {}
    result, logs = _train(data, art, epochs=2, fresh=True, extra_callbacks=[
        _callback(on_epoch_begin=lambda model, epoch: started.__setitem__(epoch, model.get_weights()))])
    assert not any("resuming" in m for m in logs)
    assert list(started) == [0, 1]  # every epoch ran again
    assert not result.card.training["resumed"]
    assert _same(started[0], clean_start[0])  # from the seeded initial weights, not the interrupted run's
    assert result.history["epoch"] == [0.0, 1.0]  # no stale rows from the interrupted run


def test_a_finished_run_is_not_resumed(tmp_path, data):
    art = ModelFolder("tiny", tmp_path / "tiny")
    first, _ = _train(data, art, epochs=1)
    again, logs = _train(data, art, epochs=1)
    assert not any("resuming" in m for m in logs)
    assert again.history["epoch"] == [0.0]
    assert again.history["loss"] == pytest.approx(first.history["loss"], rel=1e-5)  # seeded: the same run again


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data) -> Path:
    """A completed run's artifacts, to be overwritten by a second run whose writes fail."""
    art = ModelFolder("tiny", tmp_path_factory.mktemp("done") / "tiny")
    _train(data, art, epochs=1)
    return art.directory


@pytest.mark.parametrize("victim", ["model.keras", "history.json", "metrics.json"])
def test_interrupted_artifact_write_keeps_the_previous_file(tmp_path, data, finished, monkeypatch, victim):
    import shutil

    directory = tmp_path / "tiny"
    shutil.copytree(finished, directory)
    before = {name: (directory / name).read_bytes() for name in ("model.keras", "history.json", "metrics.json")}
    real_replace = atomic.os.replace

    def replace(src, dst):
        if Path(dst).name == victim:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)  # the os module: covers Keras's save path too
    with pytest.raises(OSError, match="No space left"):
        _train(data, ModelFolder(directory.name, directory), epochs=2)
    monkeypatch.undo()
    assert (directory / victim).read_bytes() == before[victim]
    order = ["model.keras", "history.json", "metrics.json"]
    for name in order[order.index(victim):]:  # nothing after the failure was written either
        assert (directory / name).read_bytes() == before[name]
    for name in order[: order.index(victim)]:  # what came before was written whole
        assert (directory / name).read_bytes() != before[name]
    if victim != "model.keras":
        load_keras_model(directory / "model.keras")
    json.loads((directory / "history.json").read_text())
    json.loads((directory / "metrics.json").read_text())

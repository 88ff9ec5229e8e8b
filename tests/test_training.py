"""A short real training run on real data: loss falls, artifacts are written, reload is exact, resume works."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgecls.keras_files import load_keras_model
from edgecls.runtime.store import ModelFolder
from edgecls.zoo import get_model_spec


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist):
    from edgecls.training.trainer import train_model

    art = ModelFolder("mnist", tmp_path_factory.mktemp("art") / "mnist")
    result = train_model(get_model_spec("mnist"), mnist, art, epochs=2, train_limit=4000, verbose=0,
                         on_log=lambda m: None)
    return result


def test_loss_falls_and_accuracy_is_real(trained):
    loss = trained.history["loss"]
    assert len(loss) == 2 and loss[1] < loss[0]
    assert trained.card.test.num_samples == 10000
    assert trained.card.test.accuracy > 0.85  # 4k images, 2 epochs: far above chance (0.10)


def test_artifacts_written_and_reload_exactly(trained, mnist):
    from edgecls.exporters.reference import keras_probabilities

    art = trained.folder
    assert art.trained() and art.history_path.is_file()
    card = json.loads(art.card_path.read_text())
    assert card["classes"] == list("0123456789") and card["input_spec"]["channels"] == 1
    assert card["params"] == 29402 and card["training"]["epochs_run"] == 2
    model = load_keras_model(art.keras_path)
    probs = keras_probabilities(model, mnist.test.x)
    assert np.isclose((probs.argmax(1) == mnist.test.y).mean(), card["test"]["accuracy"], atol=1e-4)
    assert not list(art.directory.glob("*.tmp*"))  # atomic writes leave no temp files


def test_training_is_seeded(trained, mnist, tmp_path):
    from edgecls.training.trainer import train_model

    again = train_model(get_model_spec("mnist"), mnist, ModelFolder("mnist", tmp_path / "mnist"), epochs=2,
                        train_limit=4000, verbose=0, on_log=lambda m: None)
    assert again.history["loss"] == pytest.approx(trained.history["loss"], rel=1e-5)


def test_interrupted_run_resumes_from_last_epoch(tmp_path, mnist):
    import keras

    from edgecls.training.trainer import train_model

    class StopAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    art = ModelFolder("mnist", tmp_path / "mnist")
    spec = get_model_spec("mnist")
    with pytest.raises(KeyboardInterrupt):
        train_model(spec, mnist, art, epochs=2, train_limit=2000, verbose=0, on_log=lambda m: None,
                    extra_callbacks=[StopAfterFirstEpoch()])
    assert not art.keras_path.exists()  # nothing shipped from an unfinished run
    assert (art.train_dir / "backup").is_dir()
    logs: list[str] = []
    result = train_model(spec, mnist, art, epochs=2, train_limit=2000, verbose=0, on_log=logs.append)
    assert any("resuming" in m for m in logs)
    assert result.card.training["epochs_run"] == 2  # epoch 1 from the first run, epoch 2 from this one
    assert art.trained()


def test_unsafe_keras_file_refused(tmp_path):
    """safe_mode: a model whose Lambda layer carries Python bytecode must not load."""
    import keras

    from edgecls.errors import EdgeclsError

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(EdgeclsError, match=r"lambda\.keras: contains a Lambda layer .* refused \(safe mode\).*--unsafe"):
        load_keras_model(path)
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(EdgeclsError, match="junk.keras"):
        load_keras_model(tmp_path / "junk.keras")


def test_cutout_masks_one_seeded_square_per_image():
    import tensorflow as tf

    from edgecls.training.augment import random_cutout

    images = tf.zeros([256, 32, 32, 3])
    seed = tf.constant([3, 4], tf.int64)
    out = random_cutout(images, seed, 8).numpy()
    masked = out[..., 0] == 127.5
    assert (out[..., 1:] == out[..., :1]).all()  # every channel masked alike
    sizes = masked.sum(axis=(1, 2))
    assert sizes.max() == 64 and sizes.min() >= 16  # a full 8x8 square, or one clipped at a corner
    for m in masked[:32]:
        rows, cols = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
        assert m.sum() == len(rows) * len(cols)  # a rectangle: the square, clipped by the border
    assert len({m.tobytes() for m in masked}) > 100  # positions vary per image
    np.testing.assert_array_equal(out, random_cutout(images, seed, 8).numpy())  # seeded


def test_whole_pixel_shift_copies_pixels_exactly_and_reflects_at_the_border():
    """The CIFAR recipe's translation must not blur: every output pixel is an input pixel."""
    import tensorflow as tf

    from edgecls.training.augment import random_affine
    from edgecls.zoo.registry import Augment

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(64, 8, 8, 1)).astype(np.float32)
    seed = tf.constant([5, 6], tf.int64)
    out = random_affine(tf.constant(images), seed, Augment(shift_pixels=2, flip=True, fill="reflect")).numpy()
    shifts = set()
    for src, dst in zip(images[..., 0], out[..., 0]):
        found = None
        for flip in (False, True):
            ref = src[:, ::-1] if flip else src
            padded = np.pad(ref, 2, mode="symmetric")  # TF's REFLECT repeats the edge pixel
            for dy in range(-2, 3):
                for dx in range(-2, 3):
                    if np.array_equal(padded[2 - dy:10 - dy, 2 - dx:10 - dx], dst):
                        found = (flip, dy, dx)
        assert found is not None, "output is not an exact shifted copy of its input"
        shifts.add(found)
    assert len(shifts) > 10  # shifts and flips vary per image
    np.testing.assert_array_equal(out, random_affine(tf.constant(images), seed,
                                                     Augment(shift_pixels=2, flip=True, fill="reflect")).numpy())
    with pytest.raises(ValueError, match="shift_pixels"):
        random_affine(tf.constant(images), seed, Augment(shift_pixels=2, rotation=5))


def test_mixed_precision_trains_and_ships_float32(tmp_path, mnist):
    import dataclasses

    import keras

    from edgecls.training.trainer import precision_policy, train_model

    base = get_model_spec("mnist")
    spec = dataclasses.replace(base, train=dataclasses.replace(base.train, mixed_precision=True))
    policy = precision_policy(spec.train)
    result = train_model(spec, mnist, ModelFolder("mnist", tmp_path / "mnist"), epochs=2, train_limit=4000, verbose=0,
                         on_log=lambda m: None)
    assert result.card.training["precision"] == policy
    assert np.isfinite(result.history["loss"]).all() and result.card.test.accuracy > 0.85  # as float32
    assert keras.mixed_precision.global_policy().name == "float32"  # restored for whatever runs next
    shipped = load_keras_model(result.folder.keras_path)
    assert {layer.dtype_policy.name for layer in shipped.layers} == {"float32"}

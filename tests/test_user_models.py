"""Small Keras models of the kinds users bring, exported as a new user would: `edgecls export model.keras --int8
--fp16 --calib-data photos/` with 120 labelled photos. Every variant ships (exit 0) unless it is measurably worse
than its gate allows; passes on a sample too small to check the accuracy limit say so.

The kinds: a few thousand to a few hundred thousand weights; Rescaling and Normalization layers, channels-first
input, no channel axis, logits, sigmoid (multi-label and binary) and binary-logit heads; random or trained
weights. Photos are MNIST or CIFAR-10 test images written as PNG files, one folder per class."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow")


def _cnn(inputs, x, units: int, activation):
    import keras
    from keras import layers

    x = layers.MaxPooling2D()(layers.Conv2D(16, 3, activation="relu")(x))
    x = layers.GlobalAveragePooling2D()(layers.Conv2D(32, 3, activation="relu")(x))
    return keras.Model(inputs, layers.Dense(units, activation=activation)(x))


def _grey(units: int = 4, activation="softmax", channel_axis: bool = True):
    import keras
    from keras import layers

    inputs = keras.Input((28, 28, 1) if channel_axis else (28, 28))
    x = layers.Rescaling(1 / 255)(inputs)
    return _cnn(inputs, x if channel_axis else layers.Reshape((28, 28, 1))(x), units, activation)


def _rgb(units: int = 4, activation="softmax", scale=None, channels_first: bool = False):
    import keras
    from keras import layers

    inputs = keras.Input((3, 32, 32) if channels_first else (32, 32, 3))
    x = layers.Permute((2, 3, 1))(inputs) if channels_first else inputs
    x = scale(x) if scale is not None else layers.Rescaling(1 / 255)(x)
    return _cnn(inputs, x, units, activation)


def _grey_flatten():
    import keras
    from keras import layers

    inputs = keras.Input((28, 28, 1))
    x = layers.MaxPooling2D()(layers.Conv2D(8, 3, activation="relu")(layers.Rescaling(1 / 255)(inputs)))
    return keras.Model(inputs, layers.Dense(4, activation="softmax")(layers.Flatten()(x)))


def _mlp():
    import keras
    from keras import layers

    inputs = keras.Input((28, 28, 1))
    x = layers.Dense(128, activation="relu")(layers.Flatten()(layers.Rescaling(1 / 255)(inputs)))
    return keras.Model(inputs, layers.Dense(4, activation="softmax")(x))


def _grey_batchnorm():
    import keras
    from keras import layers

    inputs = keras.Input((28, 28, 1))
    x = layers.Rescaling(1 / 255)(inputs)
    for width in (16, 32, 64):
        x = layers.MaxPooling2D()(layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(width, 3, padding="same")(x))))
    return keras.Model(inputs, layers.Dense(4, activation="softmax")(layers.Flatten()(x)))


def _separable():
    import keras
    from keras import layers

    inputs = keras.Input((32, 32, 3))
    x = layers.SeparableConv2D(32, 3, activation="relu")(layers.Rescaling(1 / 127.5, offset=-1)(inputs))
    x = layers.SeparableConv2D(64, 3, activation="relu")(layers.MaxPooling2D()(x))
    return keras.Model(inputs, layers.Dense(4, activation="softmax")(layers.GlobalAveragePooling2D()(x)))


def _rgb_wide():
    import keras
    from keras import layers

    inputs = keras.Input((32, 32, 3))
    x = layers.Rescaling(1 / 255)(inputs)
    for width in (32, 64, 128):
        x = layers.MaxPooling2D()(layers.Conv2D(width, 3, activation="relu", padding="same")(x))
    x = layers.Dense(64, activation="relu")(layers.Flatten()(x))
    return keras.Model(inputs, layers.Dense(4, activation="softmax")(x))


def _normalization():
    from keras import layers

    return _rgb(scale=layers.Normalization(mean=[125.3, 123.0, 113.9], variance=[3900.0, 3800.0, 4400.0]))


KINDS = {  # name: (builder, trained)
    "grey_rescaling": (_grey, False), "grey_rescaling_trained": (_grey, True), "grey_flatten": (_grey_flatten, False),
    "no_channel_axis": (lambda: _grey(channel_axis=False), False), "mlp": (_mlp, False),
    "grey_logits": (lambda: _grey(activation=None), False), "grey_batchnorm": (_grey_batchnorm, False),
    "rgb_normalization": (_normalization, False), "channels_first": (lambda: _rgb(channels_first=True), False),
    "sigmoid_multilabel": (lambda: _rgb(activation="sigmoid"), False),
    "binary_sigmoid": (lambda: _rgb(1, "sigmoid"), False), "binary_logit": (lambda: _rgb(1, None), False),
    "separable": (_separable, False), "rgb_wide": (_rgb_wide, False), "rgb_wide_trained": (_rgb_wide, True),
}


def _photos(root: Path, x: np.ndarray, y: np.ndarray) -> Path:
    for i, (image, label) in enumerate(zip(x, y)):
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(folder / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def datasets(data_dir):
    from edgecls.data import load_dataset

    return {"grey": load_dataset("mnist", data_dir), "rgb": load_dataset("cifar10", data_dir)}


def _user_model(name: str, root: Path, datasets) -> tuple[Path, Path]:
    """model.keras and a folder of 120 labelled photos (30 per class; 60 per class for a binary head)."""
    import keras

    keras.utils.set_random_seed(0)
    builder, trained = KINDS[name]
    model = builder()
    shape = model.inputs[0].shape
    data = datasets["rgb" if 3 in (shape[1], shape[-1]) else "grey"]
    classes = 2 if model.outputs[0].shape[-1] == 1 else 4
    rng = np.random.default_rng(0)
    pick = np.concatenate([rng.permutation(np.flatnonzero(data.test.y == c))[: 120 // classes] for c in range(classes)])
    if trained:
        train = np.flatnonzero(data.train.y < classes)[:4000]
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(data.train.x[train].astype("float32"), data.train.y[train], epochs=2, verbose=0)
    model.save(root / f"{name}.keras")
    return root / f"{name}.keras", _photos(root / "photos", data.test.x[pick], data.test.y[pick])


@pytest.mark.parametrize("name", list(KINDS))
def test_user_model_exports_every_variant(name, tmp_path, datasets):
    from typer.testing import CliRunner

    from edgecls.cli import app

    model, photos = _user_model(name, tmp_path, datasets)
    import keras

    assert 1_000 <= keras.saving.load_model(model).count_params() <= 400_000
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["export", str(model), "--int8", "--fp16", "--calib-data", str(photos),
                                      "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sorted(p.name for p in out.glob("*.onnx")) == sorted(f"{name}{s}" for s in (".onnx", ".int8.onnx",
                                                                                        ".fp16.onnx"))
    shipped = {r["variant"]: r for r in report["variants"] if r["written"]}
    assert set(shipped) in ({"fp32", "int8", "fp16"}, {"fp32", "int8-dynamic", "fp16"})
    int8 = shipped.get("int8") or shipped["int8-dynamic"]
    assert int8["validation"]["samples"] == 60 and shipped["fp16"]["validation"]["samples"] == 120
    # a pass on 60 and 120 images says those samples cannot check a 0.5- or 0.1-point accuracy limit
    assert "60 images cannot show an accuracy drop smaller than 10 pt (limit 0.5 pt)" in " ".join(int8["notes"])
    assert "120 images cannot show an accuracy drop smaller than 5 pt (limit 0.1 pt)" in " ".join(
        shipped["fp16"]["notes"])

"""The registry reproduces the source architectures exactly and every model obeys the pixel contract."""

from __future__ import annotations

import numpy as np
import pytest

from edgecls.data import DATASETS
from edgecls.errors import ModelNotFoundError
from edgecls.zoo import MODELS, get_model_spec


def _build(name):
    spec = get_model_spec(name)
    info = DATASETS[spec.dataset]
    return spec.build(info.input_spec, len(info.classes))


@pytest.mark.parametrize(
    "name, params",
    [("mnist-seed", 225_034), ("mnist-conv28", 615_844), ("fashion-mlp", 636_010), ("cifar10-seed", 122_570)],
)
def test_seed_baselines_match_source_parameter_counts(name, params):
    assert get_model_spec(name).role == "baseline"
    assert _build(name).count_params() == params


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_takes_pixels_and_returns_probabilities(name):
    spec = get_model_spec(name)
    info = DATASETS[spec.dataset]
    model = _build(name)
    assert tuple(model.input_shape[1:]) == info.input_spec.shape
    x = np.random.default_rng(0).integers(0, 256, (3, *info.input_spec.shape)).astype(np.float32)
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (3, len(info.classes))
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5) and (probs >= 0).all()


def test_each_reference_data_set_has_an_edge_model_and_a_baseline():
    edge = {s.dataset for s in MODELS.values() if s.role == "edge"}
    base = {s.dataset for s in MODELS.values() if s.role == "baseline"}
    assert edge == {"mnist", "fashion_mnist", "cifar10", "fer2013"}
    assert {"mnist", "fashion_mnist", "cifar10"} <= base


def test_mac_count_on_a_hand_computed_model():
    import keras
    from keras import layers

    from edgecls.zoo.stats import count_macs

    inputs = keras.Input((10, 10, 3))
    x = layers.Conv2D(4, 3)(inputs)  # 8*8*4 outputs x 27 = 6912
    x = layers.DepthwiseConv2D(3)(x)  # 6*6*4 outputs x 9 = 1296
    x = layers.Flatten()(x)
    outputs = layers.Dense(5)(x)  # 144 x 5 = 720
    assert count_macs(keras.Model(inputs, outputs)) == 6912 + 1296 + 720


def test_unknown_model_lists_known_ones():
    with pytest.raises(ModelNotFoundError, match="mnist-seed"):
        get_model_spec("resnet152")

"""The source studies' architectures, reproduced as baselines users compare against.

Parameter counts match the sources exactly (tests check them). Each takes raw 0-255 pixels
and divides by 255 in its first layer, which is what the sources did before feeding the net.
"""

from __future__ import annotations

from ..runtime.spec import InputSpec
from .registry import ModelSpec, TrainConfig, register


def mnist_seed(spec: InputSpec, num_classes: int):
    import keras
    from keras import layers

    from .blocks import pixels_in

    inputs, x = pixels_in(spec.shape, 1 / 255, 0.0)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="mnist_seed")


def mnist_conv28(spec: InputSpec, num_classes: int):
    import keras
    from keras import layers

    from .blocks import pixels_in

    inputs, x = pixels_in(spec.shape, 1 / 255, 0.0)
    x = layers.Conv2D(28, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Dense(70, activation="relu")(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="mnist_conv28")


def fashion_mlp(spec: InputSpec, num_classes: int):
    import keras
    from keras import layers

    from .blocks import pixels_in

    inputs, x = pixels_in(spec.shape, 1 / 255, 0.0)
    x = layers.Flatten()(x)
    x = layers.Dense(800, activation="relu")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="fashion_mlp")


def cifar10_seed(spec: InputSpec, num_classes: int):
    """The TensorFlow CNN tutorial net: 122,570 parameters."""
    import keras
    from keras import layers

    from .blocks import pixels_in

    inputs, x = pixels_in(spec.shape, 1 / 255, 0.0)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="cifar10_seed")


register(ModelSpec(
    name="mnist-seed", dataset="mnist", role="baseline", build=mnist_seed,
    summary="Conv32-Pool-Conv64-Pool-Dense128-Dropout0.5-Dense10",
    train=TrainConfig(epochs=5, batch_size=32, optimizer="adam", learning_rate=1e-3, val_fraction=0.1),
    source_claim="97-98% test accuracy (Adam, 5 epochs)",
))
register(ModelSpec(
    name="mnist-conv28", dataset="mnist", role="baseline", build=mnist_conv28,
    summary="Conv28-Pool-Dense128-Dropout-Dense70-Dropout-Dense10 (615,844 params)",
    # The source gives the architecture and parameter count, not the recipe: Adam, 10 epochs, batch 64.
    train=TrainConfig(epochs=10, batch_size=64, optimizer="adam", learning_rate=1e-3, val_fraction=0.1),
    source_claim="615,844 parameters (no accuracy stated)",
))
register(ModelSpec(
    name="fashion-mlp", dataset="fashion_mnist", role="baseline", build=fashion_mlp,
    summary="MLP 784-800(relu)-10 softmax, SGD, batch 200",
    # Source: SGD, batch 200; epochs and learning rate unstated: 10 epochs at lr 0.1.
    train=TrainConfig(epochs=10, batch_size=200, optimizer="sgd", learning_rate=0.1, momentum=0.0,
                      val_fraction=0.1),
    source_claim="MLP 784-800-10 trained with SGD (batch 200)",
))
register(ModelSpec(
    name="cifar10-seed", dataset="cifar10", role="baseline", build=cifar10_seed,
    summary="Conv32-Pool-Conv64-Pool-Conv64-Dense64-Dense10 (122,570 params)",
    train=TrainConfig(epochs=10, batch_size=32, optimizer="adam", learning_rate=1e-3, val_fraction=0.1),
    source_claim="~70% test accuracy (Adam, 10 epochs)",
))

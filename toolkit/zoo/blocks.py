"""Layer recipes shared by the edge architectures."""

from __future__ import annotations

import keras
from keras import layers


def conv_bn_relu(x, filters: int, kernel: int = 3, padding: str = "same", name: str = ""):
    """Conv without bias (BN supplies it) + BN + ReLU: folds into a single Conv at export."""
    x = layers.Conv2D(filters, kernel, padding=padding, use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def residual(x, filters: int, name: str):
    """Two conv-bn-relu on an identity shortcut (ResNet-9 style, no projection)."""
    y = conv_bn_relu(x, filters, name=f"{name}a")
    y = conv_bn_relu(y, filters, name=f"{name}b")
    return layers.Add(name=f"{name}_add")([x, y])


def pixels_in(shape: tuple[int, int, int], scale: float, offset: float, name: str = "pixels"):
    """Models take raw 0-255 pixels; normalisation is the model's first layer."""
    inputs = keras.Input(shape=shape, name=name)
    return inputs, layers.Rescaling(scale, offset, name="normalize")(inputs)

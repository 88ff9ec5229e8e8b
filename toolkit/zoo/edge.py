"""The shipped edge models: small, BN-folded conv nets tuned for accuracy per multiply-accumulate.

All convs are bias-free + BatchNorm + ReLU so export folds them into plain Conv nodes,
and all end in a softmax named `probabilities` so every consumer gets probabilities.
"""

from __future__ import annotations

from ..runtime.spec import InputSpec
from ..runtime.transforms import PRESETS
from .registry import Augment, ModelSpec, Realistic, TrainConfig, register


def mnist_edge(spec: InputSpec, num_classes: int):
    """~29k params, ~0.8M MACs: three valid convs shrink 28->3 so the classifier is tiny."""
    import keras
    from keras import layers

    from .blocks import conv_bn_relu, pixels_in

    inputs, x = pixels_in(spec.shape, 1 / 127.5, -1.0)
    x = conv_bn_relu(x, 16, padding="valid", name="c1")  # 26x26
    x = layers.MaxPooling2D(name="p1")(x)  # 13x13
    x = conv_bn_relu(x, 32, padding="valid", name="c2")  # 11x11
    x = layers.MaxPooling2D(name="p2")(x)  # 5x5
    x = conv_bn_relu(x, 64, padding="valid", name="c3")  # 3x3
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.25, name="drop")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="mnist")


def fashion_edge(spec: InputSpec, num_classes: int):
    """VGG-style 28->14->7 with global pooling; width goes where resolution is low."""
    import keras
    from keras import layers

    from .blocks import conv_bn_relu, pixels_in

    inputs, x = pixels_in(spec.shape, 1 / 127.5, -1.0)
    x = conv_bn_relu(x, 32, name="c1")
    x = layers.MaxPooling2D(name="p1")(x)  # 14
    x = conv_bn_relu(x, 64, name="c2")
    x = conv_bn_relu(x, 64, name="c3")
    x = layers.MaxPooling2D(name="p2")(x)  # 7
    x = conv_bn_relu(x, 128, name="c4")
    x = conv_bn_relu(x, 128, name="c5")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.3, name="drop")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="fashion")


def _resnet9(spec: InputSpec, num_classes: int, widths: tuple[int, int, int, int], name: str, stem_pool: bool):
    """ResNet-9 (Page, DAWNBench) at reduced width: conv, [conv, pool, res], [conv, pool], [conv, pool, res].

    The logits get Page's fixed 0.125 multiplier: the residual sums are unnormalised, so without it the
    first logits are large, the first epochs' loss is 4-8 and high learning rates diverge."""
    import keras
    from keras import layers

    from .blocks import conv_bn_relu, pixels_in, residual

    w0, w1, w2, w3 = widths
    inputs, x = pixels_in(spec.shape, 1 / 127.5, -1.0)
    x = conv_bn_relu(x, w0, name="prep")
    if stem_pool:  # large inputs (48x48) drop to 24x24 before the expensive layers
        x = layers.MaxPooling2D(name="prep_pool")(x)
    x = conv_bn_relu(x, w1, name="l1")
    x = layers.MaxPooling2D(name="l1_pool")(x)
    x = residual(x, w1, name="l1_res")
    x = conv_bn_relu(x, w2, name="l2")
    x = layers.MaxPooling2D(name="l2_pool")(x)
    x = conv_bn_relu(x, w3, name="l3")
    x = layers.MaxPooling2D(name="l3_pool")(x)
    x = residual(x, w3, name="l3_res")
    x = layers.GlobalMaxPooling2D(name="gmp")(x)
    x = layers.Dropout(0.2, name="drop")(x)
    # float32 head: under mixed precision the softmax and loss keep full precision.
    x = layers.Dense(num_classes, name="logits", dtype="float32")(x)
    x = layers.Rescaling(0.125, name="logit_scale", dtype="float32")(x)
    outputs = layers.Activation("softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def cifar10_edge(spec: InputSpec, num_classes: int):
    return _resnet9(spec, num_classes, (32, 64, 128, 256), "cifar10", stem_pool=False)


def emotion_edge(spec: InputSpec, num_classes: int):
    return _resnet9(spec, num_classes, (32, 64, 128, 256), "emotion", stem_pool=True)


register(ModelSpec(
    name="mnist", dataset="mnist", role="edge", build=mnist_edge,
    summary="3x conv-BN-ReLU (16-32-64, valid) + pools, Dense10",
    train=TrainConfig(
        epochs=20, batch_size=128, optimizer="adam", learning_rate=3e-3, schedule="cosine",
        warmup_epochs=1, label_smoothing=0.05, val_fraction=0.1,
        augment=Augment(rotation=10, zoom=0.1, shift=0.1),
    ),
    preprocess=PRESETS["digits"], unsure_statistic="midtone_fraction",
    realistic=Realistic(mnist_renderings=24000, font_renderings=18000, outline_share=0.25),
))
register(ModelSpec(
    name="fashion", dataset="fashion_mnist", role="edge", build=fashion_edge,
    summary="5x conv-BN-ReLU (32-64-64-128-128) + pools, GAP, Dense10",
    train=TrainConfig(
        epochs=20, batch_size=128, optimizer="adamw", learning_rate=3e-3, schedule="cosine",
        warmup_epochs=1, weight_decay=5e-4, label_smoothing=0.1, val_fraction=0.1,
        augment=Augment(shift=0.08, flip=True),
    ),
    preprocess=PRESETS["silhouette"], unsure_statistic="midtone_fraction",
))
register(ModelSpec(
    name="cifar10", dataset="cifar10", role="edge", build=cifar10_edge,
    summary="ResNet-9 at half width (32-64-128-256)",
    train=TrainConfig(
        # ResNet-9 recipe (Page, DAWNBench): whole-pixel crop-shifts (no resampling blur), flips, cutout,
        # label smoothing, one warm-up-and-decay cycle. Keras weight decay is decoupled and scaled by the
        # learning rate, so 1e-2 here is the per-step shrink of PyTorch's coupled 5e-4 under momentum 0.9.
        epochs=50, batch_size=512, optimizer="sgd", learning_rate=0.2, schedule="cosine",
        warmup_epochs=5, momentum=0.9, nesterov=True, weight_decay=1e-2, label_smoothing=0.2,
        val_fraction=0.05, augment=Augment(shift_pixels=4, flip=True, fill="reflect", cutout=8),
        mixed_precision=True,
    ),
    preprocess=PRESETS["photo"],
))
register(ModelSpec(
    name="emotion", dataset="fer2013", role="edge", build=emotion_edge,
    summary="ResNet-9 at half width (32-64-128-256), 48x48 grey, early pool",
    train=TrainConfig(
        # The cifar10 recipe's fixes: scaled logits, weight decay at PyTorch-equivalent strength (decoupled
        # 5e-3 = coupled 5e-4 under momentum 0.9), and cutout (random erasing) against FER-2013's overfitting.
        epochs=80, batch_size=256, optimizer="sgd", learning_rate=0.1, schedule="cosine",
        warmup_epochs=3, momentum=0.9, nesterov=True, weight_decay=5e-3, label_smoothing=0.1,
        use_official_val=True, mixed_precision=True,
        augment=Augment(rotation=10, zoom=0.1, shift=0.1, flip=True, fill="nearest", cutout=12),
    ),
    preprocess=PRESETS["photo"],
))

"""tf.data input pipelines: raw pixels in, one-hot labels out, augmentation on training batches only."""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from ..data.types import Split
from ..zoo.registry import Augment
from .augment import random_affine, random_cutout


def make_dataset(
    split: Split,
    num_classes: int,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    augment: Optional[Augment] = None,
) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((split.x, split.y))
    if shuffle:
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)

    def to_model_input(x, y):
        return tf.cast(x, tf.float32), tf.one_hot(y, num_classes)

    ds = ds.map(to_model_input, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if augment is not None:
        # One stateless seed per batch, itself drawn from a seeded stream: reproducible runs,
        # fresh randomness every epoch.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda xy, s: (_augment(xy[0], s, augment), xy[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def _augment(images: tf.Tensor, seed: tf.Tensor, augment: Augment) -> tf.Tensor:
    images = random_affine(images, seed, augment)  # same seed as before cutout existed: old runs reproduce
    if augment.cutout:
        images = random_cutout(images, seed + tf.constant([0, 7919], seed.dtype), augment.cutout)
    return images

"""Batched random affine augmentation with stateless RNG: reproducible for a given seed.

One projective transform per image covers rotation, zoom, shift and flip, so a batch is
augmented by a single fused op rather than a chain of per-image ops.
"""

from __future__ import annotations

import math

import tensorflow as tf

from ..zoo.registry import Augment


def random_affine(images: tf.Tensor, seed: tf.Tensor, aug: Augment) -> tf.Tensor:
    """images: float32 (N,H,W,C); seed: int64 shape (2,)."""
    n = tf.shape(images)[0]
    h = tf.cast(tf.shape(images)[1], tf.float32)
    w = tf.cast(tf.shape(images)[2], tf.float32)
    s = tf.random.experimental.stateless_split(seed, 5)

    def uniform(i: int, limit: float) -> tf.Tensor:
        return tf.random.stateless_uniform([n], s[i], -limit, limit)

    angle = uniform(0, aug.rotation * math.pi / 180.0)
    scale = 1.0 + uniform(1, aug.zoom)
    exact = aug.shift_pixels > 0  # Augment refuses it beside rotation/zoom/shift: nothing else resamples
    if exact:
        def whole_pixels(i: int) -> tf.Tensor:
            p = aug.shift_pixels
            return tf.cast(tf.random.stateless_uniform([n], s[i], -p, p + 1, dtype=tf.int32), tf.float32)

        tx, ty = whole_pixels(2), whole_pixels(3)
    else:
        tx = uniform(2, aug.shift) * w
        ty = uniform(3, aug.shift) * h
    if aug.flip:
        fx = tf.where(tf.random.stateless_uniform([n], s[4]) < 0.5, -1.0, 1.0)
    else:
        fx = tf.ones([n])
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    # Output pixel (x, y) samples input at R(-angle)/scale * (p - c - t), mirrored by fx, + c.
    a0, a1 = fx * cos, fx * sin
    b0, b1 = -sin, cos
    a2 = cx - a0 * (cx + tx) - a1 * (cy + ty)
    b2 = cy - b0 * (cx + tx) - b1 * (cy + ty)
    zeros = tf.zeros([n])
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        # Whole-pixel shifts and mirror flips land on the pixel grid: nearest copies pixels exactly.
        interpolation="NEAREST" if exact else "BILINEAR",
        fill_mode=aug.fill.upper(),
    )


def random_cutout(images: tf.Tensor, seed: tf.Tensor, size: int, fill: float = 127.5) -> tf.Tensor:
    """One size x size square per image set to `fill` (mid-grey: zero after the model's normalisation).

    The square's centre is uniform over the image, so it may be clipped at the border (DeVries & Taylor).
    """
    shape = tf.shape(images)
    n, h, w = shape[0], shape[1], shape[2]
    s = tf.random.experimental.stateless_split(seed, 2)
    cy = tf.random.stateless_uniform([n, 1, 1], s[0], 0, h, dtype=tf.int32)
    cx = tf.random.stateless_uniform([n, 1, 1], s[1], 0, w, dtype=tf.int32)
    ys = tf.range(h)[None, :, None] - (cy - size // 2)
    xs = tf.range(w)[None, None, :] - (cx - size // 2)
    inside = (ys >= 0) & (ys < size) & (xs >= 0) & (xs < size)  # (n, h, w)
    return tf.where(inside[..., None], tf.constant(fill, images.dtype), images)

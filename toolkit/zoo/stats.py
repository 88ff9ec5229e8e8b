"""Size and cost of a Keras model: parameters and multiply-accumulates per image."""

from __future__ import annotations

import math


def count_macs(model) -> int:
    """MACs for one image through the conv and dense layers (the layers that dominate cost)."""
    from keras import layers

    total = 0
    for layer in model.layers:
        out_shape = layer.output.shape
        if isinstance(layer, layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            total += math.prod(out_shape[1:]) * kh * kw
        elif isinstance(layer, layers.SeparableConv2D):
            kh, kw = layer.kernel_size
            in_ch = layer.input.shape[-1]
            spatial = math.prod(out_shape[1:-1])
            total += spatial * in_ch * kh * kw + spatial * in_ch * out_shape[-1]
        elif isinstance(layer, layers.Conv2D):
            kh, kw = layer.kernel_size
            in_ch = layer.input.shape[-1] // layer.groups
            total += math.prod(out_shape[1:]) * kh * kw * in_ch
        elif isinstance(layer, layers.Dense):
            total += math.prod(layer.input.shape[1:]) * out_shape[-1]
    return int(total)


def model_stats(model) -> dict[str, int]:
    return {"params": int(model.count_params()), "macs": count_macs(model)}

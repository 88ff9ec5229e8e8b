"""Coverage matrix: the kinds of Keras models users bring, exported with fp32, fp16 and int8.

Random weights and small inputs keep each row to seconds. Every row: fp32 matches the model's own
outputs (<= 1e-4 on the per-label scores, 100% top-1), the recorded head is the model's, every written
file passes onnx.checker full_check, and `edgecls infer` classifies PNGs with the exported model.
int8/fp16 accuracy gates are relaxed here (random weights make near-uniform outputs whose top-1 any
rounding flips); their gates are tested on trained models in test_exporters.py.

Set EDGECLS_COVERAGE_TABLE=path.md to write the coverage table (docs/guides/any-keras.md) from the run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecls.exporters.export import ExportJob, run_export
from edgecls.exporters.validate import EvalData
from edgecls.exporters.quantize import QuantOptions
from edgecls.exporters.gates import Gates

RELAXED = Gates(fp16_max_accuracy_drop=100, int8_max_accuracy_drop=100, unlabelled_min_agreement=0.0,
                fp16_min_agreement=0.0, int8_min_agreement=0.0, fp16_max_output_error=1.0,
                int8_max_output_error=1.0, int8_min_size_saving=-100.0)
ROWS: list[dict] = []


def _layers():
    import keras

    keras.utils.set_random_seed(0)
    return keras, keras.layers


def _app(name: str, size: int = 32):
    def build():
        keras, _ = _layers()
        fn = getattr(keras.applications, name)
        return fn(weights=None, input_shape=(size, size, 3), classes=5), {}
    return build


def cnn_sigmoid_multilabel():
    keras, L = _layers()
    i = keras.Input((24, 24, 3))
    x = L.Conv2D(8, 3, activation="relu")(L.Rescaling(1 / 255)(i))
    return keras.Model(i, L.Dense(5, activation="sigmoid")(L.GlobalAveragePooling2D()(x))), {}


def binary_one_unit_sigmoid():
    keras, L = _layers()
    i = keras.Input((24, 24, 3))
    x = L.Conv2D(8, 3, activation="relu")(L.Rescaling(1 / 255)(i))
    return keras.Model(i, L.Dense(1, activation="sigmoid")(L.Flatten()(x))), {"labels": 2}


def logits_head():
    keras, L = _layers()
    i = keras.Input((24, 24, 3))
    x = L.Conv2D(8, 3, activation="relu")(L.Rescaling(1 / 255)(i))
    return keras.Model(i, L.Dense(5)(L.GlobalAveragePooling2D()(x))), {}


def ops_softmax_head():
    keras, L = _layers()
    i = keras.Input((24, 24, 3))
    x = L.Dense(5)(L.Flatten()(L.Rescaling(1 / 255)(i)))
    return keras.Model(i, keras.ops.softmax(x)), {}


def preprocessing_layers():
    keras, L = _layers()
    norm = L.Normalization()
    norm.adapt(np.random.default_rng(0).integers(0, 256, (16, 24, 24, 3)).astype("float32"))
    i = keras.Input((32, 32, 3))
    x = L.CenterCrop(24, 24)(L.Resizing(28, 28)(i))
    x = L.RandomFlip()(norm(x))  # augmentation: inactive in inference
    x = L.Conv2D(8, 3, activation="relu")(L.Rescaling(1.0)(x))
    return keras.Model(i, L.Dense(5, activation="softmax")(L.GlobalAveragePooling2D()(x))), {}


def attention_gelu():
    keras, L = _layers()
    i = keras.Input((24, 24, 3))
    x = L.Conv2D(16, 4, strides=4)(L.Rescaling(1 / 255)(i))
    x = L.Reshape((36, 16))(x)
    y = L.LayerNormalization()(x)
    x = x + L.MultiHeadAttention(2, 8)(y, y)
    x = x + L.Dense(16)(L.Dense(32, activation="gelu")(L.LayerNormalization()(x)))
    return keras.Model(i, L.Dense(5, activation="softmax")(L.GlobalAveragePooling1D()(x))), {}


def nested_model():
    keras, L = _layers()
    backbone = keras.Sequential([keras.Input((24, 24, 3)), L.Rescaling(1 / 255), L.Conv2D(8, 3, activation="relu"),
                                 L.GlobalAveragePooling2D()], name="backbone")
    head = keras.Sequential([keras.Input((8,)), L.Dense(5, activation="sigmoid")], name="head")
    i = keras.Input((24, 24, 3))
    return keras.Model(i, head(backbone(i))), {}


def channels_first():
    keras, L = _layers()
    i = keras.Input((3, 24, 24))
    x = L.Conv2D(8, 3, activation="relu", data_format="channels_first")(L.Rescaling(1 / 255)(i))
    x = L.GlobalAveragePooling2D(data_format="channels_first")(x)
    return keras.Model(i, L.Dense(5, activation="softmax")(x)), {}


def no_channel_axis():
    keras, L = _layers()
    i = keras.Input((28, 28))
    x = L.Dense(16, activation="relu")(L.Flatten()(L.Rescaling(1 / 255)(i)))
    return keras.Model(i, L.Dense(5, activation="softmax")(x)), {}


def dynamic_spatial_size():
    keras, L = _layers()
    i = keras.Input((None, None, 3))
    x = L.Conv2D(8, 3, activation="relu")(L.Rescaling(1 / 255)(i))
    return keras.Model(i, L.Dense(5, activation="softmax")(L.GlobalMaxPooling2D()(x))), {"image_size": (24, 24)}


def grouped_conv():
    keras, L = _layers()
    i = keras.Input((24, 24, 3))
    x = L.Conv2D(8, 1)(L.Rescaling(1 / 255)(i))
    x = L.Conv2D(8, 3, groups=8, padding="same")(x)  # ConvNeXt's depthwise conv is this
    x = L.Conv2D(8, 3, groups=2, activation="relu")(x)
    return keras.Model(i, L.Dense(5, activation="softmax")(L.GlobalAveragePooling2D()(x))), {}


FAST = {
    "CNN, sigmoid multi-label": cnn_sigmoid_multilabel,
    "binary, one sigmoid unit": binary_one_unit_sigmoid,
    "logits (no activation)": logits_head,
    "keras.ops.softmax head": ops_softmax_head,
    "Resizing, CenterCrop, adapted Normalization, RandomFlip": preprocessing_layers,
    "MultiHeadAttention, LayerNormalization, gelu": attention_gelu,
    "nested models": nested_model,
    "channels_first": channels_first,
    "no channel axis (28, 28)": no_channel_axis,
    "dynamic size (None, None, 3) + --image-size": dynamic_spatial_size,
    "grouped Conv2D (groups=C and groups=2)": grouped_conv,
    "MobileNetV3Small": _app("MobileNetV3Small"),
}
SLOW = {  # keras.applications families: 0.5-2 minutes each on a loaded 2-core machine, so behind the marker
    "EfficientNetB0 (Rescaling + adapted Normalization inside)": _app("EfficientNetB0"),
    "MobileNet": _app("MobileNet"),
    "MobileNetV2": _app("MobileNetV2"),
    "MobileNetV3Large": _app("MobileNetV3Large"),
    "EfficientNetV2B0": _app("EfficientNetV2B0"),
    "ResNet50": _app("ResNet50"),
    "ResNet50V2": _app("ResNet50V2"),
    "DenseNet121": _app("DenseNet121"),
    "NASNetMobile": _app("NASNetMobile"),
    "ConvNeXtTiny": _app("ConvNeXtTiny"),
    "Xception": _app("Xception", 71),
}
EXPECTED_OUTPUT = {"CNN, sigmoid multi-label": "multilabel", "binary, one sigmoid unit": "binary",
                   "logits (no activation)": "logits", "nested models": "multilabel"}


def export_row(name: str, build, tmp_path: Path) -> dict:
    import onnx
    from typer.testing import CliRunner

    from edgecls.cli import app

    start = time.perf_counter()
    model, opts = build()
    n_labels = opts.get("labels", int(model.outputs[0].shape[-1]))
    from edgecls.exporters.convert import model_input

    spec = model_input(model, opts.get("image_size")).spec
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (48, spec.height, spec.width, spec.channels), dtype=np.uint8)
    job = ExportJob(model=model, name="m", labels=tuple(f"c{i}" for i in range(n_labels)), out_dir=tmp_path,
                    eval_data=EvalData(x[16:], None, "random pixels"), calib_pixels=x[:16],
                    variants=("fp32", "fp16", "int8"), quant=QuantOptions(mode="static", calib_size=16),
                    gates=RELAXED, image_size=opts.get("image_size"), measure_speed=False)
    report = run_export(job)
    fp32 = report["variants"][0]["validation"]
    assert fp32["max_abs_diff"] <= 1e-4 and fp32["top1_agreement"] == 1.0, fp32
    files = sorted(tmp_path.glob("m*.onnx"))
    assert [f.name for f in files] == ["m.fp16.onnx", "m.int8.onnx", "m.onnx"], report["variants"]
    for f in files:
        onnx.checker.check_model(onnx.load(str(f)), full_check=True)
    images = tmp_path / "images"
    images.mkdir()
    for k in range(2):
        Image.fromarray(x[k, ..., 0] if spec.channels == 1 else x[k]).save(images / f"{k}.png")
    result = CliRunner().invoke(app, ["infer", str(images), "--model", str(tmp_path / "m.onnx"), "--json",
                                      "--workers", "1"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert len(printed if isinstance(printed, list) else printed["predictions"]) == 2
    int8 = report["variants"][-1]
    return {"model": name, "output": report["output"], "fp32_max_abs_diff": fp32["max_abs_diff"],
            "fp16_max_abs_diff": report["variants"][1]["validation"]["max_abs_diff"],
            "int8_agreement": int8["validation"]["top1_agreement"], "seconds": time.perf_counter() - start}


@pytest.mark.parametrize("name", list(FAST))
def test_matrix(name, tmp_path):
    row = export_row(name, FAST[name], tmp_path)
    if name in EXPECTED_OUTPUT:
        assert row["output"] == EXPECTED_OUTPUT[name]
    ROWS.append(row)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SLOW))
def test_matrix_keras_applications(name, tmp_path):
    row = export_row(name, SLOW[name], tmp_path)
    assert row["output"] == "probabilities"
    ROWS.append(row)


def teardown_module(module) -> None:
    target = os.environ.get("EDGECLS_COVERAGE_TABLE")
    if not target or not ROWS:
        return
    lines = ["| model | output | fp32 max abs diff | fp16 max abs diff | int8 top-1 agreement (random weights) | s |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in ROWS:
        lines.append(f"| {r['model']} | {r['output']} | {r['fp32_max_abs_diff']:.1e} | {r['fp16_max_abs_diff']:.1e} | "
                     f"{r['int8_agreement'] * 100:.0f}% | {r['seconds']:.0f} |")
    Path(target).write_text("\n".join(lines) + "\n")

"""Any Keras model a user brings: head meaning kept end to end, clear errors, int8 that is honest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgecls.exporters.export import ExportJob, run_export
from edgecls.exporters.validate import EvalData
from edgecls.exporters.errors import ExportError, GateError
from edgecls.exporters.quantize import QuantOptions
from edgecls.runtime import Classifier, InputSpec
from edgecls.runtime.metadata import ModelInfo


def _onnx_head(path: Path, weight: np.ndarray, kind: str, labels: tuple[str, ...]) -> Path:
    """A 2x2 grey 'image' model: flatten -> MatMul(weight); metadata says what the output is."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    spec = InputSpec(2, 2, 1, layout="NCHW")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["pixels"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["probabilities"])],
        "g", [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 1, 2, 2])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", weight.shape[1]])],
        [numpy_helper.from_array(weight.astype(np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, ModelInfo(name="h", variant="fp32", labels=labels, input_spec=spec,
                                            output=kind).to_metadata())
    onnx.save(model, str(path))
    return path


def test_runtime_reads_multilabel_binary_and_logit_heads(tmp_path):
    pixels = np.array([[[1, 0], [0, 0]], [[0, 0], [0, 1]]], np.uint8)[..., None]  # two 2x2 grey images
    # multi-label: scores are used as they are; every label at or over 0.5 applies
    w = np.zeros((4, 3)); w[0] = [0.9, 0.6, 0.1]; w[3] = [0.2, 0.1, 0.7]
    clf = Classifier(_onnx_head(tmp_path / "ml.onnx", w, "multilabel", ("cat", "dog", "car")))
    first, second = clf.predict([pixels[0], pixels[1]], top_k=3)
    assert first.labels == ("cat", "dog") and second.labels == ("car",)
    assert np.allclose(first.probabilities, [0.9, 0.6, 0.1])
    # binary: one unit = P(labels[1]), two classes reported
    w = np.zeros((4, 1)); w[0] = 0.8; w[3] = 0.3
    clf = Classifier(_onnx_head(tmp_path / "bin.onnx", w, "binary", ("no", "yes")))
    scores = clf.run(pixels)
    assert scores.shape == (2, 2) and np.allclose(scores, [[0.2, 0.8], [0.7, 0.3]])
    assert [p.label for p in clf.predict([pixels[0], pixels[1]])] == ["yes", "no"]
    # logits: softmax applied by the runtime, the file holds the model's raw output
    w = np.zeros((4, 2)); w[0] = [2.0, 0.0]
    clf = Classifier(_onnx_head(tmp_path / "lg.onnx", w, "logits", ("a", "b")))
    assert np.allclose(clf.run(pixels[:1]), [[np.exp(2) / (np.exp(2) + 1), 1 / (np.exp(2) + 1)]], atol=1e-6)
    # an unknown kind is a clear error naming the file
    with pytest.raises(Exception, match="edgecls.output 'odds' is unknown"):
        Classifier(_onnx_head(tmp_path / "bad.onnx", w, "odds", ("a", "b")))


def _model(head: str = "softmax", units: int = 3, size: int = 16):
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    i = keras.Input((size, size, 3))
    x = layers.Conv2D(8, 3, activation="relu")(layers.Rescaling(1 / 255)(i))
    x = layers.Dense(units, activation=None if head == "linear" else head)(layers.GlobalAveragePooling2D()(x))
    return keras.Model(i, x)


def _data(n: int = 96, size: int = 16, classes: int = 3):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), rng.integers(0, classes, n)


def test_sigmoid_head_is_kept_not_softmaxed(tmp_path):
    """The bug this replaces: a softmax was appended to every head that was not a softmax layer."""
    model = _model("sigmoid", 4)
    x, _ = _data()
    report = run_export(ExportJob(model=model, name="ml", labels=tuple("abcd"), out_dir=tmp_path,
                                  eval_data=EvalData(x, None, "random"), measure_speed=False))
    assert report["output"] == "multilabel"
    clf = Classifier(tmp_path / "ml.onnx")
    assert clf.info.output == "multilabel"
    keras_out = np.asarray(model.predict(x[:8].astype("float32"), verbose=0))
    assert np.abs(clf.run(x[:8]) - keras_out).max() < 1e-5  # the user's sigmoid scores, not a softmax of them


def test_binary_one_unit_model_reports_two_classes(tmp_path):
    model = _model("sigmoid", 1)
    x, _ = _data()
    with pytest.raises(ExportError, match="needs two labels"):
        run_export(ExportJob(model=model, name="b", labels=("only",), out_dir=tmp_path,
                             eval_data=EvalData(x, None, "random"), measure_speed=False))
    run_export(ExportJob(model=model, name="b", labels=("no", "yes"), out_dir=tmp_path,
                         eval_data=EvalData(x, None, "random"), measure_speed=False))
    clf = Classifier(tmp_path / "b.onnx")
    p = np.asarray(model.predict(x[:4].astype("float32"), verbose=0))[:, 0]
    assert np.allclose(clf.run(x[:4])[:, 1], p, atol=1e-5) and np.allclose(clf.run(x[:4])[:, 0], 1 - p, atol=1e-5)


def test_failing_int8_build_never_blocks_fp32(tmp_path, monkeypatch):
    import edgecls.exporters.builders as builders

    def broken(*a, **k):
        raise RuntimeError("Incomplete symbolic shape inference")

    monkeypatch.setattr(builders, "quantize_static", broken)
    x, y = _data()
    job = ExportJob(model=_model(), name="m", labels=("a", "b", "c"), out_dir=tmp_path, eval_data=EvalData(x, y, "r"),
                    calib_pixels=x[:32], variants=("fp32", "int8", "fp16"), quant=QuantOptions(mode="static"),
                    measure_speed=False)
    with pytest.raises(GateError, match="int8: could not be built: RuntimeError: Incomplete symbolic") as err:
        run_export(job)
    assert (tmp_path / "m.onnx").is_file() and (tmp_path / "m.fp16.onnx").is_file()
    assert not (tmp_path / "m.int8.onnx").exists()
    int8 = next(v for v in err.value.report["variants"] if v["variant"] == "int8")
    assert int8["failure_types"][0]["gate"] == "build" and not int8["written"]


def test_int8_is_scored_apart_from_calibration_and_a_tiny_model_may_ship_int8(tmp_path):
    """Ragged percentile calibration (70 images, batches of 64) works; the images used to calibrate are left out
    of int8's validation; a tiny model's int8 (240 weights: QDQ overhead outweighs what int8 can save) is not
    refused for its size, and the report says its size was not judged."""
    x, y = _data(120)
    job = ExportJob(model=_model(), name="m", labels=("a", "b", "c"), out_dir=tmp_path, eval_data=EvalData(x, y, "r"),
                    calib_pixels=x[:70], variants=("fp32", "int8"),
                    quant=QuantOptions(mode="static", calibration="percentile"), measure_speed=False)
    report = run_export(job)
    int8 = report["variants"][1]
    assert int8["validation"]["samples"] == 50 and int8["validation"]["calibration_overlap_excluded"] == 70
    assert report["variants"][0]["validation"]["samples"] == 120
    assert int8["size_bytes"] > report["variants"][0]["size_bytes"] and int8["written"]
    assert any(note.startswith("size not judged: its 240 quantizable weights") for note in int8["notes"])
    assert json.loads((tmp_path / "m.export.json").read_text()) == json.loads(json.dumps(report))


def _save(model, path: Path) -> Path:
    model.save(path)
    return path


def test_custom_objects_unsafe_and_image_size_from_the_cli(tmp_path):
    """Loading stays safe: unknown custom classes and Lambda code are refused with the flag that fixes it."""
    import keras
    from typer.testing import CliRunner

    from edgecls.cli import app

    module = tmp_path / "my_layers.py"
    module.write_text(
        "import keras\n\n"
        "class Double(keras.layers.Layer):\n"
        "    def call(self, x):\n"
        "        return x * 2.0\n\n"
        "class TinyNet(keras.Model):\n"
        "    def __init__(self, **kw):\n"
        "        super().__init__(**kw)\n"
        "        self.conv = keras.layers.Conv2D(4, 3, activation='relu')\n"
        "        self.pool = keras.layers.GlobalAveragePooling2D()\n"
        "        self.head = keras.layers.Dense(2, activation='softmax')\n"
        "    def call(self, x):\n"
        "        return self.head(self.pool(self.conv(x / 255.0)))\n")
    from edgecls.custom_objects import import_custom_objects

    objects = import_custom_objects(str(module))
    assert set(objects) == {"Double", "TinyNet"}
    i = keras.Input((None, None, 3))
    x = objects["Double"]()(keras.layers.Rescaling(1 / 255)(i))
    custom = _save(keras.Model(i, keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))),
                   tmp_path / "custom.keras")
    sub = objects["TinyNet"]()
    sub(np.zeros((1, 12, 12, 3), "float32"))
    subclassed = _save(sub, tmp_path / "sub.keras")
    lam = keras.Input((8, 8, 3))
    lambda_model = _save(keras.Model(lam, keras.layers.Dense(2, activation="softmax")(
        keras.layers.Flatten()(keras.layers.Lambda(lambda t: t * 0.5)(lam)))), tmp_path / "lam.keras")
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    run = lambda *args: CliRunner().invoke(app, ["export", *map(str, args), "--labels", str(labels)])  # noqa: E731

    def refused(result) -> str:
        """The one-line EdgeclsError the CLI's main() prints (exit 1) instead of a traceback."""
        from edgecls.runtime.errors import EdgeclsError

        assert isinstance(result.exception, EdgeclsError), result.output
        return str(result.exception)

    assert "--custom-objects my_layers.py" in refused(run(custom, "--out", tmp_path / "o1"))
    assert "--image-size" in refused(run(custom, "--custom-objects", module, "--out", tmp_path / "o1"))
    result = run(custom, "--custom-objects", module, "--image-size", "20x24", "--out", tmp_path / "o1")
    assert result.exit_code == 0, result.output
    assert Classifier(tmp_path / "o1" / "custom.onnx").spec.width == 24
    result = run(subclassed, "--custom-objects", module, "--out", tmp_path / "o2")
    assert result.exit_code == 0, result.output
    message = refused(run(lambda_model, "--out", tmp_path / "o3"))
    assert "--unsafe" in message and "safe_mode=False" not in message
    result = run(lambda_model, "--unsafe", "--out", tmp_path / "o3")
    assert result.exit_code == 0, result.output


def _independent_models():
    """User models unlike the coverage matrix's rows (layers, heads and final ops it does not use)."""
    import keras
    from keras import layers as L

    def mixed():
        i = keras.Input((20, 20, 3))
        x = L.Rescaling(1 / 127.5, offset=-1)(i)
        a = L.Activation("swish")(L.BatchNormalization()(L.SeparableConv2D(8, 3, padding="same")(x)))
        b = L.LeakyReLU()(L.DepthwiseConv2D(3, padding="same")(x))
        x = L.AveragePooling2D(2)(L.ZeroPadding2D(1)(L.SpatialDropout2D(0.2)(L.Concatenate()([a, b]))))
        x = L.GlobalMaxPooling2D()(L.UpSampling2D()(L.PReLU()(L.Conv2DTranspose(4, 2, strides=2)(x))))
        return keras.Model(i, L.Softmax()(L.Dense(6)(L.Dropout(0.5)(x)))), 6, "probabilities"

    def binary_logit():
        i = keras.Input((20, 20, 1))
        x = L.Flatten()(L.Conv2D(4, 3, activation="hard_swish")(L.Rescaling(1 / 255)(i)))
        return keras.Model(i, L.Dense(1)(x)), 2, "binary-logit"

    def ops_sigmoid():
        i = keras.Input((20, 20, 3))
        x = L.Conv2D(4, 3, activation="elu")(L.Rescaling(1 / 255)(i))
        x = L.GlobalAveragePooling2D()(L.Permute((2, 1, 3))(x))
        return keras.Model(i, keras.ops.sigmoid(L.Dense(3)(x))), 3, "multilabel"

    def sequential_activation_layer():
        return keras.Sequential([keras.Input((20, 20, 3)), L.Rescaling(1 / 255), L.Conv2D(4, 3, activation="selu"),
                                 L.MaxPooling2D(), L.Flatten(), L.Dense(5), L.Activation("softmax")]), 5, "probabilities"

    def conv1d_over_rows():
        i = keras.Input((20, 20, 3))
        x = L.Conv1D(8, 3, activation="relu")(L.Reshape((18 * 18, 8))(L.Conv2D(8, 3)(i)))
        x = L.UnitNormalization()(L.GlobalAveragePooling1D()(x))
        return keras.Model(i, L.Dense(4, activation="softmax")(x)), 4, "probabilities"

    return {f.__name__: f for f in (mixed, binary_logit, ops_sigmoid, sequential_activation_layer, conv1d_over_rows)}


@pytest.mark.parametrize("name", ["mixed", "binary_logit", "ops_sigmoid", "sequential_activation_layer",
                                  "conv1d_over_rows"])
def test_independent_user_models_export_exactly(name, tmp_path):
    import keras
    import onnx

    from edgecls.exporters.gates import Gates

    keras.utils.set_random_seed(0)
    model, n, want = _independent_models()[name]()
    h, w, c = model.inputs[0].shape[1:]
    x = np.random.default_rng(0).integers(0, 256, (48, h, w, c), dtype=np.uint8)
    relaxed = Gates(fp16_max_accuracy_drop=100, int8_max_accuracy_drop=100, unlabelled_min_agreement=0.0,
                    fp16_min_agreement=0.0, int8_min_agreement=0.0, fp16_max_output_error=1.0,
                int8_max_output_error=1.0, int8_min_size_saving=-100.0)
    report = run_export(ExportJob(model=model, name="u", labels=tuple(map(str, range(n))), out_dir=tmp_path,
                                  eval_data=EvalData(x[16:], None, "random"), calib_pixels=x[:16],
                                  variants=("fp32", "fp16", "int8"), quant=QuantOptions(mode="static"), gates=relaxed,
                                  measure_speed=False))
    assert report["output"] == want
    fp32 = report["variants"][0]["validation"]
    assert fp32["max_abs_diff"] <= 1e-4 and fp32["top1_agreement"] == 1.0
    for f in ("u.onnx", "u.fp16.onnx", "u.int8.onnx"):
        onnx.checker.check_model(onnx.load(str(tmp_path / f)), full_check=True)
    keras_scores = np.asarray(model.predict(x[:4].astype("float32"), verbose=0))
    onnx_scores = Classifier(tmp_path / "u.onnx").run(x[:4])
    if want == "binary-logit":
        keras_scores = 1 / (1 + np.exp(-keras_scores))
        onnx_scores = onnx_scores[:, 1:]
    assert np.abs(onnx_scores - keras_scores).max() < 1e-4

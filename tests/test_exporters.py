"""Keras -> ONNX export on real data: round trips, gates, metadata, atomicity and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecls.exporters.errors import ExportError, GateError
from edgecls.exporters.export import ExportJob, run_export
from edgecls.exporters.gates import Gates
from edgecls.exporters.quantize import QuantOptions
from edgecls.exporters.validate import EvalData
from edgecls.runtime import InputSpec
from edgecls.runtime.inference import run_batches
from edgecls.runtime.metadata import ModelInfo
from edgecls.runtime.session import create_session

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.parent.name for p in (REPO / "artifacts").glob("*/model.keras"))


def _info(path: Path) -> ModelInfo:
    session = create_session(path, "cpu")
    return ModelInfo.from_metadata(session.get_modelmeta().custom_metadata_map, str(path))


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_zoo_model_round_trip(name, tmp_path, data_dir):
    from edgecls.exporting import prepare_job

    job, _ = prepare_job(name, variants=("fp32", "int8"), data_dir=data_dir, out_dir=tmp_path, eval_limit=2000,
                         quant=QuantOptions(mode="static", calib_size=256))
    report = run_export(job)
    assert report["passed"]
    fp32, int8 = report["variants"]
    assert fp32["validation"]["top1_agreement"] == 1.0 and fp32["validation"]["max_abs_diff"] <= 1e-4
    assert int8["validation"]["accuracy_drop_pts"] <= 0.5 and int8["size_bytes"] < fp32["size_bytes"]
    speed = report["int8_speed"]  # measured fp32 vs int8 on this machine, with a plain verdict
    assert speed["fp32"]["latency_ms"] > 0 and speed["int8"]["throughput_ips"] > 0 and "x smaller" in speed["verdict"]
    info = _info(tmp_path / f"{name}.int8.onnx")
    card = json.loads((REPO / "artifacts" / name / "metrics.json").read_text())
    assert info.labels == tuple(card["classes"]) and info.variant == "int8"
    assert info.input_spec.layout == "NCHW" and info.input_spec.height == card["input_spec"]["height"]
    assert info.source_sha256 == card["sha256"] and info.dataset == card["dataset"]
    # int8 is scored only on test images that are not also calibration images (FER has duplicates)
    assert info.validation["samples"] + info.validation["calibration_overlap_excluded"] == 2000
    assert info.quantization["calibration_images"] == 256
    assert json.loads((tmp_path / f"{name}.export.json").read_text())["passed"]


def _small_model(seed: int = 0):
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((28, 28, 1))
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.Conv2D(8, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(3, activation="softmax")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def user_model(tmp_path_factory, mnist):
    """A user's own 3-class model, trained briefly in the test, with a labelled image folder."""
    root = tmp_path_factory.mktemp("user")
    pick = np.flatnonzero(mnist.train.y < 3)[:3000]
    model = _small_model()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(mnist.train.x[pick].astype("float32"), mnist.train.y[pick], epochs=1, verbose=0)
    model.save(root / "digits.keras")
    for label in range(3):
        folder = root / "images" / f"d{label}"
        folder.mkdir(parents=True)
        for i in np.flatnonzero(mnist.test.y == label)[:40]:
            Image.fromarray(mnist.test.x[i, ..., 0]).save(folder / f"{i}.png")
    (root / "labels.txt").write_text("zero\none\ntwo\n")
    return root


def test_user_model_exports_with_cli(user_model):
    from typer.testing import CliRunner

    from edgecls.cli import app

    result = CliRunner().invoke(app, ["export", str(user_model / "digits.keras"), "--int8",
                                      "--calib-data", str(user_model / "images"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [v["variant"] for v in report["variants"]] == ["fp32", "int8"]
    assert report["variants"][0]["validation"]["samples"] == 120
    info = _info(user_model / "digits.int8.onnx")
    assert info.labels == ("d0", "d1", "d2") and info.name == "digits"


def test_labels_file_and_random_validation(user_model, tmp_path):
    from edgecls.exporting import prepare_job

    job, notes = prepare_job(str(user_model / "digits.keras"), variants=("fp32",),
                             labels_file=user_model / "labels.txt", out_dir=tmp_path)
    assert "random" in job.eval_data.description and notes
    run_export(job)
    assert _info(tmp_path / "digits.onnx").labels == ("zero", "one", "two")


def _job(model, mnist, out_dir, **kw) -> ExportJob:
    pick = np.flatnonzero(mnist.test.y < 3)[:300]
    calib = np.flatnonzero(mnist.train.y < 3)[:64]
    return ExportJob(model=model, name="broken", labels=("0", "1", "2"), out_dir=out_dir,
                     eval_data=EvalData(mnist.test.x[pick], mnist.test.y[pick], "mnist 0-2"),
                     calib_pixels=mnist.train.x[calib], **kw)


def test_a_graph_that_differs_from_keras_fails_the_gate(tmp_path, mnist, monkeypatch):
    """Deliberately broken export: the ONNX graph comes from other weights than the Keras model."""
    import edgecls.exporters.export as export_module
    from edgecls.exporters.convert import keras_to_onnx

    good, other = _small_model(0), _small_model(1)
    (tmp_path / "broken.onnx").write_bytes(b"previous artifact")
    monkeypatch.setattr(export_module, "keras_to_onnx", lambda m, spec, **kw: keras_to_onnx(other, spec, **kw))
    with pytest.raises(GateError, match="fp32: .*max abs diff") as err:
        run_export(_job(good, mnist, tmp_path, variants=("fp32", "int8")))
    assert "nothing written" in str(err.value)
    assert (tmp_path / "broken.onnx").read_bytes() == b"previous artifact"  # old artifact untouched
    assert not (tmp_path / "broken.int8.onnx").exists()
    assert not json.loads((tmp_path / "broken.export.json").read_text())["passed"]


def test_int8_gate_failure_keeps_fp32_only(tmp_path, mnist):
    strict = Gates(int8_max_output_error=0.0)  # impossible: int8 must answer exactly like Keras
    with pytest.raises(GateError, match="int8") as err:
        run_export(_job(_small_model(), mnist, tmp_path, variants=("fp32", "int8"), gates=strict,
                        quant=QuantOptions(mode="auto")))
    variants = [v["variant"] for v in err.value.report["variants"]]
    # auto mode: accuracy control (other calibrations, sensitive nodes in float), then dynamic as the last resort
    assert variants[0] == "fp32" and variants[1] == "int8" and variants[-1] == "int8-dynamic"
    control = err.value.report["variants"][-2]["quantization"].get("accuracy_control")
    assert control is not None and not control["passed"] and len(control["attempts"]) >= 3
    assert (tmp_path / "broken.onnx").is_file() and not (tmp_path / "broken.int8.onnx").exists()


def test_interrupted_write_leaves_previous_artifact(tmp_path, mnist, monkeypatch):
    import edgecls.runtime.atomic as atomic

    target = tmp_path / "broken.onnx"
    target.write_bytes(b"previous artifact")

    def interrupted(fh_data, *a, **k):
        raise KeyboardInterrupt

    real_replace = atomic.os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda *a, **k: interrupted(None))
    with pytest.raises(KeyboardInterrupt):
        run_export(_job(_small_model(), mnist, tmp_path))
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert target.read_bytes() == b"previous artifact"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_exported_model_predicts_like_keras(tmp_path, mnist):
    model = _small_model()
    run_export(_job(model, mnist, tmp_path, variants=("fp32", "fp16")))
    x = mnist.test.x[:64]
    ref = np.asarray(model(x.astype("float32")))
    for name in ("broken.onnx", "broken.fp16.onnx"):
        info = _info(tmp_path / name)
        probs = run_batches(create_session(tmp_path / name, "cpu"), x, info.input_spec)
        assert np.abs(probs - ref).max() < (1e-5 if name == "broken.onnx" else 5e-3)


def test_validate_command_rechecks_an_export(tmp_path, user_model):
    from typer.testing import CliRunner

    from edgecls.cli import app

    runner = CliRunner()
    out = tmp_path / "v"
    assert runner.invoke(app, ["export", str(user_model / "digits.keras"), "--int8", "--out", str(out),
                               "--calib-data", str(user_model / "images")]).exit_code == 0
    result = runner.invoke(app, ["validate", str(out / "digits.int8.onnx"), "--keras", str(user_model / "digits.keras"),
                                 "--eval-data", str(user_model / "images"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["validation"]["samples"] == 120


def test_bad_inputs_give_clear_errors(tmp_path, user_model):
    import keras

    from edgecls.errors import DataError
    from edgecls.exporting import prepare_job
    from edgecls.runtime.errors import EdgeclsError

    with pytest.raises(EdgeclsError, match="missing.keras: no such model file"):
        prepare_job(str(tmp_path / "missing.keras"), variants=("fp32",))
    (tmp_path / "fake.keras").write_text("this is not a model")
    with pytest.raises(EdgeclsError, match="fake.keras: cannot load as a Keras model"):
        prepare_job(str(tmp_path / "fake.keras"), variants=("fp32",))
    inputs = keras.Input((10,))
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs)).save(tmp_path / "tabular.keras")
    with pytest.raises(ExportError, match="not an image batch"):
        prepare_job(str(tmp_path / "tabular.keras"), variants=("fp32",))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty folder"):
        prepare_job(str(user_model / "digits.keras"), variants=("int8",), calib_data=tmp_path / "empty")
    (tmp_path / "flat").mkdir()
    Image.new("L", (28, 28)).save(tmp_path / "flat" / "a.png")
    with pytest.raises(DataError, match="unlabelled images"):
        prepare_job(str(user_model / "digits.keras"), variants=("int8",), calib_data=tmp_path / "flat")
    with pytest.raises(ExportError, match="needs calibration images"):
        prepare_job(str(user_model / "digits.keras"), variants=("int8",), labels_file=user_model / "labels.txt")


def test_unsupported_layer_is_named(tmp_path):
    import keras
    import tensorflow as tf

    from edgecls.exporters.convert import image_input_spec, keras_to_onnx

    class Warp(keras.layers.Layer):  # a TF op with no ONNX counterpart
        def call(self, x):
            t = tf.tile(tf.constant([[1.0, 0, 1, 0, 1, 0, 0, 0]]), [tf.shape(x)[0], 1])
            y = tf.raw_ops.ImageProjectiveTransformV3(images=x, transforms=t, output_shape=tf.shape(x)[1:3],
                                                      fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")
            return tf.reshape(y, tf.shape(x))

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.GlobalAveragePooling2D()(Warp(name="warp")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    with pytest.raises(ExportError, match=r"ImageProjectiveTransformV3 \(in warp"):
        keras_to_onnx(model, image_input_spec(model))


def test_cli_gate_failure_exits_nonzero(tmp_path, user_model):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "edgecls", "export", str(user_model / "digits.keras"),
                           "--calib-data", str(user_model / "images"), "--int8", "--max-int8-error", "0",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "validation gate failed" in proc.stderr and "Traceback" not in proc.stdout + proc.stderr  # errors: stderr
    assert (tmp_path / "digits.onnx").is_file() and not (tmp_path / "digits.int8.onnx").exists()
    # the evidence: figure, limit and the images it was measured on (60 of the 120 calibrate, 60 validate)
    assert re.search(r"int8-dynamic: output error [\d.e-]+ > 0 on 60 images", " ".join(proc.stderr.split()))
    # the static attempts and the dynamic fallback ran onnxruntime's quantizer: its chatter stays off the terminal
    assert "Please consider" not in proc.stderr + proc.stdout and "WARNING:root" not in proc.stderr


def test_input_spec_roundtrip():
    spec = InputSpec(48, 48, 1, layout="NCHW")
    info = ModelInfo(name="m", variant="fp32", labels=("a", "b"), input_spec=spec)
    assert ModelInfo.from_metadata(info.to_metadata()) == info


def test_an_int8_option_without_int8_is_an_error_not_ignored(user_model):
    from typer.testing import CliRunner

    from edgecls.cli import app

    result = CliRunner().invoke(app, ["export", str(user_model / "digits.keras"), "--calib-data",
                                      str(user_model / "images"), "--calib-method", "entropy"])
    assert result.exit_code == 1 and isinstance(result.exception, ExportError)  # main() prints it as one line
    assert str(result.exception).startswith("--calib-method is read by int8 only, and this export makes fp32 (add "
                                            "--int8")

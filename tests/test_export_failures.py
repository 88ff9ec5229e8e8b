"""Export and validation failure paths on a tiny Keras model (16x16 grey, 3 classes): seconds, no data set.

Labels are Keras's own predictions, so Keras scores 100% and any change an exported variant makes shows
as an accuracy drop. Variants are broken on purpose by negating the conv weights of the ONNX graph."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow")

from edgecls.exporters import builders  # noqa: E402
from edgecls.exporters import export as export_module  # noqa: E402
from edgecls.exporters.errors import GateError  # noqa: E402
from edgecls.exporters.export import ExportJob, report_path, run_export  # noqa: E402
from edgecls.exporters.gates import Gates  # noqa: E402
from edgecls.exporters.quantize import QuantOptions  # noqa: E402
from edgecls.exporters.validate import EvalData  # noqa: E402
from edgecls.runtime import atomic  # noqa: E402
from edgecls.runtime.metadata import ModelInfo  # noqa: E402
from edgecls.runtime.session import create_session  # noqa: E402

LABELS = ("a", "b", "c")
PREVIOUS = b"previous artifact, must survive"


def tiny_model(seed: int = 0):
    """A conv feature and a Dense head: dynamic int8 quantizes only the Dense (MatMul) weights and leaves the conv
    (the weights `negate_conv` breaks) as it is, so that fallback passes where a broken static int8 fails."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 1))
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.Conv2D(3, 16, padding="valid")(x)  # one 1x1x3 output: the logits
    outputs = layers.Dense(3, activation="softmax", kernel_initializer="identity")(layers.Flatten()(x))
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(7).integers(0, 256, (96, 16, 16, 1), dtype=np.uint8)


@pytest.fixture(scope="module")
def labels(model, pixels):
    from edgecls.exporters.reference import keras_probabilities

    y = keras_probabilities(model, pixels).argmax(1)
    assert len(set(y.tolist())) >= 2, "the tiny model should not predict one class for everything"
    return y


# The Dense head is too small for dynamic int8 to save much (its size is not judged; test_gates_real.py pins the
# size rule); this file is about what ships when gates pass or fail.
ROOMY: dict = {}


def job(model, pixels, labels, out_dir: Path, **kw) -> ExportJob:
    kw.setdefault("gates", Gates(**ROOMY))
    return ExportJob(model=model, name="tiny", labels=LABELS, out_dir=out_dir,
                     eval_data=EvalData(pixels, labels, "synthetic (96 images)"), calib_pixels=pixels[:32],
                     dataset="synthetic", source_sha256="0" * 64, **kw)


def negate_conv(model_bytes: bytes) -> bytes:
    """The same graph with the conv weights negated: valid ONNX, different predictions."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load_from_string(model_bytes)
    weights = max(proto.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    weights.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(weights), weights.name))
    return proto.SerializeToString()


def info(path: Path) -> ModelInfo:
    return ModelInfo.from_metadata(create_session(path, "cpu").get_modelmeta().custom_metadata_map, str(path))


def read_report(out: Path) -> dict:
    return json.loads(report_path(out, "tiny").read_text())


# --- auto fallback ---------------------------------------------------------------------------------------

def test_static_that_passes_ships_without_a_dynamic_attempt(tmp_path, model, pixels, labels):
    # A generous int8 gate: this is about what ships, not about int8 numerics on a given CPU's kernels.
    report = run_export(job(model, pixels, labels, tmp_path, variants=("fp32", "int8"),
                            gates=Gates(int8_max_accuracy_drop=50.0, **ROOMY)))
    assert [v["variant"] for v in report["variants"]] == ["fp32", "int8"]
    assert report["passed"] and all(v["written"] for v in report["variants"])
    assert info(tmp_path / "tiny.int8.onnx").variant == "int8"
    assert info(tmp_path / "tiny.int8.onnx").quantization["method"] == "static"


def break_static_int8(monkeypatch) -> None:
    """Every static int8 build broken: the first attempt and accuracy control's retries alike."""
    import dataclasses

    real_static = builders.quantize_static
    broken = lambda *a, **k: dataclasses.replace(built := real_static(*a, **k), data=negate_conv(built.data))  # noqa: E731
    monkeypatch.setattr(builders, "quantize_static", broken)


def test_auto_fallback_ships_dynamic_when_static_fails(tmp_path, model, pixels, labels, monkeypatch):
    break_static_int8(monkeypatch)
    (tmp_path / "tiny.int8.onnx").write_bytes(PREVIOUS)
    report = run_export(job(model, pixels, labels, tmp_path, variants=("fp32", "int8")))  # no GateError
    fp32, static, dynamic = report["variants"]
    assert (fp32["variant"], static["variant"], dynamic["variant"]) == ("fp32", "int8", "int8-dynamic")
    assert static["failures"] and static["superseded"] and not static["written"] and not static["passed"]
    assert dynamic["passed"] and dynamic["written"] and not dynamic.get("superseded")
    assert dynamic["path"] == static["path"] == "tiny.int8.onnx"  # one slot, the dynamic fills it (relative path)
    assert report["passed"]  # the superseded static attempt does not fail the export
    shipped = info(tmp_path / "tiny.int8.onnx")
    assert shipped.variant == "int8-dynamic" and shipped.quantization["method"] == "dynamic"
    assert read_report(tmp_path) == json.loads(json.dumps(report))  # the report on disk is the one returned


def test_auto_fallback_that_also_fails_ships_no_int8(tmp_path, model, pixels, labels, monkeypatch):
    real_dynamic = builders.quantize_dynamic_int8
    break_static_int8(monkeypatch)
    monkeypatch.setattr(builders, "quantize_dynamic_int8", lambda *a, **k: negate_conv(real_dynamic(*a, **k)))
    (tmp_path / "tiny.int8.onnx").write_bytes(PREVIOUS)
    with pytest.raises(GateError, match=r"tiny: validation gate failed: int8: output error .*; int8-dynamic: "
                                        r"output error .*; written: .*tiny\.onnx$") as err:
        run_export(job(model, pixels, labels, tmp_path, variants=("fp32", "int8")))
    fp32, static, dynamic = err.value.report["variants"]
    assert fp32["written"] and not static["written"] and not dynamic["written"]
    assert not static.get("superseded") and not dynamic.get("superseded")
    # Issue 12 (hardening) changed this on purpose: the variants on disk are one set, so once the new fp32 is
    # written the previous int8 (built from another model, its replacement failed) is removed and listed,
    # never left to run beside a model it was not validated against (was: the previous int8 stays).
    stale = str(tmp_path / "tiny.int8.onnx")
    assert not os.path.lexists(stale)
    assert err.value.report["removed_stale"] == ["tiny.int8.onnx"]  # relative to the report
    assert info(tmp_path / "tiny.onnx").variant == "fp32"
    assert read_report(tmp_path)["passed"] is False
    assert read_report(tmp_path)["removed_stale"] == ["tiny.int8.onnx"]


def test_static_mode_never_falls_back(tmp_path, model, pixels, labels, monkeypatch):
    break_static_int8(monkeypatch)
    with pytest.raises(GateError, match="int8: output error") as err:
        run_export(job(model, pixels, labels, tmp_path, variants=("fp32", "int8"), quant=QuantOptions(mode="static")))
    assert [v["variant"] for v in err.value.report["variants"]] == ["fp32", "int8"]
    assert not (tmp_path / "tiny.int8.onnx").exists()


def test_a_failing_fp16_is_not_written_but_fp32_is(tmp_path, model, pixels, labels, monkeypatch):
    real_fp16 = builders.to_fp16
    monkeypatch.setattr(builders, "to_fp16", lambda b: negate_conv(real_fp16(b)))
    with pytest.raises(GateError, match=r"fp16: output error [\d.]+ > 0\.01 on 96 images .*accuracy drop [\d.]+ pt > "
                                        r"0\.1 pt on 96 images \(95% CI"):
        run_export(job(model, pixels, labels, tmp_path, variants=("fp32", "fp16")))
    assert (tmp_path / "tiny.onnx").is_file() and not (tmp_path / "tiny.fp16.onnx").exists()


def test_fp32_that_fails_writes_no_model_at_all(tmp_path, model, pixels, labels, monkeypatch):
    real_convert = export_module.keras_to_onnx

    def broken(*a, **k):
        proto, spec, rewrites = real_convert(*a, **k)
        import onnx

        return onnx.load_from_string(negate_conv(proto.SerializeToString())), spec, rewrites

    monkeypatch.setattr(export_module, "keras_to_onnx", broken)
    (tmp_path / "tiny.onnx").write_bytes(PREVIOUS)
    # every answer moved by far more than any margin: the max abs diff gate names it (flips within the measured
    # error are near ties to the fp32 agreement gate)
    with pytest.raises(GateError, match=r"fp32: max abs diff .* > 1e-04 on 96 images; .*nothing written "
                                        r"\(fp32 failed\)"):
        run_export(job(model, pixels, labels, tmp_path, variants=("fp32", "int8", "fp16")))
    assert (tmp_path / "tiny.onnx").read_bytes() == PREVIOUS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.export.json", "tiny.onnx"]


def test_fp32_failing_blocks_quantized_variants_that_pass(tmp_path, model, pixels, labels):
    """The quantized files derive from fp32: when fp32 fails, they are not written even if they pass."""
    gates = Gates(fp32_max_abs_diff=0.0, int8_max_accuracy_drop=50.0, fp16_max_accuracy_drop=50.0, **ROOMY)
    with pytest.raises(GateError, match=r"fp32: max abs diff .* on 96 images; nothing written \(fp32 failed\)$") as err:
        run_export(job(model, pixels, labels, tmp_path, variants=("fp32", "int8", "fp16"), gates=gates))
    fp32, *quantized = err.value.report["variants"]
    assert not fp32["passed"] and all(v["passed"] and not v["written"] for v in quantized)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.export.json"]


def test_shipped_metadata_records_the_gates_and_validation(tmp_path, model, pixels, labels):
    gates = Gates(int8_max_accuracy_drop=50.0, **ROOMY)
    report = run_export(job(model, pixels, labels, tmp_path, variants=("fp32", "int8"), gates=gates))
    for entry in report["variants"]:
        shipped = info(tmp_path / entry["path"])
        assert shipped.validation == {"data": "synthetic (96 images)", "reference": "Keras", **entry["validation"],
                                      "gates": gates.to_dict()}
        assert shipped.labels == LABELS and shipped.dataset == "synthetic" and shipped.source_sha256 == "0" * 64
    assert report["gates"] == gates.to_dict()


# --- interrupted writes of the export's artifacts -------------------------------------------------------

def fail_when_replacing(monkeypatch, suffix: str) -> list[str]:
    """os.replace raises (disk full) when it would publish a file whose name ends with `suffix`."""
    real_replace = atomic.os.replace
    published = []

    def replace(src, dst):
        if str(dst).endswith(suffix):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)
        published.append(Path(dst).name)

    monkeypatch.setattr(atomic.os, "replace", replace)
    return published


@pytest.mark.parametrize("victim", ["tiny.onnx", "tiny.int8.onnx", "tiny.export.json"])
def test_interrupted_write_keeps_the_previous_file(tmp_path, model, pixels, labels, monkeypatch, victim):
    previous = {name: PREVIOUS + name.encode() for name in ("tiny.onnx", "tiny.int8.onnx", "tiny.export.json")}
    for name, data in previous.items():
        (tmp_path / name).write_bytes(data)
    published = fail_when_replacing(monkeypatch, victim)
    with pytest.raises(OSError, match="No space left"):
        run_export(job(model, pixels, labels, tmp_path, variants=("fp32", "int8")))
    assert (tmp_path / victim).read_bytes() == previous[victim]
    order = ["tiny.onnx", "tiny.int8.onnx", "tiny.export.json"]
    assert published == order[: order.index(victim)]  # everything before the failure was published whole
    for name in published:
        assert (tmp_path / name).read_bytes() != previous[name]


# --- validate -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory, model, pixels, labels):
    """model.keras, its validated fp32 export and a labelled image folder, as a user has them."""
    from edgecls.keras_files import save_keras_atomic, sha256_file

    root = tmp_path_factory.mktemp("validate")
    save_keras_atomic(model, root / "tiny.keras")
    for i, (img, y) in enumerate(zip(pixels, labels)):
        folder = root / "images" / LABELS[y]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[..., 0]).save(folder / f"{i:03d}.png")
    for name in LABELS:  # every label needs a folder (the tiny model may never predict one)
        (root / "images" / name).mkdir(exist_ok=True)
    j = job(model, pixels, labels, root, variants=("fp32",))
    j.source_sha256 = sha256_file(root / "tiny.keras")
    run_export(j)
    return root


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """The installed `edgecls` entry point, in process: (exit code, what the user sees)."""
    from edgecls.cli import main

    monkeypatch.setattr("sys.argv", ["edgecls", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    return exit_info.value.code, out.out + out.err


def test_validate_passes_on_the_untouched_export(exported, monkeypatch, capsys):
    code, output = run_cli(monkeypatch, capsys, "validate", str(exported / "tiny.onnx"), "--keras",
                           str(exported / "tiny.keras"), "--eval-data", str(exported / "images"), "--json")
    assert code == 0, output
    result = json.loads(output)
    assert result["passed"] and result["validation"]["samples"] == 96 and result["validation"]["accuracy"] == 1.0


def test_validate_fails_on_a_tampered_model(exported, tmp_path, monkeypatch, capsys):
    tampered = tmp_path / "tiny.onnx"
    tampered.write_bytes(negate_conv((exported / "tiny.onnx").read_bytes()))  # metadata kept, weights changed
    code, output = run_cli(monkeypatch, capsys, "validate", str(tampered), "--keras", str(exported / "tiny.keras"),
                           "--eval-data", str(exported / "images"))
    assert code == 1
    assert f"error: {tampered}: validation gate failed: max abs diff 5.59e-01 > 1e-04 on 96 images" in \
        " ".join(output.split())
    assert "Traceback" not in output


def test_validate_refuses_a_different_keras_source(exported, tmp_path, monkeypatch, capsys):
    from edgecls.keras_files import save_keras_atomic

    save_keras_atomic(tiny_model(seed=1), tmp_path / "other.keras")
    code, output = run_cli(monkeypatch, capsys, "validate", str(exported / "tiny.onnx"), "--keras",
                           str(tmp_path / "other.keras"), "--eval-data", str(exported / "images"))
    assert code == 1 and "was exported from a different Keras model" in " ".join(output.split())


def test_revalidate_gates_an_int8_file_as_int8(tmp_path, model, pixels, labels):
    """int8 differs from Keras by far more than fp32's 1e-4: judged as fp32 it would always fail."""
    from edgecls.exporters.export import revalidate

    generous = Gates(int8_max_accuracy_drop=50.0, **ROOMY)
    quant = QuantOptions(mode="static", float_stem=False)  # the tiny model's only conv is its stem: quantize it
    run_export(job(model, pixels, labels, tmp_path, variants=("fp32", "int8"), gates=generous, quant=quant))
    result = revalidate(tmp_path / "tiny.int8.onnx", model, EvalData(pixels, labels, "synthetic"), generous)
    assert result["variant"] == "int8" and result["validation"]["max_abs_diff"] > 1e-4
    assert result["passed"] and result["failures"] == []


def test_revalidate_applies_the_gates_it_is_given(exported, model, pixels, labels):
    from edgecls.exporters.export import revalidate

    data = EvalData(pixels, labels, "synthetic")
    assert revalidate(exported / "tiny.onnx", model, data)["passed"]
    strict = revalidate(exported / "tiny.onnx", model, data, Gates(fp32_max_abs_diff=0.0))
    assert not strict["passed"] and strict["failures"][0].startswith("max abs diff")


# --- per-layer int8 evidence in the export report and on the report page -------------------------------------

def test_the_report_lists_layers_kept_in_float_and_what_they_cost(tmp_path, model, pixels, labels):
    from edgecls.report.int8_layers import int8_section

    report = run_export(job(model, pixels, labels, tmp_path, variants=("fp32", "int8"),
                            gates=Gates(int8_max_accuracy_drop=50.0)))
    evidence = report["variants"][1]["int8_layers"]
    assert not evidence["refused"] and evidence["kept_float_weights"] == 16 * 16 * 3  # the one-channel stem conv
    stem = [k for k in evidence["kept_float"] if k["weights"]]
    assert [(k["op"], k["weights"]) for k in stem] == [("Conv", 768)] and stem[0]["why"].startswith("one-channel")
    assert [layer["op"] for layer in evidence["layers"]] == ["MatMul"] and evidence["layers"][0]["sqnr_db"] > 20
    cost = evidence["kept_float_cost"]
    assert cost["size_bytes"] < 0  # a padded, quantized stem is larger here: 4 input channels of int8 weights
    assert cost["latency_ms"] == pytest.approx(cost["speeds"]["kept"]["latency_ms"] -
                                               cost["speeds"]["alternative"]["latency_ms"])
    page = int8_section(evidence)
    assert stem[0]["node"] in page and "Keeping them in float: " in page and "SQNR (dB)" in page


def test_a_refused_int8_lists_its_layers_by_quantization_error(tmp_path, model, pixels, labels, monkeypatch):
    break_static_int8(monkeypatch)
    with pytest.raises(GateError) as err:
        run_export(job(model, pixels, labels, tmp_path, variants=("fp32", "int8"), quant=QuantOptions(mode="static"),
                       measure_speed=False))
    evidence = err.value.report["variants"][1]["int8_layers"]
    assert evidence["refused"] and evidence["layers"][0]["op"] == "MatMul"
    assert "latency_ms" not in evidence["kept_float_cost"]  # not timed when the export measures no speed

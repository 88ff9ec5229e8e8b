"""Every export gate at its edges on real exported models: a variant just inside, one just outside, and a sample
too small to show what a gate asks.

One small Keras model (digits 0-2, trained for an epoch here) converted with tf2onnx, its fp16 graph and three
static int8 graphs: calibrated on training images (good), on dimmed ones (ranges too narrow: measurably worse)
and on black images (truly degraded). Each is validated against the Keras model on chosen MNIST test images,
so the counts that decide a gate (lost and gained images, decisive flips, output error) are real outputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgecls.exporters.builders import Candidate
from edgecls.exporters.gates import Gates
from edgecls.exporters.reference import KerasReference, OnnxReference
from edgecls.exporters.validate import EvalData, Validator

ROOMY = Gates(int8_max_output_error=1.0, int8_min_agreement=0.0, unlabelled_min_agreement=0.0)  # one gate at a time


@pytest.fixture(scope="module")
def digits(mnist):
    import keras
    from keras import layers

    from edgecls.exporters.convert import image_input_spec, keras_to_onnx
    from edgecls.exporters.quantize import QuantOptions, quantize_static_int8, to_fp16

    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    x = layers.MaxPooling2D()(layers.Conv2D(8, 3, activation="relu")(layers.Rescaling(1 / 255)(inputs)))
    model = keras.Model(inputs, layers.Dense(3, activation="softmax")(layers.Flatten()(x)))
    train = np.flatnonzero(mnist.train.y < 3)[:3000]
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(mnist.train.x[train].astype("float32"), mnist.train.y[train], epochs=1, verbose=0)
    proto, spec, _ = keras_to_onnx(model, image_input_spec(model))
    fp32 = proto.SerializeToString()
    calib, opts = mnist.train.x[train[:64]], QuantOptions(float_stem=False)
    graphs = {"fp32": fp32, "fp16": to_fp16(fp32), "good": quantize_static_int8(fp32, calib, spec, opts),
              "dim": quantize_static_int8(fp32, calib // 4, spec, opts),
              "black": quantize_static_int8(fp32, np.zeros_like(calib[:8]), spec, opts)}
    test = np.flatnonzero(mnist.test.y < 3)
    return {"model": model, "spec": spec, "graphs": graphs, "x": mnist.test.x[test], "y": mnist.test.y[test]}


def judge(digits, graph: str, rows, gates: Gates = Gates(), labelled: bool = True) -> Candidate:
    """Validate one of the graphs (fp32, fp16, good, dim, black) on test digits `rows` against the Keras model."""
    variant = graph if graph in ("fp32", "fp16") else "int8"
    data = EvalData(digits["x"][rows], digits["y"][rows] if labelled else None, f"{len(rows)} MNIST test digits")
    validator = Validator(KerasReference(digits["model"], None, "probabilities"), data, digits["spec"], gates,
                          fp32=digits["graphs"]["fp32"])
    return validator(Candidate(variant, variant, digits["graphs"][graph]))


def failed(c: Candidate) -> list[str]:
    return [f.gate for f in c.failures]


@pytest.fixture(scope="module")
def answers(digits):
    """Which test digits Keras and each int8 graph get right, from the full validation run."""
    everything = np.arange(len(digits["y"]))
    out = {}
    for variant in ("good", "dim", "black"):
        c = judge(digits, variant, everything, ROOMY)
        from edgecls.runtime.inference import run_batches
        from edgecls.runtime.session import create_session

        scores = run_batches(create_session(digits["graphs"][variant], "cpu"), digits["x"], digits["spec"])
        out[variant] = (scores.argmax(1) == digits["y"], c)
    keras_scores = np.asarray(digits["model"].predict(digits["x"].astype("float32"), verbose=0))
    out["keras"] = keras_scores.argmax(1) == digits["y"]
    return out


def _sample(answers, variant: str, lost: int, n: int) -> np.ndarray:
    """`lost` digits Keras gets right and the variant wrong, and n - lost both get right."""
    keras_right, (variant_right, _) = answers["keras"], answers[variant]
    lost_rows = np.flatnonzero(keras_right & ~variant_right)[:lost]
    both = np.flatnonzero(keras_right & variant_right)[: n - lost]
    assert len(lost_rows) == lost and len(both) == n - lost
    return np.sort(np.concatenate([lost_rows, both]))


# --- defaults: real gaps are refused, good variants ship -------------------------------------------------

def test_default_gates_pass_the_good_variants_and_refuse_the_degraded_one(digits, answers):
    everything = np.arange(len(digits["y"]))
    for variant in ("fp32", "fp16", "good"):
        c = judge(digits, variant, everything)
        assert c.passed, (variant, [str(f) for f in c.failures])
    black = judge(digits, "black", everything)
    assert {"output_error", "accuracy_drop"} <= set(failed(black))
    messages = " | ".join(map(str, black.failures))
    assert f"on {len(everything)} images" in messages and "> 0.1 on" in messages and "> 0.5 pt on" in messages


# --- output error and max abs diff at the measured figure ---------------------------------------------------

@pytest.mark.parametrize("variant, field", [("good", "int8_max_output_error"), ("fp16", "fp16_max_output_error"),
                                            ("fp32", "fp32_max_abs_diff")])
def test_output_error_just_inside_and_just_outside(digits, variant, field):
    rows = np.arange(len(digits["y"]))
    measured = judge(digits, variant, rows).validation["output_error"]
    assert measured > 0
    inside = judge(digits, variant, rows, dataclasses.replace(Gates(), **{field: measured}))
    outside = judge(digits, variant, rows, dataclasses.replace(Gates(), **{field: measured * 0.999}))
    assert inside.passed and not outside.passed and len(outside.failures) == 1
    assert f"on {len(rows)} images" in str(outside.failures[0])


# --- accuracy drop: measurable, and against the limit ------------------------------------------------------

def test_accuracy_drop_just_inside_and_just_outside_the_limit(digits, answers):
    rows = _sample(answers, "dim", lost=6, n=1000)  # 0.6 points, measurable (6 lost, none gained)
    at = judge(digits, "dim", rows, dataclasses.replace(ROOMY, int8_max_accuracy_drop=0.6))
    over = judge(digits, "dim", rows, dataclasses.replace(ROOMY, int8_max_accuracy_drop=0.59))
    assert at.validation["accuracy_drop_pts"] == 0.6 and at.validation["accuracy_drop_measurable"]
    assert "accuracy_drop" not in failed(at)
    assert failed(over) == ["accuracy_drop"]
    assert str(over.failures[0]).startswith("accuracy drop 0.60 pt > 0.59 pt on 1000 images (95% CI ")


def test_a_tiny_sample_shows_a_drop_only_from_six_lost_images(digits, answers):
    five, six = _sample(answers, "dim", lost=5, n=120), _sample(answers, "dim", lost=6, n=120)
    passing = judge(digits, "dim", five, ROOMY)
    assert passing.passed and "120 images cannot show an accuracy drop smaller than 5 pt (limit 0.5 pt): judged on " \
                               "output error and top-1 flips" in passing.notes
    assert failed(judge(digits, "dim", six, ROOMY)) == ["accuracy_drop"]


def test_a_pass_on_a_tiny_sample_says_how_small_it_was(digits):
    c = judge(digits, "good", np.arange(12))
    assert c.passed and "12 images cannot show an accuracy drop smaller than 50 pt (limit 0.5 pt): judged on output " \
                        "error and top-1 flips" in c.notes


# --- flips: near ties are not counted, decisive ones are -------------------------------------------------

def test_agreement_counts_decisive_flips_just_inside_and_just_outside(digits):
    rows = np.arange(len(digits["y"]))
    v = judge(digits, "good", rows, labelled=False).validation
    assert 0 < v["decisive_flips"] < v["flips"]  # real near ties among the flips, and real decisive ones
    share, n = v["decisive_agreement"], len(rows)
    inside = judge(digits, "good", rows, Gates(unlabelled_min_agreement=share), labelled=False)
    outside = judge(digits, "good", rows, Gates(unlabelled_min_agreement=share + 1e-6), labelled=False)
    assert inside.passed and failed(outside) == ["agreement"]
    assert f"on {n} images ({v['decisive_flips']} flip(s) where the reference's top-two margin exceeds the output " \
           "error" in str(outside.failures[0])
    assert f"{v['flips'] - v['decisive_flips']} near-tie flip(s) of {n} not counted" in " ".join(inside.notes)


# --- the size rule on real graphs ----------------------------------------------------------------------------

def test_a_real_int8_realises_its_saving_and_a_float_copy_called_int8_does_not(digits):
    rows = np.arange(200)
    good = judge(digits, "good", rows)
    assert good.passed and good.extra["size_check"]["share"] > 0.8
    fake = {**digits, "graphs": {**digits["graphs"], "good": digits["graphs"]["fp32"]}}
    copy = judge(fake, "good", rows)
    assert failed(copy) == ["size"]
    assert str(copy.failures[0]).startswith("saves 0.0 KiB of the ") and "(0% < 50%;" in str(copy.failures[0])


def test_dynamic_int8_of_a_model_without_matmul_weights_is_refused(tmp_path):
    import keras

    from edgecls.exporters.convert import image_input_spec, keras_to_onnx
    from edgecls.exporters.quantize import quantize_dynamic_int8

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 1))
    logits = keras.layers.Flatten()(keras.layers.Conv2D(3, 16)(keras.layers.Rescaling(1 / 255)(inputs)))
    model = keras.Model(inputs, keras.layers.Activation("softmax")(logits))
    proto, spec, _ = keras_to_onnx(model, image_input_spec(model))
    fp32 = proto.SerializeToString()
    x = np.random.default_rng(0).integers(0, 256, (40, 16, 16, 1), dtype=np.uint8)
    validator = Validator(KerasReference(model, None, "probabilities"), EvalData(x, None, "random"), spec, fp32=fp32)
    c = validator(Candidate("int8-dynamic", "int8", quantize_dynamic_int8(fp32)))
    assert failed(c) == ["size"] and str(c.failures[0]).startswith("stores no weights in int8: the model has no "
                                                                    "MatMul/Gemm weights")


# --- the reference may be the Keras model or the fp32 .onnx ------------------------------------------------

def test_an_onnx_reference_judges_like_the_keras_model(digits):
    rows = np.arange(300)
    data = EvalData(digits["x"][rows], digits["y"][rows], "300 digits")
    by_keras = judge(digits, "good", rows).validation
    onnx_reference = OnnxReference(digits["graphs"]["fp32"], digits["spec"], "probabilities")
    by_onnx = Validator(onnx_reference, data, digits["spec"], fp32=digits["graphs"]["fp32"])(
        Candidate("int8", "int8", digits["graphs"]["good"])).validation
    assert by_onnx["output_error"] == pytest.approx(by_keras["output_error"], abs=1e-5)
    assert (by_onnx["flips"], by_onnx["lost"], by_onnx["gained"]) == (by_keras["flips"], by_keras["lost"],
                                                                     by_keras["gained"])

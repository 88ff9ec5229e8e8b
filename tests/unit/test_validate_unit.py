"""The release gates at their edges: just inside and just outside every default threshold.

Built from hand-made probability arrays (milliseconds, no TensorFlow), so a changed threshold,
a flipped sign, a mean instead of a max or a dropped check fails here."""

from __future__ import annotations

import numpy as np
import pytest

from edgecls.exporters.validate import Gates, compare, gate_failures

DEFAULT = Gates()


def _one_hot(classes: np.ndarray, k: int = 3, high: float = 0.9) -> np.ndarray:
    """Confident probabilities: `high` on the given class, the rest shared by the others."""
    probs = np.full((len(classes), k), (1 - high) / (k - 1))
    probs[np.arange(len(classes)), classes] = high
    return probs


def _labelled(n: int, keras_wrong: int, variant_wrong: int):
    """n samples of 3 classes; Keras misses the first `keras_wrong`, the variant the first `variant_wrong`."""
    labels = np.arange(n) % 3
    keras_pred = labels.copy()
    keras_pred[:keras_wrong] = (labels[:keras_wrong] + 1) % 3
    variant_pred = labels.copy()
    variant_pred[:variant_wrong] = (labels[:variant_wrong] + 1) % 3
    return _one_hot(keras_pred), _one_hot(variant_pred), labels


# --- defaults -----------------------------------------------------------------------------------

def test_cli_gate_options_default_to_the_library_gates():
    from edgecls.cli.export import GateOptions, _gates

    defaults = {name: opt.default for name, opt in GateOptions.items()}
    assert defaults == {"max_diff": 1e-4, "min_agreement": 100.0, "max_int8_drop": 0.5, "min_int8_agreement": 93.0}
    assert _gates(**defaults) == DEFAULT
    custom = _gates(max_diff=2e-3, min_agreement=99.5, max_int8_drop=1.5, min_int8_agreement=90.0)
    assert (custom.fp32_max_abs_diff, custom.fp32_min_agreement, custom.int8_max_accuracy_drop,
            custom.int8_min_agreement) == (2e-3, 0.995, 1.5, 0.9)


def test_gates_to_dict_names_every_threshold():
    assert DEFAULT.to_dict() == {"fp32_min_agreement": 1.0, "fp32_max_abs_diff": 1e-4, "fp16_max_accuracy_drop": 0.1,
                                 "int8_max_accuracy_drop": 0.5, "unlabelled_min_agreement": 0.99,
                                 "fp16_min_agreement": 0.99, "int8_min_agreement": 0.93, "int8_max_size_ratio": 0.6}


# --- compare ----------------------------------------------------------------------------------------

def test_compare_measures_max_and_mean_difference_and_agreement():
    ref = _one_hot(np.array([0, 1, 2, 0]))
    probs = ref.copy()
    probs[1] = [0.05, 0.35, 0.6]  # sample 1: top-1 flips from class 1 to 2; |diff| 0.55 on two cells
    result = compare(ref, probs, None)
    assert result["samples"] == 4
    assert result["top1_agreement"] == 0.75
    assert result["max_abs_diff"] == pytest.approx(0.55)
    assert result["mean_abs_diff"] == pytest.approx((0.55 + 0.55) / 12)
    assert "accuracy" not in result and "keras_accuracy" not in result and "accuracy_drop_pts" not in result


def test_compare_scores_accuracy_and_drop_with_sign():
    ref, probs, labels = _labelled(1000, keras_wrong=30, variant_wrong=20)
    result = compare(ref, probs, labels)
    assert result["keras_accuracy"] == 0.97 and result["accuracy"] == 0.98
    assert result["accuracy_drop_pts"] == pytest.approx(-1.0)  # the variant is better: a negative drop


def test_compare_accepts_float32_and_reports_python_floats():
    ref = _one_hot(np.array([0, 1])).astype(np.float32)
    result = compare(ref, ref + np.float32(1e-6), np.array([0, 1]))
    assert all(type(result[k]) is float for k in ("top1_agreement", "max_abs_diff", "mean_abs_diff", "accuracy"))
    assert type(result["samples"]) is int
    assert result["max_abs_diff"] == pytest.approx(1e-6, rel=5e-2)


def test_compare_refuses_different_shapes():
    with pytest.raises(ValueError, match=r"output shapes differ: Keras \(2, 3\), ONNX \(2, 4\)"):
        compare(np.zeros((2, 3)), np.zeros((2, 4)), None)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the mean agreement of nothing is NaN
def test_compare_on_no_samples_gives_zero_differences():
    result = compare(np.zeros((0, 3)), np.zeros((0, 3)), None)
    assert result["samples"] == 0 and result["max_abs_diff"] == 0.0 and result["mean_abs_diff"] == 0.0


# --- fp32 gate --------------------------------------------------------------------------------------

def _fp32_pair(diff: float, n: int = 50):
    ref = _one_hot(np.arange(n) % 3)
    probs = ref.copy()
    probs[7, 0] += diff  # one cell of one sample moves; the top-1 stays
    return ref, probs


def test_fp32_passes_just_inside_max_diff():
    ref, probs = _fp32_pair(0.9e-4)
    assert gate_failures("fp32", compare(ref, probs, None), DEFAULT) == []


def test_fp32_fails_just_outside_max_diff():
    ref, probs = _fp32_pair(1.1e-4)
    failures = gate_failures("fp32", compare(ref, probs, None), DEFAULT)
    assert failures == ["max abs diff 1.10e-04 > 1e-04"]


def test_fp32_gate_uses_the_max_not_the_mean():
    """One sample off by 1e-3 among many identical ones: the mean is tiny, the max is not."""
    ref, probs = _fp32_pair(1e-3, n=1000)
    result = compare(ref, probs, None)
    assert result["mean_abs_diff"] < 1e-4 < result["max_abs_diff"]
    assert any("max abs diff" in f for f in gate_failures("fp32", result, DEFAULT))


def test_fp32_fails_on_one_flipped_top1_even_when_differences_are_tiny():
    ref = _one_hot(np.arange(1000) % 3)
    probs = ref.copy()
    ref[5] = [0.50004, 0.49996, 0.0]
    probs[5] = [0.49996, 0.50004, 0.0]  # |diff| 8e-5 < 1e-4, but the top-1 differs
    result = compare(ref, probs, None)
    assert result["max_abs_diff"] < DEFAULT.fp32_max_abs_diff
    assert result["top1_agreement"] == 0.999
    assert gate_failures("fp32", result, DEFAULT) == ["top-1 agreement 99.900% < 100.000%"]


def test_fp32_reports_both_failures():
    result = {"top1_agreement": 0.5, "max_abs_diff": 0.3}
    assert len(gate_failures("fp32", result, DEFAULT)) == 2


def test_fp32_ignores_accuracy():
    """fp32 must be the same model: a better accuracy does not excuse a difference."""
    result = {"top1_agreement": 1.0, "max_abs_diff": 2e-4, "accuracy_drop_pts": -5.0}
    assert gate_failures("fp32", result, DEFAULT) == ["max abs diff 2.00e-04 > 1e-04"]


def test_fp32_with_a_looser_gate():
    ref, probs = _fp32_pair(1.1e-4)
    assert gate_failures("fp32", compare(ref, probs, None), Gates(fp32_max_abs_diff=2e-4)) == []
    result = {"top1_agreement": 0.995, "max_abs_diff": 0.0}
    assert gate_failures("fp32", result, Gates(fp32_min_agreement=0.99)) == []
    assert gate_failures("fp32", result, Gates(fp32_min_agreement=0.996)) != []


# --- int8 / fp16 accuracy-drop gates -----------------------------------------------------------------

@pytest.mark.parametrize("variant, limit_pts", [("int8", 0.5), ("fp16", 0.1)])
def test_accuracy_drop_at_the_limit_passes(variant, limit_pts):
    n = 1000
    lost = int(round(limit_pts * n / 100))  # exactly the limit: 5 (int8) or 1 (fp16) images of 1000
    ref, probs, labels = _labelled(n, keras_wrong=50, variant_wrong=50 + lost)
    result = compare(ref, probs, labels)
    assert result["accuracy_drop_pts"] == pytest.approx(limit_pts)
    assert gate_failures(variant, result, DEFAULT) == []


@pytest.mark.parametrize("variant, limit_pts", [("int8", 0.5), ("fp16", 0.1)])
def test_accuracy_drop_just_outside_fails(variant, limit_pts):
    n = 2000
    lost = int(round(limit_pts * n / 100)) + 1  # one image more than the limit allows
    ref, probs, labels = _labelled(n, keras_wrong=100, variant_wrong=100 + lost)
    result = compare(ref, probs, labels)
    failures = gate_failures(variant, result, DEFAULT)
    assert failures == [f"accuracy drop {lost * 100 / n:.2f} pt > {limit_pts} pt"]


@pytest.mark.parametrize("variant", ["int8", "int8-dynamic", "fp16"])
def test_a_variant_better_than_keras_passes(variant):
    gate_as = "int8" if variant.startswith("int8") else variant
    # Better by 0.6 points while still agreeing on 99.4% (the agreement gates, 99% fp16 / 93% int8, also apply).
    ref, probs, labels = _labelled(1000, keras_wrong=8, variant_wrong=2)
    assert gate_failures(gate_as, compare(ref, probs, labels), DEFAULT) == []


def test_fp16_has_its_own_tighter_limit():
    ref, probs, labels = _labelled(1000, keras_wrong=50, variant_wrong=53)  # 0.3 points
    result = compare(ref, probs, labels)
    assert gate_failures("int8", result, DEFAULT) == []
    assert gate_failures("fp16", result, DEFAULT) == ["accuracy drop 0.30 pt > 0.1 pt"]
    assert gate_failures("fp16", result, Gates(fp16_max_accuracy_drop=0.3)) == []


def test_quantized_gate_judges_accuracy_and_agreement_when_labelled():
    """Issue 16 changed this on purpose: same accuracy is no longer enough, int8 must also keep answering like
    the model (>= 93% top-1 agreement; the shipped emotion int8 agrees on 94%)."""
    def swapped(n_swapped: int):
        ref, probs, labels = _labelled(1000, keras_wrong=100, variant_wrong=100)
        probs[100 : 100 + n_swapped] = _one_hot((labels[100 : 100 + n_swapped] + 1) % 3)  # n more wrong ...
        probs[:n_swapped] = _one_hot(labels[:n_swapped])  # ... and n Keras missed now right: same accuracy
        return compare(ref, probs, labels)

    inside, outside = swapped(35), swapped(36)  # 93.0% and 92.8% agreement, accuracy unchanged
    assert inside["top1_agreement"] == 0.93 and inside["accuracy_drop_pts"] == 0.0
    assert gate_failures("int8", inside, DEFAULT) == []
    assert outside["top1_agreement"] == pytest.approx(0.928) and outside["accuracy_drop_pts"] == 0.0
    assert gate_failures("int8", outside, DEFAULT) == ["top-1 agreement 92.80% < 93.00%"]


# --- unlabelled quantized gate -----------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["int8", "fp16"])
def test_unlabelled_agreement_at_the_limit_passes(variant):
    ref = _one_hot(np.arange(100) % 3)
    probs = ref.copy()
    probs[0] = _one_hot(np.array([1]))[0]  # 99 of 100 agree: exactly 99%
    assert gate_failures(variant, compare(ref, probs, None), DEFAULT) == []


@pytest.mark.parametrize("variant", ["int8", "fp16"])
def test_unlabelled_agreement_just_outside_fails(variant):
    ref = _one_hot(np.arange(1000) % 3)
    probs = ref.copy()
    probs[:11] = _one_hot((np.arange(11) + 1) % 3)  # 98.9% agree
    failures = gate_failures(variant, compare(ref, probs, None), DEFAULT)
    assert failures == ["top-1 agreement 98.90% < 99.00% (no labels to score accuracy)"]


# --- edges the mutation run found unguarded ---------------------------------------------------------------

def test_fp32_max_diff_exactly_at_the_limit_passes():
    """The fp32 gate: max abs diff <= 1e-4."""
    assert gate_failures("fp32", {"top1_agreement": 1.0, "max_abs_diff": 1e-4}, DEFAULT) == []


@pytest.mark.parametrize("variant", ["int8", "fp16"])
def test_unlabelled_full_agreement_passes(variant):
    ref = _one_hot(np.arange(30) % 3)
    assert gate_failures(variant, compare(ref, ref.copy(), None), DEFAULT) == []


def test_gates_are_immutable():
    """Gates() is a shared default argument: it must not be changeable in place."""
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT.int8_max_accuracy_drop = 5.0  # type: ignore[misc]


@pytest.mark.parametrize("ref_shape, probs_shape", [((3, 3), (2, 3)), ((2, 3), (3, 3)), ((2, 4), (2, 3))])
def test_compare_refuses_any_shape_mismatch(ref_shape, probs_shape):
    with pytest.raises(ValueError, match="output shapes differ"):
        compare(np.zeros(ref_shape), np.zeros(probs_shape), None)


def test_variant_names_read_from_metadata_are_recognised():
    """revalidate passes the variant read from a model's metadata: a runtime string, not a literal."""
    fp32, fp16 = "".join(["fp", "32"]), "".join(["fp", "16"])
    assert gate_failures(fp32, {"top1_agreement": 1.0, "max_abs_diff": 2e-4}, DEFAULT) == [
        "max abs diff 2.00e-04 > 1e-04"]
    result = {"top1_agreement": 1.0, "max_abs_diff": 0.0, "accuracy_drop_pts": 0.3}
    assert gate_failures(fp16, result, DEFAULT) == ["accuracy drop 0.30 pt > 0.1 pt"]


def test_labelled_fp16_must_agree_on_99_percent_not_int8s_93():
    """A labelled fp16 that loses no accuracy but agrees on only 95% fails on fp16's own agreement gate, also when
    its variant name comes from a model's metadata (a runtime string)."""
    ref, probs, labels = _labelled(1000, keras_wrong=100, variant_wrong=100)
    probs[100:125] = _one_hot((labels[100:125] + 1) % 3)  # 25 more wrong ...
    probs[:25] = _one_hot(labels[:25])  # ... and 25 Keras missed now right: 95% agreement, same accuracy
    result = compare(ref, probs, labels)
    assert result["top1_agreement"] == 0.95 and result["accuracy_drop_pts"] == 0.0
    assert gate_failures("int8", result, DEFAULT) == []
    for fp16 in ("fp16", "".join(["fp", "16"])):
        assert gate_failures(fp16, result, DEFAULT) == ["top-1 agreement 95.00% < 99.00%"]


def test_a_gate_failure_is_a_value():
    """Failures are kept in reports and compared: equal failures are equal and hash alike, and cannot change."""
    import dataclasses

    from edgecls.exporters.validate import GateFailure

    failure = GateFailure("agreement", "top-1 agreement 92.80% < 93.00%", 0.928, 0.93)
    assert failure == GateFailure("agreement", "top-1 agreement 92.80% < 93.00%", 0.928, 0.93)
    assert len({failure, GateFailure("agreement", "top-1 agreement 92.80% < 93.00%", 0.928, 0.93)}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        failure.limit = 0.5  # type: ignore[misc]

"""The release gates at their edges: just inside and just outside every default threshold, and samples too
small to show what a gate asks.

Built from hand-made score arrays (milliseconds, no TensorFlow), so a changed threshold, a flipped sign, a mean
instead of a max, a dropped check or a wrong interval fails here. tests/test_gates_real.py pins the same edges
on real exported models."""

from __future__ import annotations

import numpy as np
import pytest

from edgecls.exporters.gates import Gates, compare, gate_failures, judge
from edgecls.exporters.stats import clopper_pearson, paired_drop, resolvable_drop_pts
from gate_scores import flipping, noisy, one_hot

DEFAULT = Gates()


def _labelled(n: int, keras_wrong: int, variant_wrong: int):
    """n samples of 3 classes; Keras misses the first `keras_wrong`, the variant the first `variant_wrong`."""
    labels = np.arange(n) % 3
    keras_pred = labels.copy()
    keras_pred[:keras_wrong] = (labels[:keras_wrong] + 1) % 3
    variant_pred = labels.copy()
    variant_pred[:variant_wrong] = (labels[:variant_wrong] + 1) % 3
    return one_hot(keras_pred), one_hot(variant_pred), labels


def _gates_of(failures) -> list[str]:
    return [f.gate for f in failures]


# --- defaults -----------------------------------------------------------------------------------

def test_cli_gate_options_default_to_the_library_gates():
    from edgecls.cli.export import GateOptions, _gates

    defaults = {name: opt.default for name, opt in GateOptions.items()}
    assert defaults == {"max_diff": 1e-4, "min_agreement": 100.0, "max_int8_drop": 0.5, "min_int8_agreement": 93.0,
                        "max_int8_error": 0.1}
    assert _gates(**defaults) == DEFAULT
    custom = _gates(max_diff=2e-3, min_agreement=99.5, max_int8_drop=1.5, min_int8_agreement=90.0, max_int8_error=0.2)
    assert (custom.fp32_max_abs_diff, custom.fp32_min_agreement, custom.int8_max_accuracy_drop,
            custom.int8_min_agreement, custom.int8_max_output_error) == (2e-3, 0.995, 1.5, 0.9, 0.2)


def test_gates_to_dict_names_every_threshold():
    assert DEFAULT.to_dict() == {"fp32_min_agreement": 1.0, "fp32_max_abs_diff": 1e-4, "fp16_max_accuracy_drop": 0.1,
                                 "int8_max_accuracy_drop": 0.5, "unlabelled_min_agreement": 0.99,
                                 "fp16_min_agreement": 0.99, "int8_min_agreement": 0.93,
                                 "fp16_max_output_error": 0.01, "int8_max_output_error": 0.1,
                                 "int8_min_size_saving": 0.5}


def test_gates_are_immutable():
    """Gates() is a shared default argument: it must not be changeable in place."""
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT.int8_max_accuracy_drop = 5.0  # type: ignore[misc]


# --- exact intervals ---------------------------------------------------------------------------------

def test_clopper_pearson_matches_known_intervals():
    assert clopper_pearson(5, 10) == pytest.approx((0.187086, 0.812914), abs=1e-6)
    assert clopper_pearson(1, 20) == pytest.approx((0.001265, 0.248733), abs=1e-6)
    low, high = clopper_pearson(0, 120)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 120), rel=1e-9)  # the rule of three, exactly
    assert clopper_pearson(7, 7)[1] == 1.0 and clopper_pearson(3, 0) == (0.0, 1.0)


def test_a_drop_is_measurable_from_six_lost_images_and_none_gained():
    right = np.ones(120, bool)
    five, six = right.copy(), right.copy()
    five[:5], six[:6] = False, False
    assert not paired_drop(right, five).measurable and paired_drop(right, six).measurable
    assert resolvable_drop_pts(120) == 5.0 and resolvable_drop_pts(10_000) == pytest.approx(0.06)
    gained = six.copy()
    gained[-1:] = True
    reference = right.copy()
    reference[-1] = False  # one image the reference misses and the variant gets right
    drop = paired_drop(reference, gained)
    assert (drop.lost, drop.gained, drop.drop_pts) == (6, 1, 500 / 120) and not drop.measurable


def test_paired_drop_interval_contains_the_drop_and_has_the_right_sign():
    reference, variant = np.ones(1000, bool), np.ones(1000, bool)
    variant[:30], reference[30:40] = False, False  # 30 lost, 10 gained: 2.0 points
    drop = paired_drop(reference, variant)
    assert drop.drop_pts == 2.0 and drop.low_pts < 2.0 < drop.high_pts and drop.measurable
    better = paired_drop(variant, reference)  # the other way round: a gain of 2 points
    assert better.drop_pts == -2.0 and better.high_pts < 0 and not better.measurable


# --- compare ----------------------------------------------------------------------------------------

def test_compare_measures_differences_output_error_and_flips():
    ref = one_hot(np.array([0, 1, 2, 0]))
    probs = ref.copy()
    probs[1] = [0.05, 0.35, 0.6]  # sample 1: top-1 flips from class 1 to 2; |diff| 0.55 on two cells
    result = compare(ref, probs, None, error_quantile=1.0)
    assert result["samples"] == 4 and result["top1_agreement"] == 0.75 and result["flips"] == 1
    assert result["max_abs_diff"] == pytest.approx(0.55) and result["output_error"] == pytest.approx(0.55)
    assert result["mean_abs_diff"] == pytest.approx((0.55 + 0.55) / 12)
    assert result["decisive_flips"] == 1  # the reference's margin (0.85) is above the output error (0.55)
    assert "accuracy" not in result and "keras_accuracy" not in result and "accuracy_drop_pts" not in result


def test_compare_scores_accuracy_and_the_paired_drop_with_sign():
    ref, probs, labels = _labelled(1000, keras_wrong=30, variant_wrong=20)
    result = compare(ref, probs, labels)
    assert result["keras_accuracy"] == 0.97 and result["accuracy"] == 0.98
    assert result["accuracy_drop_pts"] == pytest.approx(-1.0)  # the variant is better: a negative drop
    assert (result["lost"], result["gained"]) == (0, 10) and not result["accuracy_drop_measurable"]


def test_compare_accepts_float32_and_reports_python_floats():
    ref = one_hot(np.array([0, 1])).astype(np.float32)
    result = compare(ref, ref + np.float32(1e-6), np.array([0, 1]))
    assert all(type(result[k]) is float for k in ("top1_agreement", "max_abs_diff", "mean_abs_diff", "accuracy",
                                                   "output_error"))
    assert type(result["samples"]) is int and type(result["decisive_flips"]) is int
    assert result["max_abs_diff"] == pytest.approx(1e-6, rel=5e-2)


@pytest.mark.parametrize("ref_shape, probs_shape", [((2, 3), (2, 4)), ((3, 3), (2, 3)), ((2, 3), (3, 3))])
def test_compare_refuses_any_shape_mismatch(ref_shape, probs_shape):
    with pytest.raises(ValueError, match=r"output shapes differ: reference \(\d, \d\), variant"):
        compare(np.zeros(ref_shape), np.zeros(probs_shape), None)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_compare_on_no_samples_gives_zero_differences():
    result = compare(np.zeros((0, 3)), np.zeros((0, 3)), None)
    assert result["samples"] == 0 and result["max_abs_diff"] == 0.0 and result["mean_abs_diff"] == 0.0


# --- fp32 gate --------------------------------------------------------------------------------------

def _fp32(ref, probs, labels=None, gates=DEFAULT):
    return gate_failures("fp32", compare(ref, probs, labels, error_quantile=1.0), gates)


def _fp32_pair(diff: float, n: int = 50):
    ref = one_hot(np.arange(n) % 3)
    probs = ref.copy()
    probs[7, 0] += diff  # one cell of one sample moves; the top-1 stays
    return ref, probs


def test_fp32_passes_just_inside_max_diff():
    assert _fp32(*_fp32_pair(0.9e-4)) == []


def test_fp32_fails_just_outside_max_diff():
    assert _fp32(*_fp32_pair(1.1e-4)) == ["max abs diff 1.10e-04 > 1e-04 on 50 images"]


def test_fp32_max_diff_exactly_at_the_limit_passes():
    assert gate_failures("fp32", {"samples": 1, "top1_agreement": 1.0, "max_abs_diff": 1e-4}, DEFAULT) == []


def test_fp32_gate_uses_the_max_not_the_mean():
    """One sample off by 1e-3 among many identical ones: the mean is tiny, the max is not."""
    ref, probs = _fp32_pair(1e-3, n=1000)
    result = compare(ref, probs, None, error_quantile=1.0)
    assert result["mean_abs_diff"] < 1e-4 < result["max_abs_diff"]
    assert any("max abs diff" in f for f in gate_failures("fp32", result, DEFAULT))


def test_fp32_does_not_count_a_near_tie_within_its_error():
    """A flip between two classes closer than the measured difference is a tie the rounding decides."""
    ref = one_hot(np.arange(1000) % 3)
    probs = ref.copy()
    ref[5] = [0.50004, 0.49996, 0.0]
    probs[5] = [0.49996, 0.50004, 0.0]  # margin 8e-5, |diff| 8e-5: a tie
    result = compare(ref, probs, None, error_quantile=1.0)
    assert result["top1_agreement"] == 0.999 and result["decisive_flips"] == 0
    verdict = judge("fp32", result, DEFAULT)
    assert verdict.passed and verdict.notes == ["1 near-tie flip(s) of 1000 not counted (the reference's top-two "
                                                "margin within the output error 8e-05)"]


def test_fp32_fails_on_a_flip_beyond_its_error_even_when_differences_are_tiny():
    ref = one_hot(np.arange(1000) % 3)
    probs = ref.copy()
    ref[5] = [0.50005, 0.49995, 0.0]  # margin 1e-4
    probs[5] = [0.49999, 0.50001, 0.0]  # |diff| 6e-5 < 1e-4: within max diff, but the answer changed
    result = compare(ref, probs, None, error_quantile=1.0)
    assert result["max_abs_diff"] < DEFAULT.fp32_max_abs_diff and result["decisive_flips"] == 1
    assert _fp32(ref, probs) == ["top-1 agreement 99.900% < 100.000% on 1000 images (1 flip(s) where the reference's "
                                 "top-two margin exceeds the output error 6e-05)"]


def test_fp32_reports_both_failures_and_ignores_accuracy():
    result = {"samples": 10, "top1_agreement": 0.5, "decisive_agreement": 0.5, "decisive_flips": 5, "flips": 5,
              "max_abs_diff": 0.3, "output_error": 0.3}
    assert _gates_of(judge("fp32", result, DEFAULT).failures) == ["fp32_agreement", "max_abs_diff"]
    better = {"samples": 10, "top1_agreement": 1.0, "max_abs_diff": 2e-4, "accuracy_drop_pts": -5.0}
    assert gate_failures("fp32", better, DEFAULT) == ["max abs diff 2.00e-04 > 1e-04 on 10 images"]


def test_fp32_with_a_looser_gate():
    ref, probs = _fp32_pair(1.1e-4)
    assert _fp32(ref, probs, gates=Gates(fp32_max_abs_diff=2e-4)) == []
    result = {"samples": 200, "top1_agreement": 0.995, "max_abs_diff": 0.0}
    assert gate_failures("fp32", result, Gates(fp32_min_agreement=0.99)) == []
    assert gate_failures("fp32", result, Gates(fp32_min_agreement=0.996)) != []


# --- output error (fp16, int8) -------------------------------------------------------------------------

@pytest.mark.parametrize("variant, limit", [("int8", 0.1), ("fp16", 0.01)])
def test_output_error_at_the_limit_passes_and_just_above_fails(variant, limit):
    assert gate_failures(variant, compare(*noisy(200, limit * 0.999), None), DEFAULT) == []
    failures = gate_failures(variant, compare(*noisy(200, limit * 1.01), None), DEFAULT)
    assert failures == [f"output error {limit * 1.01:.3g} > {limit:g} on 200 images (99th percentile of each image's "
                        "largest score difference)"]


def test_output_error_is_the_99th_percentile_not_the_max():
    """One image of 200 far off does not set the output error; three do."""
    ref, probs = noisy(200, 0.001)
    probs[0, 1] += 0.5
    assert compare(ref, probs, None)["output_error"] < 0.01 and gate_failures("int8", compare(ref, probs, None),
                                                                              DEFAULT) == []
    probs[1:3, 1] += 0.5
    assert compare(ref, probs, None)["output_error"] > 0.1


# --- flips and agreement (fp16, int8) ---------------------------------------------------------------------

def test_near_ties_are_not_counted_and_the_note_says_how_many():
    ref, probs = flipping(100, near_ties=5, decisive=0)
    result = compare(ref, probs, None)
    assert result["top1_agreement"] == 0.95 and result["decisive_flips"] == 0
    verdict = judge("fp16", result, DEFAULT)
    assert verdict.passed
    assert "5 near-tie flip(s) of 100 not counted (the reference's top-two margin within the output error 0.008)" \
        in verdict.notes and "no labels: judged on output error and top-1 flips on 100 images" in verdict.notes


@pytest.mark.parametrize("variant", ["int8", "fp16"])
def test_unlabelled_decisive_agreement_at_the_limit_passes(variant):
    ref, probs = flipping(100, near_ties=0, decisive=1)  # 99 of 100 keep their answer: exactly 99%
    assert compare(ref, probs, None)["decisive_flips"] == 1
    assert gate_failures(variant, compare(ref, probs, None), DEFAULT) == []


@pytest.mark.parametrize("variant", ["int8", "fp16"])
def test_unlabelled_decisive_agreement_just_outside_fails(variant):
    ref, probs = flipping(1000, near_ties=3, decisive=11)  # 98.9% decisive agreement (3 ties not counted)
    assert gate_failures(variant, compare(ref, probs, None), DEFAULT) == [
        "top-1 agreement 98.90% < 99.00% on 1000 images (11 flip(s) where the reference's top-two margin exceeds "
        "the output error 0.008; no labels to score accuracy)"]


def test_labelled_int8_agreement_edge():
    """Labelled: int8 must keep 93% of its decisive answers (the accuracy gate judges the rest)."""
    labels = np.arange(1000) % 3
    for decisive, failing in ((70, False), (71, True)):
        ref, probs = flipping(1000, near_ties=0, decisive=decisive)
        failures = judge("int8", compare(ref, probs, labels), DEFAULT).failures
        assert ("agreement" in _gates_of(failures)) is failing


# --- accuracy drop (fp16, int8) ----------------------------------------------------------------------------

@pytest.mark.parametrize("variant, limit_pts", [("int8", 0.5), ("fp16", 0.1)])
def test_accuracy_drop_at_the_limit_passes(variant, limit_pts):
    n = 10_000
    lost = int(round(limit_pts * n / 100))  # exactly the limit: 50 (int8) or 10 (fp16) images of 10,000
    ref, probs, labels = _labelled(n, keras_wrong=500, variant_wrong=500 + lost)
    result = compare(ref, probs, labels)
    assert result["accuracy_drop_pts"] == pytest.approx(limit_pts) and result["accuracy_drop_measurable"]
    assert "accuracy_drop" not in _gates_of(judge(variant, result, DEFAULT).failures)


@pytest.mark.parametrize("variant, limit_pts", [("int8", 0.5), ("fp16", 0.1)])
def test_accuracy_drop_just_outside_fails_with_its_interval(variant, limit_pts):
    n = 10_000
    lost = int(round(limit_pts * n / 100)) + 1  # one image more than the limit allows
    ref, probs, labels = _labelled(n, keras_wrong=500, variant_wrong=500 + lost)
    result = compare(ref, probs, labels)
    drop = [f for f in judge(variant, result, DEFAULT).failures if f.gate == "accuracy_drop"]
    low, high = result["accuracy_drop_ci_pts"]
    assert [f.message for f in drop] == [f"accuracy drop {lost * 100 / n:.2f} pt > {limit_pts:g} pt on 10000 images "
                                         f"(95% CI {low:.2f} to {high:.2f} pt: {lost} lost, 0 gained)"]
    assert 0 < low < limit_pts < lost * 100 / n <= high


def test_a_drop_the_sample_cannot_show_passes_and_says_how_small_the_sample_was():
    """One near-tie image of 120 flipping is 0.83 points: no evidence of a 0.1-point drop, or of any."""
    ref, probs, labels = _labelled(120, keras_wrong=0, variant_wrong=1)
    result = compare(ref, probs, labels)
    verdict = judge("fp16", result, DEFAULT)
    assert "accuracy_drop" not in _gates_of(verdict.failures)
    assert "120 images cannot show an accuracy drop smaller than 5 pt (limit 0.1 pt): judged on output error and " \
           "top-1 flips" in verdict.notes


def test_a_drop_the_small_sample_does_show_is_refused():
    for lost, refused in ((5, False), (6, True)):  # 6 of 120 lost and none gained: measurable, 5 points
        ref, probs, labels = _labelled(120, keras_wrong=0, variant_wrong=lost)
        result = compare(ref, probs, labels)
        assert ("accuracy_drop" in _gates_of(judge("int8", result, DEFAULT).failures)) is refused


@pytest.mark.parametrize("variant", ["int8", "fp16"])
def test_a_variant_better_than_keras_passes(variant):
    ref, probs, labels = _labelled(1000, keras_wrong=8, variant_wrong=2)
    assert "accuracy_drop" not in _gates_of(judge(variant, compare(ref, probs, labels), DEFAULT).failures)


def test_fp16_has_its_own_tighter_limit():
    ref, probs, labels = _labelled(10_000, keras_wrong=500, variant_wrong=530)  # 0.3 points, measurable
    result = compare(ref, probs, labels)
    assert "accuracy_drop" not in _gates_of(judge("int8", result, DEFAULT).failures)
    assert "accuracy_drop" in _gates_of(judge("fp16", result, DEFAULT).failures)
    assert "accuracy_drop" not in _gates_of(judge("fp16", result, Gates(fp16_max_accuracy_drop=0.3)).failures)


def test_variant_names_read_from_metadata_are_recognised():
    """validate passes the gate family read from a model's metadata: a runtime string, not a literal."""
    fp32, fp16 = "".join(["fp", "32"]), "".join(["fp", "16"])
    assert gate_failures(fp32, {"samples": 3, "top1_agreement": 1.0, "max_abs_diff": 2e-4}, DEFAULT) == [
        "max abs diff 2.00e-04 > 1e-04 on 3 images"]
    result = {"samples": 10_000, "top1_agreement": 1.0, "max_abs_diff": 0.0, "output_error": 0.0,
              "accuracy_drop_pts": 0.3, "accuracy_drop_ci_pts": [0.2, 0.4], "lost": 30, "gained": 0,
              "accuracy_drop_measurable": True, "resolvable_drop_pts": 0.06}
    assert gate_failures(fp16, result, DEFAULT) == [
        "accuracy drop 0.30 pt > 0.1 pt on 10000 images (95% CI 0.20 to 0.40 pt: 30 lost, 0 gained)"]


# --- the size rule ----------------------------------------------------------------------------------------

def test_size_rule_edges():
    from edgecls.exporters.size import SizeCheck, judge_size

    ops = ("Conv", "MatMul")
    weights = 10_000  # 30,000 bytes int8 can save
    at = SizeCheck(100_000, 100_000 - 15_000 + 2_000, weights, 2_000)  # realises 15,000 of 30,000: 50%
    below = SizeCheck(100_000, 100_000 - 15_000 + 2_001, weights, 2_000)
    assert at.share == 0.5 and judge_size(at, 0.5, ops) == (None, None)
    failure, _ = judge_size(below, 0.5, ops)
    assert failure.gate == "size" and failure.message == (
        "saves 14.6 KiB of the 29.3 KiB its 10,000 quantizable weights allow (50% < 50%; 2.0 KiB of scales and "
        "Q/DQ nodes counted)")
    unquantized = SizeCheck(100_000, 100_000, weights, 0)  # an fp32 copy called int8
    assert judge_size(unquantized, 0.5, ops)[0].measured == 0.0
    tiny = SizeCheck(4_000, 6_000, 240, 3_000)  # grows: Q/DQ nodes outweigh 240 weights
    assert judge_size(tiny, 0.5, ops) == (None, "size not judged: its 240 quantizable weights can save only 720 bytes")
    nothing = SizeCheck(4_000, 4_100, 0, 0)
    assert judge_size(nothing, 0.5, ("MatMul", "Gemm"))[0].message.startswith("stores no weights in int8: the model "
                                                                                "has no MatMul/Gemm weights")


def test_a_gate_failure_is_a_value():
    """Failures are kept in reports and compared: equal failures are equal and hash alike, and cannot change."""
    import dataclasses

    from edgecls.exporters.validate import GateFailure

    failure = GateFailure("agreement", "top-1 agreement 92.80% < 93.00%", 0.928, 0.93)
    assert failure == GateFailure("agreement", "top-1 agreement 92.80% < 93.00%", 0.928, 0.93)
    assert len({failure, GateFailure("agreement", "top-1 agreement 92.80% < 93.00%", 0.928, 0.93)}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        failure.limit = 0.5  # type: ignore[misc]

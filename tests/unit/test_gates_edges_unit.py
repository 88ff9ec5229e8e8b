"""The gates' remaining edges: how each family measures its output error, family names read from files, flips in
either direction and on one- and two-column heads, results written by older versions, and the notes' counts.

Hand-made score arrays and result dicts (no TensorFlow); tests/unit/test_validate_unit.py has the thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from edgecls.exporters.gates import ERROR_QUANTILE, Gates, compare, judge
from gate_scores import flipping

DEFAULT = Gates()


def _read_from_a_file(name: str) -> str:
    """The same text as a new string object, as json.loads gives it (not the interned literal)."""
    return "".join(list(name))


def _outlier(n: int = 200):
    """Every image off by 0.001 except one off by 0.5."""
    ref = np.tile([0.9, 0.05, 0.05], (n, 1))
    probs = ref.copy()
    probs[:, 1] += 0.001
    probs[0, 1] += 0.5
    return ref, probs


def test_each_family_measures_its_output_error_as_its_gate_reads_it():
    """fp32 is bounded on the worst image; fp16 and int8 on the 99th percentile, which one outlier does not set."""
    ref, probs = _outlier()
    per_family = {gate: compare(ref, probs, None, q)["output_error"] for gate, q in ERROR_QUANTILE.items()}
    assert per_family["fp32"] == pytest.approx(0.501)
    assert per_family["fp16"] == per_family["int8"] == pytest.approx(0.001)


def _decisive_flips(n: int, flips: int, labelled: bool, downward: bool = False):
    """Every image off by 0.008 (the output error); `flips` of n change their answer where the reference's
    top-two margin (0.01) exceeds that error, so each is decisive."""
    ref, probs = flipping(n, near_ties=0, decisive=flips, downward=downward)
    return compare(ref, probs, ref.argmax(1) if labelled else None)


@pytest.mark.parametrize("gate, labelled, failing", [
    ("fp32", False, "fp32_agreement"), ("fp32", True, "fp32_agreement"),
    ("fp16", True, "agreement"), ("fp16", False, "agreement"), ("int8", False, "agreement"), ("int8", True, None)])
def test_family_names_read_from_metadata_judge_exactly_like_the_literals(gate, labelled, failing):
    """98% decisive agreement: below fp32's 100% and fp16's 99%, above labelled int8's 93% (below 99% unlabelled)."""
    result = _decisive_flips(1000, 20, labelled)
    verdict = judge(gate, result, DEFAULT)
    agreement = [f.gate for f in verdict.failures if "agreement" in f.gate]
    assert agreement == ([failing] if failing else [])
    assert verdict.passed is (not verdict.failures)
    again = judge(_read_from_a_file(gate), result, DEFAULT)
    assert [f.to_dict() for f in again.failures] == [f.to_dict() for f in verdict.failures]
    assert again.notes == verdict.notes


def test_fp32_agreement_failure_says_no_more_than_the_figures():
    """fp32 has no accuracy gate, so its message never adds 'no labels to score accuracy'; three decimals."""
    [failure] = [f for f in judge("fp32", _decisive_flips(1000, 20, False), DEFAULT).failures
                 if f.gate == "fp32_agreement"]
    assert failure.message == ("top-1 agreement 98.000% < 100.000% on 1000 images (20 flip(s) where the reference's "
                               "top-two margin exceeds the output error 0.008)")


def test_a_failing_verdict_does_not_pass():
    verdict = judge("int8", _decisive_flips(100, 50, False), DEFAULT)
    assert verdict.failures and verdict.passed is False


def test_no_images_no_output_error():
    result = compare(np.zeros((0, 3)), np.zeros((0, 3)), None)
    assert result["output_error"] == 0.0 and result["flips"] == result["decisive_flips"] == 0


def test_a_flip_to_a_lower_class_counts_like_one_to_a_higher_class():
    for downward in (False, True):
        result = _decisive_flips(100, 1, False, downward=downward)
        assert result["flips"] == result["decisive_flips"] == 1


def test_one_column_and_two_column_heads():
    """A sigmoid head (one column) never flips; a two-class softmax's confident flip is decisive."""
    single = np.array([[0.2], [0.9], [0.6]])
    result = compare(single, single + 0.01, None)
    assert result["flips"] == result["decisive_flips"] == 0 and result["output_error"] == pytest.approx(0.01)
    pair = np.tile([0.9, 0.1], (100, 1))
    moved = pair + [0.008, 0.0]
    pair[0], moved[0] = [0.505, 0.495], [0.49995, 0.50005]
    assert compare(pair, moved, None)["decisive_flips"] == 1


def _plain(**fields):
    """A result as written by compare, unlabelled and without flips, overridable field by field."""
    return {"samples": 200, "top1_agreement": 1.0, "max_abs_diff": 0.0, "output_error": 0.0,
            "output_error_quantile": 0.99, "flips": 0, "decisive_flips": 0, "decisive_agreement": 1.0, **fields}


def test_output_error_exactly_at_the_limit_passes():
    assert judge("int8", _plain(output_error=DEFAULT.int8_max_output_error), DEFAULT).passed
    assert judge("fp16", _plain(output_error=DEFAULT.fp16_max_output_error), DEFAULT).passed


@pytest.mark.parametrize("quantile, words", [(None, "maximum"), (1.0, "maximum"), (0.99, "99th percentile")])
def test_the_output_error_message_names_its_statistic(quantile, words):
    """Results written before the quantile was recorded measured the maximum."""
    result = _plain(output_error=0.2, output_error_quantile=quantile)
    if quantile is None:
        del result["output_error_quantile"]
    [failure] = judge("int8", result, DEFAULT).failures
    assert failure.message == f"output error 0.2 > 0.1 on 200 images ({words} of each image's largest score difference)"


def test_the_near_tie_note_counts_only_the_near_ties():
    """3 near ties and 2 decisive flips: the note says 3; with only decisive flips (even hundreds) no note."""
    ref, probs = flipping(1000, near_ties=3, decisive=2)
    verdict = judge("int8", compare(ref, probs, None), DEFAULT)
    assert [n for n in verdict.notes if "near-tie" in n] == [
        "3 near-tie flip(s) of 1000 not counted (the reference's top-two margin within the output error 0.008)"]
    many = judge("int8", _decisive_flips(1000, 300, False), DEFAULT)
    assert not [n for n in many.notes if "near-tie" in n]


def _older_labelled(drop: float, **fields):
    """A labelled result written before the interval fields existed: no measurable / resolvable flags."""
    return {"samples": 10_000, "top1_agreement": 1.0, "max_abs_diff": 0.0, "output_error": 0.0,
            "accuracy_drop_pts": drop, "lost": 0, "gained": 0, **fields}


def test_older_results_are_judged_on_their_drop_with_no_sample_size_note():
    assert [f.gate for f in judge("int8", _older_labelled(0.8), DEFAULT).failures] == ["accuracy_drop"]
    assert judge("int8", _older_labelled(0.2), DEFAULT).notes == []


@pytest.mark.parametrize("resolvable, noted", [(0.1, False), (0.5, False), (0.51, True)])
def test_the_sample_size_note_only_when_the_sample_cannot_show_the_limit(resolvable, noted):
    """int8's limit is 0.5 pt: a sample that resolves 0.5 pt or finer judges accuracy and needs no note."""
    result = _older_labelled(0.0, accuracy_drop_measurable=False, resolvable_drop_pts=resolvable)
    notes = judge("int8", result, DEFAULT).notes
    assert any("cannot show an accuracy drop" in n for n in notes) is noted

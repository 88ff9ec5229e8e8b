"""The exact statistics behind the accuracy-drop gate, checked on their defining properties rather than a few
tabulated values: the binomial tails at the edges of p and k, the Clopper-Pearson interval at any confidence,
the smallest measurable drop against paired_drop itself, and paired drops with one, none or balanced changes.

tests/unit/test_validate_unit.py has the tabulated intervals and the gate's use of them."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from edgecls.exporters.stats import (PairedDrop, at_least, clopper_pearson, fewest_measurable, paired_drop,
                                     resolvable_drop_pts)

CONFIDENCES = (0.5, 0.8, 0.9, 0.95, 0.99)


def test_binomial_tails_at_the_edges_of_p_and_k():
    """p = 0: X is 0 for sure; p = 1: X is n for sure; X >= 0 (or less) is certain at any p."""
    assert at_least(0, 5, 0.0) == 1.0 and at_least(1, 5, 0.0) == 0.0
    assert at_least(5, 5, 1.0) == 1.0 and at_least(3, 5, 1.0) == 1.0 and at_least(0, 5, 1.0) == 1.0
    assert at_least(300, 300, 1.0) == 1.0  # counts past the small integers Python caches
    assert at_least(0, 5, 0.3) == pytest.approx(1.0) and at_least(-1, 5, 0.3) == pytest.approx(1.0)
    assert at_least(6, 5, 0.3) == 0.0
    assert at_least(1, 5, 0.3) == pytest.approx(1 - 0.7 ** 5) and at_least(5, 5, 0.3) == pytest.approx(0.3 ** 5)


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize("k, n", [(1, 10), (5, 10), (3, 40), (9, 10)])
def test_each_interval_end_leaves_half_the_rest_in_its_tail(k, n, confidence):
    """Clopper-Pearson's definition: at the lower end P(X >= k) is (1 - confidence) / 2, at the upper end
    P(X <= k) is the same."""
    tail = (1 - confidence) / 2
    low, high = clopper_pearson(k, n, confidence)
    assert 0 < low < k / n < high < 1
    assert at_least(k, n, low) == pytest.approx(tail, rel=1e-6)
    assert 1 - at_least(k + 1, n, high) == pytest.approx(tail, rel=1e-6)


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_fewest_measurable_is_where_paired_drop_starts_to_show_a_drop(confidence):
    fewest = fewest_measurable(confidence)
    right = np.ones(200, bool)

    def measurable(lost: int) -> bool:
        variant = right.copy()
        variant[:lost] = False
        return paired_drop(right, variant, confidence).measurable

    assert measurable(fewest) and not measurable(fewest - 1)
    assert resolvable_drop_pts(200, confidence) == pytest.approx(fewest * 100 / 200)


def test_no_images_resolve_no_drop():
    assert resolvable_drop_pts(0) == math.inf and resolvable_drop_pts(1) == 600.0


def test_identical_answers_are_no_drop_and_no_evidence():
    right = np.array([True, False, True, True])
    drop = paired_drop(right, right.copy())
    assert drop == PairedDrop(4, 0, 0, 0.0, 0.0)
    assert drop.drop_pts == 0.0 and not drop.measurable


def test_no_images_give_a_zero_drop():
    drop = paired_drop(np.zeros(0, bool), np.zeros(0, bool))
    assert (drop.n, drop.drop_pts, drop.measurable) == (0, 0.0, False)
    assert PairedDrop(0, 0, 0, 0.0, 0.0).drop_pts == 0.0


def test_one_lost_image_is_counted_and_bounded():
    reference, variant = np.ones(100, bool), np.ones(100, bool)
    variant[0] = False
    drop = paired_drop(reference, variant)
    assert (drop.lost, drop.gained, drop.drop_pts) == (1, 0, 1.0)
    assert drop.low_pts < 1.0 and drop.high_pts == pytest.approx(1.0)  # one differing image: at most 1 point


def test_all_differing_images_lost_bound_the_drop_above_by_their_share():
    """6 lost of 120, none gained: the drop can be no more than 5 points, and its lower end is the exact
    (0.025)^(1/6) bound mapped onto points."""
    reference, variant = np.ones(120, bool), np.ones(120, bool)
    variant[:6] = False
    drop = paired_drop(reference, variant)
    assert drop.high_pts == pytest.approx(5.0)
    assert drop.low_pts == pytest.approx(5.0 * (2 * 0.025 ** (1 / 6) - 1), rel=1e-6)


def test_as_many_gained_as_lost_gives_a_symmetric_interval():
    reference, variant = np.ones(100, bool), np.ones(100, bool)
    variant[:3], reference[3:6] = False, False
    drop = paired_drop(reference, variant)
    assert drop.drop_pts == 0.0 and drop.low_pts == pytest.approx(-drop.high_pts) and drop.high_pts > 0
    swapped = paired_drop(variant, reference)
    assert (swapped.low_pts, swapped.high_pts) == pytest.approx((-drop.high_pts, -drop.low_pts))


def test_a_paired_drop_is_a_value():
    drop = paired_drop(np.ones(10, bool), np.zeros(10, bool))
    with pytest.raises(dataclasses.FrozenInstanceError):
        drop.lost = 0  # type: ignore[misc]

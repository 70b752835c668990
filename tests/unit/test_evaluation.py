"""Quality metrics: AUCs, thresholds, interval matching and NAB scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adspark.core.evaluation import (
    NAB_PROFILES,
    best_f1,
    match_intervals,
    nab_normalized,
    nab_point_weights,
    nab_probation,
    nab_raw_score,
    pr_auc,
    prf_at,
    roc_auc,
)

STD = NAB_PROFILES["standard"]


def test_roc_auc_known_values_and_ties():
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert roc_auc(np.array([1.0, 1.0]), np.array([0, 1])) == 0.5
    assert math.isnan(roc_auc(np.array([1.0, 2.0]), np.array([1, 1])))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 5), st.booleans()), min_size=2, max_size=60))
def test_roc_auc_equals_pairwise_probability(pairs):
    s = np.array([p[0] for p in pairs])
    y = np.array([p[1] for p in pairs])
    if y.all() or not y.any():
        return
    pos, neg = s[y], s[~y]
    expected = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))
    assert roc_auc(s, y) == pytest.approx(expected)


def test_pr_auc_and_thresholds():
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.1])
    y = np.array([1, 0, 1, 0, 0])
    assert pr_auc(s, y) == pytest.approx(0.5 * 1.0 + 0.5 * (2 / 3))
    at = prf_at(s, y, 0.65)
    assert (at.tp, at.fp, at.fn) == (2, 1, 0) and at.precision == pytest.approx(2 / 3) and at.recall == 1.0
    best = best_f1(s, y)
    assert best.f1 == pytest.approx(0.8) and best.recall == 1.0
    assert prf_at(s, y, best.threshold) == best


def test_interval_matching_counts_detections_delays_and_false_intervals():
    t = np.datetime64("2026-01-01T00:00:00")
    h = np.timedelta64(1, "h")
    labeled = [("a", t, t + 4 * h), ("a", t + 10 * h, t + 12 * h), ("b", t, t + 2 * h)]
    detected = [("a", t + 1 * h, t + 3 * h), ("a", t + 20 * h, t + 21 * h), ("b", t - h, t + h)]
    m = match_intervals(detected, labeled)
    assert (m.labels, m.detected, m.intervals, m.true_intervals) == (3, 2, 3, 2)
    assert m.delays_s == (3600.0, 0.0) and m.recall == pytest.approx(2 / 3) and m.precision == pytest.approx(2 / 3)


def test_nab_sigmoid_positions():
    win, value = nab_point_weights(10, [(4, 7)])
    assert list(win) == [-1] * 4 + [0] * 4 + [-1] * 2
    assert (value[:4] == -1.0).all()  # before any window: full false-positive penalty
    assert value[4] == pytest.approx(2 / (1 + math.exp(-5)) - 1)  # earliest detection, y = -1
    assert value[7] == pytest.approx(2 / (1 + math.exp(-5 * 0.25)) - 1)  # last row, y = -1/4
    assert value[8] == pytest.approx(2 / (1 + math.exp(5 / 3)) - 1)  # just after: y = 1/(width-1)
    assert value[4] > value[5] > value[6] > value[7] > 0 > value[8] > value[9]


def test_nab_scores_null_perfect_and_mixed():
    n = 1000
    windows = [(300, 339), (700, 759)]
    assert nab_probation(n) == 150 and nab_probation(100_000) == 750
    none = nab_raw_score(np.zeros(n, bool), windows, STD)
    assert none == (-2.0, 0, 0, 2)
    assert nab_normalized(none[0], 2, STD) == 0.0
    first = np.zeros(n, bool)
    first[[300, 700]] = True
    raw, tp, fp, missed = nab_raw_score(first, windows, STD)
    assert (tp, fp, missed) == (2, 0, 0) and nab_normalized(raw, 2, STD) == pytest.approx(
        100 * (2 * 0.98661 + 2) / 4, abs=1e-3)
    # only the best detection per window counts; detections in probation are ignored
    noisy = first.copy()
    noisy[[10, 310, 320]] = True
    assert nab_raw_score(noisy, windows, STD)[0] == pytest.approx(raw)
    # a false positive long after a window costs the full fp weight
    fp_flags = first.copy()
    fp_flags[999] = True
    assert nab_raw_score(fp_flags, windows, STD)[0] == pytest.approx(raw - 0.11)
    assert nab_raw_score(fp_flags, windows, NAB_PROFILES["reward_low_FP_rate"])[0] == pytest.approx(raw - 0.22)
    assert nab_raw_score(np.zeros(n, bool), windows, NAB_PROFILES["reward_low_FN_rate"])[0] == -4.0

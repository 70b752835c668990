"""Quality metrics: AUCs, thresholds, interval matching and NAB scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adspark.core.evaluate import (
    NAB_PROFILES,
    best_f1,
    match_intervals,
    nab_normalized,
    nab_point_weights,
    nab_probation,
    nab_raw_score,
    nab_scores,
    overlap_labels,
    pr_auc,
    prf_at,
    roc_auc,
    runs_of,
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


def test_match_intervals_in_row_mode_zero_width_on_both_sides():
    t = np.datetime64("2026-01-07T00:00:00")
    s = np.timedelta64(1, "s")
    labeled = [("kdd", t + 5 * s, t + 5 * s), ("kdd", t + 9 * s, t + 9 * s)]  # point labels: one event each
    detected = [("kdd", t + 5 * s, t + 5 * s), ("kdd", t + 6 * s, t + 6 * s)]  # one-event intervals
    m = match_intervals(detected, labeled)
    assert (m.labels, m.detected, m.intervals, m.true_intervals) == (2, 1, 2, 1) and m.delays_s == (0.0,)


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


def test_overlap_labels_by_entity_and_time_with_point_labels():
    t = np.datetime64("2026-01-01T00:00:00", "s")
    h = np.timedelta64(3600, "s")
    ent = np.array(["a", "a", "a", "b"])
    start = np.array([t, t + 2 * h, t + 4 * h, t])
    end = start + 2 * h
    got = overlap_labels(ent, start, end, np.array(["a", "b"]), np.array([t + 3 * h, t + 5 * h]),
                         np.array([t + 3 * h, t + 6 * h]))
    assert list(got) == [False, True, False, False]  # point label at 03:00 lies in [02:00, 04:00)


def test_nab_scores_over_series_use_runs_of_labeled_rows():
    labeled = np.zeros(1000, bool)
    labeled[300:340] = True
    flags = np.zeros(1000, bool)
    flags[300] = True
    got = nab_scores([(flags, labeled), (np.zeros(10, bool), np.zeros(10, bool))])
    assert got["standard"] == pytest.approx(100 * (0.98661 + 1) / 2, abs=1e-3)
    assert runs_of(np.array([0, 1, 1, 0, 1], bool)) == [(1, 2), (4, 4)]


def test_evaluate_frames_end_to_end_on_plain_frames():
    import pandas as pd

    from adspark.pipeline.evaluate import evaluate_frames

    t0 = pd.Timestamp("2026-01-01")
    h = pd.Timedelta(hours=1)
    starts = [t0 + i * h for i in range(20)]
    scores = pd.DataFrame({
        "entity": ["a"] * 20, "window_start": starts, "window_end": [s + h for s in starts],
        "score": [5.0 if 8 <= i < 11 else 0.1 * i % 1 for i in range(20)],
        "is_anomaly": [8 <= i < 10 for i in range(20)],
    })
    labels = pd.DataFrame({"entity": ["a"], "start": [t0 + 8 * h], "end": [t0 + 11 * h]})
    intervals = pd.DataFrame({"entity": ["a", "a"], "start": [t0 + 8 * h, t0 + 15 * h], "end": [t0 + 10 * h, t0 + 16 * h]})
    v = evaluate_frames(scores, labels, intervals, nights=1)
    assert v["positive_windows"] == 3 and v["roc_auc"] == 1.0 and v["best_f1"] == 1.0
    assert v["precision"] == 1.0 and v["recall"] == pytest.approx(2 / 3)
    assert (v["labels_detected"], v["intervals"], v["true_intervals"]) == (1, 2, 1)
    assert v["false_intervals_per_entity_day"] == 1.0 and v["median_delay_s"] == 0.0
    assert v["nab_standard"] > 90  # detected at the first labeled row, no false positive
    assert v["points"] is None  # no bucket width given: no point-level metrics
    # windows of one hour, stride one: each bucket is a point judged by the window ending at it
    v = evaluate_frames(scores.assign(bucket_seconds=3600), labels, intervals, nights=1)
    assert (v["points"], v["positive_points"]) == (20, 3)
    assert v["point_precision"] == 1.0 and v["point_recall"] == pytest.approx(2 / 3)
    assert v["point_false_alarm_rate"] == 0.0 and v["point_missed_alarm_rate"] == pytest.approx(1 / 3)


def test_each_bucket_is_judged_once_by_the_window_ending_at_it():
    from adspark.core.evaluate import point_counts, point_metrics, window_points

    t = lambda h: np.datetime64("2026-01-05T00:00") + np.timedelta64(h, "h")  # noqa: E731
    # entity a: windows of 4 hourly buckets every 2 (0-4, 2-6, 4-8); entity b: one window 0-4
    ent = np.array(["a", "b", "a", "a"])
    ws, we = np.array([t(0), t(0), t(2), t(4)]), np.array([t(4), t(4), t(6), t(8)])
    rows, e, start, end = window_points(ent, ws, we, 3600)
    assert list(rows) == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3]  # a first window covers all of it
    a = e == "a"
    assert list(start[a]) == [t(h) for h in range(8)] and (end - start == np.timedelta64(1, "h")).all()
    # a label over hours 5-6 of a: window 2-6 (flagged) holds hours 4 and 5, window 4-8 hours 6, 7
    counts = point_counts(ent, ws, we, np.array([False, False, True, False]), np.array(["a"]),
                          np.array([t(5)]), np.array([t(7)]), 3600)
    assert counts == (1, 1, 1, 9)  # TP hour 5, FP hour 4, FN hour 6
    m = point_metrics(*counts)
    assert (m.points, m.positives, m.precision, m.recall, m.f1) == (12, 2, 0.5, 0.5, 0.5)
    assert m.false_alarm_rate == pytest.approx(0.1) and m.missed_alarm_rate == 0.5
    # row mode: each window is one event, a point label marks it
    rows, *_ = window_points(ent, we, we, 0)
    assert list(rows) == [0, 1, 2, 3]
    assert point_counts(ent, we, we, np.array([True, False, False, False]), np.array(["a"]),
                        np.array([t(4)]), np.array([t(4)]), 0) == (1, 0, 0, 3)


def test_match_intervals_agrees_with_a_brute_force_reference_across_chunks():
    rng = np.random.default_rng(5)
    t0 = np.datetime64("2026-01-05T00:00:00")

    def spans(n):
        start = rng.integers(0, 500, n)
        return [(f"e{rng.integers(3)}", t0 + np.timedelta64(int(a), "s"),
                 t0 + np.timedelta64(int(a + rng.integers(0, 20)), "s")) for a in start]

    detected, labeled = spans(60), spans(45)

    def naive():
        cover = lambda s, e: (s, max(e, s + np.timedelta64(1, "s")))  # noqa: E731
        hits, delays = set(), []
        for le_, ls, le in labeled:
            ls, le = cover(ls, le)
            over = [(i, s) for i, (e, s, t) in enumerate(detected) if e == le_ and s < le and cover(s, t)[1] > ls]
            if over:
                delays.append(max(0.0, float((min(s for _, s in over) - ls) / np.timedelta64(1, "s"))))
                hits.update(i for i, _ in over)
        return len(delays), len(hits), tuple(delays)

    for chunk in (3, 2048):
        m = match_intervals(detected, labeled, chunk=chunk)
        assert (m.detected, m.true_intervals, m.delays_s) == naive()
        assert (m.labels, m.intervals) == (45, 60)

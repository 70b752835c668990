"""Detection quality against labels: pure numpy, no Spark.

Point metrics (ROC AUC, PR AUC, precision/recall/F1 at a threshold and at the best-F1 threshold),
interval metrics (labeled anomalies detected, detection delay, false intervals) and the NAB score
(Lavin & Ahmad, "Evaluating Real-time Anomaly Detection Algorithms - the Numenta Anomaly
Benchmark", 2015; the scoring of github.com/numenta/NAB ``nab/sweeper.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

NAB_PROFILES: dict[str, dict[str, float]] = {
    "standard": {"tp": 1.0, "fp": 0.11, "fn": 1.0},
    "reward_low_FP_rate": {"tp": 1.0, "fp": 0.22, "fn": 1.0},
    "reward_low_FN_rate": {"tp": 1.0, "fp": 0.11, "fn": 2.0},
}


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"scores {s.shape} and labels {y.shape} must be 1-d and the same length")
    if not np.isfinite(s).all():
        raise ValueError(f"scores hold {int((~np.isfinite(s)).sum())} non-finite values")
    return s, y


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half), NaN when one class is absent.

    Args:
        scores: Shape (n,), higher = more anomalous.
        labels: Shape (n,), true for anomalies.
    """
    s, y = _check(scores, labels)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average ranks of ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def curve_points(scores: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """ROC and PR curve points at every distinct score (descending thresholds).

    Returns:
        ``threshold``, ``tpr``, ``fpr``, ``precision``, ``recall``: each shape (k,).
    """
    s, y = _check(scores, labels)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s) - 1]
    tp = np.cumsum(y_sorted)[last].astype(np.float64)
    fp = (last + 1 - tp).astype(np.float64)
    n_pos, n_neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return {
        "threshold": s_sorted[last],
        "tpr": tp / n_pos,
        "fpr": fp / n_neg,
        "precision": tp / (tp + fp),
        "recall": tp / n_pos,
    }


def pr_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision (area under the precision-recall steps), NaN without positives."""
    s, y = _check(scores, labels)
    if not y.any():
        return float("nan")
    c = curve_points(s, y)
    recall = np.r_[0.0, c["recall"]]
    return float(np.sum(np.diff(recall) * c["precision"]))


@dataclass(frozen=True)
class PRF:
    """Precision, recall and F1 at one threshold (flag when score > threshold)."""

    threshold: float
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int


def prf_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> PRF:
    """Precision / recall / F1 of ``score > threshold``."""
    s, y = _check(scores, labels)
    flag = s > threshold
    tp, fp, fn = int((flag & y).sum()), int((flag & ~y).sum()), int((~flag & y).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return PRF(float(threshold), p, r, f, tp, fp, fn)


def best_f1(scores: np.ndarray, labels: np.ndarray) -> PRF:
    """The threshold with the highest F1 (an oracle: it reads the labels)."""
    s, y = _check(scores, labels)
    c = curve_points(s, y)
    p, r = c["precision"], c["recall"]
    f = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-300), 0.0)
    i = int(np.argmax(f))
    # flag when score > threshold: the next lower distinct score is the cut
    cut = c["threshold"][i + 1] if i + 1 < len(c["threshold"]) else np.nextafter(c["threshold"][i], -np.inf)
    return prf_at(s, y, float(cut))


@dataclass(frozen=True)
class IntervalMatch:
    """How detected intervals line up with labeled ones.

    Attributes:
        labels: Labeled anomalies.
        detected: Labeled anomalies overlapped by at least one detected interval.
        intervals: Detected intervals.
        true_intervals: Detected intervals overlapping a label.
        delays_s: For each detected label, seconds from its start to the first overlapping
            interval's start (0 when the interval began earlier).
    """

    labels: int
    detected: int
    intervals: int
    true_intervals: int
    delays_s: tuple[float, ...]

    @property
    def recall(self) -> float:
        return self.detected / self.labels if self.labels else float("nan")

    @property
    def precision(self) -> float:
        return self.true_intervals / self.intervals if self.intervals else float("nan")

    @property
    def median_delay_s(self) -> float:
        return float(np.median(self.delays_s)) if self.delays_s else float("nan")


def _span_seconds(rows: Sequence[tuple[str, np.datetime64, np.datetime64]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entities, starts and ends (epoch seconds) of (entity, start, end) rows; a zero-width
    row covers its instant (end = start + 1 s)."""
    if not len(rows):
        return np.array([], dtype=str), np.array([], np.int64), np.array([], np.int64)
    ent = np.array([str(r[0]) for r in rows])
    start = np.array([np.datetime64(r[1], "s") for r in rows]).astype(np.int64)
    end = np.array([np.datetime64(r[2], "s") for r in rows]).astype(np.int64)
    return ent, start, np.maximum(end, start + 1)


def match_intervals(
    detected: Sequence[tuple[str, np.datetime64, np.datetime64]],
    labeled: Sequence[tuple[str, np.datetime64, np.datetime64]],
    chunk: int = 2048,
) -> IntervalMatch:
    """Match detected intervals to labeled ones by entity and overlap (end exclusive).

    A zero-width interval or label (start == end: row mode, point labels) covers its instant.
    Vectorized per entity in chunks of ``chunk`` labels (memory ~ intervals x chunk booleans).

    Args:
        detected: (entity, start, end) of each detected interval.
        labeled: (entity, start, end) of each labeled anomaly.
        chunk: Labels compared at once.

    Returns:
        Counts, and the detection delay of each detected label (in label order).
    """
    d_ent, d_start, d_end = _span_seconds(detected)
    l_ent, l_start, l_end = _span_seconds(labeled)
    hit_interval = np.zeros(len(d_ent), dtype=bool)
    delay = np.full(len(l_ent), np.nan)
    for name in np.intersect1d(np.unique(d_ent), np.unique(l_ent)):
        rows = np.flatnonzero(d_ent == name)
        s, t = d_start[rows], d_end[rows]
        labels = np.flatnonzero(l_ent == name)
        for lo in range(0, len(labels), chunk):
            lab = labels[lo:lo + chunk]
            hit = (s[:, None] < l_end[None, lab]) & (t[:, None] > l_start[None, lab])  # intervals x labels
            found = hit.any(axis=0)
            first = np.where(hit, s[:, None], np.iinfo(np.int64).max).min(axis=0)
            delay[lab[found]] = np.maximum(0, first[found] - l_start[lab[found]]).astype(np.float64)
            hit_interval[rows[hit.any(axis=1)]] = True
    detected_labels = ~np.isnan(delay)
    return IntervalMatch(
        len(l_ent), int(detected_labels.sum()), len(d_ent), int(hit_interval.sum()),
        tuple(float(x) for x in delay[detected_labels]),
    )


def _scaled_sigmoid(y: float) -> float:
    """NAB's S(y) = 2 / (1 + e^{5y}) - 1 (capped at -1 beyond y = 3)."""
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def nab_probation(n_rows: int) -> int:
    """Rows of NAB's probationary period: min(15% of the rows, 750)."""
    return min(int(math.floor(0.15 * n_rows)), 750)


def nab_point_weights(n_rows: int, windows: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-row window id (-1 outside) and unweighted S(y) of a detection at that row.

    Args:
        n_rows: Rows of the series.
        windows: (left, right) row indexes of each labeled window, inclusive, sorted, disjoint.

    Returns:
        (window id per row, S(y) per row), each shape (n_rows,).
    """
    win = np.full(n_rows, -1, dtype=np.int64)
    value = np.empty(n_rows, dtype=np.float64)
    prev_right: int | None = None
    prev_width = 1
    k = 0
    i = 0
    while i < n_rows:
        if k < len(windows) and i == windows[k][0]:
            left, right = windows[k]
            width = right - left + 1
            for j in range(left, right + 1):
                win[j] = k
                value[j] = _scaled_sigmoid(-(right - j + 1) / width)
            prev_right, prev_width = right, width
            k += 1
            i = right + 1
            continue
        if prev_right is None:
            value[i] = -1.0
        else:
            value[i] = _scaled_sigmoid(abs(prev_right - i) / float(max(prev_width - 1, 1)))
        i += 1
    return win, value


def nab_raw_score(
    flags: np.ndarray, windows: Sequence[tuple[int, int]], profile: dict[str, float]
) -> tuple[float, int, int, int]:
    """NAB raw score of one series' detections (probationary rows ignored).

    Args:
        flags: Shape (n,), true where the detector flags the row.
        windows: (left, right) row indexes of each labeled window, inclusive.
        profile: Weights ``tp``, ``fp``, ``fn``.

    Returns:
        (raw score, true-positive windows, false-positive detections, missed windows).
    """
    n = len(flags)
    win, value = nab_point_weights(n, windows)
    return nab_raw_score_weighted(flags, win, value, nab_probation(n), len(windows), profile)


def nab_raw_score_weighted(
    flags: np.ndarray, win: np.ndarray, value: np.ndarray, probation: int, n_windows: int,
    profile: dict[str, float],
) -> tuple[float, int, int, int]:
    """:func:`nab_raw_score` from precomputed :func:`nab_point_weights` (to score many flag sets).

    Args:
        flags: Shape (n,), true where the detector flags the row.
        win: Window id per row (-1 outside), shape (n,).
        value: S(y) per row, shape (n,).
        probation: Leading rows ignored.
        n_windows: Labeled windows of the series.
        profile: Weights ``tp``, ``fp``, ``fn``.
    """
    hit = np.asarray(flags, dtype=bool).copy()
    hit[:probation] = False
    inside = hit & (win >= 0)
    outside = hit & (win < 0)
    ids = win[inside]
    best = np.full(n_windows, -np.inf)
    np.maximum.at(best, ids, value[inside])
    detected = int(np.isfinite(best).sum())
    missed = n_windows - detected
    raw = float(best[np.isfinite(best)].sum()) * profile["tp"] + float(value[outside].sum()) * profile["fp"]
    return raw - missed * profile["fn"], detected, int(outside.sum()), missed


def nab_normalized(raw_total: float, n_windows: int, profile: dict[str, float]) -> float:
    """100 * (raw - null) / (perfect - null) over a corpus (null detects nothing)."""
    null = -n_windows * profile["fn"]
    perfect = n_windows * profile["tp"]
    return 100.0 * (raw_total - null) / (perfect - null) if perfect != null else float("nan")


def overlap_labels(
    entity: np.ndarray, start: np.ndarray, end: np.ndarray,
    label_entity: np.ndarray, label_start: np.ndarray, label_end: np.ndarray,
) -> np.ndarray:
    """Whether each row's [start, end) overlaps a label of the same entity.

    A point label (start == end) overlaps the rows whose span holds its instant; a zero-width
    row (row mode: window start = end = the event time) covers its instant too.

    Args:
        entity, start, end: Rows (windows), each shape (n,); times as datetime64.
        label_entity, label_start, label_end: Labels, each shape (m,).

    Returns:
        Boolean array, shape (n,).
    """
    out = np.zeros(len(entity), dtype=bool)
    if len(label_entity) == 0 or len(entity) == 0:
        return out
    ent = np.asarray(entity).astype(str)
    lent = np.asarray(label_entity).astype(str)
    s, e = np.asarray(start, "datetime64[s]"), np.asarray(end, "datetime64[s]")
    ls, le = np.asarray(label_start, "datetime64[s]"), np.asarray(label_end, "datetime64[s]")
    le = np.maximum(le, ls + np.timedelta64(1, "s"))  # a point label covers its instant
    e = np.maximum(e, s + np.timedelta64(1, "s"))  # so does a zero-width window (row mode: one event)
    for name in np.intersect1d(np.unique(ent), np.unique(lent)):
        rows = np.flatnonzero(ent == name)
        lab = lent == name
        hit = (s[rows, None] < le[None, lab]) & (e[rows, None] > ls[None, lab])
        out[rows] = hit.any(axis=1)
    return out


def runs_of(flags: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) indexes of each run of consecutive true values."""
    f = np.asarray(flags, dtype=bool).astype(np.int8)
    d = np.diff(np.r_[0, f, 0])
    return list(zip(np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist()))


def nab_scores(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """NAB normalized score per profile over a corpus of series.

    Args:
        series: Per series (rows in time order): (flags, labeled) boolean arrays, shape (n,);
            each run of labeled rows is one NAB window.

    Returns:
        Profile name -> normalized score (NaN when the corpus has no window).
    """
    out = {}
    for name, profile in NAB_PROFILES.items():
        raw, windows = 0.0, 0
        for flags, labeled in series:
            wins = runs_of(labeled)
            raw += nab_raw_score(flags, wins, profile)[0]
            windows += len(wins)
        out[name] = nab_normalized(raw, windows, profile) if windows else float("nan")
    return out


@dataclass(frozen=True)
class PointMetrics:
    """Point-level confusion: each bucket (row mode: each event) judged once.

    Attributes:
        points: Points judged.
        positives: Points overlapping a label.
        precision, recall, f1: Of the flagged points (0 when undefined).
        false_alarm_rate: Flagged normal points / normal points (FP / (FP + TN)).
        missed_alarm_rate: Unflagged labeled points / labeled points (FN / (FN + TP)).
    """

    points: int
    positives: int
    precision: float
    recall: float
    f1: float
    false_alarm_rate: float
    missed_alarm_rate: float


def window_points(
    entity: np.ndarray, window_start: np.ndarray, window_end: np.ndarray, bucket_seconds: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The points each window judges: the buckets it is the first window to end after.

    A window of an entity covers the buckets from the end of that entity's previous window (or
    its own start, for the first) to its end: with stride S, its newest S buckets, so every bucket
    is judged once, by the window ending at it. Row mode (``bucket_seconds`` 0): each window is
    one point, its event.

    Args:
        entity, window_start, window_end: Windows, each shape (n,); times as datetime64.
        bucket_seconds: Bucket width (0: row mode).

    Returns:
        (window row of each point, point entity, point start, point end), each shape (p,).
    """
    ent = np.asarray(entity).astype(str)
    s = np.asarray(window_start, "datetime64[s]")
    e = np.asarray(window_end, "datetime64[s]")
    if bucket_seconds <= 0:
        return np.arange(len(ent)), ent, s, e
    width = np.timedelta64(int(bucket_seconds), "s")
    order = np.lexsort((s, e, ent))
    prev_end = np.full(len(ent), np.datetime64("NaT", "s"))
    same = np.r_[False, ent[order][1:] == ent[order][:-1]]
    prev_end[order[1:]] = np.where(same[1:], e[order][:-1], np.datetime64("NaT", "s"))
    first = np.where(np.isnat(prev_end), s, np.maximum(prev_end, s))
    counts = np.maximum(((e - first) // width).astype(np.int64), 0)
    rows = np.repeat(np.arange(len(ent)), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    starts = e[rows] - (counts[rows] - offset) * width
    return rows, ent[rows], starts, starts + width


def point_counts(
    entity: np.ndarray, window_start: np.ndarray, window_end: np.ndarray, flags: np.ndarray,
    label_entity: np.ndarray, label_start: np.ndarray, label_end: np.ndarray, bucket_seconds: int,
) -> tuple[int, int, int, int]:
    """Point-level (TP, FP, FN, TN).

    Each point (:func:`window_points`) takes the verdict (``flags``) of the window ending at it and
    is positive when it overlaps a label of its entity (:func:`overlap_labels`).
    """
    rows, ent, start, end = window_points(entity, window_start, window_end, bucket_seconds)
    flagged = np.asarray(flags, dtype=bool)[rows]
    positive = overlap_labels(ent, start, end, label_entity, label_start, label_end)
    return (int((flagged & positive).sum()), int((flagged & ~positive).sum()),
            int((~flagged & positive).sum()), int((~flagged & ~positive).sum()))


def point_metrics(tp: int, fp: int, fn: int, tn: int) -> PointMetrics:
    """:class:`PointMetrics` from point-level counts (:func:`point_counts`, summed)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return PointMetrics(
        points=tp + fp + fn + tn, positives=tp + fn, precision=precision, recall=recall,
        f1=2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        false_alarm_rate=fp / (fp + tn) if fp + tn else 0.0,
        missed_alarm_rate=fn / (fn + tp) if fn + tp else 0.0,
    )

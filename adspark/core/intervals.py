"""Anomaly intervals: merge an entity's anomalous windows into intervals (pure pandas/numpy).

Windows of one entity, sorted by start, are anomalous when their score is above the threshold in
force. Anomalous windows merge into one interval while each starts no later than ``gap`` after
the interval's current end (overlapping windows always merge). An interval is ``open`` when it
reaches the entity's last scored window (it may continue next night), ``closed`` otherwise.
The interval id is deterministic: a hash of entity, start and model id, so recomputing a night
that continues an interval yields the same id (the table is updated with a Delta MERGE).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np
import pandas as pd

INTERVAL_COLUMNS = (
    "interval_id", "entity", "start", "end", "n_windows", "peak_score", "mean_score",
    "threshold", "severity", "top_features", "top_shares", "threshold_method", "model_id", "status",
    "p_value", "driver", "driver_feature", "actual", "expected_low", "expected_high",
)
# taken from the interval's peak window when the scores carry them (adaptive alerts)
EXPLANATION_COLUMNS = ("driver", "driver_feature", "actual", "expected_low", "expected_high")


def interval_id(entity: str, start: pd.Timestamp, model_id: str) -> str:
    """A stable id of an interval: sha1 of entity, start (ISO, UTC) and model id, 20 hex chars."""
    key = f"{entity}\x1f{pd.Timestamp(start).isoformat()}\x1f{model_id}"
    return hashlib.sha1(key.encode()).hexdigest()[:20]


def _aggregate_features(features: list, shares: list, scores: np.ndarray, k: int) -> tuple[list, list]:
    """Features ranked by score-weighted share over the interval's windows; shares sum to <= 1."""
    weight: dict[str, float] = defaultdict(float)
    total = float(scores.sum()) or 1.0
    for names, parts, s in zip(features, shares, scores, strict=True):
        for name, part in zip(names, parts, strict=True):
            weight[str(name)] += float(part) * float(s) / total
    ranked = sorted(weight.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return [n for n, _ in ranked], [round(w, 6) for _, w in ranked]


def _cell(part: pd.DataFrame, column: str, row: int) -> object:
    """``part[column]`` at position ``row`` (None when absent or null)."""
    if column not in part:
        return None
    value = part[column].iloc[row]
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def severity(peak: float, threshold: float) -> float:
    """How far the peak is past the threshold: ``1 + (peak - threshold) / |threshold|``, which is
    ``peak / threshold`` for a positive threshold and stays finite and above 1 for a negative
    one (scores such as a VAE's can be negative); a threshold of 0 counts as 1e-12."""
    return 1.0 + (peak - threshold) / max(abs(threshold), 1e-12)


def merge_intervals(
    windows: pd.DataFrame,
    model_id: str,
    threshold_method: str,
    gap: pd.Timedelta = pd.Timedelta(0),
    min_duration: pd.Timedelta = pd.Timedelta(0),
    top_k: int = 3,
) -> pd.DataFrame:
    """Merge anomalous windows into intervals, per entity.

    Args:
        windows: Scored windows of any number of entities, any order; columns ``entity``,
            ``window_start``, ``window_end`` (timestamps), ``score``, ``threshold``,
            ``is_anomaly``, ``top_features`` (lists of names), ``top_shares`` (lists of floats);
            optionally ``p_value`` and :data:`EXPLANATION_COLUMNS` (adaptive alerts), which the
            interval reports at its smallest probability and its peak window.
        model_id: The model that scored them.
        threshold_method: Recorded with each interval.
        gap: Largest gap between an interval's end and the next anomalous window's start that
            still merges.
        min_duration: Intervals shorter than this are dropped.
        top_k: Features kept per interval.

    Returns:
        One row per interval, columns :data:`INTERVAL_COLUMNS`, sorted by entity and start.
        The result does not depend on the input row order and merging is idempotent.
    """
    if windows.empty:
        return pd.DataFrame(columns=list(INTERVAL_COLUMNS))
    df = windows.sort_values(["entity", "window_start", "window_end"], kind="stable")
    last_end = df.groupby("entity", sort=False)["window_end"].max()
    anom = df[df["is_anomaly"].astype(bool)]
    rows = []
    for entity, g in anom.groupby("entity", sort=True):
        starts = g["window_start"].to_numpy()
        ends = g["window_end"].to_numpy()
        # a new interval starts where the window begins after the running end + gap
        running_end = np.maximum.accumulate(ends)
        new = np.r_[True, starts[1:] > running_end[:-1] + np.timedelta64(gap)]
        group = np.cumsum(new)
        for _, part in g.groupby(group, sort=True):
            start, end = part["window_start"].iloc[0], part["window_end"].max()
            if end - start < min_duration:
                continue
            scores = part["score"].to_numpy(dtype=np.float64)
            peak = int(np.argmax(scores))
            threshold = float(part["threshold"].iloc[peak])
            feats, shares = _aggregate_features(
                list(part["top_features"]), list(part["top_shares"]), scores, top_k
            )
            explained = {c: _cell(part, c, peak) for c in EXPLANATION_COLUMNS}
            p_values = part["p_value"].to_numpy(np.float64) if "p_value" in part else np.array([np.nan])
            rows.append(
                {
                    "interval_id": interval_id(str(entity), start, model_id),
                    "entity": str(entity),
                    "start": start,
                    "end": end,
                    "n_windows": int(len(part)),
                    "peak_score": float(scores[peak]),
                    "mean_score": float(scores.mean()),
                    "threshold": threshold,
                    "severity": severity(float(scores[peak]), threshold),
                    "top_features": feats,
                    "top_shares": shares,
                    "threshold_method": threshold_method,
                    "model_id": model_id,
                    "status": "open" if end >= last_end[entity] else "closed",
                    "p_value": float(np.nanmin(p_values)) if np.isfinite(p_values).any() else None,
                    **explained,
                }
            )
    return pd.DataFrame(rows, columns=list(INTERVAL_COLUMNS))

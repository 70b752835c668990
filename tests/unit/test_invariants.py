"""Property-based invariants of the pure core (hypothesis).

Padding covering every bucket once and scaling round-trips live in ``test_features.py`` and
``test_scaling.py``; this module adds: windows never mix entities (whatever the row order),
interval merging is independent of row order and idempotent, and merged intervals partition the
anomalous windows.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from adspark.core.intervals import merge_intervals
from adspark.core.window import WindowSpec, entity_windows

H = pd.Timedelta(hours=1)
T0 = pd.Timestamp("2026-01-05 00:00")


NO_STATS = pd.DataFrame(columns=["entity", "feature", "center", "scale"])


@st.composite
def multi_entity_buckets(draw) -> pd.DataFrame:
    """Buckets (1h) of 1-4 entities with gaps; feature ``code`` = the entity's number."""
    frames = []
    for e in range(draw(st.integers(1, 4))):
        hours = sorted(draw(st.sets(st.integers(0, 71), min_size=0, max_size=60)))
        frames.append(pd.DataFrame({
            "entity": f"e{e}",
            "bucket_start": [T0 + h * H for h in hours],
            "code": float(e + 1),
            "noise": draw(st.floats(-5, 5)),
        }))
    df = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    seed = draw(st.integers(0, 2**16))
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@settings(max_examples=60, deadline=None)
@given(multi_entity_buckets(), st.integers(1, 8), st.integers(1, 4))
def test_windows_never_mix_entities(df: pd.DataFrame, size: int, stride: int) -> None:
    spec = WindowSpec(size=size, stride=stride, bucket_seconds=3600, features=("code", "noise"))
    center, scale = np.zeros(2), np.ones(2)
    out = entity_windows(df, NO_STATS, (center, scale), spec, dt.date(2026, 1, 5), dt.date(2026, 1, 7))
    assert [w.entity for w in out] == sorted({w.entity for w in out})
    for w in out:
        raw = w.raw_values.reshape(len(w), size, 2)
        # every bucket of every window comes from this entity (its code) ...
        assert np.all(raw[:, :, 0] == float(w.entity[1:]) + 1)
        # ... and from buckets it really has, contiguous in time
        have = set(df.loc[df["entity"] == w.entity, "bucket_start"])
        for start in w.window_start:
            ts = [pd.Timestamp(start) + i * H for i in range(size)]
            assert set(ts) <= have
    # the same windows whatever the row order
    again = entity_windows(df.iloc[::-1], NO_STATS, (center, scale), spec, dt.date(2026, 1, 5), dt.date(2026, 1, 7))
    assert [(w.entity, list(w.window_start)) for w in again] == [(w.entity, list(w.window_start)) for w in out]


@st.composite
def scored_windows(draw) -> pd.DataFrame:
    frames = []
    for e in range(draw(st.integers(1, 3))):
        n = draw(st.integers(0, 25))
        size = draw(st.integers(1, 6))
        stride = draw(st.integers(1, 4))
        flags = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        scores = draw(st.lists(st.floats(0.0, 10.0), min_size=n, max_size=n))
        starts = [T0 + i * stride * H for i in range(n)]
        frames.append(pd.DataFrame({
            "entity": f"e{e}",
            "window_start": starts,
            "window_end": [s + size * H for s in starts],
            "score": [s + (1.0 if f else 0.0) for s, f in zip(scores, flags)],
            "threshold": 1.0,
            "is_anomaly": flags,
            "top_features": [["a", "b"]] * n,
            "top_shares": [[0.6, 0.3]] * n,
        }))
    return pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)


@settings(max_examples=80, deadline=None)
@given(scored_windows(), st.integers(0, 4), st.integers(0, 6), st.integers(0, 2**16))
def test_interval_merging_is_order_independent_and_idempotent(w: pd.DataFrame, gap_h: int, min_h: int,
                                                               seed: int) -> None:
    kw = {"gap": gap_h * H, "min_duration": min_h * H}
    once = merge_intervals(w, "m", "q", **kw)
    shuffled = merge_intervals(w.sample(frac=1.0, random_state=seed), "m", "q", **kw)
    pd.testing.assert_frame_equal(once, shuffled)
    # idempotent: the same windows given twice (a rerun over an overlapping range) change nothing
    twice = merge_intervals(pd.concat([w, w]).drop_duplicates(["entity", "window_start"]), "m", "q", **kw)
    pd.testing.assert_frame_equal(once, twice)
    # intervals of one entity never overlap, and each anomalous window lies in at most one
    for entity, g in once.groupby("entity"):
        g = g.sort_values("start")
        assert (g["start"].iloc[1:].to_numpy() > g["end"].iloc[:-1].to_numpy()).all()
        anom = w[(w["entity"] == entity) & w["is_anomaly"]]
        for _, row in anom.iterrows():
            inside = ((g["start"] <= row["window_start"]) & (g["end"] >= row["window_end"])).sum()
            assert inside <= 1
    assert once["interval_id"].is_unique

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adspark.core.features import FeatureSpec, pad_entities, slot_name

SPEC = FeatureSpec(("event_count", "amount_sum"), ("amount_mean",), calendar=True, timezone="UTC")


def _act(days, entity="e"):
    return pd.DataFrame({"entity": [entity] * len(days), "date": list(days)})


def pad_entity(entity, buckets, days, width, spec, context=None):
    b = buckets.assign(entity=entity)
    ctx = context.assign(entity=entity) if context is not None else None
    return pad_entities(b, _act(days, entity), width, spec, ctx)


def _buckets(times, counts):
    return pd.DataFrame({
        "bucket_start": pd.to_datetime(times),
        "event_count": counts,
        "amount_sum": [c * 2.0 for c in counts],
        "amount_mean": [2.0] * len(counts),
    })


def test_pads_active_days_with_zero_counts_and_null_stats():
    b = _buckets(["2026-01-05 06:00"], [3.0])
    out = pad_entity("e", b, [dt.date(2026, 1, 5), dt.date(2026, 1, 6)], 6 * 3600, SPEC)
    assert len(out) == 8 and out["bucket_start"].is_monotonic_increasing
    real = out[~out["padded"]]
    assert list(real["event_count"]) == [3.0]
    pads = out[out["padded"]]
    assert (pads["event_count"] == 0).all() and (pads["amount_sum"] == 0).all()
    assert pads["amount_mean"].isna().all()
    assert list(out.columns[:4]) == ["entity", "bucket_start", "date", "padded"]


def test_calendar_in_time_zone():
    spec = FeatureSpec(("event_count",), (), calendar=True, timezone="America/New_York")
    b = pd.DataFrame({"bucket_start": pd.to_datetime(["2026-01-05 03:00"]), "event_count": [1.0]})
    out = pad_entity("e", b, [], 3600, spec)
    # 03:00 UTC Monday = 22:00 Sunday in New York
    assert (out.loc[0, "hour_of_day"], out.loc[0, "day_of_week"], out.loc[0, "is_weekend"]) == (22, 7, 1)


def test_difference_uses_context_across_the_range_start():
    spec = FeatureSpec(("event_count",), (), difference=("event_count",), calendar=False)
    b = pd.DataFrame({"bucket_start": pd.to_datetime(["2026-01-06 00:00", "2026-01-06 12:00"]),
                      "event_count": [5.0, 1.0]})
    ctx = pd.DataFrame({"bucket_start": pd.to_datetime(["2026-01-05 18:00"]), "event_count": [2.0]})
    out = pad_entity("e", b, [dt.date(2026, 1, 6)], 6 * 3600, spec, context=ctx)
    assert list(out["event_count_diff"]) == [3.0, -5.0, 1.0, -1.0]
    no_ctx = pad_entity("e", b, [dt.date(2026, 1, 6)], 6 * 3600, spec)
    assert np.isnan(no_ctx.loc[0, "event_count_diff"])


def test_duplicate_buckets_rejected():
    with pytest.raises(ValueError, match="duplicate"):
        pad_entity("e", _buckets(["2026-01-05 06:00"] * 2, [1.0, 1.0]), [], 3600, SPEC)


def test_spec_validate_and_slot_names():
    with pytest.raises(ValueError, match="difference"):
        FeatureSpec(("a",), (), difference=("b",)).validate()
    assert slot_name("category", "Fast Food!") == "category__fast_food"
    assert slot_name("c", "") == "c__empty"


@settings(max_examples=40, deadline=None)
@given(
    st.sets(st.integers(0, 6 * 24 - 1), max_size=40),
    st.sets(st.integers(0, 5), max_size=6),
    st.sampled_from([3600, 6 * 3600, 86400]),
)
def test_padding_covers_every_bucket_exactly_once(hours, days, width):
    day0 = pd.Timestamp("2026-01-05")
    starts = sorted({(day0 + pd.Timedelta(hours=h)).floor(f"{width}s") for h in hours})
    b = _buckets(starts, [1.0] * len(starts))
    active = [dt.date(2026, 1, 5) + dt.timedelta(days=d) for d in days]
    out = pad_entity("e", b, active, width, SPEC)
    expected = set(starts)
    for d in active:
        expected |= set(pd.date_range(pd.Timestamp(d), periods=86400 // width, freq=f"{width}s"))
    assert list(out["bucket_start"]) == sorted(expected)
    assert out["event_count"].sum() == len(starts)


def test_entities_never_mix():
    b = pd.concat([_buckets(["2026-01-05 06:00"], [1.0]).assign(entity="a"),
                   _buckets(["2026-01-05 06:00", "2026-01-06 00:00"], [2.0, 4.0]).assign(entity="b")])
    act = pd.concat([_act([dt.date(2026, 1, 5)], "a"), _act([dt.date(2026, 1, 6)], "b")])
    spec = FeatureSpec(("event_count", "amount_sum"), ("amount_mean",), difference=("event_count",))
    out = pad_entities(b, act, 6 * 3600, spec)
    assert list(out.groupby("entity").size()) == [4, 5]
    a, bb = out[out.entity == "a"], out[out.entity == "b"]
    assert a.event_count.sum() == 1.0 and bb.event_count.sum() == 6.0
    # b's first bucket has no predecessor: NaN, not a's value
    assert np.isnan(bb.event_count_diff.iloc[0])


def test_span_padding_fills_short_idle_gaps_only_between_events():
    """A 20-minute run in 1-second buckets: 1,200 rows, not a day's 86,400; a gap longer than
    max_gap, and midnight, end a span; nothing before the first event or after the last."""
    import datetime as dt

    import numpy as np
    import pandas as pd

    from adspark.core.features import FeatureSpec, pad_entities

    spec = FeatureSpec(zero_fill=("event_count",), null_fill=(), difference=(), calendar=False, timezone="UTC")
    t0 = pd.Timestamp("2026-01-05 10:00:00")
    every_3s = [t0 + pd.Timedelta(seconds=s) for s in range(0, 1200, 3)]
    later = [t0 + pd.Timedelta(hours=2), t0 + pd.Timedelta(hours=2, seconds=4)]  # after a 2 h gap
    midnight = [pd.Timestamp("2026-01-05 23:59:58"), pd.Timestamp("2026-01-06 00:00:01")]
    buckets = pd.DataFrame({"entity": "run-1", "bucket_start": every_3s + later + midnight, "event_count": 1.0})
    activity = pd.DataFrame({"entity": ["run-1"], "date": [dt.date(2026, 1, 5)]})
    out = pad_entities(buckets, activity, 1, spec, max_gap_buckets=60)
    first_run = out[out["bucket_start"] < t0 + pd.Timedelta(hours=1)]
    assert len(first_run) == 1198 and first_run["bucket_start"].is_monotonic_increasing  # 10:00:00..10:19:57
    assert first_run["padded"].sum() == 1198 - 400 and (first_run.loc[first_run["padded"], "event_count"] == 0).all()
    second = out[(out["bucket_start"] >= t0 + pd.Timedelta(hours=1)) & (out["date"] == dt.date(2026, 1, 5))]
    assert len(second) == 5 + 1  # 12:00:00..12:00:04 and 23:59:58: the 2 h gap is not filled
    assert out["bucket_start"].max() == pd.Timestamp("2026-01-06 00:00:01")
    assert not out["bucket_start"].isin([pd.Timestamp("2026-01-05 23:59:59"), pd.Timestamp("2026-01-06 00:00:00")]).any()
    day = pad_entities(buckets, activity, 1, spec)  # day padding: the whole active day
    assert (day["date"] == dt.date(2026, 1, 5)).sum() == 86400
    assert np.isclose(out["event_count"].sum(), day["event_count"].sum())

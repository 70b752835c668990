import datetime as dt

import numpy as np
import pandas as pd

from adspark.core.generate import (
    ANOMALY_KINDS,
    EVENT_COLUMNS,
    GeneratorSpec,
    entity_day_columns,
    events_of,
    generate_entity_day,
    plan_anomalies,
)

SPEC = GeneratorSpec(entities=30, days=10, events=30 * 10 * 200, start=dt.date(2026, 1, 5), seed=3,
                     anomaly_entity_fraction=0.4, bad_row_fraction=0.0, anomaly_free_days=3)


def test_reproducible_and_shaped():
    a = generate_entity_day(SPEC, 4, 2, plan_anomalies(SPEC).iloc[0:0])
    b = generate_entity_day(SPEC, 4, 2, plan_anomalies(SPEC).iloc[0:0])
    pd.testing.assert_frame_equal(a, b)
    assert tuple(a.columns) == EVENT_COLUMNS
    assert (a["event_date"] == dt.date(2026, 1, 7)).all()
    assert a["event_time"].is_monotonic_increasing and a["event_id"].is_unique


def test_plan_covers_every_kind_after_the_clean_period():
    plan = plan_anomalies(SPEC)
    assert set(plan["kind"]) == set(ANOMALY_KINDS) and len(plan) == 12
    assert (plan["start"] >= pd.Timestamp("2026-01-08")).all()
    assert (plan["end"] > plan["start"]).all()


def _with(kind):
    plan = plan_anomalies(SPEC)
    row = plan[plan["kind"] == kind].iloc[0]
    e = int(row["entity"][1:])
    day = (row["start"].normalize() - pd.Timestamp(SPEC.start)).days
    return plan[plan["entity"] == row["entity"]], e, day, row


def test_spike_and_drop_change_counts():
    anoms, e, day, row = _with("spike")
    normal = generate_entity_day(SPEC, e, day, anoms.iloc[0:0])
    hit = generate_entity_day(SPEC, e, day, anoms)

    def inside(f):
        return ((f["event_time"] >= row["start"]) & (f["event_time"] < row["end"])).sum()

    assert inside(hit) > 3 * max(inside(normal), 1)
    anoms, e, day, row = _with("drop_to_zero")
    hit = generate_entity_day(SPEC, e, day, anoms)
    assert inside(hit) == 0


def test_bad_rows_are_injected():
    spec = GeneratorSpec(**{**SPEC.__dict__, "bad_row_fraction": 0.2})
    f = generate_entity_day(spec, 1, 1, plan_anomalies(spec).iloc[0:0])
    assert f["user_id"].isna().any()
    assert (f["amount"] < 0).any() or np.isinf(f["latency_ms"]).any() or f.duplicated().any()


def test_batched_columns_give_the_same_events_as_before_batching():
    # figures taken from the frame-per-day generator this replaced (same draws, same rows)
    spec = GeneratorSpec(**{**SPEC.__dict__, "bad_row_fraction": 0.05})
    plan = plan_anomalies(spec)
    days = [(e, d, plan[plan["entity"] == f"u{e:05d}"]) for e in range(30) for d in range(10)]
    f = events_of([entity_day_columns(spec, e, d, a) for e, d, a in days])
    pd.testing.assert_frame_equal(f.iloc[:500], pd.concat([generate_entity_day(spec, *x) for x in days[:5]],
                                                          ignore_index=True).iloc[:500])
    assert tuple(f.columns) == EVENT_COLUMNS and len(f) == 54506
    assert f["user_id"].isna().sum() == 449 and f.duplicated().sum() == 469
    assert (f["event_time"] > pd.Timestamp("2100-01-01")).sum() == 458
    finite = np.isfinite(f["amount"])
    assert round(float(f["amount"][finite].sum()), 2) == 3163345.14
    assert f["category"].value_counts()["crypto"] == 100
    assert f.iloc[1234].to_dict() == {
        "event_id": "u00000-0006-000204", "event_time": pd.Timestamp("2026-01-11 21:34:06.543723"),
        "user_id": "u00000", "amount": 31.62, "latency_ms": 47.1, "category": "retail", "channel": "web",
        "event_date": dt.date(2026, 1, 11),
    }

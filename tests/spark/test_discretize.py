"""discretize on a tiny table: padding, counts, reconciliation, idempotent reruns."""

import datetime as dt

import pytest

from adspark.config import DiscretizeJobConfig, build_job_config
from adspark.errors import SchemaMismatchError
from adspark.pipeline.discretize import run_discretize

D5, D6, D7 = dt.date(2026, 1, 5), dt.date(2026, 1, 6), dt.date(2026, 1, 7)


def _features(store):
    return store.read("features").orderBy("entity", "bucket_start").toPandas()


def test_features_are_padded_and_reconciled(store, base_config, tiny_events):
    cfg = build_job_config(DiscretizeJobConfig, base_config)
    run = run_discretize(store, cfg, D5, D7)
    assert (run.rows_read, run.rows_accepted, run.rows_rejected) == (12, 12, 0)
    f = _features(store)
    # two users x three days x four 6h buckets, each bucket exactly once
    assert len(f) == 24 and not f.duplicated(["entity", "bucket_start"]).any()
    u1 = f[(f.entity == "u1") & (f.date == D5)]
    assert list(u1.event_count) == [1.0, 2.0, 0.0, 0.0]
    assert list(u1.padded) == [False, False, True, True]
    assert list(u1.amount_sum) == [10.0, 25.0, 0.0, 0.0]
    assert u1.amount_mean.iloc[1] == 12.5 and u1.amount_mean.iloc[2:].isna().all()
    assert list(u1.category__a) == [1.0, 1.0, 0.0, 0.0]
    assert list(u1.category__other) == [0.0, 1.0, 0.0, 0.0]
    assert list(u1.hour_of_day) == [0, 6, 12, 18]
    # differencing crosses the day boundary within one run
    assert f[(f.entity == "u1") & (f.date == D6)].event_count_diff.iloc[0] == 1.0
    runs = store.read("runs").where("job = 'discretize'").collect()
    assert runs[0].status == "succeeded" and runs[0].rows_read == 12


def test_rerun_replaces_exactly_its_nights(store, base_config, tiny_events):
    cfg = build_job_config(DiscretizeJobConfig, base_config)
    run_discretize(store, cfg, D5, D7)
    before = _features(store)
    run_discretize(store, cfg, D6, D6)
    run_discretize(store, cfg, D6, D6)
    after = _features(store)
    assert len(after) == len(before)
    # day-by-day diff uses the stored previous bucket: same values as the range run
    cols = [c for c in before.columns if c != "padded"]
    assert after[cols].equals(before[cols])


def test_bad_rows_go_to_rejects_and_counts_hold(spark, store, base_config, tiny_events):
    from schemas import EVENTS

    bad = [("b1", dt.datetime(2026, 1, 5, 3), None, 1.0, 1.0, "a", "web", D5),
           ("b2", dt.datetime(2026, 1, 5, 3), "u1", -1.0, 1.0, "a", "web", D5),
           ("b3", dt.datetime(2026, 1, 5, 3), "u1", float("nan"), 1.0, "a", "web", D5)]
    spark.createDataFrame(bad, EVENTS.struct_type()).write.format("delta").mode("append").save(store.path("events"))
    cfg = build_job_config(DiscretizeJobConfig, base_config)
    run = run_discretize(store, cfg, D5, D5)
    assert (run.rows_read, run.rows_accepted, run.rows_rejected) == (7, 4, 3)
    reasons = sorted(r.reason for r in store.read("rejects").collect())
    assert reasons == ["negative_value", "non_finite", "null_entity"]
    run_discretize(store, cfg, D5, D5)
    assert store.read("rejects").count() == 3  # a rerun replaces, never doubles


def test_missing_column_stops_before_any_write(store, base_config, tiny_events):
    base_config["source"]["measures"].append({"name": "fee"})
    cfg = build_job_config(DiscretizeJobConfig, base_config)
    with pytest.raises(SchemaMismatchError, match="'fee' expected"):
        run_discretize(store, cfg, D5, D5)
    assert not store.exists("features") and not store.exists("rejects")
    failed = store.read("runs").collect()
    assert failed[0].status == "failed" and "fee" in failed[0].message

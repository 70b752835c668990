"""Each validation rule on a tiny table; schema problems stop before anything is written."""

import datetime as dt

import pytest

from adspark.config import DiscretizeJobConfig, build_job_config
from adspark.errors import SchemaMismatchError
from adspark.pipeline.validate import REASONS, rejects_frame, validate_events

D = dt.date(2026, 1, 5)
SCHEMA = ("event_id string, event_time string, user_id string, amount string, "
          "latency_ms double, category string, event_date date, extra string")

# (row, expected reason, expected column)
CASES = [
    (("ok1", "2026-01-05 10:00:00", "u1", "1.5", 3.0, "a", D, "x"), None, None),
    (("ok2", "2026-01-05 11:00:00", "u2", "0", 0.0, None, D, "x"), None, None),
    (("e1", "2026-01-05 10:00:00", None, "1", 1.0, "a", D, "x"), "null_entity", "user_id"),
    (("e2", "2026-01-05 10:00:00", "  ", "1", 1.0, "a", D, "x"), "null_entity", "user_id"),
    (("e3", None, "u1", "1", 1.0, "a", D, "x"), "null_timestamp", "event_time"),
    (("e4", "yesterday-ish", "u1", "1", 1.0, "a", D, "x"), "unparseable_timestamp", "event_time"),
    (("e5", "2026-01-07 10:00:00", "u1", "1", 1.0, "a", D, "x"), "outside_night", "event_time"),
    (("e6", "2199-01-05 10:00:00", "u1", "1", 1.0, "a", D, "x"), "timestamp_out_of_range", "event_time"),
    (("e7", "2026-01-05 10:00:00", "u1", None, 1.0, "a", D, "x"), "null_value", "amount"),
    (("e8", "2026-01-05 10:00:00", "u1", "12,5€", 1.0, "a", D, "x"), "unparseable_value", "amount"),
    (("e9", "2026-01-05 10:00:00", "u1", "NaN", 1.0, "a", D, "x"), "non_finite", "amount"),
    (("e10", "2026-01-05 10:00:00", "u1", "1", float("inf"), "a", D, "x"), "non_finite", "latency_ms"),
    (("e11", "2026-01-05 10:00:00", "u1", "-3", 1.0, "a", D, "x"), "negative_value", "amount"),
    (("dup", "2026-01-05 12:00:00", "u1", "2", 1.0, "b", D, "x"), None, None),
    (("dup", "2026-01-05 12:00:00", "u1", "2", 1.0, "b", D, "x"), "duplicate", None),
    (("late", "2026-01-05 10:00:00", "u1", "1", 1.0, "a", dt.date(2026, 1, 6), "x"), None, None),
]


@pytest.fixture()
def cfg(base_config):
    return build_job_config(DiscretizeJobConfig, base_config).source


def test_every_rule(spark, cfg):
    df = spark.createDataFrame([c[0] for c in CASES], SCHEMA)
    v = validate_events(df, cfg, D, D)
    rows = v.rows.select("event_id", "_reason", "_column", "_detail", "_raw").collect()
    got = {r.event_id: r for r in rows}
    ids = [r.event_id for r in rows]
    # partition 2026-01-06, event day 2026-01-05: a late arrival, read (and accepted) for 2026-01-05
    assert "late" in ids
    assert ids.count("dup") == 2
    for row, reason, column in CASES:
        if column == "skip" or row[0] == "dup":
            continue
        assert (got[row[0]]._reason, got[row[0]]._column) == (reason, column), row[0]
    dups = [r for r in rows if r.event_id == "dup"]
    assert sorted(str(r._reason) for r in dups) == ["None", "duplicate"]
    # the raw row is kept for rejected rows only
    assert all((r._raw is None) == (r._reason is None) for r in rows)
    assert {c[1] for c in CASES if c[1]} <= set(REASONS)
    assert v.accepted.count() + v.rejected.count() == v.rows.count() == len(CASES)


def test_persisted_rows_drop_unused_columns_and_the_rejects_keep_them(spark, cfg):
    """Discretize caches the validated rows without the event id: every verdict is the same, and
    a rejected row's raw JSON still names its event."""
    import json

    df = spark.createDataFrame([c[0] for c in CASES], SCHEMA)
    whole = validate_events(df, cfg, D, D)
    lean = validate_events(df, cfg, D, D).persisted(drop=["event_id"])
    try:
        assert "event_id" not in lean.rows.columns
        verdicts = sorted(tuple(map(str, r)) for r in lean.rows.select("_entity", "_ts", "_reason", "_raw").collect())
        assert verdicts == sorted(
            tuple(map(str, r)) for r in whole.rows.select("_entity", "_ts", "_reason", "_raw").collect()
        )
        raws = [json.loads(r.raw) for r in rejects_frame(lean, "run", "discretize").collect()]
        assert {"e1", "e7", "e11"} <= {r["event_id"] for r in raws}
    finally:
        lean.release()


def test_rejects_carry_raw_row_and_detail(spark, cfg):
    df = spark.createDataFrame([CASES[9][0]], SCHEMA)
    rej = rejects_frame(validate_events(df, cfg, D, D), "run-1", "discretize").collect()
    assert len(rej) == 1
    r = rej[0]
    assert (r.run_id, r.job, r.reason, r.column, r.date) == ("run-1", "discretize", "unparseable_value", "amount", D)
    assert "12,5€" in r.detail and '"event_id":"e8"' in r.raw


@pytest.mark.parametrize(
    "ddl,column,expected",
    [
        ("event_id string, event_time string, user_id string, latency_ms double, category string, event_date date",
         "amount", "missing"),
        ("event_id string, event_time string, user_id string, amount array<int>, latency_ms double, "
         "category string, event_date date", "amount", "array<int>"),
        ("event_id string, event_time boolean, user_id string, amount double, latency_ms double, "
         "category string, event_date date", "event_time", "boolean"),
    ],
)
def test_schema_problems_stop_early(spark, cfg, ddl, column, expected):
    df = spark.createDataFrame([], ddl)
    with pytest.raises(SchemaMismatchError) as err:
        validate_events(df, cfg, D, D)
    assert err.value.column == column and err.value.actual == expected
    assert column in str(err.value)


def test_extra_column_is_ignored_and_logged(spark, cfg, caplog):
    df = spark.createDataFrame([CASES[0][0]], SCHEMA)
    with caplog.at_level("WARNING", logger="adspark.pipeline.validate"):
        v = validate_events(df, cfg, D, D)
    assert "ignoring columns not in the contract: ['extra']" in caplog.text
    assert "extra" not in v.rows.columns and v.accepted.count() == 1


def test_hundreds_of_measure_columns_validate_and_the_first_failed_rule_wins(spark, base_config):
    # 200 measures = 800+ checks: nested CASE expressions overflowed the JVM stack at ~140
    names = [f"v{i:03d}" for i in range(200)]
    data = dict(base_config)
    data["source"] = {**base_config["source"], "event_id": None, "measures": [{"name": n, "non_negative": True} for n in names],
                      "categoricals": []}
    source = build_job_config(DiscretizeJobConfig, data).source
    good = ["2026-01-05 10:00:00", "u1", *[1.0] * 200, D]
    bad = ["2026-01-05 11:00:00", "u2", *[1.0] * 200, D]
    bad[2 + 7], bad[2 + 150] = -1.0, float("nan")  # v007 negative, v150 NaN: the earlier column is named
    schema = "event_time string, user_id string, " + ", ".join(f"{n} double" for n in names) + ", event_date date"
    df = spark.createDataFrame([tuple(good), tuple(bad)], schema)
    v = validate_events(df, source, D, D)
    rows = {r._entity: r for r in v.rows.select("_entity", "_reason", "_column").collect()}
    assert (rows["u1"]._reason, rows["u2"]._reason, rows["u2"]._column) == (None, "negative_value", "v007")


@pytest.mark.parametrize("policy", ["aggregate", "reject"])
def test_different_readings_at_one_timestamp_are_counted_or_rejected(spark, base_config, policy):
    base_config["source"]["same_timestamp"] = policy
    source = build_job_config(DiscretizeJobConfig, base_config).source
    rows = [
        ("a", "2026-01-05 10:00:00", "u1", "1.5", 3.0, "a", D, "x"),
        ("b", "2026-01-05 10:00:00", "u1", "9.0", 3.0, "a", D, "x"),  # same entity and time, another reading
        ("c", "2026-01-05 10:00:00", "u2", "1.5", 3.0, "a", D, "x"),  # same time, another entity
        ("d", "2026-01-05 11:00:00", "u1", "2.0", 3.0, "a", D, "x"),
        ("d", "2026-01-05 11:00:00", "u1", "2.0", 3.0, "a", D, "x"),  # an exact copy: a duplicate
    ]
    v = validate_events(spark.createDataFrame(rows, SCHEMA), source, D, D)
    got = sorted(((r.event_id, r._reason, r._shared) for r in v.rows.select("event_id", "_reason", "_shared").collect()),
                 key=lambda t: (t[0], str(t[1])))
    if policy == "aggregate":
        assert got == [("a", None, True), ("b", None, True), ("c", None, False), ("d", None, False),
                       ("d", "duplicate", False)]
    else:
        assert got == [("a", "conflicting_readings", False), ("b", "conflicting_readings", False),
                       ("c", None, False), ("d", None, False), ("d", "duplicate", False)]
        r = v.rejected.where("event_id = 'a'").first()
        assert r._column == "event_time" and r._detail.startswith("2 different readings of entity u1 at 2026-01-05 10:00")
        assert "conflicting_readings" in REASONS and '"event_id":"a"' in r._raw
    assert v.accepted.count() + v.rejected.count() == len(rows)


def test_the_checks_and_the_features_aggregate_share_one_exchange(spark, cfg):
    """Exact copies and readings sharing a timestamp are found within the entity's hash group:
    validation shuffles the rows once, and an aggregation keyed by the group (discretize) adds
    no exchange of the raw rows."""
    from pyspark.sql import functions as F

    df = spark.createDataFrame([c[0] for c in CASES], SCHEMA)
    v = validate_events(df, cfg, D, D, groups=4)

    def exchanges(frame) -> int:
        return frame._jdf.queryExecution().executedPlan().toString().count("Exchange hashpartitioning")

    assert exchanges(v.rows) == 1
    assert exchanges(v.accepted.groupBy("_group", "_entity", F.to_date("_ts")).count()) == 1
    assert {r._group for r in v.rows.select("_group").collect()} <= {0, 1, 2, 3}
    # without groups (row mode, where one entity may hold every row): by entity and timestamp
    ungrouped = validate_events(df, cfg, D, D)
    assert exchanges(ungrouped.rows) == 1 and "_group" not in ungrouped.rows.columns

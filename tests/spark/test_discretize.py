"""discretize on a tiny table: padding, counts, reconciliation, idempotent reruns."""

import datetime as dt

import pytest

from adspark.config import DiscretizeJobConfig, build_job_config
from adspark.errors import ConfigError, SchemaMismatchError
from adspark.pipeline.discretize import discretize, run_discretize

D5, D6, D7 = dt.date(2026, 1, 5), dt.date(2026, 1, 6), dt.date(2026, 1, 7)


def _features(store):
    return store.read("features").orderBy("entity", "bucket_start").toPandas()


def test_features_are_padded_and_reconciled(store, base_config, tiny_events):
    cfg = build_job_config(DiscretizeJobConfig, base_config)
    run = run_discretize(store, cfg, D5, D7)
    assert (run.rows_read, run.rows_accepted, run.rows_rejected) == (12, 12, 0)
    assert store.read("rejects").count() == 0  # a clean warehouse still has the table, empty
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
    filled = int((f.event_count > 0).sum())  # the summary counts the buckets holding events
    assert f"wrote 24 feature rows ({filled} with events)" in run.summary and 0 < filled < 24


def test_statistics_choose_each_measures_columns_and_std_is_the_spread_of_the_readings(store, base_config, tiny_events):
    """``discretize.statistics: [std, mean]``: the columns ``x_mean``, ``x_std`` in the table's
    order, no min and max; the spread of a bucket's readings (population: 0 for one reading, null
    for an empty bucket, masked as missing like the other statistics)."""
    import numpy as np

    from adspark.core.streaming import mask_empty_buckets

    base_config["discretize"]["statistics"] = ["std", "mean"]
    run_discretize(store, build_job_config(DiscretizeJobConfig, base_config), D5, D5)
    f = _features(store)
    measured = [c for c in f.columns if c.startswith(("amount_", "latency_ms_"))]
    assert measured == ["amount_sum", "latency_ms_sum", "amount_mean", "amount_std", "latency_ms_mean", "latency_ms_std"]
    u1 = f[f.entity == "u1"]
    assert list(u1.amount_std.iloc[:2]) == [0.0, 7.5] and u1.amount_std.iloc[2:].isna().all()  # 10 | 20, 5 | - | -
    names = ("event_count", "amount_std")
    masked = mask_empty_buckets(u1[list(names)].fillna(0.0).to_numpy(), names)
    assert np.isnan(masked[2:, 1]).all() and list(masked[:2, 1]) == [0.0, 7.5]

    base_config["discretize"]["statistics"] = ["std", "std"]
    with pytest.raises(ConfigError, match=r"statistics named twice: \['std'\]"):
        build_job_config(DiscretizeJobConfig, base_config)
    base_config["discretize"]["statistics"] = ["median"]
    with pytest.raises(ConfigError, match="statistics"):
        build_job_config(DiscretizeJobConfig, base_config)


def test_a_vocabulary_fitted_up_to_a_night_ignores_the_later_nights(spark, store, base_config):
    from schemas import EVENTS

    # D5: "a" three times, "c" once; D6: "c" four times (over both nights "c" is the more frequent)
    rows = [(f"e{day}-{hour}", dt.datetime(2026, 1, day, hour, 30), "u1", 1.0, 1.0, category, "web",
             dt.date(2026, 1, day))
            for day, categories in ((5, "aaac"), (6, "cccc")) for hour, category in enumerate(categories)]
    spark.createDataFrame(rows, EVENTS.struct_type()).write.format("delta").partitionBy("event_date").save(
        store.path("events"))
    store.register("events")
    base_config["source"]["categoricals"] = [{"name": "category", "top_k": 1}]
    cfg = build_job_config(DiscretizeJobConfig, base_config)
    counts = discretize(store, cfg, D5, D6, fit_to=D5).nights
    assert [r.value for r in store.read("vocabularies").collect()] == ["a"]
    assert (counts[D5].read, counts[D6].read) == (4, 4)
    assert {"category__a", "category__other"} <= set(_features(store).columns)


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
    # file statistics of the keys only, declared once when the table was created (a property set
    # again by every night's write would change the metadata and fail concurrent nights)
    import glob
    import json

    logs = sorted(glob.glob(f"{store.path('features')}/_delta_log/*.json"))
    entries = [json.loads(line) for log in logs for line in open(log)]
    metadata = [e["metaData"]["configuration"] for e in entries if "metaData" in e]
    assert [m.get("delta.dataSkippingStatsColumns") for m in metadata] == ["entity,bucket_start"]
    stats = [json.loads(e["add"]["stats"]) for e in entries if "add" in e]
    assert stats and all(set(s["minValues"]) == {"entity", "bucket_start"} for s in stats)
    assert {e["protocol"]["minWriterVersion"] for e in entries if "protocol" in e} == {2}


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
    # the source fixed: a rerun clears the night's rejects; then a clean night commits nothing there
    spark.sql(f"DELETE FROM delta.`{store.path('events')}` WHERE event_id IN ('b1', 'b2', 'b3')")
    store.commits.clear()
    run = run_discretize(store, cfg, D5, D5)
    assert (run.rows_read, run.rows_rejected) == (4, 0) and store.read("rejects").count() == 0
    assert store.commits["rejects"] == 1
    store.commits.clear()
    run_discretize(store, cfg, D5, D5)
    assert "rejects" not in store.commits and store.commits["features"] == 1


def test_missing_column_stops_before_any_write(store, base_config, tiny_events):
    base_config["source"]["measures"].append({"name": "fee"})
    cfg = build_job_config(DiscretizeJobConfig, base_config)
    with pytest.raises(SchemaMismatchError, match="'fee' expected"):
        run_discretize(store, cfg, D5, D5)
    assert not store.exists("features") and not store.exists("rejects")
    failed = store.read("runs").collect()
    assert failed[0].status == "failed" and "fee" in failed[0].message


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_files_in_any_format_with_raw_names_give_the_same_features(store, base_config, tiny_events, tmp_path, fmt):
    """The tiny events as files whose columns have raw names (spaces, capitals): read with
    ``source.format`` and ``source.rename``, they discretize to exactly the Delta source's features."""
    import copy

    cfg = build_job_config(DiscretizeJobConfig, base_config)
    run_discretize(store, cfg, D5, D7)
    want = _features(store).drop(columns=["padded"])
    raw = {"user_id": "User ID", "amount": "Amount (EUR)", "event_time": "Event Time"}
    df = store.read("events").withColumnsRenamed(raw)
    path = tmp_path / f"events.{fmt}"
    if fmt == "csv":
        df = df.selectExpr(*[f"cast(`{c}` as string) as `{c}`" for c in df.columns])
        df.coalesce(1).write.option("header", "true").option("sep", ";").csv(str(path))
    else:
        getattr(df.write, fmt)(str(path))
    other = copy.deepcopy(base_config)
    other["storage"]["warehouse"] = str(tmp_path / "wh2")
    other["source"].update({"path": str(path), "rename": {v: k for k, v in raw.items()},
                            "format": {"type": fmt, **({"delimiter": ";"} if fmt == "csv" else {})}})
    from adspark.config import StorageConfig
    from adspark.storage import TableStore

    store2 = TableStore(store.spark, StorageConfig(warehouse=str(tmp_path / "wh2"), schema="adspark_files"))
    run = run_discretize(store2, build_job_config(DiscretizeJobConfig, other), D5, D7)
    assert (run.rows_read, run.rows_rejected) == (12, 0)
    got = store2.read("features").orderBy("entity", "bucket_start").toPandas().drop(columns=["padded"])
    assert got[want.columns].equals(want)


def test_a_rename_of_a_missing_column_names_it(store, base_config, tiny_events):
    base_config["source"]["rename"] = {"User ID": "user_id"}
    with pytest.raises(SchemaMismatchError, match=r"column 'User ID' expected a column \(source.rename maps it to 'user_id'"):
        run_discretize(store, build_job_config(DiscretizeJobConfig, base_config), D5, D5)


def test_a_file_format_needs_a_path(base_config):
    from adspark.errors import ConfigError

    base_config["source"]["format"] = {"type": "csv"}
    with pytest.raises(ConfigError, match="format 'csv' reads files: give source.path"):
        build_job_config(DiscretizeJobConfig, base_config)


def test_one_csv_per_series_takes_the_entity_from_the_file_name(store, base_config, tiny_events, tmp_path):
    """A folder of CSV files, one per user and without a user column: ``source.file_name_column``
    names each row's file (extension and compression suffix dropped), and the features equal the
    Delta source's."""
    import copy

    cfg = build_job_config(DiscretizeJobConfig, base_config)
    run_discretize(store, cfg, D5, D7)
    want = _features(store).drop(columns=["padded"])
    events = store.read("events").toPandas()
    folder = tmp_path / "per-user"
    folder.mkdir()
    for user, rows in events.groupby("user_id"):
        rows.drop(columns=["user_id"]).to_csv(folder / f"{user}.csv.gz", index=False)
    other = copy.deepcopy(base_config)
    other["source"].update({"path": str(folder), "format": {"type": "csv"}, "file_name_column": "user_id"})
    from adspark.config import StorageConfig
    from adspark.storage import TableStore

    store2 = TableStore(store.spark, StorageConfig(warehouse=str(tmp_path / "wh3"), schema="adspark_per_file"))
    run = run_discretize(store2, build_job_config(DiscretizeJobConfig, other), D5, D7)
    assert (run.rows_read, run.rows_rejected) == (12, 0)
    got = store2.read("features").orderBy("entity", "bucket_start").toPandas().drop(columns=["padded"])
    assert got[want.columns].equals(want)
    delta = copy.deepcopy(base_config)
    delta["source"]["file_name_column"] = "user_id"
    with pytest.raises(ConfigError, match="file_name_column names the files of a parquet, json or csv source"):
        build_job_config(DiscretizeJobConfig, delta)


def test_runs_in_sub_folders_keep_their_folder_in_the_entity(store, base_config, tiny_events, tmp_path):
    """Runs filed by rig, the same file names in two rigs (``rig-a/u1.csv``, ``rig b/u1.csv``):
    ``source.recursive`` (or a glob) reads every sub-folder and the file-name column holds the
    path below ``source.path`` (decoded: a space stays a space), so the two ``u1`` stay two
    entities. Without either, the folder of folders holds no file of its own: a one-line error
    saying so."""
    import copy

    from adspark.config import StorageConfig
    from adspark.errors import SourceReadError
    from adspark.storage import TableStore

    events = store.read("events").toPandas()
    root = tmp_path / "rigs"
    for rig in ("rig-a", "rig b"):
        (root / rig).mkdir(parents=True)
        for user, rows in events.groupby("user_id"):
            rows.drop(columns=["user_id"]).to_csv(root / rig / f"{user}.csv", index=False)
    other = copy.deepcopy(base_config)
    other["source"].update({"path": str(root), "format": {"type": "csv"}, "file_name_column": "user_id",
                            "recursive": True})
    store2 = TableStore(store.spark, StorageConfig(warehouse=str(tmp_path / "wh4"), schema="adspark_rigs"))
    run = run_discretize(store2, build_job_config(DiscretizeJobConfig, other), D5, D7)
    assert (run.rows_read, run.rows_rejected) == (24, 0)
    got = store2.read("features").select("entity").distinct().toPandas()["entity"]
    users = sorted(events["user_id"].unique())
    assert sorted(got) == sorted(f"{rig}/{u}" for rig in ("rig-a", "rig b") for u in users)

    glob = copy.deepcopy(other)
    del glob["source"]["recursive"]
    glob["source"]["path"] = str(root / "*" / "*.csv")
    store3 = TableStore(store.spark, StorageConfig(warehouse=str(tmp_path / "wh5"), schema="adspark_glob"))
    run_discretize(store3, build_job_config(DiscretizeJobConfig, glob), D5, D7)
    assert sorted(store3.read("features").select("entity").distinct().toPandas()["entity"]) == sorted(got)

    from adspark.pipeline.validate import file_key
    from adspark.storage import listing_root

    parts = tmp_path / "parts"  # partition folders are not part of a file's name
    for day in ("date=2026-03-01", "date=2026-03-02"):
        (parts / day).mkdir(parents=True)
        (parts / day / "m+7.csv.gz.csv").write_text("a\n1\n")
    read = store.spark.read.option("header", "true").csv(str(parts))
    assert [r.k for r in read.select(file_key(listing_root(str(parts))).alias("k")).collect()] == ["m+7.csv.gz"] * 2

    flat = copy.deepcopy(other)
    del flat["source"]["recursive"]
    with pytest.raises(SourceReadError, match=r"source.path .*rigs.*: no csv files directly in it.*sub-folders "
                                              r"\(rig b, rig-a\).*source.recursive: true"):
        run_discretize(store2, build_job_config(DiscretizeJobConfig, flat), D5, D7)
    delta = copy.deepcopy(base_config)
    delta["source"]["recursive"] = True
    with pytest.raises(ConfigError, match="recursive reads the sub-folders of a parquet, json or csv source"):
        build_job_config(DiscretizeJobConfig, delta)


def test_span_padding_adds_buckets_only_between_events_and_no_window_ends_after_them(store, base_config, tiny_events):
    """discretize.padding span: u1 (events at 01:30, 07:30, 08:30) gets 01:00..08:00, its 5-hour
    idle gap filled; u2 (one event at 13:30) one bucket; nights one by one equal the range; every
    window lies inside a span."""
    import pandas as pd

    from adspark.config import WindowJobConfig
    from adspark.pipeline.window import run_window

    base_config["discretize"] = {"bucket": "1h", "difference": ["event_count"],
                                 "padding": {"mode": "span", "max_gap": "6h"}}
    cfg = build_job_config(DiscretizeJobConfig, base_config)
    run = run_discretize(store, cfg, D5, D7)
    assert (run.rows_read, run.rows_accepted, run.rows_written) == (12, 12, 3 * (8 + 1))  # day padding: 144
    f = _features(store)
    u1 = f[(f.entity == "u1") & (f.date == D5)]
    assert [t.hour for t in u1.bucket_start] == list(range(1, 9))
    assert list(u1.padded) == [False, True, True, True, True, True, False, False]
    assert len(f[(f.entity == "u2") & (f.date == D5)]) == 1
    for day in (D5, D6, D7):  # night by night: the same rows
        run_discretize(store, cfg, day, day)
    cols = [c for c in f.columns if c != "padded"]
    pd.testing.assert_frame_equal(_features(store)[cols], f[cols])
    run_window(store, build_job_config(WindowJobConfig, {**base_config, "window": {**base_config["window"]}}), D5, D7)
    w = store.read("windows").toPandas()
    assert len(w) and set(w.entity) == {"u1"}
    assert (w.window_start.dt.hour >= 1).all() and (w.window_end.dt.hour <= 9).all()
    with pytest.raises(ConfigError, match="discretize.padding.span.max_gap"):
        build_job_config(DiscretizeJobConfig, {**base_config, "discretize": {"padding": {"mode": "span", "max_gap": "soon"}}})

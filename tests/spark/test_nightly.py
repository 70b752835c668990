"""nightly over a range: one discretize, one scoring pass per model, the same tables as night by night."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adspark.config import DiscretizeJobConfig, NightlyJobConfig, StorageConfig, build_job_config
from adspark.pipeline.discretize import run_discretize
from adspark.pipeline.nightly import run_nightly, run_nights
from adspark.storage import TableStore
from schemas import EVENTS

D5, D7, D8, D10, D11 = (dt.date(2026, 1, d) for d in (5, 7, 8, 10, 11))
TABLES = ("features", "windows", "scores", "alert_state", "intervals")
BOOKKEEPING = {"run_id", "first_seen_run", "last_run", "updated_at", "interval_id"}


def _config(root: Path, cfg: dict) -> dict:
    cfg["storage"]["warehouse"] = str(root)
    cfg["train"] = {
        "validation_fraction": 0.5,
        "detector": {"hidden": [8], "bottleneck": 2, "epochs": 2, "batch_size": 4, "patience": 2, "seed": 3},
        "threshold": {"method": "quantile", "q": 0.5},
    }
    cfg["score"] = {"batch_size": 3, "arrow_batch_rows": 2, "top_k": 2}
    cfg["alerts"] = {"level": 0.5, "warmup": "6h", "min_visits": 1, "detectors": ["model", "level", "seasonal"],
                     "calibration": {"min_history": 2}}
    # retrain every 3 nights, or on drift (the amounts of D8 are 10x)
    cfg["nightly"] = {"retrain_every_days": 3, "drift_psi": 0.05, "drift_min_windows": 1, "train_days": 2}
    return cfg


def _events(spark, store: TableStore) -> None:
    """Two users, nights D5..D11 alike but D8 (amounts 10x) and D10 (no events)."""
    rows = []
    for day in (5, 6, 7, 8, 9, 11):
        for hour, user, amount in ((1, "u1", 10.0), (7, "u1", 20.0), (8, "u1", 5.0), (13, "u2", 3.0), (19, "u2", 4.0)):
            t = dt.datetime(2026, 1, day, hour, 30)
            amount *= 10.0 if day == 8 else 1.0
            rows.append((f"{user}-{day}-{hour}", t, user, amount, 50.0 + amount, "a" if hour < 8 else "b", "web",
                         t.date()))
    spark.createDataFrame(rows, EVENTS.struct_type()).write.format("delta").partitionBy("event_date").save(
        store.path("events"))
    store.register("events")


def _snapshot(store: TableStore) -> dict[str, list[str]]:
    """Every table's rows, bookkeeping left out and model ids named by their training range."""
    models = store.read("models").toPandas()
    name = {r.model_id: f"{r.train_from}..{r.train_to}" for r in models.itertuples()}
    out = {"models": sorted(name.values())}
    for table in TABLES:
        pdf = store.read(table).toPandas()
        pdf = pdf[[c for c in pdf.columns if c not in BOOKKEEPING]]
        if "model_id" in pdf:
            pdf["model_id"] = pdf["model_id"].map(name)
        if "alert_key" in pdf:
            pdf["alert_key"] = [k.split(":")[0] + ":" + name[k.split(":")[1]] for k in pdf["alert_key"]]
        out[table] = sorted(map(str, pdf.map(lambda v: v.tolist() if isinstance(v, np.ndarray) else v)
                                .astype(str).itertuples(index=False, name=None)))
    return out


@pytest.fixture()
def new_warehouse(spark, tmp_path) -> Path:
    """A warehouse holding the events only."""
    root = tmp_path / "new"
    _events(spark, TableStore(spark, StorageConfig(warehouse=str(root), schema="adspark_test")))
    return root


@pytest.fixture()
def history(spark, new_warehouse, tmp_path, base_config_factory) -> Path:
    """A warehouse with the events and D5..D6 discretized (what nights D7.. build on)."""
    root = tmp_path / "history"
    shutil.copytree(new_warehouse, root)
    store = TableStore(spark, StorageConfig(warehouse=str(root), schema="adspark_test"))
    store.register("events")
    run_discretize(store, build_job_config(DiscretizeJobConfig, _config(root, base_config_factory())), D5, D5 + dt.timedelta(days=1))
    return root


def _copy(spark, history: Path, to: Path, base: dict) -> tuple[TableStore, NightlyJobConfig]:
    shutil.copytree(history, to)
    store = TableStore(spark, StorageConfig(warehouse=str(to), schema="adspark_test"))
    for table in ("events", "features", "vocabularies", "rejects"):
        if (to / "adspark_test" / table).exists():
            store.register(table)
    return store, build_job_config(NightlyJobConfig, _config(to, base))


def test_a_range_in_passes_equals_the_nights_one_by_one(
    spark, history, new_warehouse, tmp_path, base_config_factory,
):
    one, cfg_one = _copy(spark, history, tmp_path / "one", base_config_factory())
    for day in (D7 + dt.timedelta(days=i) for i in range(5)):
        run_nightly(one, cfg_one, day)
    # the range runs on a new warehouse: it discretizes the train_days nights before D7 (D5..D6) too
    ranged, cfg_ranged = _copy(spark, new_warehouse, tmp_path / "ranged", base_config_factory())
    seen: list[dt.date] = []
    results = run_nights(ranged, cfg_ranged, D7, D11, on_night=lambda r: seen.append(r.date))
    assert seen == [r.date for r in results] == [D7 + dt.timedelta(days=i) for i in range(5)]

    want, got = _snapshot(one), _snapshot(ranged)
    for table in want:
        assert got[table] == want[table], f"table {table} differs from a discretized history + nights one by one"
    assert "the 2 nights before it (2026-01-05..2026-01-06, a new warehouse) discretized first: read 10 =" \
        in results[0].message
    # the nightly rows: the same per night, but for intervals_open (counted at the end of a pass)
    keep = ["date", "status", "events_read", "events_rejected", "windows", "anomalies", "psi", "ks", "retrained",
            "retrain_reason"]
    rows_one = one.read("nightly").toPandas().sort_values("date")[keep].reset_index(drop=True)
    rows_ranged = ranged.read("nightly").toPandas().sort_values("date")
    pd.testing.assert_frame_equal(rows_ranged[keep].reset_index(drop=True), rows_one)
    # D7 trains (no model in force); D8 drifts (its amounts): D7..D8 are one pass, cut at D8; the
    # model retrained on D7..D8 sees D9 and D11 drift in turn; D10 is empty
    assert list(rows_one["retrain_reason"]) == ["no_model", "drift", "drift", None, "drift"]
    assert list(rows_one["status"]) == ["succeeded", "succeeded", "succeeded", "empty", "succeeded"]
    assert rows_ranged["run_id"].nunique() == 1
    assert list(rows_ranged["intervals_open"].isna()) == [True, False, False, True, False]
    assert "scored in one pass" in results[0].message and results[0].stage_seconds == {}
    assert " feature rows (" in results[1].message and " with events)" in results[1].message  # the night's fill
    assert {"discretize", "score", "train", "total"} <= set(results[1].stage_seconds)


@pytest.mark.slow
def test_a_rerun_of_a_range_gives_the_same_tables_and_retrains_nothing(spark, history, tmp_path, base_config_factory):
    store, cfg = _copy(spark, history, tmp_path / "ranged", base_config_factory())
    run_nights(store, cfg, D7, D11)
    first = _snapshot(store)
    rerun = run_nights(store, cfg, D7, D11)
    # D7's model in force is now the one the first run trained for it; the retrains are reused
    assert [r.retrain_reason for r in rerun] == [None, "drift (earlier run)", "drift (earlier run)", None,
                                                 "drift (earlier run)"]
    assert _snapshot(store) == first

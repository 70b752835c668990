"""``adspark labels``: a CSV of labeled anomalies into the labels table, bad rows to rejects."""

from __future__ import annotations

import pandas as pd
import pytest

from adspark.config import LabelsJobConfig, build_job_config
from adspark.errors import SchemaMismatchError
from adspark.pipeline.labels import run_flag_labels, run_labels

GOOD = "m1,2011-07-14 12:00:00,2011-07-15 00:00:00,outage\nm2,2011-07-20 00:00:00,2011-07-20 06:00:00,\n"
BAD = "m3,soon,2011-07-20 06:00:00,x\n,2011-07-20 00:00:00,2011-07-21 00:00:00,x\n"


def _cfg(base_config: dict) -> LabelsJobConfig:
    return build_job_config(LabelsJobConfig, base_config)


def test_labels_load_reconciles_and_a_reload_changes_nothing(store, base_config, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("entity,start,end,kind\n" + GOOD + BAD)
    first = run_labels(store, _cfg(base_config), str(path), timezone="UTC")
    assert (first.read, first.accepted, first.rejected, first.labels) == (4, 2, 2, 2)
    assert "rejected 2 (bad_timestamp: 1, null_entity: 1" in first.message
    labels = store.read("labels").orderBy("entity").toPandas()
    assert labels["kind"].tolist() == ["outage", "labeled"]
    assert labels["start"].tolist() == [pd.Timestamp("2011-07-14 12:00:00"), pd.Timestamp("2011-07-20 00:00:00")]
    rejects = store.read("rejects").where("job = 'labels'").toPandas()
    assert sorted(rejects["column"]) == ["entity", "start"]
    assert set(rejects["date"].astype(str)) >= {"2011-07-20"}

    again = run_labels(store, _cfg(base_config), str(path), timezone="UTC")
    assert (again.accepted, again.rejected, again.labels) == (2, 2, 2)
    assert store.read("rejects").where("job = 'labels'").count() == 2
    runs = store.read("runs").where("job = 'labels'").toPandas()
    assert len(runs) == 2 and (runs["rows_read"] == runs["rows_accepted"] + runs["rows_rejected"]).all()

    path.write_text("entity,start,end\nm9,2011-08-01,2011-08-02\n")
    replaced = run_labels(store, _cfg(base_config), str(path), replace=True)
    assert replaced.labels == 1 and store.read("labels").first()["entity"] == "m9"


def test_a_labels_file_without_an_end_column_names_it(store, base_config, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("entity,start\nm1,2011-07-14\n")
    with pytest.raises(SchemaMismatchError, match=r"column 'end' expected a column"):
        run_labels(store, _cfg(base_config), str(path))


def test_labels_from_a_flag_column_of_the_events(store, base_config, tmp_path):
    """run-1's flagged rows say ``1.0`` (a float column written to CSV), its others ``0``."""
    landing = tmp_path / "landing"
    landing.mkdir()
    t = pd.date_range("2026-03-02 10:00:00", periods=10, freq="s").strftime("%Y-%m-%d %H:%M:%S")
    (landing / "run-1.csv").write_text("timestamp;Flow Rate;anomaly\n" + "".join(
        f"{ts};{i}.5;{'1.0' if flag == '1' else flag}\n" for i, (ts, flag) in enumerate(zip(t, "0011000111", strict=True))))
    (landing / "run-2.csv").write_text("timestamp;Flow Rate;anomaly\n" + "".join(
        f"{ts};1.0;0\n" for ts in t[:4]) + "soon;1.0;0\n" + f"{t[5]};1.0;maybe\n")
    base_config["source"] = {
        "path": str(landing), "format": {"type": "csv", "delimiter": ";"}, "file_name_column": "run",
        "entity": ["run"], "timestamp": {"column": "timestamp"}, "rename": {"Flow Rate": "flow"},
        "measures": [{"name": "flow"}],
    }
    cfg = _cfg(base_config)
    load = run_flag_labels(store, cfg, "anomaly")
    assert (load.read, load.accepted, load.rejected, load.labels) == (16, 14, 2, 2), load.message
    assert "5 flagged rows in 2 labels over 1 entities, 9 not flagged, rejected 2" in load.message
    labels = store.read("labels").orderBy("start").toPandas()
    assert labels["entity"].tolist() == ["run-1", "run-1"] and set(labels["kind"]) == {"anomaly"}
    assert labels["start"].astype(str).tolist() == ["2026-03-02 10:00:02", "2026-03-02 10:00:07"]
    # the first run ends at the next reading; the second reaches the last one: one interval later
    assert labels["end"].astype(str).tolist() == ["2026-03-02 10:00:04", "2026-03-02 10:00:10"]
    rejects = store.read("rejects").where("job = 'labels'").toPandas()
    assert sorted(rejects["reason"]) == ["unparseable_timestamp", "unparseable_value"]
    assert "expected a flag (a number, 1, true, t, yes, y or 0, false, f, no, n), got [\"maybe\"]" in rejects["detail"].tolist()

    again = run_flag_labels(store, cfg, "anomaly")  # a reload changes nothing
    assert (again.labels, store.read("rejects").where("job = 'labels'").count()) == (2, 2)
    runs = store.read("runs").where("job = 'labels'").toPandas()
    assert (runs["rows_read"] == runs["rows_accepted"] + runs["rows_rejected"]).all()

    # a text flag with its own positive value (network captures: Normal / Attack)
    attack = run_flag_labels(store, cfg, "anomaly", positive="maybe", replace=True)
    assert (attack.rejected, attack.labels) == (1, 1) and store.read("labels").first()["entity"] == "run-2"
    # or with the text of an unflagged row (a label column holding normal or an attack's name)
    named = run_flag_labels(store, cfg, "anomaly", negative="0", replace=True)
    assert (named.rejected, named.labels) == (1, 3), named.message  # run-1's two runs, run-2's "maybe"
    with pytest.raises(SchemaMismatchError, match=r"column 'label' expected a flag column"):
        run_flag_labels(store, cfg, "label")

"""``adspark labels``: a CSV of labeled anomalies into the labels table, bad rows to rejects."""

from __future__ import annotations

import pandas as pd
import pytest

from adspark.config import LabelsJobConfig, build_job_config
from adspark.errors import SchemaMismatchError
from adspark.pipeline.labels import run_labels

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

"""The Databricks notebooks run top to bottom as plain Python on tiny generated data, in order."""

from __future__ import annotations

import runpy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


def test_notebooks_are_in_databricks_source_format():
    assert len(NOTEBOOKS) == 4
    for nb in NOTEBOOKS:
        text = nb.read_text()
        assert text.startswith("# Databricks notebook source\n"), nb.name
        assert text.count("# COMMAND ----------") >= 3, nb.name


def test_notebooks_run_in_order_on_tiny_data(spark, tmp_path, monkeypatch, capsys):
    data = yaml.safe_load((ROOT / "conf" / "demo.yaml").read_text())
    data["storage"]["warehouse"] = str(tmp_path / "wh")
    data["spark"].update({"master": "local[2]", "shuffle_partitions": 2, "driver_memory": "1g"})
    data["generate"].update({"entities": 10, "days": 4, "events": 10 * 4 * 80, "anomaly_free_days": 3,
                             "anomaly_entity_fraction": 0.5})
    data["window"]["scaling"].update({"fit_from": "2026-01-05", "fit_to": "2026-01-07"})
    data["train"]["detector"].update({"epochs": 2, "hidden": [16], "bottleneck": 4})
    data["train"]["backend"] = "local"  # the notebooks' path; Horovod has its own tests
    data["nightly"].update({"train_days": 3, "drift_psi": None})
    # 3 days of history: alerts that give verdicts after a few windows (the notebooks judge intervals)
    data["alerts"].update({"level": 0.01, "warmup": "6h", "min_visits": 1, "calibration": {"min_history": 4}})
    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("ADSPARK_CONF", str(conf))
    monkeypatch.chdir(tmp_path)
    for nb in NOTEBOOKS:
        runpy.run_path(str(nb), run_name="__main__")
    out = capsys.readouterr().out
    assert "labeled anomalies" in out  # 01 generated the events
    assert "windows of 24 x" in out  # 01 windowed the history
    assert "model m-" in out  # 02 trained
    assert "nightly 2026-01-08:" in out  # 03 ran the night after the history
    assert "feedback: precision" in out and "evaluate 2026-01-08..2026-01-08" in out  # 04
    reports = {p.name for p in (tmp_path / "reports").glob("*.html")}
    assert {"notebook-model-scores.html", "notebook-scores.html", "notebook-report-2026-01-08-2026-01-08.html",
            "notebook-top-interval-error-over-time.html"} <= reports, reports  # the figures, inline on Databricks
    assert (tmp_path / "reports" / "plotly.min.js").stat().st_size > 1_000_000  # beside them, once: no network
    assert 'data-chart="scores"' in (tmp_path / "reports" / "notebook-report-2026-01-08-2026-01-08.html").read_text()



"""Short runs through the public CLI: each run trains on its own head (window.scaling.entity_head).

Three 15-minute runs of three sensors sampled every second, one CSV file per run, recorded on three
different days (generated here: the shape of a multivariate sensor benchmark, not its data). Each
run's first 5 minutes are its reference; one run has a 2-minute fault after it.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
from deltalake import DeltaTable

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf" / "examples" / "short-runs.yaml"
RUNS = {"run-a": "2026-03-02 09:00:00", "run-b": "2026-03-03 14:30:00", "run-c": "2026-03-04 10:00:00"}
FAULT = ("run-c", "2026-03-04 10:10:00", "2026-03-04 10:12:00")


def _land(folder: Path) -> None:
    """One CSV per run: ``timestamp,s1,s2,s3,anomaly``, naive timestamps, 900 readings 1 s apart,
    ``anomaly`` 1 on the fault's readings (labeled sensor benchmarks ship their labels so)."""
    folder.mkdir(parents=True)
    for i, (run, start) in enumerate(RUNS.items()):
        rng = np.random.default_rng(i)
        t = pd.date_range(start, periods=900, freq="s")
        s1 = 20 + 2 * np.sin(2 * np.pi * np.arange(900) / 60) + rng.normal(0, 0.3, 900)
        s2 = 50 + rng.normal(0, 1.0, 900)
        s3 = 2 * s1 + rng.normal(0, 0.2, 900)
        fault = (t >= FAULT[1]) & (t < FAULT[2]) & (run == FAULT[0])
        s2[fault] += 15.0
        frame = pd.DataFrame({"timestamp": t.strftime("%Y-%m-%d %H:%M:%S"), "s1": s1, "s2": s2, "s3": s3,
                              "anomaly": fault.astype(int)})
        frame.to_csv(folder / f"{run}.csv", index=False, float_format="%.4f")


def test_each_run_trains_on_its_own_first_minutes_and_its_fault_is_found(spark, tmp_path, monkeypatch, capsys):
    from adspark.cli import main

    monkeypatch.chdir(tmp_path)
    wh = tmp_path / "wh"
    _land(wh / "landing" / "runs")
    common = ["--conf", str(CONF), "--set", f"storage.warehouse={wh}", "--set", "spark.shuffle_partitions=2",
              "--set", "train.detector.epochs=5"]

    # --train-to means nothing when every run has its own head: refused before Spark starts
    assert main(["run", *common, "--from", "2026-03-02", "--to", "2026-03-04", "--train-to", "2026-03-02"]) == 1
    assert "leave --train-to out" in capsys.readouterr().err

    # the labels come from the files' own anomaly column: one label, the fault
    assert main(["labels", *common, "--from-column", "anomaly"]) == 0
    assert "120 flagged rows in 1 labels over 1 entities, 2580 not flagged, rejected 0" in capsys.readouterr().out
    label = DeltaTable(str(wh / "runs" / "labels")).to_pyarrow_table().to_pandas()
    assert [label["entity"][0], *(str(label[c][0].tz_localize(None)) for c in ("start", "end"))] == list(FAULT)
    code = main(["run", *common, "--from", "2026-03-02", "--to", "2026-03-04"])
    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    # per run: windows of 30 s ending 30..240 s after its first bucket train (43), 245..300 s validate (12)
    assert "129 train + 36 validation windows in each entity's first 300 s" in out.out
    assert "score 2026-03-02..2026-03-04" in out.out
    # evaluated: the windows after each run's head (525 scored - 3 x 55 ending inside a head)
    assert "evaluate 2026-03-02..2026-03-04" in out.out and ": 360 windows, 29 labeled" in out.out, out.out
    points = re.search(r"points: 24/375 labeled, P ([0-9.]+) R ([0-9.]+)", out.out)
    assert points, out.out
    # the fault stays improbable while it lasts (with heads the calibration history is clipped):
    # its every point flagged, and few others
    assert float(points.group(2)) == 1.0 and float(points.group(1)) >= 0.75, out.out

    stats = DeltaTable(str(wh / "runs" / "scaler_stats")).to_pyarrow_table().to_pandas()
    per_run = stats[stats["entity"] != "__global__"].groupby("entity")["n"].max()
    assert per_run.to_dict() == {"run-a": 60, "run-b": 60, "run-c": 60}  # each run's first 5 min of 5 s buckets

    intervals = DeltaTable(str(wh / "runs" / "intervals")).to_pyarrow_table().to_pandas()
    start, end = pd.Timestamp(FAULT[1], tz="UTC"), pd.Timestamp(FAULT[2], tz="UTC")
    found = intervals[(intervals["entity"] == FAULT[0])
                      & (pd.to_datetime(intervals["start"], utc=True) < end)
                      & (pd.to_datetime(intervals["end"], utc=True) > start)]
    assert len(found) == len(intervals) == 1, intervals[["entity", "start", "end", "driver", "driver_feature"]]
    assert found.iloc[0]["driver_feature"] == "s2_mean"
    # nothing was flagged inside any run's head (its windows were trained on or validated)
    heads = {run: pd.Timestamp(s, tz="UTC") + dt.timedelta(minutes=5) for run, s in RUNS.items()}
    assert not any(pd.Timestamp(r.start).tz_convert("UTC") < heads[r.entity]
                   for r in intervals.itertuples())

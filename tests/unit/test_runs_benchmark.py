"""The sensor-runs benchmark's data and figures (its results come from `make bench-runs`)."""

import numpy as np
import pandas as pd

from benchmarks.quality_runs import BUCKET_S, HEAD_S, KINDS, RUN_S, SENSORS, Run, baseline, figures, generate, land


def test_each_run_is_normal_through_its_head_then_holds_one_fault_of_its_kind(tmp_path):
    runs = generate(1, seed=3)
    assert [r.kind for r in runs] == [*KINDS, "none"] and len({r.entity for r in runs}) == len(runs)
    assert {r.name for r in runs} & {"0", "1"} and len({r.rig for r in runs}) == 3  # equal names in several rigs
    for run in runs:
        f = run.frame
        assert len(f) == RUN_S and list(f.columns) == ["timestamp", *SENSORS, "anomaly"]
        flagged = np.flatnonzero(f["anomaly"].to_numpy())
        if run.kind == "none":
            assert not len(flagged)
            continue
        assert flagged.min() >= HEAD_S + 60 and np.all(np.diff(flagged) == 1) and 120 <= len(flagged) < 300
    relation = runs[KINDS.index("relation")].frame  # current stops following the flow
    fault = relation["anomaly"].to_numpy(bool)
    assert relation.loc[~fault, ["flow", "current"]].corr().iloc[0, 1] > 0.8
    assert abs(relation.loc[fault, ["flow", "current"]].corr().iloc[0, 1]) < 0.3
    land(runs, tmp_path)
    back = pd.read_csv(tmp_path / runs[0].rig / f"{runs[0].name}.csv", sep=";")
    assert len(back) == RUN_S and back["anomaly"].sum() == runs[0].frame["anomaly"].sum()


def test_a_stuck_sensor_repeats_its_last_reading_and_a_valve_fault_moves_flow_and_pressure():
    runs = {r.kind: r for r in generate(1, seed=0)}
    stuck = runs["stuck"].frame
    fault = stuck["anomaly"].to_numpy(bool)
    assert stuck.loc[fault, "current"].nunique() == 1
    valve = runs["valve"].frame
    fault = valve["anomaly"].to_numpy(bool)
    assert valve.loc[fault, "flow"].mean() < 0.85 * valve.loc[~fault, "flow"].mean()
    assert valve.loc[fault, "pressure"].mean() > 1.2 * valve.loc[~fault, "pressure"].mean()


def test_figures_count_buckets_after_the_head_and_intervals_on_and_off_the_fault():
    runs = [r for r in generate(1, seed=1) if r.kind in ("valve", "none")]
    valve = runs[0]
    t = pd.to_datetime(valve.frame["timestamp"]).dt.tz_localize("UTC")
    fault = t[valve.frame["anomaly"] == 1]
    step = pd.Timedelta(seconds=BUCKET_S)
    on = pd.DataFrame({"start": [fault.min().floor(f"{BUCKET_S}s")], "end": [fault.max().floor(f"{BUCKET_S}s") + step]})
    off = pd.DataFrame({"start": [t.iloc[-100].floor(f"{BUCKET_S}s")], "end": [t.iloc[-100].floor(f"{BUCKET_S}s") + step]})
    got = figures(runs, {valve.entity: pd.concat([on, off], ignore_index=True)})
    k = got["kinds"]["valve"]
    assert (k["runs"], k["caught"]) == (1, 1) and k["flagged"] == k["buckets"]
    assert got["recall"] == 1.0 and got["intervals"] == 2 and got["false_intervals"] == 1
    assert got["precision"] == k["buckets"] / (k["buckets"] + 1) and got["alarms_in_fault_free_runs"] == 0
    quiet = figures(runs, {runs[1].entity: off})
    assert quiet["alarms_in_fault_free_runs"] == 1 and quiet["recall"] == 0.0


def test_the_head_z_score_baseline_flags_a_valve_fault_and_not_a_quiet_run():
    runs = [r for r in generate(1, seed=0) if r.kind in ("valve", "none")]
    got = figures(runs, baseline(runs))
    assert got["kinds"]["valve"]["caught"] == 1 and got["alarms_in_fault_free_runs"] == 0


def test_runs_are_named_by_rig_and_file():
    run = Run("rig2", "4", "none", pd.DataFrame())
    assert run.entity == "rig2/4"

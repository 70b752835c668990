"""Detection on multivariate sensor runs, through the public CLI, side by side with a head z-score.

``python -m benchmarks.quality_runs [--runs-per-kind 3] [--keep DIR] [--seed 0]``

Generated data in the shape of labeled multivariate sensor benchmarks (one CSV per run, runs in
sub-folders by test rig, ``;``-separated, one reading a second, an ``anomaly`` column), not their
data: a pump loop of eight coupled sensors (flow, pump current, pressure from the flow, two
vibration RMS, fluid temperature warming through the run, a thermocouple tracking it, supply
voltage). Each run lasts 20 minutes; its first 7 minutes are normal (its head, the run's own
reference) and one fault of one kind follows at a random time, 2-5 minutes long:

- ``valve``: the valve half closes: flow falls 25%, pressure rises 40%, current falls 5%;
- ``imbalance``: both vibration RMS rise 60% and get twice as noisy;
- ``cavitation``: pressure oscillates (1.6 s period) with 5x its noise, its mean unchanged;
- ``drift``: the thermocouple drifts away from the fluid temperature, 0 -> 4 degrees;
- ``stuck``: the current sensor repeats its last reading;
- ``relation``: current stops following the flow (it keeps its level, flow swings 20%);

plus fault-free runs (false alarms only). The job reads the rigs' folders as they are
(``source.file_name_column``: entity ``rig/run``), loads the labels from the files' ``anomaly``
column (``adspark labels --from-column``), then ``adspark run`` (5 s buckets of each sensor's mean,
min and max; windows of 6 buckets, stride 1; each run's head trains) and ``adspark evaluate``; once with each sensor's mean, min and max per bucket (the default
statistics) and once with their standard deviation too (``discretize.statistics``).

Figures on the 5 s buckets after each run's head (a bucket is anomalous when it holds a labeled
reading, flagged when an interval covers it): per fault kind, runs caught (an interval overlaps
the fault) and bucket recall; overall bucket precision / recall / F1, intervals and false ones,
false alarms in fault-free runs. The baseline beside it: each sensor's 5 s mean as a z-score
against the run's own head (mean, standard deviation), the largest |z| of the eight sensors
flagged above 5 (no labels used to pick it), consecutive flagged buckets merged.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

KINDS = ("valve", "imbalance", "cavitation", "drift", "stuck", "relation")
SENSORS = ("flow", "current", "pressure", "vib1", "vib2", "temperature", "thermocouple", "voltage")
RUN_S = 1200
HEAD_S = 420
BUCKET_S = 5
DAY0 = pd.Timestamp("2026-05-04 08:00:00")
Z_LIMIT = 5.0


@dataclass(frozen=True)
class Run:
    """One generated run.

    Attributes:
        rig: Folder (test rig) name. name: File stem. kind: Fault kind or ``"none"``.
        frame: ``timestamp`` + the eight sensors + ``anomaly``, one row per second.
    """

    rig: str
    name: str
    kind: str
    frame: pd.DataFrame

    @property
    def entity(self) -> str:
        return f"{self.rig}/{self.name}"


def pump_run(rng: np.random.Generator, start: pd.Timestamp, kind: str) -> pd.DataFrame:
    """Twenty minutes of the pump loop at 1 s, with one fault of ``kind`` after the head.

    Returns:
        Frame of ``RUN_S`` rows: ``timestamp`` text, the sensors, ``anomaly`` (0/1).
    """
    n = RUN_S
    t = np.arange(n, dtype=np.float64)
    wander = np.zeros(n)
    e = rng.normal(0, 0.15, n)
    for i in range(1, n):  # slow AR(1) set point wander of the flow
        wander[i] = 0.995 * wander[i - 1] + e[i]
    flow = 30 + 1.5 * np.sin(2 * np.pi * t / 300 + rng.uniform(0, 6.3)) + wander + rng.normal(0, 0.3, n)
    current = 1.5 + 0.1 * flow + rng.normal(0, 0.05, n)
    pressure = 0.5 + 0.002 * flow**2 + rng.normal(0, 0.03, n)
    vib1 = 0.20 + 0.002 * flow + rng.normal(0, 0.01, n)
    vib2 = 0.25 + 0.002 * flow + rng.normal(0, 0.012, n)
    temperature = 60 + 8 * (1 - np.exp(-t / 600)) + rng.normal(0, 0.1, n)
    thermocouple = temperature + 2 + rng.normal(0, 0.1, n)
    voltage = 230 + rng.normal(0, 0.5, n)
    fault = np.zeros(n, dtype=bool)
    if kind != "none":
        length = int(rng.integers(120, 300))
        onset = int(rng.integers(HEAD_S + 60, n - length - 30))
        f = slice(onset, onset + length)
        fault[f] = True
        ramp = np.linspace(0, 1, length)
        if kind == "valve":
            flow[f] *= 0.75
            current[f] *= 0.95
            pressure[f] *= 1.4
        elif kind == "imbalance":
            vib1[f] = 0.20 * 1.6 + 0.002 * flow[f] + rng.normal(0, 0.02, length)
            vib2[f] = 0.25 * 1.6 + 0.002 * flow[f] + rng.normal(0, 0.024, length)
        elif kind == "cavitation":
            pressure[f] += 5 * 0.03 * np.sqrt(2) * np.sin(2 * np.pi * t[f] / 1.6)
        elif kind == "drift":
            thermocouple[f] += 4 * ramp
        elif kind == "stuck":
            current[f] = current[onset - 1]
        elif kind == "relation":
            flow[f] += 0.2 * 30 * np.sin(2 * np.pi * t[f] / 90)
            current[f] = current[onset - 1] + rng.normal(0, 0.05, length)
    stamps = start + pd.to_timedelta(t, unit="s")
    frame = pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"), "flow": flow, "current": current,
                          "pressure": pressure, "vib1": vib1, "vib2": vib2, "temperature": temperature,
                          "thermocouple": thermocouple, "voltage": voltage, "anomaly": fault.astype(int)})
    return frame


def generate(runs_per_kind: int, seed: int) -> list[Run]:
    """``runs_per_kind`` runs of each fault kind and as many fault-free runs, each on its own
    rig folder and start time (two runs a day, one day per run pair)."""
    rng = np.random.default_rng(seed)
    kinds = [k for k in (*KINDS, "none") for _ in range(runs_per_kind)]
    out = []
    for i, kind in enumerate(kinds):
        rig = f"rig{i % 3 + 1}"
        start = DAY0 + pd.Timedelta(days=i // 2, hours=4 * (i % 2))
        out.append(Run(rig, str(i // 3), kind, pump_run(rng, start, kind)))
    return out


def land(runs: list[Run], folder: Path) -> None:
    """One ``;``-separated CSV per run under its rig's folder (same file names in several rigs)."""
    for run in runs:
        (folder / run.rig).mkdir(parents=True, exist_ok=True)
        run.frame.to_csv(folder / run.rig / f"{run.name}.csv", sep=";", index=False, float_format="%.4f")


def config(warehouse: Path, first: pd.Timestamp, last: pd.Timestamp, statistics: tuple[str, ...]) -> dict:
    """The project a user would write for these runs (``conf/examples/short-runs.yaml``'s shape),
    each sensor's ``statistics`` per bucket as the model's and the detectors' features."""
    return {
        "storage": {"warehouse": str(warehouse), "schema": "runs_" + "_".join(statistics)},
        "spark": {"master": "local[2]", "shuffle_partitions": 4, "driver_memory": "3g"},
        "source": {"path": "landing", "format": {"type": "csv", "delimiter": ";"}, "recursive": True,
                   "file_name_column": "run",
                   "entity": ["run"], "timestamp": {"column": "timestamp", "timezone": "UTC"},
                   "measures": [{"name": s} for s in SENSORS]},
        "discretize": {"bucket": f"{BUCKET_S}s", "calendar": False, "padding": {"mode": "span", "max_gap": "1min"},
                       "statistics": list(statistics)},
        "window": {"size": 6, "stride": 1,
                   "features": [f"{s}_{a}" for s in SENSORS for a in statistics],
                   "scaling": {"method": "robust", "fit_from": str(first.date()), "fit_to": str(last.date()),
                               "entity_head": f"{HEAD_S}s"}},
        "train": {"backend": "local", "validation_fraction": 0.2,
                  "detector": {"type": "dense_ae", "hidden": [32], "bottleneck": 4, "epochs": 20}},
        "intervals": {"gap": "10s"},
    }


def bucket_truth(run: Run) -> pd.DataFrame:
    """The run's 5 s buckets after its head: ``bucket_start`` (UTC), ``anomalous``, each
    sensor's mean."""
    f = run.frame.assign(ts=pd.to_datetime(run.frame["timestamp"]).dt.tz_localize("UTC"))
    f["bucket_start"] = f["ts"].dt.floor(f"{BUCKET_S}s")
    head_end = f["ts"].iloc[0] + pd.Timedelta(seconds=HEAD_S)
    g = f.groupby("bucket_start").agg(anomalous=("anomaly", "max"), **{s: (s, "mean") for s in SENSORS})
    g = g.reset_index()
    g["in_head"] = g["bucket_start"] < head_end
    return g


def head_z(truth: pd.DataFrame) -> np.ndarray:
    """The baseline: largest |z| of the 5 s sensor means against the head's, shape (buckets,)."""
    head = truth[truth["in_head"]]
    x = truth[list(SENSORS)].to_numpy()
    mu, sd = head[list(SENSORS)].mean().to_numpy(), head[list(SENSORS)].std().to_numpy()
    return np.abs((x - mu) / np.maximum(sd, 1e-9)).max(axis=1)


def covered(starts: pd.Series, intervals: pd.DataFrame) -> np.ndarray:
    """Which buckets (by start) one entity's intervals cover, shape (len(starts),)."""
    out = np.zeros(len(starts), dtype=bool)
    for row in intervals.itertuples():
        out |= ((starts >= row.start) & (starts < row.end)).to_numpy()
    return out


def merged(flag: np.ndarray, starts: pd.Series) -> pd.DataFrame:
    """Runs of consecutive flagged buckets as ``start``/``end`` intervals."""
    edges = np.flatnonzero(np.diff(np.r_[0, flag.astype(int), 0]))
    step = pd.Timedelta(seconds=BUCKET_S)
    return pd.DataFrame({"start": [starts.iloc[a] for a in edges[::2]],
                         "end": [starts.iloc[b - 1] + step for b in edges[1::2]]})


def figures(runs: list[Run], found: dict[str, pd.DataFrame]) -> dict:
    """Bucket and interval figures of one method; ``found``: each entity's intervals."""
    rows, per_kind, false_iv, n_iv, quiet_alarms = [], {}, 0, 0, 0
    for run in runs:
        truth = bucket_truth(run)
        scored = truth[~truth["in_head"]].reset_index(drop=True)
        iv = found.get(run.entity, pd.DataFrame(columns=["start", "end"]))
        flag = covered(scored["bucket_start"], iv)
        rows.append(pd.DataFrame({"truth": scored["anomalous"].to_numpy(bool), "flag": flag}))
        fault = scored[scored["anomalous"] == 1]["bucket_start"]
        for r in iv.itertuples():
            n_iv += 1
            hit = len(fault) and (r.start < fault.max() + pd.Timedelta(seconds=BUCKET_S)) and (r.end > fault.min())
            false_iv += not hit
        if run.kind == "none":
            quiet_alarms += len(iv)
            continue
        k = per_kind.setdefault(run.kind, {"runs": 0, "caught": 0, "buckets": 0, "flagged": 0})
        k["runs"] += 1
        k["caught"] += bool(flag[scored["anomalous"].to_numpy(bool)].any())
        k["buckets"] += int(scored["anomalous"].sum())
        k["flagged"] += int(flag[scored["anomalous"].to_numpy(bool)].sum())
    allrows = pd.concat(rows)
    tp = int((allrows["truth"] & allrows["flag"]).sum())
    p = tp / max(int(allrows["flag"].sum()), 1)
    r = tp / max(int(allrows["truth"].sum()), 1)
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "intervals": n_iv,
            "false_intervals": false_iv, "alarms_in_fault_free_runs": quiet_alarms, "kinds": per_kind}


def baseline(runs: list[Run]) -> dict[str, pd.DataFrame]:
    """The head z-score's intervals per entity (after each head)."""
    out = {}
    for run in runs:
        truth = bucket_truth(run)
        scored = truth[~truth["in_head"]].reset_index(drop=True)
        out[run.entity] = merged(head_z(truth)[~truth["in_head"].to_numpy()] > Z_LIMIT, scored["bucket_start"])
    return out


def run_job(runs: list[Run], root: Path, statistics: tuple[str, ...]) -> tuple[dict[str, pd.DataFrame], str, float]:
    """Land the runs, write the project, ``labels`` -> ``run`` through the CLI (in ``root``).

    Returns:
        Each entity's intervals, the evaluation's last output line, seconds.
    """
    from contextlib import redirect_stdout
    from io import StringIO

    from deltalake import DeltaTable

    from adspark.cli import main as cli

    warehouse = root / "wh"
    land(runs, warehouse / "landing")
    starts = [pd.Timestamp(r.frame["timestamp"].iloc[0]) for r in runs]
    conf = root / "runs.yaml"
    conf.write_text(yaml.safe_dump(config(warehouse, min(starts), max(starts), statistics)))
    c = ["--conf", str(conf)]
    t0 = time.perf_counter()
    if cli(["labels", *c, "--from-column", "anomaly"]) != 0:
        raise SystemExit("adspark labels failed")
    out = StringIO()
    with redirect_stdout(out):
        code = cli(["run", *c, "--from", str(min(starts).date()), "--to", str(max(starts).date())])
    print(out.getvalue(), flush=True)
    if code != 0:
        raise SystemExit("adspark run failed")
    seconds = time.perf_counter() - t0
    iv = DeltaTable(str(warehouse / ("runs_" + "_".join(statistics)) / "intervals")).to_pyarrow_table().to_pandas()
    for col in ("start", "end"):
        iv[col] = pd.to_datetime(iv[col], utc=True)
    evaluation = [line for line in out.getvalue().splitlines() if "points:" in line]
    return ({e: g[["start", "end"]] for e, g in iv.groupby("entity")}, evaluation[-1] if evaluation else "", seconds)


def table(results: dict[str, dict]) -> str:
    """Markdown table of every method side by side."""
    lines = ["| method | " + " | ".join(f"{k} caught" for k in KINDS)
             + " | bucket P / R / F1 | intervals (false) | alarms in fault-free runs |",
             "|---|" + "---|" * (len(KINDS) + 3)]
    for name, f in results.items():
        kinds = " | ".join(f"{f['kinds'][k]['caught']}/{f['kinds'][k]['runs']} ({f['kinds'][k]['flagged'] / max(f['kinds'][k]['buckets'], 1):.2f})"
                           for k in KINDS)
        lines.append(f"| {name} | {kinds} | {f['precision']:.3f} / {f['recall']:.3f} / {f['f1']:.3f} | "
                     f"{f['intervals']} ({f['false_intervals']}) | {f['alarms_in_fault_free_runs']} |")
    return "\n".join(lines)


VARIANTS = {"mean, min, max": ("mean", "min", "max"), "mean, min, max, std": ("mean", "min", "max", "std")}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-per-kind", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, help="build the warehouses under this folder and keep them")
    args = ap.parse_args(argv)
    runs = generate(args.runs_per_kind, args.seed)
    root = args.keep or Path(tempfile.mkdtemp(prefix="adspark-runs-"))
    results, lines = {}, []
    try:
        for i, (name, statistics) in enumerate(VARIANTS.items()):
            job, evaluation, seconds = run_job(runs, root / f"variant-{i}", statistics)
            results[f"adspark run, {name}"] = figures(runs, job)
            lines.append(f"{name}: adspark run {seconds:.0f} s; {evaluation}")
        results[f"head z-score > {Z_LIMIT:g}"] = figures(runs, baseline(runs))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{len(runs)} runs ({args.runs_per_kind} per fault kind + fault-free)")
    print("\n".join(lines))
    print("caught: runs with an interval on the fault (share of its buckets flagged)")
    print(table(results))
    print(json.dumps(results, default=float))


if __name__ == "__main__":
    main()

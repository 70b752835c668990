"""Adaptive alerts replayed through the pure core: the demo's events and NAB's 31 series, variants side by side.

The nightly job's alert pass (:func:`adspark.core.alerts.alert_nights`) is pure pandas/numpy, so
its model-free detectors (``level``, ``diff``, ``seasonal``, ``extreme``, ``stuck``, ``profile``) can be replayed without
Spark in minutes, on exactly the windows the job builds:

- ``demo``: the events of ``conf/demo.yaml``'s generator (bad rows left out, as validation
  would), hourly buckets aggregated as ``adspark discretize`` does (counts, sums, category slots,
  per-bucket mean/min/max; empty buckets: zero counts, missing statistics), windows of the
  config's size and stride, every night from the first one through the alerts (as the job's
  first run replays them), intervals merged as the job merges them, matched with the planted
  anomalies on the nights after the anomaly-free ones. Reports intervals, recall, precision and
  recall per anomaly kind.
- ``nab``: each series at its own clock and in buckets of its own cadence, as the job's NAB
  benchmark feeds it (:mod:`benchmarks.quality_nab`; ``--nab-clock rows``: every row on one
  5-minute grid, the protocol before 2026-12-07), one ``value_mean`` per bucket (missing where no
  row fell), the job's windows (``NAB_WINDOW`` buckets, stride 1), alert onsets scored with NAB's
  standard profile, at the label-free level and at NAB's corpus threshold (the best one threshold
  on ``-log10 p`` over all series, which uses the labels).

A variant is a set of overrides of the ``alerts:`` config section (``VARIANTS``; validated as the
job validates them). The model is left out (it needs training): figures are for the model-free
part of the default detector list.

Usage::

    python -m benchmarks.alerts_replay [--datasets demo,nab] [--variants default,...] [--processes 2]
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adspark.config import AlertsConfig, load_yaml
from adspark.core.alerts import alert_group, alert_nights
from adspark.core.buckets import parse_duration
from adspark.core.evaluate import match_intervals
from adspark.core.features import slot_name
from adspark.core.generate import GeneratorSpec, generate_entity_day, plan_anomalies
from adspark.core.intervals import merge_intervals
from adspark.core.window import WindowSpec, window_rows
from adspark.pipeline.alerts import core_alert_params

ROOT = Path(__file__).resolve().parent.parent
MODEL_FREE = ["level", "diff", "seasonal", "extreme", "stuck", "silence", "mix", "profile", "neighbor"]

# overrides of the alerts section; every variant also drops the model (it needs training)
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "without stuck": {"detectors": ["level", "diff", "seasonal", "extreme", "silence", "mix", "profile", "neighbor"]},
    "without silence": {"detectors": ["level", "diff", "seasonal", "extreme", "stuck", "mix", "profile", "neighbor"]},
    "without mix": {"detectors": ["level", "diff", "seasonal", "extreme", "stuck", "silence", "profile", "neighbor"]},
    "without profile": {"detectors": ["level", "diff", "seasonal", "extreme", "stuck", "silence", "mix", "neighbor"]},
    "without diff": {"detectors": ["level", "seasonal", "extreme", "stuck", "silence", "mix", "profile", "neighbor"]},
    "without neighbor": {"detectors": ["level", "diff", "seasonal", "extreme", "stuck", "silence", "mix", "profile"]},
    "neighbor horizon 1d": {"neighbor_horizon": "1d"},
    "neighbor horizon 30d": {"neighbor_horizon": "30d"},
    "mix half-life 1d": {"mix_halflife": "1d"},
    "mix half-life 30d": {"mix_halflife": "30d"},
    "counts anscombe": {"counts": "anscombe"},
    "means left to the model": {"means": "model"},
    "measure evidence peak": {"measure_evidence": "peak"},
    "sums sqrt": {"sums": "sqrt"},
    "sums log": {"sums": "log"},
    "empirical tail": {"calibration": {"tail": "empirical"}},
    "fisher fusion": {"fusion": "fisher"},
    "calibration learns clipped at 3 sd": {"calibration": {"learn_clip": 3.0}},
    "one level for all days": {"day_type_levels": False},
    "no resolution floor": {"resolution_floor": False},
    "no cooldown": {"cooldown": "0"},
    "cooldown 6h": {"cooldown": "6h"},
    "before 2026-12-02 (anscombe + means to model + peak)": {"counts": "anscombe", "means": "model",
                                                           "measure_evidence": "peak", "day_type_levels": False,
                                                           "cooldown": "0"},
}


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out.get(k, {}), v) if isinstance(v, dict) else v
    return out


def alerts_config(base: dict, overrides: dict) -> AlertsConfig:
    """The alerts config of a variant: ``base`` (the YAML section) with ``overrides``, model-free."""
    merged = _merge(base, overrides)
    merged["detectors"] = [d for d in merged.get("detectors", MODEL_FREE) if d != "model"] or MODEL_FREE
    return AlertsConfig.model_validate(merged)


# --- demo ---------------------------------------------------------------------------------------


def demo_spec(project: dict) -> GeneratorSpec:
    """The generator spec of the demo config, without invalid rows."""
    g = project["generate"]
    start = g["start"] if isinstance(g["start"], dt.date) else dt.date.fromisoformat(str(g["start"]))
    return GeneratorSpec(
        entities=int(g["entities"]), days=int(g["days"]), events=int(g["events"]), start=start,
        seed=int(g["seed"]), anomaly_entity_fraction=float(g["anomaly_entity_fraction"]),
        bad_row_fraction=0.0, anomaly_free_days=int(g["anomaly_free_days"]),
    )


def demo_features(project: dict) -> tuple[str, ...]:
    """The bucket features ``adspark discretize`` makes of the demo's source (window order)."""
    src = project["source"]
    names = ["event_count"] + [f"{m['name']}_sum" for m in src["measures"]]
    for c in src["categoricals"]:
        from adspark.core.generate import CATEGORIES, CHANNELS, RARE_CATEGORY

        values = c.get("values") or list(CATEGORIES + (RARE_CATEGORY,))[: c.get("top_k", 9)]
        if c["name"] == "channel" and not c.get("values"):
            values = list(CHANNELS)
        names += [slot_name(c["name"], v) for v in values] + [slot_name(c["name"], "__other__")]
    names += [f"{m['name']}_{s}" for m in src["measures"] for s in ("mean", "min", "max")]
    return tuple(names)


def entity_buckets(events: pd.DataFrame, features: tuple[str, ...], days: pd.DatetimeIndex) -> pd.DataFrame:
    """One entity's hourly buckets over ``days`` (every hour present), columns ``features``."""
    hour = events["event_time"].dt.floor("h")
    grid = pd.date_range(days[0], days[-1] + pd.Timedelta(hours=23), freq="h")
    out = pd.DataFrame(index=grid)
    g = events.groupby(hour)
    out["event_count"] = g.size()
    for name in features:
        if name == "event_count":
            continue
        col, _, rest = name.partition("__")
        if rest:
            known = [f.partition("__")[2] for f in features if f.startswith(col + "__")]
            value = events[col].astype(str).str.lower()
            hit = value.eq(rest) if rest != "other" else ~value.isin([k for k in known if k != "other"])
            out[name] = hit.groupby(hour).sum()
            continue
        measure, _, stat = name.rpartition("_")
        out[name] = getattr(events.groupby(hour)[measure], stat)()
    zero = [f for f in features if not f.endswith(("_mean", "_min", "_max"))]
    out[zero] = out[zero].fillna(0.0)
    return out[list(features)].astype(np.float64)


def demo_entity_windows(spec: GeneratorSpec, entity: int, plan: pd.DataFrame, features: tuple[str, ...],
                        size: int, stride: int) -> pd.DataFrame:
    """One entity's generated events as the job's windows (column ``entity`` and the columns
    :func:`adspark.core.alerts.alert_group` reads; no model score); ``plan``: the anomalies of
    :func:`adspark.core.generate.plan_anomalies` (this entity's are taken from it)."""
    from adspark.core.generate import entity_name

    mine = plan[plan["entity"] == entity_name(entity)]
    days = pd.date_range(pd.Timestamp(spec.start), periods=spec.days, freq="D")
    events = pd.concat([generate_entity_day(spec, entity, d, mine) for d in range(spec.days)], ignore_index=True)
    buckets = entity_buckets(events, features, days)
    raw = buckets.to_numpy(np.float64)
    rows = window_rows("e", pd.Series(buckets.index), raw, raw, WindowSpec(size, stride, 3600, features),
                       days[0].date(), days[-1].date())
    return pd.DataFrame({
        "entity": entity_name(entity),
        "window_start": pd.to_datetime(rows.window_start), "window_end": pd.to_datetime(rows.window_end),
        "date": pd.to_datetime(rows.date).date, "raw_values": list(rows.raw_values.astype(np.float64)),
        "model_score": np.nan,
    })


def _demo_chunk(args: tuple) -> pd.DataFrame:
    """Generate and window a chunk of entities, then alert them as one group under every
    variant (worker; :func:`adspark.core.alerts.alert_group`, as the job's hash groups)."""
    spec, entities, plan, features, size, stride, variants = args
    windows = pd.concat([demo_entity_windows(spec, e, plan, features, size, stride) for e in entities],
                        ignore_index=True)
    out = []
    for name, params in variants.items():
        scored, _ = alert_group(windows, {}, params)
        out.append(scored.drop(columns=["raw_values"]).assign(variant=name))
    return pd.concat(out, ignore_index=True)


def run_demo(project: dict, variants: dict[str, AlertsConfig], processes: int, entities: int | None,
             explain: bool = False, levels: tuple[float, ...] = ()) -> list[dict]:
    """Replay every variant on the demo; one result row per variant and alert level (the
    variant's own and ``levels``); ``explain``: also print which detector and feature drove the
    true and the false intervals."""
    spec = demo_spec(project)
    if entities:
        spec = GeneratorSpec(**{**spec.__dict__, "entities": entities})
    plan = plan_anomalies(spec)
    features = demo_features(project)
    w = project["window"]
    size, stride = int(w["size"]), int(w["stride"])
    cfg_intervals = project.get("intervals", {})
    gap = pd.Timedelta(seconds=parse_duration(cfg_intervals.get("gap", "1h")))
    min_duration = pd.Timedelta(seconds=parse_duration(cfg_intervals.get("min_duration", "0s")))
    params = {n: core_alert_params(c, features, size, stride, 3600) for n, c in variants.items()}
    from adspark.core.generate import entity_name

    chunks = [c.tolist() for c in np.array_split(np.arange(spec.entities), max(1, processes * 4)) if len(c)]
    tasks = [(spec, c, plan[plan["entity"].isin([entity_name(e) for e in c])], features, size, stride, params)
             for c in chunks]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(processes) as pool:
        scored = pd.concat(list(pool.map(_demo_chunk, tasks)), ignore_index=True)
    seconds = time.perf_counter() - t0
    first_scored = pd.Timestamp(spec.start) + pd.Timedelta(days=spec.anomaly_free_days)
    labels = list(plan[["entity", "start", "end"]].itertuples(index=False, name=None))
    results = []
    for name, cfg in variants.items():
        part = scored[(scored["variant"] == name) & (pd.to_datetime(scored["window_end"]) > first_scored)]
        part = part.assign(top_features=[[]] * len(part), top_shares=[[]] * len(part))
        for level in sorted({cfg.level, *levels}, reverse=True):
            flagged = part.assign(is_anomaly=part["p_value"].to_numpy(np.float64) < level)
            iv = merge_intervals(flagged, "replay", "alerts", gap=gap, min_duration=min_duration)
            detected = list(iv[["entity", "start", "end"]].itertuples(index=False, name=None))
            m = match_intervals(detected, labels)
            per_kind = {}
            for kind, group in plan.groupby("kind"):
                k = match_intervals(detected, list(group[["entity", "start", "end"]].itertuples(index=False, name=None)))
                per_kind[kind] = f"{k.detected}/{k.labels}"
            if explain and level == cfg.level:
                _explain(name, iv, plan)
            results.append({"variant": name, "level": level, "intervals": m.intervals, "recall": round(m.recall, 3),
                            "precision": round(m.precision, 3), **per_kind})
    print(f"demo: {spec.entities} entities x {spec.days} days, {len(variants)} variants in {seconds:.0f} s")
    return results


def _explain(name: str, intervals: pd.DataFrame, plan: pd.DataFrame) -> None:
    """Print the drivers of true and false intervals."""
    labels = plan.assign(start=pd.to_datetime(plan["start"]), end=pd.to_datetime(plan["end"]))
    hits = []
    for row in intervals.itertuples():
        lab = labels[(labels["entity"] == row.entity) & (labels["start"] < row.end) & (labels["end"] > row.start)]
        hits.append(lab["kind"].iloc[0] if len(lab) else "false")
    table = intervals.assign(truth=hits).groupby(["truth", "driver", "driver_feature"]).size()
    print(f"--- {name}: intervals by truth, driver, feature")
    print(table.sort_values(ascending=False).to_string())
    false = intervals.assign(truth=hits).query("truth == 'false'")
    cols = ["entity", "start", "end", "p_value", "driver", "driver_feature", "actual", "expected_low", "expected_high"]
    print(f"--- {name}: false intervals")
    print(false[cols].to_string(index=False))


# --- NAB ----------------------------------------------------------------------------------------


def _nab_series(args: tuple) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Severity (-log10 p) and anomalous flag per row of one series under every variant (worker):
    the job's windows (the benchmark's ``NAB_WINDOW`` buckets of the series' own width, stride 1,
    every bucket between its first and last row, NaN where it has no row); a row's score is that
    of the window ending at its bucket, as in the job's NAB benchmark."""
    from benchmarks.quality import NAB_WINDOW
    from benchmarks.quality_nab import row_scores

    s, variants = args
    buckets = s.row_buckets
    width = s.bucket
    grid = pd.date_range(buckets.min().floor("D"), buckets.max(), freq=width)
    values = pd.Series(s.value).groupby(buckets.to_numpy()).mean().reindex(grid)
    seconds = int(width.total_seconds())
    wspec = WindowSpec(NAB_WINDOW, 1, seconds, ("value_mean",))
    raw = values.to_numpy(np.float64)[:, None]
    rows = window_rows(s.name, pd.Series(grid), raw, raw, wspec, grid[0].date(), grid[-1].date())
    windows = pd.DataFrame({
        "window_start": pd.to_datetime(rows.window_start), "window_end": pd.to_datetime(rows.window_end),
        "date": pd.to_datetime(rows.date).date, "raw_values": list(rows.raw_values.astype(np.float64)),
        "model_score": np.nan,
    })
    out = {}
    for name, params in variants.items():
        scored, _ = alert_nights(windows, None, params[seconds])
        severity, _, flags = row_scores(s, scored)
        out[name] = (severity, flags)
    return out


def run_nab(variants: dict[str, AlertsConfig], processes: int, explain: bool = False,
            clock: str = "native") -> list[dict]:
    """Replay every variant on NAB's 31 series; one result row per variant. ``explain``: also
    print, per series, its labeled windows and each variant's windows caught / false alerts.
    ``clock``: as :func:`benchmarks.quality_nab.load_series`."""
    from benchmarks.quality import NAB_WINDOW
    from benchmarks.quality_nab import Scorer, corpus_scores, load_series, per_series, per_series_table, sweep

    series = load_series(clock=clock)
    widths = sorted({int(s.bucket.total_seconds()) for s in series})
    params = {n: {w: core_alert_params(c, ("value_mean",), NAB_WINDOW, 1, w) for w in widths}
              for n, c in variants.items()}
    t0 = time.perf_counter()
    with ProcessPoolExecutor(processes) as pool:
        per_series_rows = list(pool.map(_nab_series, [(s, params) for s in series]))
    seconds = time.perf_counter() - t0
    scorers = [Scorer.of(s) for s in series]
    results, alerts = [], {}
    for name, cfg in variants.items():
        # as the job's NAB benchmark scores them: alert onsets of the rows' anomalous flags, with the
        # cooldown from the end of the last flagged row's bucket
        cooldown = cfg.cooldown_seconds
        flags = alerts[name] = [sc.onsets(r[name][1], cooldown) for sc, r in zip(scorers, per_series_rows)]
        severity = [r[name][0] / -np.log10(cfg.level) for r in per_series_rows]
        free = corpus_scores(scorers, flags)["standard"]
        best = sweep(scorers, severity, onset=True, cooldown=cooldown)["standard"]
        results.append({"variant": name, "label-free": round(free, 1), "corpus threshold": round(best["score"], 1),
                        "alerts": int(sum(f.sum() for f in flags))})
    print(f"nab ({clock} clock): 31 series, {len(variants)} variants in {seconds:.0f} s")
    if explain:
        counts = {name: per_series(series, scorers, alerts[name]) for name in variants}
        header, *rows = per_series_table(counts)
        print(pd.DataFrame(rows, columns=header).to_string(index=False))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "conf" / "demo.yaml"))
    parser.add_argument("--datasets", default="demo,nab")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--levels", default="", help="demo: also report these alert levels, e.g. 1e-7,1e-9")
    parser.add_argument("--explain", action="store_true",
                        help="demo: drivers of true and false intervals; nab: windows caught / false alerts per series")
    parser.add_argument("--entities", type=int, default=None, help="demo: fewer entities (quick look)")
    parser.add_argument("--nab-clock", choices=("native", "rows"), default="native",
                        help="nab: each series at its own timestamps and cadence (default), or every row on one "
                        "5-minute grid (the protocol before 2026-12-07)")
    args = parser.parse_args(argv)
    project = load_yaml(args.config)
    base = project.get("alerts") or {}
    chosen = {n: alerts_config(base, VARIANTS[n]) for n in args.variants.split(",")}
    datasets = args.datasets.split(",")
    pd.set_option("display.width", 200)
    if "demo" in datasets:
        print(pd.DataFrame(run_demo(project, chosen, args.processes, args.entities, args.explain,
                                        tuple(float(v) for v in args.levels.split(",") if v))).to_string(index=False))
    if "nab" in datasets:
        nab_cfg = {n: alerts_config({}, VARIANTS[n]) for n in chosen}
        print(pd.DataFrame(run_nab(nab_cfg, args.processes, args.explain, args.nab_clock)).to_string(index=False))


if __name__ == "__main__":
    main()

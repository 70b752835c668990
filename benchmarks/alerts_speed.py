"""Benchmark: the alert core's time per entity-night, entity by entity vs a group's entities together.

The nightly job's alert pass hands each hash group of entities to
:func:`adspark.core.alerts.alert_group`, which runs the night's baselines and calibration
for all of the group's entities in one time loop. This measures, in one process (one core), on
the demo's generated windows (the events of ``conf/demo.yaml``'s generator, hourly buckets,
windows of 24 stride 6, every night from the first, as :mod:`benchmarks.alerts_replay` builds
them; no model score):

- ``one by one``: :func:`adspark.core.alerts.alert_nights` per entity (what the alert pass did
  before groups shared the loop);
- ``together``: :func:`adspark.core.alerts.alert_group` over all the entities' windows at once
  (one hash group, one frame: what a range's alert pass does);
- ``together, one night per call``: the same one night at a time, each night from the states the
  night before left (what an ordinary nightly run does).

It checks that the three give the same rows and states, element for element, and prints
milliseconds per entity-night and the ratios.

Usage: ``python -m benchmarks.alerts_speed [--entities 100] [--nights 35]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from adspark.config import load_yaml
from adspark.core.alerts import AlertParams, alert_group, alert_nights
from adspark.core.generate import GeneratorSpec, plan_anomalies
from adspark.pipeline.alerts import core_alert_params
from benchmarks.alerts_replay import ROOT, alerts_config, demo_entity_windows, demo_features, demo_spec


def demo_windows(entities: int, nights: int) -> tuple[dict[str, pd.DataFrame], AlertParams]:
    """The demo's windows of the first ``entities`` entities and ``nights`` nights, by entity."""
    project = load_yaml(str(ROOT / "conf" / "demo.yaml"))
    spec = demo_spec(project)
    plan = plan_anomalies(spec)
    days = min(nights, spec.days)  # the same events per entity and day, fewer days
    spec = GeneratorSpec(**{**spec.__dict__, "days": days, "events": round(spec.events * days / spec.days)})
    features = demo_features(project)
    size, stride = int(project["window"]["size"]), int(project["window"]["stride"])
    params = core_alert_params(alerts_config(project.get("alerts") or {}, {}), features, size, stride, 3600)
    out = {}
    for e in range(entities):
        windows = demo_entity_windows(spec, e, plan, features, size, stride)
        out[str(windows["entity"].iloc[0])] = windows.drop(columns=["entity", "window_end"])
    return out, params


def _same(a: tuple, b: tuple) -> None:
    pd.testing.assert_frame_equal(a[0], b[0], check_exact=True)
    assert [d for d, _ in a[1]] == [d for d, _ in b[1]]
    for (_, s1), (_, s2) in zip(a[1], b[1], strict=True):
        for k in s1:
            np.testing.assert_array_equal(s1[k], s2[k], err_msg=k)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100)
    parser.add_argument("--nights", type=int, default=35)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    windows, params = demo_windows(args.entities, args.nights)
    nights = len({d for w in windows.values() for d in w["date"]})
    print(f"{len(windows)} demo entities x {nights} nights generated in {time.perf_counter() - t0:.0f} s")
    alert_nights(next(iter(windows.values())), None, params)  # imports and first calls, untimed

    t0 = time.perf_counter()
    alone = {k: alert_nights(w, None, params) for k, w in windows.items()}
    one_by_one = time.perf_counter() - t0

    group = pd.concat([w.assign(entity=k) for k, w in windows.items()], ignore_index=True)
    by_night = {day: group[group["date"] == day] for day in sorted(set(group["date"]))}

    t0 = time.perf_counter()
    together, kept_together = alert_group(group, {}, params)
    at_once = time.perf_counter() - t0

    t0 = time.perf_counter()
    states: dict = {}
    parts, kept = [], {k: [] for k in windows}
    for night in by_night.values():
        scored, after = alert_group(night, states, params)
        parts.append(scored)
        for k, s in after.items():
            kept[k].extend(s)
            states[k] = s[-1][1]
    nightly = time.perf_counter() - t0

    one_by_one_nights = pd.concat(parts, ignore_index=True)
    for k in windows:
        mine = together[together["entity"] == k].drop(columns="entity").reset_index(drop=True)
        _same(alone[k], (mine, kept_together[k]))
        mine = one_by_one_nights[one_by_one_nights["entity"] == k].drop(columns="entity").reset_index(drop=True)
        _same(alone[k], (mine, kept[k]))
    cells = len(windows) * nights
    rows = [("one by one (alert_nights per entity)", one_by_one), ("together (alert_group)", at_once),
            ("together, one night per call", nightly)]
    print("| method | seconds | ms per entity-night | vs one by one |\n|---|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.1f} | {1000 * seconds / cells:.2f} | {one_by_one / seconds:.2f}x |")
    print("rows and states identical across the three")


if __name__ == "__main__":
    main()

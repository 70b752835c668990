"""NAB part of the quality benchmark: 31 labeled series, events -> buckets -> windows -> scores.

Protocol (``../shared/data/README.md``, NAB's documented scoring):

- Each series is one entity of one events table (one event per row, column ``value``), at its
  own clock: its file's timestamps shifted by whole weeks (hour of day and weekday kept) so that
  its first scored row (after ``p`` probationary rows, ``min(15%, 750)``) falls in the week from
  ``T0``; training uses the nights before ``T0`` only, so every series trains on its probation
  alone. The bucket is the series' own cadence, as a user would configure it: the narrowest of
  5, 10, 15, 30 minutes and 1 hour at least the median interval between its rows (hourly ad
  exchange and temperature series, half-hourly taxi counts, 5- and 10-minute sensors). Series of
  one bucket width are one project (the job has one bucket width per project). ``clock="rows"``
  (:func:`load_series`) is the protocol used before 2026-12-07: row ``i`` at
  ``T0 + (i - p) * 5 min`` on one 5-minute grid, which kept NAB's row order but not the clock
  (an hourly series' day became two hours, so hour-of-day slots meant nothing).
- ``adspark discretize`` -> ``window`` (bucket mode, the series' buckets, ``value_mean``, windows of
  ``W`` buckets, stride 1, robust scaling fitted per series on its probationary rows) ->
  ``train`` on the nights before ``T0`` only (one model, thresholds per series from the last
  probationary night) -> ``score`` every night from ``T0`` -> ``evaluate`` with the NAB windows as
  the labels table.
- A row's score is the score of the window ending at its bucket (rows sharing a bucket share it). Two ways to turn scores into
  NAB detections are scored: every row above the series' fitted threshold (no labels used), and
  NAB's own protocol, one corpus-wide threshold on ``score / threshold`` chosen to maximize the
  standard score (what every entry of the published scoreboard did). Both are reported for
  "every row" and "onsets" (only the first row of each run of flagged rows raises an alert).
"""

from __future__ import annotations

import datetime as dt
import json
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from adspark.config import AlertsConfig
from adspark.core.calibration import alert_onsets
from adspark.core.evaluate import (
    NAB_PROFILES,
    nab_normalized,
    nab_point_weights,
    nab_probation,
    nab_raw_score_weighted,
    runs_of,
)

ARCHIVE = Path(__file__).resolve().parent / "data" / "nab" / "nab-31.tar.gz"
STEP = pd.Timedelta(minutes=5)
T0 = pd.Timestamp("2026-02-01")  # first scored bucket of every series
SCOREBOARD = {"ARTime": 74.9, "Numenta HTM": 70.5, "CAD OSE": 69.9, "KNN CAD": 58.0, "Twitter ADVec": 47.1}


CLOCKS = ("native", "rows")
WIDTHS = tuple(pd.Timedelta(w) for w in ("5min", "10min", "15min", "30min", "1h"))  # each divides a day


@dataclass(frozen=True)
class Series:
    """One NAB series in file order.

    Attributes:
        name: ``category/file`` without ``.csv`` (the entity).
        value: Values, shape (n,).
        labeled: Whether each row lies in a labeled window, shape (n,).
        times: Each row's event time in the benchmark (see :func:`load_series`), shape (n,),
            ``datetime64[ns]``; ``None``: the ``rows`` clock (``T0 + (i - p) * 5 min``).
        bucket: The series' bucket width.
    """

    name: str
    value: np.ndarray
    labeled: np.ndarray
    times: np.ndarray | None = None
    bucket: pd.Timedelta = STEP

    @property
    def probation(self) -> int:
        """Rows of NAB's probationary period."""
        return nab_probation(len(self.value))

    @property
    def row_times(self) -> pd.DatetimeIndex:
        """Each row's event time."""
        if self.times is None:
            return pd.DatetimeIndex(T0 + (np.arange(len(self.value)) - self.probation) * STEP)
        return pd.DatetimeIndex(self.times)

    @property
    def row_buckets(self) -> pd.DatetimeIndex:
        """The start of each row's bucket."""
        return self.row_times.floor(self.bucket)


def cadence(stamps: pd.DatetimeIndex) -> pd.Timedelta:
    """The narrowest of :data:`WIDTHS` at least the median interval between distinct consecutive
    timestamps (the widest where the median exceeds them all)."""
    steps = np.diff(stamps.sort_values().unique().asi8)
    median = pd.Timedelta(int(np.median(steps))) if len(steps) else WIDTHS[0]
    return next((w for w in WIDTHS if w >= median), WIDTHS[-1])


def on_own_clock(stamps: pd.DatetimeIndex, probation: int) -> np.ndarray:
    """``stamps`` shifted by whole weeks so that row ``probation`` falls in ``[T0, T0 + 7 days)``."""
    week = pd.Timedelta(days=7)
    weeks = int(np.ceil((T0 - stamps[min(probation, len(stamps) - 1)]) / week))
    return (stamps + weeks * week).to_numpy("datetime64[ns]")


def load_series(archive: Path = ARCHIVE, clock: str = "native") -> list[Series]:
    """The 31 series and their labeled rows (a row is labeled when its timestamp is in a window).

    Args:
        archive: The copied corpus.
        clock: ``native``: each series at its own timestamps (shifted by whole weeks, see
            :func:`on_own_clock`) in buckets of its own cadence (:func:`cadence`); ``rows``: every
            row on one 5-minute grid, row ``p`` at ``T0`` (the protocol before 2026-12-07).
    """
    if clock not in CLOCKS:
        raise ValueError(f"clock {clock!r}: expected one of {CLOCKS}")
    with tarfile.open(archive) as tar:
        windows = json.load(tar.extractfile("labels/combined_windows.json"))
        out = []
        for key in sorted(windows):
            frame = pd.read_csv(tar.extractfile(f"data/{key}"))
            stamps = pd.DatetimeIndex(pd.to_datetime(frame["timestamp"]))
            ts = stamps.to_numpy()
            labeled = np.zeros(len(frame), dtype=bool)
            for start, end in windows[key]:
                labeled |= (ts >= np.datetime64(pd.Timestamp(start))) & (ts <= np.datetime64(pd.Timestamp(end)))
            value = frame["value"].to_numpy(np.float64)
            if clock == "rows":
                out.append(Series(key.removesuffix(".csv"), value, labeled))
            else:
                out.append(Series(key.removesuffix(".csv"), value, labeled,
                                  on_own_clock(stamps, nab_probation(len(value))), cadence(stamps)))
    return out


def by_bucket(series: list[Series]) -> dict[pd.Timedelta, list[Series]]:
    """The series grouped by bucket width (one project each), widths ascending."""
    return {w: [s for s in series if s.bucket == w] for w in sorted({s.bucket for s in series})}


def events_frame(series: list[Series]) -> pd.DataFrame:
    """Every series as rows of one events table.

    Columns: ``event_id`` (``<series>#<row>``), ``entity``, ``event_time``, ``value``, ``event_date``.
    """
    parts = []
    for s in series:
        t = s.row_times
        parts.append(pd.DataFrame({
            "event_id": [f"{s.name}#{i}" for i in range(len(s.value))], "entity": s.name,
            "event_time": t, "value": s.value, "event_date": t.date,
        }))
    return pd.concat(parts, ignore_index=True)


def labels_frame(series: list[Series]) -> pd.DataFrame:
    """The NAB windows as a labels table: one row per run of labeled rows, re-timed."""
    rows = []
    for s in series:
        t = s.row_times
        for k, (left, right) in enumerate(runs_of(s.labeled)):
            rows.append({"anomaly_id": f"{s.name}#{k}", "entity": s.name, "kind": s.name.split("/")[0],
                         "start": t[left], "end": t[right].floor(s.bucket) + s.bucket, "magnitude": np.nan,
                         "description": "NAB combined window"})
    return pd.DataFrame(rows)


def date_span(series: list[Series]) -> tuple[dt.date, dt.date, dt.date]:
    """(first night, last training night, last night): training nights end the day before ``T0``."""
    first = min(s.row_times.min() for s in series).date()
    last = max(s.row_times.max() for s in series).date()
    return first, (T0 - pd.Timedelta(days=1)).date(), last


def row_scores(s: Series, scores: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's score, fitted threshold and flag from its series' rows of the scores table: those
    of the window ending at the end of the row's bucket.

    Args:
        s: The series.
        scores: ``window_end``, ``score``, ``threshold``, ``is_anomaly`` of this entity.

    Returns:
        (score, threshold, flag), each shape (n,); NaN / False for rows without a window.
    """
    n = len(s.value)
    score, threshold = np.full(n, np.nan), np.full(n, np.nan)
    flag = np.zeros(n, dtype=bool)
    newest = pd.DatetimeIndex(pd.to_datetime(scores["window_end"])) - s.bucket
    at = pd.Index(newest.as_unit("ns")).get_indexer(s.row_buckets.as_unit("ns"))
    ok = at >= 0
    score[ok] = scores["score"].to_numpy(np.float64)[at[ok]]
    threshold[ok] = scores["threshold"].to_numpy(np.float64)[at[ok]]
    flag[ok] = scores["is_anomaly"].to_numpy(bool)[at[ok]]
    return score, threshold, flag


@dataclass(frozen=True)
class Scorer:
    """NAB raw scores of one series for many detection vectors (its point weights computed once)."""

    window: np.ndarray  # window id per row, -1 outside
    value: np.ndarray  # S(y) per row
    probation: int
    n_windows: int
    seconds: np.ndarray  # each row's bucket start, epoch seconds
    width: float  # bucket width, seconds

    @classmethod
    def of(cls, s: Series) -> "Scorer":
        wins = runs_of(s.labeled)
        win, value = nab_point_weights(len(s.labeled), wins)
        seconds = s.row_buckets.as_unit("s").asi8.astype(np.float64)
        return cls(win, value, s.probation, len(wins), seconds, s.bucket.total_seconds())

    def raw(self, flags: np.ndarray, profile: dict[str, float]) -> float:
        """NAB raw score of the detections ``flags`` (shape (n,)) under ``profile``."""
        return nab_raw_score_weighted(flags, self.window, self.value, self.probation, self.n_windows, profile)[0]

    def onsets(self, flags: np.ndarray, cooldown: float = 0.0) -> np.ndarray:
        """Only the first row of each run of flagged rows (an alert when a run starts): a flagged
        row starting within ``cooldown`` seconds of the end of the last flagged row's bucket
        extends its alert (as the job's ``alerts.cooldown``,
        :func:`adspark.core.calibration.alert_onsets`); rows sharing a bucket are one run."""
        return alert_onsets(np.asarray(flags, dtype=bool), self.seconds, self.width, cooldown=float(cooldown))[0]


def corpus_scores(scorers: list[Scorer], flags: list[np.ndarray]) -> dict[str, float]:
    """Normalized NAB score per profile of one detection vector per series."""
    windows = sum(sc.n_windows for sc in scorers)
    return {
        name: nab_normalized(sum(sc.raw(f, profile) for sc, f in zip(scorers, flags)), windows, profile)
        for name, profile in NAB_PROFILES.items()
    }


def per_series(series: list[Series], scorers: list[Scorer], alerts: list[np.ndarray]) -> dict[str, list[int]]:
    """Per series, ``[labeled windows, windows caught, alerts outside every window]`` of alert
    onsets, counted from the end of the probation (what NAB scores)."""
    out = {}
    for s, sc, a in zip(series, scorers, alerts):
        scored = np.asarray(a, dtype=bool) & (np.arange(len(a)) >= sc.probation)
        caught = len(set(sc.window[scored & (sc.window >= 0)].tolist()))
        out[s.name] = [int(sc.n_windows), caught, int((scored & (sc.window < 0)).sum())]
    return out


def per_series_table(counts: dict[str, dict[str, list[int]]]) -> list[list[str]]:
    """Rows of the per-series table of :func:`per_series` results, one column per variant:
    header, one row per series (``caught / false``), then the totals."""
    names = list(counts)
    first = counts[names[0]]
    rows = [["series", "windows", *names]]
    rows += [[series, str(cells[0]), *(f"{counts[v][series][1]} / {counts[v][series][2]}" for v in names)]
             for series, cells in first.items()]
    totals = [np.sum(list(counts[v].values()), axis=0) for v in names]
    rows.append(["total", str(totals[0][0]), *(f"{t[1]} / {t[2]}" for t in totals)])
    return rows


def sweep(scorers: list[Scorer], severity: list[np.ndarray], onset: bool, points: int = 200,
          cooldown: float = 0.0) -> dict:
    """NAB's protocol: the one corpus-wide threshold on severity maximizing each profile's score.

    Args:
        scorers: One per series.
        severity: ``score / fitted threshold`` per row of each series (NaN where unscored).
        onset: Score only the first row of each run above the threshold.
        cooldown: With ``onset``: seconds after a flagged row within which a new run is no new alert.
        points: Candidate thresholds (upper quantiles of the scored severities, log-spaced toward
            the maximum, plus 1.0).

    Returns:
        Profile -> {"score", "threshold"}.
    """
    pooled = np.concatenate([v[np.isfinite(v)] for v in severity])
    # dense in the tail, where detections are: upper quantiles 1 - q for q log-spaced in (1 / n, 1/2]
    tail = np.geomspace(0.5, 1.0 / max(len(pooled), 2), points)
    candidates = np.unique(np.r_[np.quantile(pooled, 1.0 - tail), 1.0])
    best: dict[str, dict] = {name: {"score": -np.inf, "threshold": np.nan} for name in NAB_PROFILES}
    windows = sum(sc.n_windows for sc in scorers)
    for th in candidates:
        flags = [np.nan_to_num(v, nan=-np.inf) > th for v in severity]
        if onset:
            flags = [sc.onsets(f, cooldown) for sc, f in zip(scorers, flags, strict=True)]
        for name, profile in NAB_PROFILES.items():
            score = nab_normalized(sum(sc.raw(f, profile) for sc, f in zip(scorers, flags)), windows, profile)
            if score > best[name]["score"]:
                best[name] = {"score": score, "threshold": float(th)}
    return best


FEATURES = {"level": ["value_mean"], "diff": ["value_mean_diff"], "both": ["value_mean", "value_mean_diff"]}


def static_z(s: Series) -> np.ndarray:
    """Baseline: |value - median| / IQR of the probationary rows, shape (n,)."""
    base = s.value[: s.probation]
    iqr = float(np.subtract(*np.percentile(base, [75, 25]))) or float(base.std()) or 1.0
    return np.abs(s.value - np.median(base)) / iqr


def rolling_z(s: Series, rows: int = 288) -> np.ndarray:
    """Baseline: |value - rolling median| / rolling std over the last ``rows`` rows, shape (n,)."""
    v = pd.Series(s.value)
    med = v.rolling(rows, min_periods=10).median()
    sd = v.rolling(rows, min_periods=10).std()
    return (np.abs(v - med) / (sd + 1e-9)).to_numpy()


def baselines(series: list[Series], scorers: list[Scorer]) -> dict:
    """Model-free baselines under NAB's corpus-threshold protocol (every row and onsets)."""
    out = {}
    for name, fn in (("z-score vs probation", static_z), ("rolling z-score (288 rows)", rolling_z)):
        severity = [fn(s) for s in series]
        out[name] = {"every_row": sweep(scorers, severity, onset=False),
                     "onsets": sweep(scorers, severity, onset=True)}
    return out


ALERT_VARIANTS = {
    "every detector, bonferroni (the default)": {},
    "every detector, fisher": {"fusion": "fisher"},
    "model-free (level, diff, seasonal, extreme, stuck, silence, mix, profile, neighbor)": {
        "detectors": ["level", "diff", "seasonal", "extreme", "stuck", "silence", "mix", "profile", "neighbor"]},
    "model alone": {"detectors": ["model"]},
    "level alone": {"detectors": ["level"]},
    "diff alone": {"detectors": ["diff"]},
    "seasonal alone": {"detectors": ["seasonal"]},
    "extreme alone": {"detectors": ["extreme"]},
    "stuck alone": {"detectors": ["stuck"]},
    "neighbor alone": {"detectors": ["neighbor"]},
    "level + extreme": {"detectors": ["level", "extreme"]},
    "every detector, bonferroni, cold start at T0 (no replay of the probationary nights)": {},
}
COLD = "every detector, bonferroni, cold start at T0 (no replay of the probationary nights)"


def alert_variants(store, model_id: str, series: list[Series]) -> dict[str, tuple[list[np.ndarray], list[np.ndarray]]]:
    """Every detector and combination of the adaptive alerts, side by side, on the windows and
    model scores of one project of this run: the job's own pure core
    (:func:`adspark.core.alerts.alert_nights`), each series replayed from its first night as the
    job does, plus the default started cold at ``T0``; no labels used (see :func:`score_variants`).

    Returns:
        Variant -> (per series of ``series``: each row's anomalous flag; each row's severity,
        score / threshold).

    The job's alert pass also scores the nights it replays before ``T0`` (the scorer runs from
    the first night; the core gives the model no verdict on the nights it was fitted on), but
    ``scores`` keeps only the nights from ``T0``: those windows' model scores are computed here
    with the registered detector, so that the replay sees what the job saw."""
    from pyspark.sql import functions as F

    from adspark.core.alerts import alert_nights
    from adspark.models.lookup import load_detector
    from adspark.models.registry import find_model
    from adspark.pipeline.alerts import alert_params
    from adspark.pipeline.specs import StoredSpec

    model = find_model(store, model_id=model_id)
    spec = StoredSpec.load(store, model.spec_id)
    windows = (
        store.read("windows").where(F.col("spec_id") == model.spec_id)
        .select("entity", "window_id", "window_start", "window_end", "date", "values", "raw_values")
        .join(store.read("scores").where(F.col("model_id") == model_id)
              .select("window_id", "model_score", "top_features", F.col("p_value").alias("job_p")), "window_id",
              "left")
        .toPandas()
    )
    replayed = windows["model_score"].isna().to_numpy()
    if replayed.any():  # the nights before T0, scored by the job's alert pass but not kept in `scores`
        x = np.stack(windows.loc[replayed, "values"].to_numpy()).reshape(-1, model.n_steps, model.n_features)
        windows.loc[replayed, "model_score"] = load_detector(model).score(x)
    windows = windows.drop(columns="values")
    windows["feature_errors"] = [[v] * len(spec.features) for v in windows["model_score"]]
    windows["top_features"] = [v if isinstance(v, (list, np.ndarray)) else [] for v in windows["top_features"]]
    by_entity = dict(tuple(windows.groupby("entity")))
    out = {}
    for name, overrides in ALERT_VARIANTS.items():
        params = alert_params(AlertsConfig(**overrides), spec, model)
        flags, severity = [], []
        for s in series:
            mine = by_entity.get(s.name)
            if mine is None:
                flags.append(np.zeros(len(s.value), bool))
                severity.append(np.full(len(s.value), np.nan))
                continue
            if name == COLD:
                mine = mine[mine["date"] >= T0.date()]
            scored, _ = alert_nights(mine.drop(columns=["job_p"]), None, params)
            if not overrides and name != COLD:  # the job's own p-values should be these (consistency)
                job = mine.set_index("window_id")["job_p"].reindex(scored["window_id"]).to_numpy()
                gap = np.nanmax(np.abs(np.log10(job) - np.log10(scored["p_value"].to_numpy())))
                if gap > 1e-3:
                    first = int(np.argmax(np.abs(np.log10(job) - np.log10(scored["p_value"].to_numpy())) > 1e-3))
                    print(f"  consistency: {s.name}: job and core p-values differ by up to {gap:.3g} decades "
                          f"(first at window {scored['window_id'].iloc[first]}: job {job[first]:.3g}, "
                          f"core {scored['p_value'].iloc[first]:.3g}, driver {scored['driver'].iloc[first]})")
            score, th, flag = row_scores(s, scored)
            flags.append(flag)
            severity.append(score / th)
        out[name] = (flags, severity)
    return out


def score_variants(series: list[Series], scorers: list[Scorer], rows: dict[str, dict[str, tuple]]) -> dict:
    """NAB's scores of each alert variant over every series (merged from the projects).

    Args:
        series: Every series, in the order of ``scorers``.
        scorers: One per series.
        rows: Variant -> series name -> (flags, severity) of that series' rows.
    """
    cooldown = AlertsConfig().cooldown_seconds
    out = {}
    for name, by_series in rows.items():
        flags = [by_series[s.name][0] for s in series]
        severity = [by_series[s.name][1] for s in series]
        alerts = [sc.onsets(f, cooldown) for sc, f in zip(scorers, flags, strict=True)]
        out[name] = {"fitted_onsets": corpus_scores(scorers, alerts),
                     "sweep_onsets": sweep(scorers, severity, onset=True, cooldown=cooldown),
                     "per_series": per_series(series, scorers, alerts)}
    return out


def project(warehouse: Path, window: int, detector: dict, threshold: dict, series: list[Series],
            features: str = "level", center: bool = False, alerts: bool = True) -> dict:
    """The YAML project (as a dict) of the NAB run over ``series`` (of one bucket width).

    ``features``: ``level`` (the bucket's value), ``diff`` (its change from the previous bucket:
    level shifts become one spike, slow drift disappears) or ``both``. ``center``: each window
    centered on its own mean (``window.scaling.center_windows``): shape, not level. ``alerts``:
    the adaptive alerts with their documented defaults (else the model's fitted thresholds alone).
    """
    first, train_to, _ = date_span(series)
    return {
        "storage": {"warehouse": str(warehouse), "schema": "adspark"},
        "spark": {"master": "local[2]", "shuffle_partitions": 4, "driver_memory": "4g"},
        "source": {
            "table": "events", "timestamp": {"column": "event_time", "timezone": "UTC"},
            "date_column": "event_date", "entity": ["entity"], "event_id": "event_id", "late_days": 0,
            "measures": [{"name": "value"}],
        },
        "discretize": {"bucket": f"{int(series[0].bucket.total_seconds()) // 60}min", "calendar": False, "activity_lookback_days": 0,
                       "difference": ["value_mean"] if features != "level" else []},
        "window": {"mode": "buckets", "size": window, "stride": 1, "features": FEATURES[features],
                   "scaling": {"method": "robust", "fit_from": str(first), "fit_to": str(train_to),
                               "center_windows": center}},
        "train": {"backend": "local", "validation_fraction": 0.3, "exclude_labeled": False,
                  "detector": detector, "threshold": threshold},
        "score": {"top_k": 1},
        "intervals": {"gap": "0s", "min_duration": "0s", "top_k": 1, "lookback_days": 0},
        "alerts": {"enabled": alerts},
        "evaluate": {"labels_table": "labels"},
    }


def run_nab(tmp: Path, window: int, detector: dict, threshold: dict, cli, features: str = "level",
            center: bool = False, alerts: bool = True, clock: str = "native") -> dict:
    """The whole NAB run through the CLI; every figure of its table.

    Args:
        tmp: Scratch folder (one warehouse per bucket width goes under it).
        window: Buckets per window (W).
        detector: ``train.detector`` section.
        threshold: ``train.threshold`` section (its scope is set to ``entity``).
        cli: Runs one ``adspark`` command line (raises when it fails).
        features: ``level``, ``diff`` or ``both`` (see :func:`project`).
        center: Center each window on its own mean.
        alerts: Adaptive alerts (default config: per-series state from the probationary nights on,
            one alert level 1e-5), else the model's fitted per-series thresholds.
        clock: As :func:`load_series`.
    """
    import yaml
    from pyspark.sql import functions as F

    from adspark.config import SparkConfig, StorageConfig
    from adspark.session import get_spark
    from adspark.storage import TableStore
    from schemas import LABELS

    series = load_series(clock=clock)
    spark = get_spark(SparkConfig(master="local[2]", shuffle_partitions=4, driver_memory="4g"))
    t0 = time.perf_counter()
    scores, models, evaluations, variants = {}, [], [], {}
    for width, group in by_bucket(series).items():  # one project per bucket width
        first, train_to, last = date_span(group)
        warehouse = tmp / f"nab-{int(width.total_seconds())}s"
        root = warehouse / "adspark"
        spark.createDataFrame(events_frame(group)).write.format("delta").partitionBy("event_date").mode(
            "overwrite").save(str(root / "events"))
        labels = labels_frame(group)
        spark.createDataFrame(labels[LABELS.names], LABELS.struct_type()).write.format("delta").mode(
            "overwrite").save(str(root / "labels"))
        conf = tmp / f"nab-{int(width.total_seconds())}s.yaml"
        th = {**threshold, "scope": "entity"}
        conf.write_text(yaml.safe_dump(project(warehouse, window, detector, th, group, features, center, alerts)))
        c = ["--conf", str(conf)]
        cli(["discretize", *c, "--from", str(first), "--to", str(last)])
        cli(["window", *c, "--from", str(first), "--to", str(last)])
        cli(["train", *c, "--from", str(first), "--to", str(train_to)])
        store = TableStore(spark, StorageConfig(warehouse=str(warehouse), schema="adspark"))
        model = store.read("models").orderBy(F.col("created_at").desc()).first()
        scored_from = str(T0.date())
        cli(["score", *c, "--from", scored_from, "--to", str(last), "--model-id", model.model_id])
        cli(["evaluate", *c, "--from", scored_from, "--to", str(last), "--model-id", model.model_id])
        ev = store.read("evaluations").orderBy(F.col("created_at").desc()).first()
        models.append(model.model_id)
        evaluations.append({"bucket": str(width), "series": len(group),
                            **{k: ev[k] for k in ("roc_auc", "pr_auc", "f1", "labels", "labels_detected",
                                                  "false_intervals_per_entity_day", "nab_standard")}})
        frame = (store.read("scores").where(F.col("model_id") == model.model_id)
                 .select("entity", "window_end", "score", "threshold", "is_anomaly").toPandas())
        scores.update(dict(tuple(frame.groupby("entity"))))
        if alerts:
            for name, (flags, severity) in alert_variants(store, model.model_id, group).items():
                variants.setdefault(name, {}).update(
                    {s.name: (f, v) for s, f, v in zip(group, flags, severity, strict=True)})
    seconds = time.perf_counter() - t0
    # alerts as the job raises them: a run resuming within the cooldown is the same alert
    cooldown = AlertsConfig().cooldown_seconds if alerts else 0
    empty = pd.DataFrame(columns=["window_end", "score", "threshold", "is_anomaly"])
    scorers, fitted, severity, unscored = [], [], [], 0
    for s in series:
        score, th, flag = row_scores(s, scores.get(s.name, empty))
        unscored += int(np.isnan(score[s.probation:]).sum())
        scorers.append(Scorer.of(s))
        fitted.append(flag)
        severity.append(score / th)
    return {
        "model_ids": models, "seconds": seconds, "clock": clock, "window": window, "features": features, "center": center,
        "alerts": alerts,
        "detector": detector,
        "buckets": {str(w): len(g) for w, g in by_bucket(series).items()},
        "threshold": threshold, "rows": int(sum(len(s.value) for s in series)), "unscored_rows": unscored,
        "windows": int(sum(sc.n_windows for sc in scorers)), "series": len(series),
        "fitted_every_row": corpus_scores(scorers, fitted),
        "fitted_onsets": corpus_scores(scorers, [sc.onsets(f, cooldown) for sc, f in zip(scorers, fitted)]),
        "sweep_every_row": sweep(scorers, severity, onset=False),
        "sweep_onsets": sweep(scorers, severity, onset=True, cooldown=cooldown),
        "baselines": baselines(series, scorers),
        "alert_variants": score_variants(series, scorers, variants) if alerts else {},
        "evaluate": evaluations,
    }


def print_nab(r: dict) -> None:
    """The NAB table: adspark's four readings, then the published scoreboard."""
    print(f"\n### NAB: {r['series']} series, {r['rows']} rows, {r['windows']} labeled windows, {r.get('clock', 'rows')} clock "
          f"(dense AE over {r['window']} buckets of each series' width, one project per width: "
          f"{', '.join(f'{w} x {n}' for w, n in r['buckets'].items())}; features {r['features']}"
          f"{' centered' if r['center'] else ''}; "
          f"{'adaptive alerts, level 1e-5' if r.get('alerts') else 'fitted per-series thresholds'}; "
          f"{r['unscored_rows']} scored rows without a window)")
    print("| detector | standard | reward low FP | reward low FN |")
    print("|---|---|---|---|")
    fitted = "label-free alert level" if r.get("alerts") else "fitted thresholds"
    rows = {
        f"adspark, {fitted}, every row flagged": r["fitted_every_row"],
        f"adspark, {fitted}, alert onsets": r["fitted_onsets"],
        "adspark, NAB corpus threshold, every row": {k: v["score"] for k, v in r["sweep_every_row"].items()},
        "adspark, NAB corpus threshold, alert onsets": {k: v["score"] for k, v in r["sweep_onsets"].items()},
    }
    for name, b in r["baselines"].items():
        for kind, label in (("every_row", "every row"), ("onsets", "alert onsets")):
            rows[f"{name} (no model), NAB corpus threshold, {label}"] = {k: v["score"] for k, v in b[kind].items()}
    for name, v in r.get("alert_variants", {}).items():
        rows[f"alerts variant: {name}, label-free level, alert onsets"] = v["fitted_onsets"]
        rows[f"alerts variant: {name}, NAB corpus threshold, alert onsets"] = {
            k: x["score"] for k, x in v["sweep_onsets"].items()}
    for name, v in rows.items():
        print(f"| {name} | {v['standard']:.1f} | {v['reward_low_FP_rate']:.1f} | {v['reward_low_FN_rate']:.1f} |")
    for name, v in SCOREBOARD.items():
        print(f"| {name} (published, 58 series) | {v:.1f} | - | - |")
    variants = r.get("alert_variants", {})
    if variants and all("per_series" in v for v in variants.values()):
        print("\nPer series, label-free level, alert onsets: windows caught / false alerts")
        header, *rows = per_series_table({name: v["per_series"] for name, v in variants.items()})
        for i, row in enumerate([header, *rows]):
            print("| " + " | ".join(row) + " |")
            if i == 0:
                print("|" + "---|" * len(row))
    for e in r["evaluate"]:
        print(f"adspark evaluate, {e['bucket']} buckets ({e['series']} series; windows vs NAB windows): "
              f"ROC AUC {e['roc_auc']:.3f}, PR AUC {e['pr_auc']:.3f}, F1 {e['f1']:.3f}, "
              f"{e['labels_detected']}/{e['labels']} windows hit by an interval, "
              f"{e['false_intervals_per_entity_day']:.2f} false intervals per series-day")

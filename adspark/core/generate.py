"""Realistic synthetic events with labeled anomalies (pure numpy/pandas, seeded).

Each (entity, day) is generated independently from a seed derived from ``(seed, entity, day)``,
so output is identical however the work is split across Spark tasks, and any size can be
generated in bounded memory.

Normal behaviour per entity: a Poisson event rate with a daily shape (two peaks, an entity
specific phase), a weekly shape (some entities are quiet on weekends), a slow trend and noise;
heavy-tailed ``amount`` (log-normal), ``latency_ms`` linked to ``amount``, a Zipf-like
``category`` with a rare value, and a ``channel``.

Injected anomalies (ground truth in the labels table): ``spike``, ``level_shift``,
``drop_to_zero``, ``daily_shape``, ``relation_break`` and ``rare_burst``.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

CATEGORIES = ("grocery", "fuel", "travel", "dining", "online", "utilities", "health", "retail")
RARE_CATEGORY = "crypto"
CHANNELS = ("web", "mobile", "api")
ANOMALY_KINDS = (
    "spike",
    "level_shift",
    "drop_to_zero",
    "daily_shape",
    "relation_break",
    "rare_burst",
)
BAD_ROW_KINDS = (
    "null_entity",
    "nan_amount",
    "negative_amount",
    "inf_latency",
    "future_timestamp",
    "duplicate",
)
EVENT_COLUMNS = (
    "event_id",
    "event_time",
    "user_id",
    "amount",
    "latency_ms",
    "category",
    "channel",
    "event_date",
)


@dataclass(frozen=True)
class GeneratorSpec:
    """What to generate.

    Attributes:
        entities: Number of entities (users).
        days: Number of days from ``start``.
        events: Target total number of events (the realised count varies around it).
        start: First day (UTC).
        seed: Master seed.
        anomaly_entity_fraction: Share of entities that get one injected anomaly.
        bad_row_fraction: Share of rows replaced by invalid rows (to exercise validation).
        anomaly_free_days: Leading days without anomalies (a clean training period).
    """

    entities: int
    days: int
    events: int
    start: dt.date
    seed: int
    anomaly_entity_fraction: float
    bad_row_fraction: float
    anomaly_free_days: int


def entity_name(index: int) -> str:
    """The key of entity ``index``, e.g. ``u00042``."""
    return f"u{index:05d}"


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


@dataclass(frozen=True)
class _Profile:
    rate: float
    phase: float
    weekend_factor: float
    trend: float
    amount_mu: float
    latency_coef: float
    cat_probs: np.ndarray
    chan_probs: np.ndarray


@functools.lru_cache(maxsize=4096)
def _profile(spec: GeneratorSpec, entity: int) -> _Profile:
    """Entity ``entity``'s normal behaviour (the same every day: cached)."""
    r = _rng(spec.seed, 1, entity)
    mean_per_day = spec.events / (spec.entities * spec.days)
    rate = mean_per_day * float(r.lognormal(0.0, 0.5)) / np.exp(0.125)
    base = 1.0 / np.arange(1, len(CATEGORIES) + 1) ** 1.1
    cats = r.permutation(base)
    cat_probs = np.append(cats / cats.sum() * 0.999, 0.001)
    return _Profile(
        rate=rate,
        phase=float(r.normal(0.0, 1.5)),
        weekend_factor=0.08 if r.random() < 0.2 else float(r.uniform(0.7, 1.3)),
        trend=float(r.normal(0.0, 0.003)),
        amount_mu=float(r.normal(3.5, 0.6)),
        latency_coef=float(r.uniform(0.05, 0.15)),
        cat_probs=cat_probs,
        chan_probs=r.dirichlet([4.0, 3.0, 1.0]),
    )


def _daily_shape(hours: np.ndarray, phase: float) -> np.ndarray:
    h = (hours - phase) % 24.0
    morning = np.exp(-0.5 * ((h - 10.0) / 2.5) ** 2)
    evening = 0.8 * np.exp(-0.5 * ((h - 19.5) / 2.0) ** 2)
    shape = 0.08 + morning + evening
    return shape / shape.mean()


def plan_anomalies(spec: GeneratorSpec) -> pd.DataFrame:
    """Choose which entities get which anomaly, when, and how strong.

    Returns:
        One row per anomaly: ``anomaly_id, entity, kind, start, end, magnitude, description``;
        ``start``/``end`` are naive UTC timestamps, ``end`` exclusive.
    """
    r = _rng(spec.seed, 2)
    first_day = min(spec.anomaly_free_days, max(spec.days - 1, 0))
    n = int(round(spec.entities * spec.anomaly_entity_fraction))
    if n == 0 or spec.days - first_day < 1:
        return pd.DataFrame(
            columns=["anomaly_id", "entity", "kind", "start", "end", "magnitude", "description"]
        )
    entities = np.sort(r.choice(spec.entities, size=n, replace=False))
    rows = []
    for i, e in enumerate(entities):
        kind = ANOMALY_KINDS[i % len(ANOMALY_KINDS)]
        day = int(r.integers(first_day, spec.days))
        hour = int(r.integers(0, 24))
        if kind == "spike":
            hours, mag, desc = int(r.integers(1, 4)), float(r.uniform(6, 12)), "event rate x{m:.1f}"
        elif kind == "level_shift":
            hours, mag, desc = int(r.integers(48, 120)), float(r.uniform(3, 5)), "amounts x{m:.1f}"
        elif kind == "drop_to_zero":
            hours, mag, desc = int(r.integers(12, 36)), 0.0, "no events at all"
        elif kind == "daily_shape":
            hours, mag, desc = 24, float(r.uniform(8, 12)), "daily profile shifted {m:.0f}h"
            hour = 0
        elif kind == "relation_break":
            hours, mag, desc = int(r.integers(12, 48)), float(r.uniform(8, 15)), (
                "latency decoupled from amount (x{m:.0f})"
            )
        else:
            hours, mag, desc = int(r.integers(2, 6)), 0.6, "rare category share {m:.0%}"
        start = pd.Timestamp(spec.start) + pd.Timedelta(days=day, hours=hour)
        end = min(
            start + pd.Timedelta(hours=hours),
            pd.Timestamp(spec.start) + pd.Timedelta(days=spec.days),
        )
        rows.append(
            {
                "anomaly_id": f"a{i:05d}",
                "entity": entity_name(int(e)),
                "kind": kind,
                "start": start,
                "end": end,
                "magnitude": mag,
                "description": desc.format(m=mag),
            }
        )
    return pd.DataFrame(rows)


_Anomaly = tuple  # (kind, start, end, magnitude)


def _active(anoms: list[_Anomaly], kind: str, times: np.ndarray) -> tuple[np.ndarray, float]:
    mask = np.zeros(times.shape, dtype=bool)
    mag = 1.0
    for a_kind, start, end, magnitude in anoms:
        if a_kind == kind:
            mask |= (times >= start) & (times < end)
            mag = magnitude
    return mask, mag


def generate_entity_day(
    spec: GeneratorSpec, entity: int, day: int, anomalies: pd.DataFrame
) -> pd.DataFrame:
    """Events of one entity on one day.

    Args:
        spec: The generator spec.
        entity: Entity index in ``[0, spec.entities)``.
        day: Day index in ``[0, spec.days)``.
        anomalies: The rows of :func:`plan_anomalies` for this entity (may be empty).

    Returns:
        Columns :data:`EVENT_COLUMNS`; ``event_time`` naive UTC (microseconds), ``event_date``
        a ``datetime.date``. Includes invalid rows at ``spec.bad_row_fraction``.
    """
    return events_of([entity_day_columns(spec, entity, day, anomalies)])


def events_of(parts: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    """One frame of :data:`EVENT_COLUMNS` from the column arrays of several entity-days, in order
    (what :func:`generate_entity_day` returns for each, concatenated)."""
    return pd.DataFrame({c: np.concatenate([p[c] for p in parts]) for c in EVENT_COLUMNS})


def entity_day_columns(
    spec: GeneratorSpec, entity: int, day: int, anomalies: pd.DataFrame
) -> dict[str, np.ndarray]:
    """The column arrays of :func:`generate_entity_day` (n rows each, keyed by
    :data:`EVENT_COLUMNS`): a Spark task generating thousands of entity-days builds one frame
    per batch of them with :func:`events_of` instead of one each (a frame costs about as much as
    drawing the day's events)."""
    p = _profile(spec, entity)
    r = _rng(spec.seed, 3, entity, day)
    anomalies = [
        (k, np.datetime64(a, "us"), np.datetime64(b, "us"), float(m))
        for k, a, b, m in anomalies[["kind", "start", "end", "magnitude"]].itertuples(
            index=False, name=None
        )
    ] if len(anomalies) else []
    date = spec.start + dt.timedelta(days=day)
    day0 = np.datetime64(date, "us")
    hours = np.arange(24, dtype=np.float64)
    hour_starts = day0 + (np.arange(24) * 3600 * 10**6).astype("timedelta64[us]")

    phase = p.phase
    shape_mask, shift = _active(anomalies, "daily_shape", hour_starts)
    shape = _daily_shape(hours, phase)
    if shape_mask.any():
        shape = np.where(shape_mask, _daily_shape(hours, phase + shift), shape)
    weekday = date.weekday()
    week = p.weekend_factor if weekday >= 5 else 1.0
    trend = max(0.2, 1.0 + p.trend * day)
    lam = p.rate / 24.0 * shape * week * trend * r.lognormal(0.0, 0.15)
    spike_mask, spike = _active(anomalies, "spike", hour_starts)
    lam = np.where(spike_mask, lam * spike + 2.0, lam)
    drop_mask, _ = _active(anomalies, "drop_to_zero", hour_starts)
    lam = np.where(drop_mask, 0.0, lam)

    counts = r.poisson(lam)
    n = int(counts.sum())
    offsets_us = (np.repeat(np.arange(24), counts) * 3600 + r.uniform(0, 3600, n)) * 1e6
    times = np.sort(day0 + offsets_us.astype(np.int64).astype("timedelta64[us]"))

    amount = r.lognormal(p.amount_mu, 0.9, n)
    shift_mask, level = _active(anomalies, "level_shift", times)
    amount = np.where(shift_mask, amount * level, amount)
    latency = 40.0 + p.latency_coef * amount + r.gamma(2.0, 6.0, n)
    break_mask, factor = _active(anomalies, "relation_break", times)
    if break_mask.any():
        decoupled = 40.0 + factor * p.latency_coef * r.permutation(amount) * 4 + r.gamma(2.0, 6.0, n)
        latency = np.where(break_mask, decoupled, latency)

    cat_names = np.array(CATEGORIES + (RARE_CATEGORY,), dtype=object)
    category = cat_names[r.choice(len(cat_names), size=n, p=p.cat_probs)]
    rare_mask, share = _active(anomalies, "rare_burst", times)
    category = np.where(rare_mask & (r.random(n) < share), RARE_CATEGORY, category)
    channel = np.array(CHANNELS, dtype=object)[r.choice(len(CHANNELS), size=n, p=p.chan_probs)]

    name = entity_name(entity)
    columns = {
        "event_id": np.array([f"{name}-{day:04d}-{i:06d}" for i in range(n)], dtype=object),
        "event_time": times,
        "user_id": np.full(n, name, dtype=object),
        "amount": np.round(amount, 2),
        "latency_ms": np.round(latency, 1),
        "category": category.astype(object),
        "channel": channel,
        "event_date": np.full(n, date, dtype=object),
    }
    return _inject_bad_rows(columns, spec.bad_row_fraction, r)


_FAR_FUTURE = np.datetime64("2199-01-01", "us")


def _inject_bad_rows(
    columns: dict[str, np.ndarray], fraction: float, r: np.random.Generator
) -> dict[str, np.ndarray]:
    """Replace a ``fraction`` of the rows by invalid ones, in place (the arrays are the caller's
    own); a duplicate is appended at the end."""
    n = len(columns["event_id"])
    if n == 0 or fraction <= 0:
        return columns
    bad = np.flatnonzero(r.random(n) < fraction)
    if bad.size == 0:
        return columns
    kinds = r.choice(len(BAD_ROW_KINDS), size=bad.size)
    dupes = []
    for row, k in zip(bad, kinds):
        kind = BAD_ROW_KINDS[k]
        if kind == "null_entity":
            columns["user_id"][row] = None
        elif kind == "nan_amount":
            columns["amount"][row] = np.nan
        elif kind == "negative_amount":
            columns["amount"][row] = -abs(columns["amount"][row]) - 1.0
        elif kind == "inf_latency":
            columns["latency_ms"][row] = np.inf
        elif kind == "future_timestamp":
            columns["event_time"][row] = _FAR_FUTURE + np.timedelta64(int(row), "s")
        else:
            dupes.append(row)
    if dupes:
        columns = {k: np.concatenate([v, v[dupes]]) for k, v in columns.items()}
    return columns

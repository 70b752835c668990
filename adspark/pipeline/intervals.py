"""Intervals update: scores -> merged anomaly intervals -> Delta MERGE into ``intervals``.

Recomputes the intervals of every entity with an anomalous window in the scores read, from the
earliest of (first scored night - ``lookback_days``) and the start of any interval reaching into it,
up to the last night scored by the model. Merging is the pure
:func:`adspark.core.intervals.merge_intervals`, run per entity with ``applyInPandas``. The MERGE
updates intervals by id (an interval continuing into the next night keeps its id: entity +
start + model), inserts new ones, and deletes the model's intervals in the recomputed span that
no longer exist; Delta's concurrent-write exceptions are retried.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from adspark.config import IntervalConfig
from adspark.core.intervals import INTERVAL_COLUMNS, merge_intervals
from adspark.models.registry import RegisteredModel
from adspark.storage import TableStore, sql_string
from schemas import INTERVALS, SCORES

log = logging.getLogger(__name__)
_MAX_PASSES = 5
_MERGE_INPUT = ("entity", "window_start", "window_end", "score", "threshold", "is_anomaly",
                "top_features", "top_shares", "p_value", "driver", "driver_feature", "actual",
                "expected_low", "expected_high")


def interval_merger(
    model_id: str, threshold_method: str, cfg: IntervalConfig
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The function handed to ``groupBy("entity").applyInPandas``."""
    gap = pd.Timedelta(seconds=cfg.seconds("gap"))
    min_duration = pd.Timedelta(seconds=cfg.seconds("min_duration"))

    def merge(pdf: pd.DataFrame) -> pd.DataFrame:
        return merge_intervals(pdf, model_id, threshold_method, gap, min_duration, cfg.top_k)

    return merge


def _ending_after(store: TableStore, model: RegisteredModel, night: dt.date) -> list[tuple[dt.date, str]]:
    """(start night, status) of the model's intervals that end after the start of ``night``
    (a few rows: the intervals of the last nights and any reaching into them)."""
    from pyspark.sql import functions as F

    edge = dt.datetime.combine(night, dt.time())
    rows = (
        store.read(INTERVALS.name)
        .where((F.col("model_id") == model.model_id) & (F.col("end") > F.lit(edge)))
        .select(F.to_date("start").alias("d"), "status").collect()
    )
    return [(r.d, r.status) for r in rows]


def _span(
    store: TableStore, model: RegisteredModel, start: dt.date, lookback_days: int
) -> tuple[dt.date, list[tuple[dt.date, str]]]:
    """Earliest night to re-read: the lookback, extended to the start of every interval of the
    model that reaches into it (so an interval is always recomputed whole, never truncated); with
    the intervals ending after it (:func:`_ending_after`)."""
    first = start - dt.timedelta(days=lookback_days)
    if not store.exists(INTERVALS.name):
        return first, []
    while True:
        rows = _ending_after(store, model, first)
        oldest = min((d for d, _ in rows), default=None)
        if oldest is None or oldest >= first:
            return first, rows
        first = oldest


@dataclass(frozen=True)
class IntervalsSummary:
    """The model's intervals after an update.

    Attributes:
        since: First night of the span the update recomputed.
        total: Intervals of the model ending after the start of that night.
        open: Of those, the ones still open (their last window is the newest scored).
    """

    since: dt.date
    total: int
    open: int

    def __str__(self) -> str:
        return f"{self.total} since {self.since} ({self.open} open)"


def update_intervals(
    store: TableStore, cfg: IntervalConfig, model: RegisteredModel, start: dt.date, end: dt.date,
    run_id: str, method: str | None = None, span_from: dt.date | None = None,
) -> IntervalsSummary:
    """Recompute and MERGE the intervals touched by the scores of ``[start, end]``.

    Concurrent nights: the scores are read at a pinned version; when another run committed scores
    while this one merged, the update is recomputed from the new scores. The span re-read is
    decided from the intervals table, which a concurrent night may extend meanwhile (night D-1
    merging an interval that reaches into D's lookback after D chose its span): when the span
    read after the MERGE starts earlier than the one used, the update is recomputed over it,
    which removes the interval truncated at the stale span. At most ``_MAX_PASSES`` passes, so
    the last MERGE to commit always saw every night's scores and every interval reaching in.

    Args:
        method: What decided ``is_anomaly`` (recorded as ``threshold_method``; default the model's
            threshold method).
        span_from: First night of the first pass (default: ``start - lookback_days``, extended to
            the start of every interval reaching into it). A later span is widened by the
            post-MERGE check, an earlier one recomputes more nights.

    Returns:
        The intervals in the span and how many are open.
    """
    first = span_from or _span(store, model, start, cfg.lookback_days)[0]
    for _ in range(_MAX_PASSES):
        version = store.version(SCORES.name)
        _merge_once(store, cfg, model, first, run_id, version, method or model.threshold.method)
        now_first, rows = _span(store, model, start, cfg.lookback_days)
        if store.version(SCORES.name) == version and now_first >= first:
            break
        # a concurrent night wrote scores, or merged an interval reaching into the span, meanwhile
        log.info("intervals: scores (version %s -> %s) or the span (%s -> %s) changed during the "
                 "update; recomputing", version, store.version(SCORES.name), first, now_first)
        first = min(first, now_first)
    store.register(INTERVALS.name)
    if now_first != first:  # the span used started earlier than the intervals need now
        rows = _ending_after(store, model, first)
    statuses = [status for _, status in rows]
    return IntervalsSummary(first, len(statuses), statuses.count("open"))


def _merge_once(
    store: TableStore, cfg: IntervalConfig, model: RegisteredModel, first: dt.date, run_id: str, version: int,
    method: str,
) -> None:
    """One recompute of the model's intervals from night ``first`` on, from the scores at
    ``version``, and its MERGE (intervals starting before ``first`` are left alone)."""
    from pyspark.sql import functions as F

    scores = store.read(SCORES.name, version=version).where(
        (F.col("date") >= F.lit(first)) & (F.col("model_id") == model.model_id)
    )
    flagged = scores.where("is_anomaly").select("entity").distinct()
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    merged = (
        scores.join(flagged, "entity", "left_semi")
        .select(*_MERGE_INPUT)
        .groupBy("entity")
        .applyInPandas(
            interval_merger(model.model_id, method, cfg),
            INTERVALS.struct_type(INTERVAL_COLUMNS),
        )
        .withColumn("first_seen_run", F.lit(run_id))
        .withColumn("last_run", F.lit(run_id))
        .withColumn("updated_at", F.lit(now).cast("timestamp"))
    )
    span_start = dt.datetime.combine(first, dt.time())
    if not store.exists(INTERVALS.name):
        store.append(merged.limit(0), INTERVALS.name)
    sets = ", ".join(f"`{c}` = s.`{c}`" for c in INTERVALS.struct_type().fieldNames() if c != "first_seen_run")
    # a rerun that finds the same interval leaves its row alone (bookkeeping included)
    changed = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in INTERVAL_COLUMNS)
    in_span = f"t.model_id = {sql_string(model.model_id)} AND t.start >= TIMESTAMP '{span_start:%Y-%m-%d %H:%M:%S}'"
    store.merge(
        INTERVALS.name, merged,
        f"t.interval_id = s.interval_id WHEN MATCHED AND ({changed}) THEN UPDATE SET {sets} "
        f"WHEN NOT MATCHED THEN INSERT * WHEN NOT MATCHED BY SOURCE AND {in_span} THEN DELETE",
    )

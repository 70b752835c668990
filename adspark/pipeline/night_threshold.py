"""The night's own threshold, in Spark: score quantiles per night -> :mod:`adspark.core.transductive`.

Where the model's threshold decides (row mode, or the adaptive alerts off), each night's scores
are summarized by :data:`LEVELS` quantiles next to the validation scores' quantiles stored with
the model (``val_score_quantiles``); a night whose anomalous share is significant gets its own
threshold (the ``threshold`` column of its scores), others keep the model's.

The quantiles are exact (the scores are collected, 8 bytes a row) up to :data:`EXACT_ROWS` rows
in the range, so a rerun gives the same threshold; beyond, Spark's ``percentile_approx`` (rank
error 1e-4 of the night's rows) summarizes each night without collecting it.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

import numpy as np

from adspark.config import NightThresholdConfig
from adspark.core.transductive import NightThreshold, night_threshold
from adspark.models.registry import RegisteredModel

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

LEVELS = np.linspace(0.0, 1.0, 1001)
EXACT_ROWS = 5_000_000
ACCURACY = 10_000


def night_quantiles(
    frame: DataFrame, column: str, levels: np.ndarray
) -> dict[dt.date, tuple[np.ndarray, int]]:
    """Per night (``date``) of ``frame``: the finite values of ``column`` at ``levels`` and how
    many there are (exact up to :data:`EXACT_ROWS` rows in all, so a night's quantiles are the
    same whether it is summarized alone or in a range; Spark's ``percentile_approx`` beyond)."""
    from pyspark.sql import functions as F

    finite = frame.select("date", column).where(~F.isnan(column) & F.col(column).isNotNull())
    counts = {r.date: int(r.n) for r in finite.groupBy("date").agg(F.count(F.lit(1)).alias("n")).collect()}
    if sum(counts.values()) <= EXACT_ROWS:
        pdf = finite.toPandas()
        return {d: (np.quantile(g[column].to_numpy(np.float64), levels), counts[d])
                for d, g in pdf.groupby("date") if len(g)}
    rows = finite.groupBy("date").agg(F.percentile_approx(column, levels.tolist(), ACCURACY).alias("q")).collect()
    return {r.date: (np.asarray(r.q, np.float64), counts[r.date]) for r in rows}


def night_thresholds(
    scored: DataFrame, model: RegisteredModel, cfg: NightThresholdConfig
) -> dict[dt.date, NightThreshold]:
    """Each night's verdict (empty when off, or when the model stores no validation quantiles or
    has per-entity thresholds, which a night's pooled scores cannot replace)."""
    reference = model.metrics.get("val_score_quantiles") or []
    n_reference = int(model.metrics.get("val_windows") or 0)
    if not cfg.enabled or not reference or not n_reference or model.entity_thresholds:
        return {}
    out = {}
    for night, (q, n) in sorted(night_quantiles(scored, "score", LEVELS).items()):
        out[night] = night_threshold(q, n, np.asarray(reference, np.float64), n_reference, cfg.z, cfg.min_precision)
        log.info("night threshold %s: %s", night, out[night].params())
    return out


def with_night_thresholds(scored: DataFrame, verdicts: dict[dt.date, NightThreshold]) -> DataFrame:
    """``scored`` with ``threshold`` and ``is_anomaly`` of the nights whose threshold applies."""
    from pyspark.sql import functions as F

    applied = {d: v.value for d, v in verdicts.items() if v.applied}
    if not applied:
        return scored
    threshold = F.col("threshold")
    for night, value in applied.items():
        threshold = F.when(F.col("date") == F.lit(night), F.lit(float(value))).otherwise(threshold)
    return scored.withColumn("threshold", threshold).withColumn("is_anomaly", F.col("score") > F.col("threshold"))


def describe(verdicts: dict[dt.date, NightThreshold]) -> str:
    """One phrase for the run message: the nights given their own threshold."""
    applied = {d: v for d, v in verdicts.items() if v.applied}
    if not applied:
        return ""
    parts = [f"{d} {v.value:.6g} (anomalous share {1 - v.normal_share:.2g})" for d, v in sorted(applied.items())]
    return f"; night thresholds: {', '.join(parts)}"

"""Analyst feedback on anomaly intervals, and what it feeds back into.

- ``feedback`` table: (interval_id, label true/false/unsure, comment, who, labeled_at), written by
  ``adspark feedback`` or by SQL ``INSERT INTO adspark.feedback VALUES (...)``; the latest verdict
  per interval counts.
- Training: with ``train.exclude_labeled``, windows overlapping intervals judged ``true`` are
  left out of training like windows overlapping the labels table.
- Thresholds: ``adspark recalibrate`` fits a supervised (F-beta) threshold on the model's scores,
  windows of ``true`` intervals as anomalies and windows of ``false`` intervals plus the windows of
  no interval as normal, then shrinks it towards the model's unsupervised threshold:
  ``t = (n * t_supervised + k * t_unsupervised) / (n + k)`` with ``n`` judged intervals and
  ``k = train.threshold.feedback_strength``. The result is registered as a new model (same
  networks, new threshold), which the next nights use.
- Alert level: when the adaptive alerts decided (bucket mode, the default), the scores are
  ``-log10 p`` and what the feedback moves is the alert level: the same supervised fit on that
  scale, shrunk the same way towards ``-log10`` of the configured ``alerts.level``, registered as a
  new model whose ``metrics.alert_level`` the next nights use instead of the configured level.
- Nightly: each night reports the precision of the judged intervals so far.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from adspark.core.thresholds import Threshold, fit_supervised
from adspark.errors import AdsparkError, EmptyInputError
from adspark.models.registry import RegisteredModel, artifact_files, new_model_id, save_model
from adspark.pipeline.labels import overlaps
from adspark.storage import TableStore
from schemas import FEEDBACK, INTERVALS, SCORES

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

VERDICTS = ("true", "false", "unsure")


def ensure_feedback_table(store: TableStore) -> None:
    """Create the empty ``feedback`` table (so SQL INSERT works before the first verdict)."""
    if not store.exists(FEEDBACK.name):
        store.append(store.spark.createDataFrame([], FEEDBACK.struct_type()), FEEDBACK.name)
    store.register(FEEDBACK.name)


def add_feedback(store: TableStore, interval_id: str, label: str, who: str, comment: str | None = None) -> str:
    """Record a verdict on an interval.

    Raises:
        AdsparkError: Naming the label or the interval id when either is unknown.
    """
    from pyspark.sql import functions as F

    if label not in VERDICTS:
        raise AdsparkError(f"feedback label {label!r}: expected one of {list(VERDICTS)}")
    if not who.strip():
        raise AdsparkError("feedback: 'who' must name the analyst")
    found = (
        store.read(INTERVALS.name).where(F.col("interval_id") == interval_id).select("entity", "start", "end").first()
        if store.exists(INTERVALS.name) else None
    )
    if found is None:
        raise AdsparkError(f"feedback: no interval with id {interval_id!r} in table {INTERVALS.name}")
    ensure_feedback_table(store)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    row = (interval_id, label, comment, who, now)
    store.append(store.spark.createDataFrame([row], FEEDBACK.struct_type()), FEEDBACK.name)
    return f"feedback: interval {interval_id} ({found.entity}, {found.start} .. {found.end}) marked {label} by {who}"


def judged_intervals(store: TableStore) -> "DataFrame":
    """Intervals with their latest verdict: interval_id, entity, start, end, model_id, label."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not (store.exists(FEEDBACK.name) and store.exists(INTERVALS.name)):
        return store.spark.createDataFrame(
            [], "interval_id string, entity string, start timestamp, `end` timestamp, model_id string, label string"
        )
    latest = (
        store.read(FEEDBACK.name)
        .withColumn("_n", F.row_number().over(Window.partitionBy("interval_id").orderBy(F.desc("labeled_at"))))
        .where("_n = 1")
        .select("interval_id", F.lower(F.trim("label")).alias("label"))
    )
    return store.read(INTERVALS.name).select("interval_id", "entity", "start", "end", "model_id").join(
        latest, "interval_id"
    )


def true_anomalies(store: TableStore) -> "DataFrame":
    """entity, start, end of every interval judged a real anomaly (to leave out of training)."""
    return judged_intervals(store).where("label = 'true'").select("entity", "start", "end")


def feedback_precision(store: TableStore) -> tuple[int, int]:
    """(intervals judged true, intervals judged false) so far."""
    from pyspark.sql import functions as F

    row = judged_intervals(store).agg(
        F.sum((F.col("label") == "true").cast("long")).alias("t"),
        F.sum((F.col("label") == "false").cast("long")).alias("f"),
    ).first()
    return int(row.t or 0), int(row.f or 0)


def feedback_summary(store: TableStore) -> str:
    """One line: the precision of the judged intervals so far."""
    t, f = feedback_precision(store)
    if t + f == 0:
        return "feedback: no interval judged yet"
    return f"feedback: precision {t / (t + f):.2f} on {t + f} judged intervals ({t} true, {f} false)"


def labeled_scores(store: TableStore, model: RegisteredModel) -> tuple[np.ndarray, np.ndarray, int]:
    """The model's window scores with feedback labels.

    Returns:
        (scores (n,), labels (n,) 1 = anomaly, judged intervals used).
    """
    from pyspark.sql import functions as F

    judged = judged_intervals(store).where(F.col("label").isin("true", "false") & (F.col("model_id") == model.model_id))
    n_judged = judged.count()
    scores = store.read(SCORES.name).where(F.col("model_id") == model.model_id)
    mine = store.read(INTERVALS.name).where(F.col("model_id") == model.model_id)

    def overlapping(intervals: "DataFrame") -> "DataFrame":
        iv = intervals.select(F.col("entity").alias("_e"), F.col("start").alias("_s"), F.col("end").alias("_t"))
        cond = (F.col("entity") == F.col("_e")) & overlaps(
            F.col("window_start"), F.col("window_end"), F.col("_s"), F.col("_t")
        )
        return scores.join(F.broadcast(iv), cond)

    positive = overlapping(judged.where("label = 'true'")).select("window_id", "score").distinct()
    false_alarm = overlapping(judged.where("label = 'false'")).select("window_id", "score").distinct()
    in_any = overlapping(mine).select("window_id").distinct()
    quiet = scores.join(in_any, "window_id", "left_anti").select("window_id", "score")
    labeled = (
        positive.withColumn("y", F.lit(1))
        .unionByName(false_alarm.join(positive, "window_id", "left_anti").withColumn("y", F.lit(0)))
        .unionByName(quiet.withColumn("y", F.lit(0)))
        .select("score", "y")
        .toPandas()
    )
    return labeled["score"].to_numpy(np.float64), labeled["y"].to_numpy(np.int8), n_judged


def scored_by_alerts(store: TableStore, model: RegisteredModel) -> bool:
    """Whether the adaptive alerts decided this model's scores (they carry a ``p_value``)."""
    from pyspark.sql import functions as F

    return bool(
        store.read(SCORES.name).where((F.col("model_id") == model.model_id) & F.col("p_value").isNotNull())
        .limit(1).count()
    )


def recalibrate(
    store: TableStore, model: RegisteredModel, beta: float, strength: float, alert_level: float | None = None,
) -> RegisteredModel:
    """Register a copy of ``model`` whose threshold (or, where the adaptive alerts decided, whose
    alert level) is recalibrated from the feedback.

    Args:
        store: Tables.
        model: The model whose scores were judged.
        beta: F-beta of the supervised fit.
        strength: Pseudo-count of the unsupervised threshold (or configured level).
        alert_level: The configured ``alerts.level``; with it, a model scored by the alerts gets a
            recalibrated ``metrics.alert_level`` instead of a new threshold.

    Raises:
        EmptyInputError: When the feedback does not give both anomalous and normal windows.
    """
    scores, labels, n = labeled_scores(store, model)
    if n == 0 or labels.sum() == 0 or labels.sum() == len(labels):
        raise EmptyInputError(
            f"recalibrate {model.model_id}: the feedback needs at least one interval judged true among this "
            f"model's intervals ({n} judged true/false so far)"
        )
    supervised = fit_supervised(scores, labels, beta=beta).value
    if alert_level is not None and scored_by_alerts(store, model):
        configured = -np.log10(alert_level)
        value = (n * supervised + strength * configured) / (n + strength)
        new = replace(model, model_id=new_model_id(), metrics={
            **model.metrics, "recalibrated_from": model.model_id, "alert_level": float(10.0 ** -value),
            "alert_level_recalibration": {
                "configured": alert_level, "supervised": float(10.0 ** -supervised), "judged_intervals": n,
                "labeled_windows": int(labels.sum()), "strength": strength, "beta": beta,
            },
        })
        return save_model(store, new, files=artifact_files(model))
    original = float(model.threshold.params.get("unsupervised", model.threshold.value))
    value = (n * supervised + strength * original) / (n + strength)
    ratio = value / model.threshold.value if model.threshold.value else 1.0
    new = replace(
        model,
        model_id=new_model_id(),
        threshold=Threshold("recalibrated", value, {
            "unsupervised": original, "supervised": supervised, "judged_intervals": n,
            "labeled_windows": int(labels.sum()), "strength": strength, "beta": beta,
            "from_model": model.model_id,
        }),
        entity_thresholds={e: t * ratio for e, t in model.entity_thresholds.items()},
        metrics={**model.metrics, "recalibrated_from": model.model_id},
    )
    return save_model(store, new, files=artifact_files(model))

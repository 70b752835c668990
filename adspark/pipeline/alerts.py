"""Adaptive alerts, the Spark shell: scored windows + ``alert_state`` -> alert columns + new state.

The core is :func:`adspark.core.alerts.alert_group` (pure pandas). Here the scored windows of a
range (with their unscaled values) are cogrouped with each entity's latest state from before the
range, by hash groups of entities, through one ``applyInArrow`` call per group. The output holds
the rows of the ``scores`` table and, for every night of the range, the state after it (one row
per entity and named array), so night D+1 starts where D ended, a rerun of D starts from the
same state, and running nights one by one equals running the range at once. The nights run
through the alerts before the range (a replay, below) leave no state: a later run of one of them
finds no state before it and replays the same nights, to the same state.

States are kept per model (:func:`state_key`), so scoring a challenger never moves the
champion's state. A model with no state of its own before the range continues the newest state
of the same window spec and alerts config under another model (a retrained model picks up its
predecessor's baselines; see :func:`state_origin`). When there is none either (a new alerts config
or window spec, or a first run), the nights from the window spec's first fitted night are replayed
first (scored with the same model; only the state they end in carries on, unwritten), so
baselines and calibration are warm when the range starts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from adspark.config import AlertsConfig
from adspark.core.alerts import AlertParams, alert_group
from adspark.core.buckets import parse_duration
from adspark.core.calibration import CalibrationParams
from adspark.core.streaming import BaselineParams
from adspark.errors import ConfigError
from adspark.models.registry import RegisteredModel, feature_error_tail
from adspark.pipeline.grouping import entity_groups, group_of
from adspark.pipeline.specs import StoredSpec
from adspark.storage import TableStore
from schemas import ALERT_STATE, SCORES, Field, TableSchema

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

SCORER_FIELDS = ("entity", "window_id", "window_start", "window_end", "date", "score", "threshold",
                 "is_anomaly", "top_features", "top_shares")
SCORE_FIELDS = tuple(f.name for f in SCORES.fields if f.name not in ("model_id", "run_id"))
STATE_FIELDS = ("alert_key", "entity", "date", "name", "values")
ARRAY_FIELDS = ("top_features", "top_shares")


def alert_key(cfg: AlertsConfig, spec_id: str) -> str:
    """Hash of the window spec and the alerts config: a state is only reused under both (the
    retention ``state_nights`` does not change what a state holds, so it is not part of it)."""
    alerts = cfg.model_dump(mode="json", exclude={"state_nights"})
    body = json.dumps({"spec": spec_id, "alerts": alerts}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def state_key(cfg: AlertsConfig, spec_id: str, model_id: str) -> str:
    """The ``alert_state.alert_key`` of one model's states: :func:`alert_key`, ``:``, the model id.
    (States written before keys named a model carry the bare :func:`alert_key`.)"""
    return f"{alert_key(cfg, spec_id)}:{model_id}"


def state_origin(
    store: TableStore, key: str, spec: StoredSpec, start: dt.date
) -> tuple[str | None, dt.date, int]:
    """Where a run of ``key`` from night ``start`` starts: the key whose states it continues, the
    first night to run through the alerts, and about how many entities hold a state under that
    key before ``start`` (0 without a source; HyperLogLog's estimate, for
    :func:`states_before`'s plan), from one aggregate over ``alert_state``.

    The source is the model's own key when it has a state from before ``start``; else the key of
    the newest state from before ``start`` with the same window spec and alerts config (another
    model's, or one written before keys named a model; on a tie the latest-trained model, as model
    ids sort by training time); else ``None`` (nothing to continue). The first night is the night
    after the source's last state before ``start`` (``start`` itself when that is the night
    before), or with no source the window spec's first night (replayed to warm the state).
    """
    from pyspark.sql import functions as F

    replay_all = min(spec.fit_from, start)
    if not store.exists(ALERT_STATE.name):
        return None, replay_all, 0
    base = key.split(":", 1)[0]
    rows = (
        store.read(ALERT_STATE.name)
        .where((F.col("date") < F.lit(start)) & ((F.col("alert_key") == base) | F.col("alert_key").startswith(base + ":")))
        .groupBy("alert_key").agg(F.max("date").alias("last"), F.approx_count_distinct("entity").alias("entities"))
        .collect()
    )
    last = {r.alert_key: r.last for r in rows}
    if not last:
        return None, replay_all, 0
    source = key if key in last else max(last, key=lambda k: (last[k], k))
    entities = next(int(r.entities) for r in rows if r.alert_key == source)
    return source, last[source] + dt.timedelta(days=1), entities


@dataclasses.dataclass(frozen=True)
class AlertOrigin:
    """Where the alert pass of a run starts (:func:`state_origin`).

    Attributes:
        key: The model's state key.
        source: The key of the states it continues (None: none).
        first: The first night run through the alerts (the scored range's start or earlier).
        entities: About how many entities hold a state under ``source`` (0: none; None: not
            known, :func:`states_before` then plans for any number).
    """

    key: str
    source: str | None
    first: dt.date
    entities: int | None = None


def alert_origin(
    store: TableStore, cfg: AlertsConfig, model: RegisteredModel, spec: StoredSpec, start: dt.date,
) -> AlertOrigin | None:
    """The alert pass's origin, or None when the model's threshold decides (no alerts)."""
    if not (cfg.enabled and spec.mode == "buckets"):
        return None
    key = state_key(cfg, spec.spec_id, model.model_id)
    return AlertOrigin(key, *state_origin(store, key, spec, start))


def core_alert_params(
    cfg: AlertsConfig, features: tuple[str, ...], n_steps: int, stride: int, bucket_seconds: int,
    entity_head_seconds: int | None = None,
) -> AlertParams:
    """The core parameters of the alerts config for windows of this shape, without a model (the
    model's references are added by :func:`alert_params`). With an entity head (short runs) the
    baselines' warmup is at most the head: they learn the reference stretch, and no detector
    judges a window ending inside it."""
    warmup = parse_duration(cfg.warmup)
    if entity_head_seconds is not None:
        warmup = min(warmup, entity_head_seconds)
    return AlertParams(
        features=tuple(features), n_steps=n_steps, stride=stride, bucket_seconds=bucket_seconds,
        detectors=tuple(cfg.detectors), level=cfg.level, fusion=cfg.fusion, timezone=cfg.timezone,
        baselines=BaselineParams(
            level_halflife=max(parse_duration(cfg.level_halflife) / bucket_seconds, 1.0),
            seasonal_halflife=cfg.seasonal_halflife, clip=cfg.clip,
            min_buckets=max(int(warmup // bucket_seconds), 1),
            min_visits=cfg.min_visits, extreme_tolerance=cfg.extreme_tolerance, count_tail=cfg.counts,
            day_type_levels=cfg.day_type_levels, resolution_floor=cfg.resolution_floor,
            mix_halflife=max(parse_duration(cfg.mix_halflife) / bucket_seconds, 1.0),
        ),
        calibration=CalibrationParams(
            short=max(1, -(-cfg.calibration.short_buckets // max(stride, 1))),
            halflife=cfg.calibration.halflife, min_history=cfg.calibration.min_history,
            min_std=cfg.calibration.min_std, tail=cfg.calibration.tail,
            learn_clip=cfg.calibration.learn_clip_for(entity_head_seconds is not None),
        ),
        baseline_only=_baseline_features(cfg, features), sums=cfg.sums,
        measure_evidence=cfg.measure_evidence, means=cfg.means, cooldown_seconds=float(cfg.cooldown_seconds),
        # the horizon holds the warm-up's candidate stretches and two windows more
        neighbor_horizon=max(min(-(-parse_duration(cfg.neighbor_horizon) // bucket_seconds), cfg.neighbor_max_buckets),
                             max(int(warmup // bucket_seconds), 1) + 2 * n_steps),
        entity_head_seconds=None if entity_head_seconds is None else float(entity_head_seconds),
    )


def alert_params(cfg: AlertsConfig, spec: StoredSpec, model: RegisteredModel) -> AlertParams:
    """The core parameters from the config, the window spec and the model."""
    quantiles = model.metrics.get("val_score_quantiles") or []
    try:
        base = core_alert_params(cfg, spec.features, spec.n_steps, spec.stride, spec.bucket_seconds,
                                 spec.entity_head_seconds)
    except ConfigError as err:
        raise ConfigError(f"{err} (window spec {spec.spec_id})") from None
    level = model.metrics.get("alert_level")  # recalibrated from analysts' feedback (adspark recalibrate)
    return dataclasses.replace(
        base,
        level=float(level) if level else base.level,
        model_reference=float(quantiles[len(quantiles) // 2]) if quantiles else None,
        model_feature_reference=_feature_reference(model, len(spec.features)),
        model_feature_tail=feature_error_tail(model, len(spec.features)),
        model_out_of_sample=_first_validation_night(model),
        model_in_sample_seconds=_in_sample_seconds(model),
    )


def _feature_reference(model: RegisteredModel, n_features: int) -> tuple[float, ...] | None:
    """The model's median validation error per feature, when recorded for these F features."""
    ref = model.metrics.get("val_feature_error_median") or []
    return tuple(float(v) for v in ref) if len(ref) == n_features else None


def _baseline_features(cfg: AlertsConfig, features: tuple[str, ...]) -> tuple[str, ...] | None:
    """``alerts.features``, checked against the window spec's features."""
    if cfg.features is None:
        return None
    unknown = sorted(set(cfg.features) - set(features))
    if unknown:
        raise ConfigError(f"alerts.features: {unknown} are not features of the windows (expected among {list(features)})")
    return tuple(cfg.features)


def _first_validation_night(model: RegisteredModel) -> dt.date | None:
    """The first night the model did not fit on (older registrations: the night after training;
    ``None`` for a model trained on each entity's head, see :func:`_in_sample_seconds`)."""
    if _in_sample_seconds(model) is not None:
        return None
    recorded = model.metrics.get("first_validation_night")
    return dt.date.fromisoformat(recorded) if recorded else model.train_to + dt.timedelta(days=1)


def _in_sample_seconds(model: RegisteredModel) -> float | None:
    """For a model trained on each entity's head: how long after its first non-empty bucket an
    entity's windows were fitted on (``None``: trained on calendar nights)."""
    value = model.metrics.get("in_sample_seconds")
    return None if value is None else float(value)


def output_table() -> TableSchema:
    """The alert function's output: scores rows and state rows in one frame (``kind`` tells them
    apart), every field but ``kind`` nullable (each kind leaves the other's fields null)."""
    shared = [dataclasses.replace(f, nullable=True) for f in
              (*SCORES.select(SCORE_FIELDS), *ALERT_STATE.select(("alert_key", "name", "values")))]
    return TableSchema("alert_pass", (
        Field("kind", "string", False, "score or state"), *shared,
        Field("state_date", "date", True, "the night after which the state row is the state"),
    ))


def output_schema() -> StructType:
    """The Spark schema of :func:`output_table`."""
    return output_table().struct_type()


def states_from_arrow(table: pa.Table) -> dict[str, dict[str, np.ndarray]]:
    """Each entity's state from its ``(entity, name, values)`` rows: ``{entity: {name: array}}``.

    The arrays are read-only views of the Arrow buffers (the core never writes a state in place).
    """
    if not table.num_rows:
        return {}
    lists = table.column("values").combine_chunks()
    offsets = lists.offsets.to_numpy()
    flat = lists.values.to_numpy()
    out: dict[str, dict[str, np.ndarray]] = {}
    for i, (entity, name) in enumerate(zip(table.column("entity").to_pylist(), table.column("name").to_pylist(),
                                           strict=True)):
        out.setdefault(entity, {})[name] = flat[offsets[i]:offsets[i + 1]]
    return out


def states_to_arrow(states: list[tuple[str, dt.date, dict[str, np.ndarray]]], key: str,
                    schema: pa.Schema) -> pa.Table:
    """State rows (one per entity, night and named array, names in order) of ``schema``, the
    arrays concatenated once into one Arrow list column (no Python object per value)."""
    entity, day, name, arrays = [], [], [], []
    for e, d, state in states:
        for n in sorted(state):
            entity.append(e)
            day.append(d)
            name.append(n)
            arrays.append(np.asarray(state[n], dtype=np.float64).ravel())
    n_rows = len(arrays)
    offsets = np.zeros(n_rows + 1, dtype=np.int32)
    np.cumsum([len(a) for a in arrays], out=offsets[1:])
    flat = np.concatenate(arrays) if arrays else np.zeros(0)
    given = {
        "kind": pa.array(["state"] * n_rows, pa.string()),
        "entity": pa.array(entity, pa.string()),
        "alert_key": pa.array([key] * n_rows, pa.string()),
        "state_date": pa.array(day, pa.date32()),
        "name": pa.array(name, pa.string()),
        "values": pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.float64()),
                                           type=schema.field("values").type),
    }
    return pa.table({f.name: given.get(f.name, pa.nulls(n_rows, f.type)) for f in schema}, schema=schema)


def scores_to_arrow(rows: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """Scores rows (columns :data:`SCORE_FIELDS`) of ``schema``; the state columns null."""
    n_rows = len(rows)
    given = {"kind": pa.array(["score"] * n_rows, pa.string())}
    for name in SCORE_FIELDS:
        column = rows[name]
        if name in ARRAY_FIELDS:  # arrays or missing values (None / NaN) -> list or null
            column = pd.Series([v if isinstance(v, (list, np.ndarray)) else None for v in column], dtype=object)
        given[name] = pa.Array.from_pandas(column, type=schema.field(name).type)
    return pa.table({f.name: given.get(f.name, pa.nulls(n_rows, f.type)) for f in schema}, schema=schema)


def windows_from_arrow(table: pa.Table) -> pd.DataFrame:
    """The scorer's output rows as the core reads them: dates as ``datetime.date``, timestamps
    zoned UTC, arrays as one NumPy array per row; ``score`` renamed ``model_score``."""
    frame = table.drop_columns([c for c in ("threshold", "is_anomaly", "_group") if c in table.column_names])
    return frame.to_pandas(date_as_object=True).rename(columns={"score": "model_score"})


def make_alerter(
    params: AlertParams, key: str, start: dt.date, end: dt.date
) -> Callable[[pa.Table, pa.Table], pa.Table]:
    """The function handed to ``cogroup(...).applyInArrow``: windows x states of a hash group.

    Arrow in and out: the states' arrays are read as views of the Arrow buffers and written as
    one concatenated list column, never as one Python float per value (PySpark's pandas path
    converts every array element to a Python object and back).
    """
    schema = output_table().arrow_schema()

    def alert(windows: pa.Table, states: pa.Table) -> pa.Table:
        group = windows_from_arrow(windows)
        present = set(group["entity"])
        before = {e: s for e, s in states_from_arrow(states).items() if e in present}
        scored, kept = alert_group(group, before, params)  # the group's entities in one time loop
        keep = scored[(scored["date"] >= start) & (scored["date"] <= end)]
        # the states of the scored nights (not of those replayed before them)
        after = [(entity, day, s) for entity, nights in kept.items() for day, s in nights if day >= start]
        return pa.concat_tables([scores_to_arrow(keep, schema), states_to_arrow(after, key, schema)])

    return alert


# Up to this many entities (their keys and dates), the latest-state lookup is broadcast: about
# 50 bytes a key, tens of MB on the driver at most.
BROADCAST_ENTITIES = 1_000_000


def states_before(
    store: TableStore, source: str | None, key: str, day: dt.date, entities: int | None = None
) -> DataFrame:
    """Each entity's latest state rows under ``source`` from before ``day``, relabelled ``key``
    (empty frame when there is no source).

    Only the nights that are some entity's latest are read (``alert_state`` keeps every night's
    states unless ``alerts.state_nights`` prunes them: without this, a night would read the whole
    history's arrays to keep one night of them). Up to :data:`BROADCAST_ENTITIES` entities
    (``entities``, from :func:`state_origin`) each entity's latest night is broadcast to the join,
    which then prunes the other nights' partitions (Spark's dynamic partition pruning) and
    shuffles no state row; beyond, or when ``entities`` is None, the latest nights are collected
    first (a handful of dates) and read alone.
    """
    from pyspark.sql import functions as F

    schema = ALERT_STATE.struct_type(STATE_FIELDS)
    if source is None or not store.exists(ALERT_STATE.name):
        return store.spark.createDataFrame([], schema)
    mine = store.read(ALERT_STATE.name).where((F.col("alert_key") == source) & (F.col("date") < F.lit(day)))
    latest = mine.groupBy("entity").agg(F.max("date").alias("date"))
    if entities is not None and entities <= BROADCAST_ENTITIES:
        latest = F.broadcast(latest)
    else:
        nights = [r.date for r in latest.select("date").distinct().collect()]
        mine = mine.where(F.col("date").isin(nights))
    return mine.join(latest, ["entity", "date"]).select(F.lit(key).alias("alert_key"), *STATE_FIELDS[1:])


def prune_states(store: TableStore, key: str, end: dt.date, nights: int) -> int:
    """Retention of ``alert_state``: keep every state of the ``nights`` nights up to ``end``; of
    older nights keep only each entity's latest (what a later night reads when the entity comes
    back). Returns the rows deleted.

    Reruns of the kept nights stay exact; a rerun of an older night starts from the states that
    are left (an entity's latest before it), so it may differ from its first run.
    """
    from pyspark.sql import functions as F

    cutoff = end - dt.timedelta(days=nights - 1)
    if not store.exists(ALERT_STATE.name):
        return 0
    old = (
        store.read(ALERT_STATE.name).where((F.col("alert_key") == key) & (F.col("date") < F.lit(cutoff)))
        .select("alert_key", "entity", "date").distinct()
    )
    latest = old.groupBy("alert_key", "entity").agg(F.max("date").alias("date"))
    doomed = old.join(latest, ["alert_key", "entity", "date"], "left_anti").localCheckpoint(eager=True)
    n = doomed.count()
    if n:
        store.delete_matching(ALERT_STATE.name, doomed, ("alert_key", "entity", "date"))
        log.info("alert_state: %d entity-night states before %s pruned (key %s)", n, cutoff, key)
    return n


def alert_frames(
    store: TableStore, cfg: AlertsConfig, model: RegisteredModel, spec: StoredSpec,
    scored: DataFrame, origin: AlertOrigin, start: dt.date, end: dt.date, run_id: str,
) -> tuple[DataFrame, DataFrame]:
    """The alert pass over scored windows of ``[origin.first, end]``.

    Args:
        scored: The scorer's output (:data:`SCORER_FIELDS` and ``raw_values``) for
            ``[origin.first, end]``.
        origin: Where the pass starts (:func:`alert_origin`): the states of ``origin.source``
            carry on; the new states are written under the model's own :func:`state_key`.

    Returns:
        (rows of the ``scores`` table for ``[start, end]``, rows of ``alert_state`` for every
        night in ``[first, end]``), both computed once (checkpointed).
    """
    from pyspark.sql import functions as F

    key, first = state_key(cfg, spec.spec_id, model.model_id), origin.first
    params = alert_params(cfg, spec, model)
    groups = entity_groups(store.spark, first, end)
    group = group_of(groups)
    before = states_before(store, origin.source, key, first, origin.entities)
    both = (
        scored.withColumn("_group", group).groupBy("_group")
        .cogroup(before.withColumn("_group", group).groupBy("_group"))
        .applyInArrow(make_alerter(params, key, start, end), output_schema())
        .localCheckpoint(eager=True)
    )
    scores = both.where(F.col("kind") == "score").select(
        *[F.col(f.name).cast(f.data_type()).alias(f.name) for f in SCORES.select(SCORE_FIELDS)],
        F.lit(model.model_id).alias("model_id"), F.lit(run_id).alias("run_id"),
    )
    states = both.where(F.col("kind") == "state").select(
        "alert_key", "entity", F.col("state_date").alias("date"), "name", "values",
        F.lit(run_id).alias("run_id"),
    )
    return scores, states


def without_alerts(scored: DataFrame, model: RegisteredModel, run_id: str) -> DataFrame:
    """Scores rows when adaptive alerts are off (or in row mode): the model's threshold decides."""
    from pyspark.sql import functions as F

    extra = {
        "model_score": F.col("score"), "p_value": F.lit(None), "alert": F.col("is_anomaly"),
        "driver": F.lit(None), "driver_feature": F.lit(None), "actual": F.lit(None),
        "expected_low": F.lit(None), "expected_high": F.lit(None),
    }
    cols = [
        (F.col(f.name) if f.name in SCORER_FIELDS else extra[f.name]).cast(f.data_type()).alias(f.name)
        for f in SCORES.select(SCORE_FIELDS)
    ]
    return scored.select(*cols, F.lit(model.model_id).alias("model_id"), F.lit(run_id).alias("run_id"))


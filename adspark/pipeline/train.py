"""Job ``train``: windows of a date range -> a detector, its thresholds, a registered model.

Reads the windows of ``[start, end]`` (one window spec), leaves out windows overlapping labeled
anomalies, splits by time (the last nights are validation), trains with the configured backend
(``local``: Keras in this process; ``horovod``: ``horovod.spark.run`` fed by petastorm), fits the
threshold on validation scores (globally or per entity) and registers the model.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from adspark.config import TrainJobConfig
from adspark.core.buckets import epoch_seconds
from adspark.core.calibration import fit_error_tails
from adspark.core.drift import score_quantiles
from adspark.core.heads import OUTSIDE, VALIDATION, head_bounds, window_roles
from adspark.core.thresholds import fit_threshold, per_entity_thresholds
from adspark.detectors.autoencoders import DenseAutoencoder
from adspark.detectors.factory import build_detector
from adspark.errors import ConfigError, EmptyInputError, check_range
from adspark.models.lookup import config_key
from adspark.models.registry import Fitted, RegisteredModel, new_model_id, save_model
from adspark.models.tracking import log_to_mlflow
from adspark.pipeline.labels import overlaps
from adspark.pipeline.specs import StoredSpec, entity_first_buckets, spec_head_seconds
from adspark.runs import RunRecord, recorded_run
from adspark.session import is_connect
from adspark.storage import TableStore
from schemas import WINDOWS

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

    from adspark.train.backend import TrainingBackend


def _training_windows(
    store: TableStore, cfg: TrainJobConfig, start: dt.date, end: dt.date
) -> tuple["DataFrame", str, int, int, int]:
    """Windows of the range, ``labeled`` when they overlap a labeled anomaly.

    Returns:
        (frame, spec id, W, F, Delta version of the windows table).
    """
    from pyspark.sql import functions as F

    windows = store.read(WINDOWS.name).where(F.col("date").between(F.lit(start), F.lit(end)))
    version = store.version(WINDOWS.name)
    specs = windows.select("spec_id", "n_steps", "n_features").distinct().collect()
    if not specs:
        raise EmptyInputError(f"no windows between {start} and {end}: run `adspark window` first")
    if len(specs) > 1:
        raise ConfigError(
            f"windows between {start} and {end} mix window specs {sorted(r.spec_id for r in specs)}; "
            "train on a range with one spec"
        )
    labels = cfg.train.labels_table
    needs_labels = cfg.train.exclude_labeled or cfg.train.threshold.method == "supervised"
    known = []
    if needs_labels and store.exists(labels):
        known.append(store.read(labels).select(F.col("entity").cast("string"), "start", "end"))
    if cfg.train.exclude_labeled:
        from adspark.pipeline.feedback import true_anomalies

        known.append(true_anomalies(store))  # intervals analysts judged real anomalies
    if known:
        union = known[0]
        for other in known[1:]:
            union = union.unionByName(other)
        lab = union.select(
            F.col("entity").alias("_l_entity"), F.col("start").alias("_l_start"),
            F.col("end").alias("_l_end"),
        )
        overlap = (F.col("entity") == F.col("_l_entity")) & overlaps(
            F.col("window_start"), F.col("window_end"), F.col("_l_start"), F.col("_l_end")
        )
        labeled = windows.join(F.broadcast(lab), overlap, "left_semi").select(
            "window_id", F.lit(True).alias("labeled")
        )
        windows = windows.join(labeled, "window_id", "left").fillna(False, subset=["labeled"])
    else:
        windows = windows.withColumn("labeled", F.lit(False))
    spec = specs[0]
    return windows, spec.spec_id, spec.n_steps, spec.n_features, int(version)


@dataclass(frozen=True)
class Split:
    """Training windows with a boolean ``is_val`` column, and how they were split.

    Attributes:
        windows: The windows that train or validate (others left out).
        note: How they were split, for the run message (``from 2026-01-20``).
        metrics: What the alerts need to know of it: ``first_validation_night``, or for entity
            heads ``in_sample_seconds`` (windows ending this long after an entity's first
            non-empty bucket were fitted on).
    """

    windows: "DataFrame"
    note: str
    metrics: dict[str, object]


def _split_nights(windows: "DataFrame", fraction: float) -> Split:
    """The last ``fraction`` of the nights (at least one) validate."""
    from pyspark.sql import functions as F

    dates = sorted(r.date for r in windows.select("date").distinct().collect())
    if len(dates) < 2:
        raise EmptyInputError(
            f"training needs windows on at least 2 nights (train + validation), found {len(dates)}; "
            "for short runs train on each entity's first stretch: window.scaling.entity_head"
        )
    n_val = min(len(dates) - 1, max(1, math.ceil(len(dates) * fraction)))
    first_val = dates[-n_val]
    return Split(
        windows.withColumn("is_val", F.col("date") >= F.lit(first_val)),
        f"from {first_val}", {"first_validation_night": first_val.isoformat()},
    )


def _split_heads(store: TableStore, windows: "DataFrame", spec_id: str, head: int, fraction: float) -> Split:
    """Each entity's head trains (its first ``1 - fraction``) and validates (the rest); windows
    after it are left out (:func:`adspark.core.heads.window_roles`)."""
    from pyspark.sql import functions as F

    firsts = entity_first_buckets(store, spec_id)

    def roles(batches):
        for pdf in batches:
            role = window_roles(epoch_seconds(pdf["window_end"]), pdf["first_s"].to_numpy(np.float64),
                                head, fraction)
            yield pd.DataFrame({"window_id": pdf["window_id"], "_role": role})

    narrow = (
        windows.select("window_id", "entity", "window_end")
        .join(F.broadcast(firsts), "entity", "left")
        .mapInPandas(roles, "window_id string, _role string")
    )
    split = (
        windows.join(narrow, "window_id")
        .where(F.col("_role") != F.lit(OUTSIDE))
        .withColumn("is_val", F.col("_role") == F.lit(VALIDATION))
        .drop("_role")
    )
    train_s = float(head_bounds(np.zeros(1), head, fraction)[0][0])
    return Split(
        split, f"in each entity's first {head} s, the last {fraction:g} validating",
        {"in_sample_seconds": train_s, "entity_head_seconds": head},
    )


def _collect(
    frame: "DataFrame", n_steps: int, n_features: int, limit: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows (n, W, F), their entities (n,) and labeled flags (n,), on the driver (at most ``limit``)."""
    n = frame.count()
    if n > limit:
        raise ConfigError(
            f"{n} windows exceed train.max_local_windows={limit}: use backend horovod, or raise the limit"
        )
    pdf = frame.select("entity", "values", "labeled").toPandas()
    values = np.stack(pdf["values"].to_numpy()) if n else np.empty((0, n_steps * n_features), np.float32)
    x = values.reshape(n, n_steps, n_features).astype(np.float32)
    return x, pdf["entity"].to_numpy(), pdf["labeled"].to_numpy(dtype=bool)


def _train_horovod(
    cfg: TrainJobConfig, backend: "TrainingBackend", train: "DataFrame", val: "DataFrame",
    n_steps: int, n_features: int,
) -> tuple[DenseAutoencoder, dict]:
    from adspark.train.feed import PetastormFeed
    from adspark.train.loop import LoopParams, train_reconstruction

    d = cfg.train.detector
    width = n_steps * n_features
    shards = cfg.train.num_proc
    feed = PetastormFeed(train.select("values"), "values", width, shards, cfg.train.petastorm_cache)
    val_feed = PetastormFeed(val.select("values"), "values", width, shards, cfg.train.petastorm_cache)
    params = LoopParams(
        epochs=d.epochs, batch_size=d.batch_size, learning_rate=d.learning_rate,
        hidden=tuple(d.hidden), bottleneck=d.bottleneck, seed=d.seed, activation=d.activation,
        dropout=d.dropout, l2=d.l2, patience=d.patience,
        backward_passes_per_step=cfg.train.backward_passes_per_step,
    )
    try:
        results = backend.run(train_reconstruction, (feed, params, val_feed))
    finally:
        feed.delete()
        val_feed.delete()
    rank0 = results[0]
    detector = build_detector(d)
    network = detector._network(n_steps, n_features)
    network.set_weights(rank0.weights)
    detector.restore({"model": network}, (n_steps, n_features))
    detector.history_ = {"loss": rank0.losses, "val_loss": rank0.val_losses}
    metrics = {
        "processes": rank0.size,
        "best_epoch": rank0.best_epoch + 1,
        "samples_per_s": sum(r.rows_seen for r in results) / max(rank0.seconds, 1e-9),
    }
    return detector, metrics


def _fit_global(
    cfg: TrainJobConfig, backend: "TrainingBackend | None", windows: "DataFrame", split_note: str,
    n_steps: int, n_features: int,
) -> Fitted:
    """One model over all entities (local Keras or Horovod), thresholds on validation scores
    (``windows`` carry ``is_val``)."""
    from pyspark.sql import functions as F

    is_val = F.col("is_val")
    train_df = windows.where(~is_val & ~F.col("labeled"))
    val_df = windows.where(is_val & ~F.col("labeled"))
    limit = cfg.train.max_local_windows
    x_val, val_entities, _ = _collect(val_df, n_steps, n_features, limit)
    if cfg.train.backend == "horovod":
        from adspark.train.backend import HorovodSparkBackend

        if backend is None and is_connect(windows.sparkSession):
            raise ConfigError(
                "train.backend horovod runs horovod.spark.run, which needs a classic Spark session "
                "(a SparkContext); over Spark Connect use train.backend local"
            )
        chosen = backend or HorovodSparkBackend(num_proc=cfg.train.num_proc, cycle_time_ms=cfg.train.cycle_time_ms)
        detector, metrics = _train_horovod(cfg, chosen, train_df, val_df, n_steps, n_features)
        n_train = train_df.count()
    else:
        x_train, _, _ = _collect(train_df, n_steps, n_features, limit)
        n_train = len(x_train)
        fit_t0 = time.perf_counter()
        verbose = 2 if log.isEnabledFor(logging.INFO) else 0  # an epoch line each with adspark -v
        detector = build_detector(cfg.train.detector, verbose=verbose).fit(x_train, x_val)
        epochs = len(detector.history_.get("loss", []))
        metrics = {
            "processes": 1,
            "best_epoch": int(np.argmin(detector.history_.get("val_loss") or [0])) + 1,
            "samples_per_s": n_train * max(epochs, 1) / max(time.perf_counter() - fit_t0, 1e-9),
        }
    val_scores, val_errors = detector.explain(x_val) if len(x_val) else (np.empty(0), np.empty((0, n_features)))
    th = cfg.train.threshold
    if th.method == "supervised":
        x_all, _, y_all = _collect(windows.where(is_val), n_steps, n_features, limit)
        if not y_all.any():
            raise EmptyInputError(
                f"threshold method supervised needs labeled anomalies among the validation windows "
                f"({split_note}); table {cfg.train.labels_table!r} marks none of them"
            )
        threshold = fit_threshold(detector.score(x_all), "supervised", labels=y_all, beta=th.beta)
        metrics["val_labeled_windows"] = int(y_all.sum())
    else:
        threshold = fit_threshold(val_scores, th.method, **th.options())
    entity_thresholds = (
        per_entity_thresholds(
            val_entities, val_scores, th.method, threshold, th.shrinkage, th.min_scores, **th.options()
        )
        if th.scope == "entity"
        else {}
    )
    history = detector.history_
    metrics.update(
        {
            "loss": history.get("loss", [None])[-1],
            "val_loss": history["val_loss"][-1] if history.get("val_loss") else None,
            "epochs": len(history.get("loss", [])),
            "train_windows": int(n_train),
            "val_windows": int(len(x_val)),
            "val_score_mean": float(np.mean(val_scores)) if len(val_scores) else None,
            "val_flagged_share": float(np.mean(val_scores > threshold.value)) if len(val_scores) else None,
            "val_score_quantiles": score_quantiles(val_scores),
            # per-feature reference of the errors: adaptive alerts compare each feature's error with it
            "val_feature_error_median": np.median(val_errors, axis=0).tolist() if len(val_errors) else [],
            # ... and its upper tail (90th, 99th percentiles; the Pareto law over the 90th): the global reference floor
            "val_feature_error_q90_q99": np.quantile(val_errors, [0.9, 0.99], axis=0).tolist() if len(val_errors) else [],
            "val_feature_error_tail": [v.tolist() for v in fit_error_tails(val_errors)] if len(val_errors) else [],
        }
    )
    return Fitted(
        networks=detector.networks(), threshold=threshold, entity_thresholds=entity_thresholds,
        metrics=metrics,
    )


def run_train(
    store: TableStore,
    cfg: TrainJobConfig,
    start: dt.date,
    end: dt.date,
    backend: "TrainingBackend | None" = None,
) -> tuple[RunRecord, RegisteredModel]:
    """Train, threshold and register a model on the windows of ``[start, end]``.

    Args:
        store: Tables.
        cfg: The job config.
        start: First training night.
        end: Last training night (the last nights serve as validation).
        backend: With ``train.backend: horovod``, runs the data-parallel loop on this backend
            instead of ``HorovodSparkBackend`` (e.g. ``LocalBackend``, the in-process double).
    """
    check_range(start, end)
    with recorded_run(store, "train", cfg, start, end) as run:
        t0 = time.perf_counter()
        windows, spec_id, n_steps, n_features, version = _training_windows(store, cfg, start, end)
        head = spec_head_seconds(store, spec_id)
        fraction = cfg.train.validation_fraction
        split = (_split_nights(windows, fraction) if head is None
                 else _split_heads(store, windows, spec_id, head, fraction))
        # read, labeled and split once: counting, collecting validation and feeding read it again
        split = dataclasses.replace(split, windows=split.windows.persist())
        try:
            if cfg.train.model_scope == "entity":
                from adspark.pipeline.train_entities import fit_entity_models

                fitted = fit_entity_models(split.windows, split.note, n_steps, n_features, cfg.train)
            else:
                fitted = _fit_global(cfg, backend, split.windows, split.note, n_steps, n_features)
        finally:
            split.windows.unpersist()
        # the windows fitted on are in-sample: the alerts' calibration of the model skips them
        metrics = {**fitted.metrics, "wall_s": round(time.perf_counter() - t0, 3), **split.metrics}
        threshold = fitted.threshold
        model = RegisteredModel(
            model_id=new_model_id(),
            config_key=config_key(cfg, spec_id),
            detector=cfg.train.detector.type,
            params=cfg.train.detector.model_dump(mode="json"),
            spec_id=spec_id,
            n_steps=n_steps,
            n_features=n_features,
            threshold=threshold,
            entity_thresholds=fitted.entity_thresholds,
            train_from=start,
            train_to=end,
            data_version=version,
            metrics=metrics,
            scope=cfg.train.model_scope,
            entity_models=fitted.entity_models,
        )
        model = save_model(store, model, networks=fitted.networks, files=fitted.files)
        logged = log_to_mlflow(model, list(StoredSpec.load(store, spec_id).features), cfg.train.mlflow,
                               store.root.rsplit("/", 1)[0])
        n_train, n_val = metrics["train_windows"], metrics["val_windows"]
        run.rows_read = n_train + n_val
        run.rows_written = 1
        loss = metrics.get("loss")
        val_loss = metrics.get("val_loss")
        run.message = (
            f"train {start}..{end}: model {model.model_id} ({model.detector}, "
            f"{model.scope} scope, spec {spec_id}, {n_train} train + {n_val} validation windows "
            f"{split.note}); threshold {threshold.method} = {threshold.value:.6g}"
            + (f" (+{len(fitted.entity_thresholds)} per entity)" if fitted.entity_thresholds else "")
            + f"; loss {_fmt(loss)}, val_loss {_fmt(val_loss)}, {metrics.get('epochs', 0)} epochs, "
            f"{metrics.get('samples_per_s', 0):.0f} samples/s"
            + (f"; MLflow {logged.model_uri}" + (f" @{cfg.train.mlflow.alias}" if logged.version and cfg.train.mlflow.alias
                                                 else "") if logged else "")
        )
    return run, model


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.5f}"

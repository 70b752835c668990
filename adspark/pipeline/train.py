"""Job ``train``: windows of a date range -> a detector, its thresholds, a registered model.

Reads the windows of ``[start, end]`` (one window spec), leaves out windows overlapping labeled
anomalies, splits by time (the last nights are validation), trains with the configured backend
(``local``: Keras in this process; ``horovod``: ``horovod.spark.run`` fed by petastorm), fits the
threshold on validation scores (globally or per entity) and registers the model.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import time
import uuid
from typing import TYPE_CHECKING

import numpy as np

from adspark.config import DetectorConfig, TrainJobConfig
from adspark.core.thresholds import fit_threshold, per_entity_thresholds
from adspark.detectors.autoencoders import DenseAutoencoder, LSTMAutoencoder
from adspark.errors import ConfigError, EmptyInputError
from adspark.runs import RunRecord, recorded_run
from adspark.tables import TableStore
from adspark.train.registry import RegisteredModel, save_model
from schemas import WINDOWS

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

    from adspark.train.backend import TrainingBackend


def build_detector(cfg: DetectorConfig, verbose: int = 0) -> DenseAutoencoder | LSTMAutoencoder:
    """The detector wrapper a config describes (untrained)."""
    common = dict(
        epochs=cfg.epochs, batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
        patience=cfg.patience, seed=cfg.seed, verbose=verbose,
    )
    if cfg.type == "lstm_ae":
        return LSTMAutoencoder(units=cfg.units, bottleneck=cfg.bottleneck, **common)
    return DenseAutoencoder(
        hidden=tuple(cfg.hidden), bottleneck=cfg.bottleneck, activation=cfg.activation,
        dropout=cfg.dropout, l2=cfg.l2, **common,
    )


def config_key(cfg: TrainJobConfig, spec_id: str) -> str:
    """What identifies "the same model config": inputs, detector, threshold, training choices."""
    body = {
        "spec_id": spec_id,
        "detector": cfg.train.detector.model_dump(mode="json"),
        "threshold": cfg.train.threshold.model_dump(mode="json"),
        "validation_fraction": cfg.train.validation_fraction,
        "exclude_labeled": cfg.train.exclude_labeled,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _training_windows(
    store: TableStore, cfg: TrainJobConfig, start: dt.date, end: dt.date
) -> tuple["DataFrame", str, int, int, int]:
    """Windows of the range without labeled anomalies: (frame, spec id, W, F, Delta version)."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    windows = store.read(WINDOWS.name).where(F.col("date").between(F.lit(start), F.lit(end)))
    version = DeltaTable.forPath(store.spark, store.path(WINDOWS.name)).history(1).first().version
    specs = windows.select("spec_id", "n_steps", "n_features").distinct().collect()
    if not specs:
        raise EmptyInputError(f"no windows between {start} and {end}: run `adspark window` first")
    if len(specs) > 1:
        raise ConfigError(
            f"windows between {start} and {end} mix window specs {sorted(r.spec_id for r in specs)}; "
            "train on a range with one spec"
        )
    labels = cfg.train.labels_table
    if cfg.train.exclude_labeled and store.exists(labels):
        lab = store.read(labels).select(
            F.col("entity").alias("_l_entity"), F.col("start").alias("_l_start"),
            F.col("end").alias("_l_end"),
        )
        overlap = (
            (F.col("entity") == F.col("_l_entity"))
            & (F.col("window_start") < F.col("_l_end"))
            & (F.col("window_end") > F.col("_l_start"))
        )
        windows = windows.join(F.broadcast(lab), overlap, "left_anti")
    spec = specs[0]
    return windows, spec.spec_id, spec.n_steps, spec.n_features, int(version)


def _split_dates(store: TableStore, windows: "DataFrame", fraction: float) -> dt.date:
    """The first validation night: the last ``fraction`` of the nights (at least one)."""
    dates = sorted(r.date for r in windows.select("date").distinct().collect())
    if len(dates) < 2:
        raise EmptyInputError(
            f"training needs windows on at least 2 nights (train + validation), found {len(dates)}"
        )
    n_val = min(len(dates) - 1, max(1, math.ceil(len(dates) * fraction)))
    return dates[-n_val]


def _collect(frame: "DataFrame", n_steps: int, n_features: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows (n, W, F) and their entities, on the driver (bounded by ``limit``)."""
    n = frame.count()
    if n > limit:
        raise ConfigError(
            f"{n} windows exceed train.max_local_windows={limit}: use backend horovod, or raise the limit"
        )
    pdf = frame.select("entity", "values").toPandas()
    values = np.stack(pdf["values"].to_numpy()) if n else np.empty((0, n_steps * n_features), np.float32)
    return values.reshape(n, n_steps, n_features).astype(np.float32), pdf["entity"].to_numpy()


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
    )
    try:
        results = backend.run(train_reconstruction, (feed, params, val_feed))
    finally:
        feed.delete()
        val_feed.delete()
    rank0 = results[0]
    detector = build_detector(d)
    detector.shape_ = (n_steps, n_features)
    detector.model_ = detector._network(n_steps, n_features)
    detector.model_.set_weights(rank0.weights)
    detector.history_ = {"loss": rank0.losses, "val_loss": rank0.val_losses}
    metrics = {
        "processes": rank0.size,
        "best_epoch": rank0.best_epoch + 1,
        "samples_per_s": sum(r.rows_seen for r in results) / max(rank0.seconds, 1e-9),
    }
    return detector, metrics


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
    from pyspark.sql import functions as F

    if end < start:
        raise ConfigError(f"--to {end} is before --from {start}")
    with recorded_run(store, "train", cfg, start, end) as run:
        t0 = time.perf_counter()
        windows, spec_id, n_steps, n_features, version = _training_windows(store, cfg, start, end)
        first_val = _split_dates(store, windows, cfg.train.validation_fraction)
        train_df = windows.where(F.col("date") < F.lit(first_val))
        val_df = windows.where(F.col("date") >= F.lit(first_val))
        limit = cfg.train.max_local_windows
        x_val, val_entities = _collect(val_df, n_steps, n_features, limit)
        if cfg.train.backend == "horovod":
            from adspark.train.backend import HorovodSparkBackend

            chosen = backend or HorovodSparkBackend(num_proc=cfg.train.num_proc)
            detector, metrics = _train_horovod(cfg, chosen, train_df, val_df, n_steps, n_features)
            n_train = train_df.count()
        else:
            x_train, _ = _collect(train_df, n_steps, n_features, limit)
            n_train = len(x_train)
            fit_t0 = time.perf_counter()
            detector = build_detector(cfg.train.detector, verbose=2).fit(x_train, x_val)
            epochs = len(detector.history_.get("loss", []))
            metrics = {
                "processes": 1,
                "best_epoch": int(np.argmin(detector.history_.get("val_loss", [0]))) + 1,
                "samples_per_s": n_train * epochs / max(time.perf_counter() - fit_t0, 1e-9),
            }
        val_scores = detector.score(x_val)
        th = cfg.train.threshold
        threshold = fit_threshold(val_scores, th.method, **th.options())
        entity_thresholds = (
            per_entity_thresholds(
                val_entities, val_scores, th.method, threshold, th.shrinkage, th.min_scores,
                **th.options(),
            )
            if th.scope == "entity"
            else {}
        )
        history = detector.history_
        metrics.update(
            {
                "loss": history.get("loss", [None])[-1],
                "val_loss": history.get("val_loss", [None])[-1] if history.get("val_loss") else None,
                "epochs": len(history.get("loss", [])),
                "train_windows": int(n_train),
                "val_windows": int(len(x_val)),
                "val_score_mean": float(np.mean(val_scores)),
                "val_flagged_share": float(np.mean(val_scores > threshold.value)),
                "wall_s": round(time.perf_counter() - t0, 3),
            }
        )
        model = RegisteredModel(
            model_id=f"m-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
            config_key=config_key(cfg, spec_id),
            detector=cfg.train.detector.type,
            params=cfg.train.detector.model_dump(mode="json"),
            spec_id=spec_id,
            n_steps=n_steps,
            n_features=n_features,
            threshold=threshold,
            entity_thresholds=entity_thresholds,
            train_from=start,
            train_to=end,
            data_version=version,
            metrics=metrics,
        )
        model = save_model(store, model, detector.model_)
        run.rows_read = n_train + len(x_val)
        run.rows_written = 1
        run.message = (
            f"train {start}..{end}: model {model.model_id} ({model.detector}, spec {spec_id}, "
            f"{n_train} train + {len(x_val)} validation windows from {first_val}); "
            f"threshold {threshold.method} = {threshold.value:.6g}"
            + (f" (+{len(entity_thresholds)} per entity)" if entity_thresholds else "")
            + f"; loss {metrics['loss']:.5f}, val_loss {metrics['val_loss'] or float('nan'):.5f}, "
            f"{metrics['epochs']} epochs, {metrics['samples_per_s']:.0f} samples/s"
        )
    return run, model


def load_detector(model: RegisteredModel) -> DenseAutoencoder | LSTMAutoencoder:
    """Recreate a trained detector from the registry alone."""
    from adspark.train.registry import load_network

    detector = build_detector(DetectorConfig.model_validate(model.params))
    detector.model_ = load_network(model)
    detector.shape_ = (model.n_steps, model.n_features)
    return detector

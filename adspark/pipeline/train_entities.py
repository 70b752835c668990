"""Per-entity models: many small detectors trained in parallel with ``applyInPandas`` (no Horovod).

For tables with few entities, each with enough history. Every entity's windows go to one Python
worker, which splits them by the same date as the global path, trains the configured detector,
scores its validation windows and returns the networks as a zip of Keras native files. The driver
fits thresholds (global from the pooled validation scores, per entity shrunk towards it) and the
registry stores each entity's networks under ``entities/<n>/``.
"""

from __future__ import annotations

import io
import tempfile
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from adspark.config import DetectorConfig, TrainConfig
from adspark.core.drift import score_quantiles
from adspark.core.thresholds import fit_threshold, per_entity_thresholds
from adspark.errors import ConfigError, EmptyInputError
from adspark.models.registry import ARTIFACT_SUFFIXES, Fitted, write_networks

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

ENTITY_FIT_SCHEMA = (
    "entity string, networks binary, n_train long, n_val long, loss double, val_loss double, "
    "epochs int, seconds double, val_scores array<double>"
)


def pack_networks(networks: dict) -> bytes:
    """Fitted networks by name -> zip bytes of their artifact files (:func:`write_networks`)."""
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(buf, "w") as zf:
        for path in write_networks(Path(tmp), networks):
            zf.write(path, arcname=path.name)
    return buf.getvalue()


def unpack_networks(data: bytes, prefix: str) -> dict[str, bytes]:
    """Zip bytes of artifact files -> artifact files by relative path under ``prefix``."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {f"{prefix}/{name}": zf.read(name) for name in zf.namelist() if name.endswith(ARTIFACT_SUFFIXES)}


def entity_fitter(
    detector: DetectorConfig, n_steps: int, n_features: int
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The function handed to ``groupBy("entity").applyInPandas``: one entity's windows -> a model.

    Input columns: entity, is_val, labeled, values (W*F floats). Output: :data:`ENTITY_FIT_SCHEMA`,
    one row (``networks`` null when the entity has fewer than 2 clean training windows).
    """

    def fit(pdf: pd.DataFrame) -> pd.DataFrame:
        from adspark.detectors.factory import build_detector

        t0 = time.perf_counter()
        entity = str(pdf["entity"].iloc[0])
        x = np.stack(pdf["values"].to_numpy()).astype(np.float32).reshape(len(pdf), n_steps, n_features)
        clean = ~pdf["labeled"].to_numpy(dtype=bool)
        is_val = pdf["is_val"].to_numpy(dtype=bool)
        x_train, x_val = x[clean & ~is_val], x[clean & is_val]
        row = {"entity": entity, "networks": None, "n_train": len(x_train), "n_val": len(x_val),
               "loss": None, "val_loss": None, "epochs": 0, "seconds": 0.0, "val_scores": []}
        if len(x_train) >= 2:
            det = build_detector(detector).fit(x_train, x_val if len(x_val) else None)
            history = det.history_
            row.update(
                networks=pack_networks(det.networks()),
                loss=history["loss"][-1] if history.get("loss") else None,
                val_loss=history["val_loss"][-1] if history.get("val_loss") else None,
                epochs=len(history.get("loss", [])),
                val_scores=det.score(x_val if len(x_val) else x_train).astype(float).tolist(),
            )
        row["seconds"] = time.perf_counter() - t0
        return pd.DataFrame([row])

    return fit


def fit_entity_models(
    windows: "DataFrame", split_note: str, n_steps: int, n_features: int, cfg: TrainConfig
) -> "Fitted":
    """Train one detector per entity in parallel; thresholds per entity; artifact files.

    Args:
        windows: Windows of the training range with ``labeled`` and ``is_val`` columns.
        split_note: How they were split into training and validation (for messages).
        n_steps: W.
        n_features: F.
        cfg: The train section.

    Raises:
        ConfigError: More entities than ``train.max_entity_models``.
        EmptyInputError: No entity has enough clean training windows.
    """
    n_entities = windows.select("entity").distinct().count()
    if n_entities > cfg.max_entity_models:
        raise ConfigError(
            f"{n_entities} entities exceed train.max_entity_models={cfg.max_entity_models}: "
            "use model_scope global (one model, windows scaled per entity), or raise the limit"
        )
    t0 = time.perf_counter()
    rows = (
        windows.select("entity", "is_val", "labeled", "values")
        .repartition(min(n_entities, 200), "entity")
        .groupBy("entity")
        .applyInPandas(entity_fitter(cfg.detector, n_steps, n_features), ENTITY_FIT_SCHEMA)
        .collect()
    )
    seconds = time.perf_counter() - t0
    trained = sorted((r for r in rows if r.networks is not None), key=lambda r: r.entity)
    skipped = sorted(r.entity for r in rows if r.networks is None)
    if not trained:
        raise EmptyInputError(
            f"no entity has 2 or more clean training windows ({split_note}); "
            "train on a longer range or use model_scope global"
        )
    files: dict[str, bytes] = {}
    entity_models: dict[str, str] = {}
    for i, r in enumerate(trained):
        entity_models[r.entity] = f"entities/{i}"
        files.update(unpack_networks(bytes(r.networks), f"entities/{i}"))
    entities = np.concatenate([np.full(len(r.val_scores), r.entity, dtype=object) for r in trained])
    scores = np.concatenate([np.asarray(r.val_scores, dtype=np.float64) for r in trained])
    th = cfg.threshold
    threshold = fit_threshold(scores, th.method, **th.options())
    entity_thresholds = per_entity_thresholds(
        entities, scores, th.method, threshold, th.shrinkage, th.min_scores, **th.options()
    )
    n_train = sum(r.n_train for r in trained)
    val_losses = [r.val_loss for r in trained if r.val_loss is not None]
    metrics = {
        "processes": 1,
        "entities_trained": len(trained),
        "entities_skipped": skipped,
        "loss": float(np.mean([r.loss for r in trained])),
        "val_loss": float(np.mean(val_losses)) if val_losses else None,
        "epochs": int(max(r.epochs for r in trained)),
        "train_windows": int(n_train),
        "val_windows": int(sum(r.n_val for r in trained)),
        "samples_per_s": sum(r.n_train * r.epochs for r in trained) / max(seconds, 1e-9),
        "fit_seconds_per_entity": float(np.mean([r.seconds for r in trained])),
        "val_score_quantiles": score_quantiles(scores),
    }
    return Fitted(
        files=files, threshold=threshold, entity_thresholds=entity_thresholds,
        entity_models=entity_models, metrics=metrics,
    )

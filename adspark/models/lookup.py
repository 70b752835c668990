"""Finding registered models: the config key that says "the same model config", the latest
model of a train config, and a detector rebuilt from the registry alone."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from adspark.config import DETECTOR_TYPES, THRESHOLD_METHODS, TrainJobConfig, detector_config, legacy_dump
from adspark.detectors.factory import Reconstructor, build_detector
from adspark.errors import ModelNotFoundError
from adspark.models.registry import RegisteredModel, find_model, load_networks
from adspark.tables import TableStore

# detector options added after models were registered: at their defaults they stay out of the
# config key, so a model registered before keeps its key (and stays the model in force)
LATER_DETECTOR_OPTIONS = ("n_components", "n_estimators", "max_samples", "nu", "gamma", "max_train", "recency_halflife")


def config_key(cfg: TrainJobConfig, spec_id: str) -> str:
    """What identifies "the same model config": inputs, detector, threshold, training choices."""
    defaults = legacy_dump(DETECTOR_TYPES["dense_ae"](), DETECTOR_TYPES, "type")
    detector = {
        k: v for k, v in legacy_dump(cfg.train.detector, DETECTOR_TYPES, "type").items()
        if k not in LATER_DETECTOR_OPTIONS or v != defaults[k]
    }
    body = {
        "spec_id": spec_id,
        "detector": detector,
        "threshold": legacy_dump(cfg.train.threshold, THRESHOLD_METHODS, "method"),
        "validation_fraction": cfg.train.validation_fraction,
        "exclude_labeled": cfg.train.exclude_labeled,
        "model_scope": cfg.train.model_scope,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def latest_model(store: TableStore, cfg: TrainJobConfig) -> RegisteredModel:
    """The latest registered model of this train config (any window spec).

    Raises:
        ModelNotFoundError: When none is registered for the config.
    """
    from pyspark.sql import functions as F

    specs = [r.spec_id for r in store.read("models").select("spec_id").distinct().collect()] if store.exists(
        "models") else []
    keys = [config_key(cfg, s) for s in specs]
    rows = (
        store.read("models").where(F.col("config_key").isin(keys)).orderBy(F.desc("created_at")).limit(1)
        .select("model_id").collect() if keys else []
    )
    if not rows:
        raise ModelNotFoundError("no registered model for this train config (run `adspark train` first)")
    return find_model(store, model_id=rows[0].model_id)


def load_detector(model: RegisteredModel, entity: str | None = None) -> Reconstructor:
    """Recreate a trained detector from the registry alone.

    Args:
        model: The registered model.
        entity: For entity-scoped models, whose network to load.

    Raises:
        ModelNotFoundError: When the artifact (or the entity's network) is missing.
    """
    folder = Path(model.artifact)
    if model.scope == "entity":
        if entity is None or entity not in model.entity_models:
            raise ModelNotFoundError(f"model {model.model_id} has no network for entity {entity!r}")
        folder = folder / model.entity_models[entity]
    detector = build_detector(detector_config(model.params))
    return detector.restore(load_networks(folder, model.model_id), (model.n_steps, model.n_features))

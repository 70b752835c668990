"""Finding registered models: the config key that says "the same model config", the model in force
(:func:`model_in_force`, the one lookup every job uses), and a detector rebuilt from the registry
alone."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Sequence

from adspark.config import DETECTOR_TYPES, THRESHOLD_METHODS, TrainJobConfig, detector_config, legacy_dump
from adspark.detectors.factory import Reconstructor, build_detector
from adspark.errors import ModelNotFoundError
from adspark.models.registry import RegisteredModel, find_model, load_networks
from adspark.storage import TableStore

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


def model_in_force(
    store: TableStore,
    train: TrainJobConfig | None = None,
    model_id: str | None = None,
    specs: Sequence[str] | None = None,
    trained_before: dt.date | None = None,
) -> RegisteredModel:
    """The model that scores: the one place a job decides which registered model that is.

    ``model_id`` when given; else the latest model of the ``train`` config for one of ``specs``
    (any registered window spec when None), trained before ``trained_before`` when given; else,
    without a train config, the latest model of the last of ``specs``.

    Raises:
        ModelNotFoundError: Naming what was looked for.
    """
    if model_id:
        return find_model(store, model_id=model_id)
    if train is not None:
        if specs is None:
            specs = [r.spec_id for r in store.read("models").select("spec_id").distinct().collect()] if store.exists(
                "models") else []
        try:
            return find_model(store, config_key=[config_key(train, s) for s in specs], trained_before=trained_before)
        except ModelNotFoundError:
            raise ModelNotFoundError(
                "no registered model for this train config" + (f" trained before {trained_before}" if trained_before
                                                               else "") + " (run `adspark train` first)") from None
    if specs:
        return find_model(store, spec_id=specs[-1], trained_before=trained_before)
    raise ModelNotFoundError("no model id, train config or window spec to find a model by")


def load_detector(model: RegisteredModel, entity: str | None = None) -> Reconstructor:
    """Recreate a trained detector from the registry alone, ready to score (a dense
    autoencoder from its numpy twin where it has one: no TensorFlow).

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
    # only what scoring needs: a dense autoencoder's numpy twin, without TensorFlow
    return detector.restore(load_networks(folder, model.model_id, scoring=True), (model.n_steps, model.n_features))

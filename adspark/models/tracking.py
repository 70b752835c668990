"""Optional MLflow logging of registered models (only when ``mlflow`` is installed and configured).

The registry (``models`` table + artifacts) is the source of truth; MLflow gets a copy of the
parameters, metrics and artifact files so teams that browse runs there see adspark models too.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os

from adspark.config import MlflowConfig
from adspark.models.registry import RegisteredModel

log = logging.getLogger(__name__)


def mlflow_payload(model: RegisteredModel) -> tuple[dict[str, str], dict[str, float], dict[str, str]]:
    """What a model logs: (params, numeric metrics, tags); nested params are flattened."""
    params = {f"detector.{k}": str(v) for k, v in sorted(model.params.items())}
    params.update(
        {
            "detector": model.detector,
            "scope": model.scope,
            "spec_id": model.spec_id,
            "window": f"{model.n_steps}x{model.n_features}",
            "threshold.method": model.threshold.method,
            "train_range": f"{model.train_from}..{model.train_to}",
            "data_version": str(model.data_version),
        }
    )
    metrics = {
        k: float(v)
        for k, v in model.metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }
    metrics["threshold"] = float(model.threshold.value)
    tags = {"adspark.model_id": model.model_id, "adspark.config_key": model.config_key}
    return params, metrics, tags


def log_to_mlflow(model: RegisteredModel, cfg: MlflowConfig) -> str | None:
    """Log a registered model to MLflow; returns the MLflow run id, or None when not configured.

    Logs nothing when no tracking URI is configured (``train.mlflow.tracking_uri`` or
    ``MLFLOW_TRACKING_URI``) or when ``mlflow`` is not installed (one warning then).
    """
    uri = cfg.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        return None
    if importlib.util.find_spec("mlflow") is None:
        log.warning("train.mlflow: a tracking URI is set but mlflow is not installed; not logged")
        return None
    import mlflow

    params, metrics, tags = mlflow_payload(model)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(cfg.experiment)
    with mlflow.start_run(run_name=model.model_id, tags=tags) as active:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        if cfg.log_artifacts:
            mlflow.log_artifacts(model.artifact, artifact_path="model")
        return active.info.run_id

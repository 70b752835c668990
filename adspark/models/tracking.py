"""MLflow logging of registered models: params, metrics and the model as an MLflow pyfunc.

The registry (``models`` table + artifacts) is the source of truth of the jobs; each model is
also logged to MLflow when a tracking server is known (``train.mlflow.tracking_uri``, else
``$MLFLOW_TRACKING_URI``, else ``databricks`` on a Databricks cluster): a run with its params and
metrics, and a pyfunc model (:mod:`adspark.models.pyfunc`) registered under
``train.mlflow.registered_model`` with ``train.mlflow.alias`` moved to the new version (the model
the nightly job now uses), so ``models:/adspark@champion`` loads the model in force.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import tempfile
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from adspark.config import MlflowConfig
from adspark.models.registry import RegisteredModel

log = logging.getLogger(__name__)

# what the pyfunc imports where it is served (versions from this environment)
SERVING_PACKAGES = ("tensorflow-cpu", "tensorflow", "keras", "numpy", "pandas", "scipy", "scikit-learn",
                    "pydantic", "PyYAML", "pyarrow", "mlflow-skinny")


@dataclass(frozen=True)
class LoggedModel:
    """Where a model went in MLflow.

    Attributes:
        run_id: The MLflow run.
        model_uri: ``models:/<name>/<version>`` when registered, else the run's model URI.
        version: Registered version, or None.
    """

    run_id: str
    model_uri: str
    version: str | None


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


def tracking_uri(cfg: MlflowConfig, warehouse: str) -> str | None:
    """The tracking URI models are logged to, or None (not logged).

    Args:
        cfg: ``train.mlflow``; ``{warehouse}`` in its URI is replaced by ``warehouse``.
        warehouse: The warehouse folder (e.g. ``sqlite:///{warehouse}/mlflow.db`` next to the tables).
    """
    if cfg.tracking_uri:
        return cfg.tracking_uri.replace("{warehouse}", warehouse.rstrip("/"))
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):  # pragma: no cover - Databricks only
        return "databricks"
    return None


def _experiment(mlflow: object, cfg: MlflowConfig, uri: str, warehouse: str) -> None:
    """Set the experiment, creating it with its artifact location when it does not exist."""
    if mlflow.get_experiment_by_name(cfg.experiment) is None:  # type: ignore[attr-defined]
        location = cfg.artifact_location or ("{warehouse}/mlartifacts" if uri.startswith("sqlite:") else None)
        if location:
            location = location.replace("{warehouse}", warehouse.rstrip("/"))
        try:
            mlflow.create_experiment(cfg.experiment, artifact_location=location)  # type: ignore[attr-defined]
        except mlflow.exceptions.MlflowException:  # type: ignore[attr-defined]  # created meanwhile
            pass
    mlflow.set_experiment(cfg.experiment)  # type: ignore[attr-defined]


def signature() -> object:
    """The pyfunc's input/output signature: window values (and entity) in; score, threshold,
    verdict, probability and top features out."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, Schema

    from adspark.models.pyfunc import ARRAYS, INPUT_COLUMNS, OUTPUT_COLUMNS

    def spec(name: str, kind: str, required: bool = True) -> ColSpec:
        return ColSpec(Array(kind) if name in ARRAYS else kind, name, required=required)

    return ModelSignature(inputs=Schema([spec(n, k, r) for n, k, r in INPUT_COLUMNS]),
                          outputs=Schema([spec(n, k) for n, k in OUTPUT_COLUMNS]))


def serving_requirements() -> list[str]:
    """Pinned requirements of the pyfunc, from the packages installed here."""
    out = []
    for name in SERVING_PACKAGES:
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return out


def log_to_mlflow(
    model: RegisteredModel, feature_names: list[str], cfg: MlflowConfig, warehouse: str, top_k: int = 3,
) -> LoggedModel | None:
    """Log a registered model to MLflow, as a run and a pyfunc model; register it and move the alias.

    Args:
        model: The registered model (its artifact folder holds the networks).
        feature_names: Its window spec's features (F).
        cfg: ``train.mlflow``.
        warehouse: The warehouse folder (see :func:`tracking_uri`).
        top_k: Features the pyfunc reports per window.

    Returns:
        Where it went, or None when no tracking URI is known.
    """
    uri = tracking_uri(cfg, warehouse)
    if not uri:
        return None
    import mlflow

    if not log.isEnabledFor(logging.INFO):  # quiet unless -v: MLflow logs its store's set-up at INFO
        logging.getLogger("mlflow").setLevel(logging.WARNING)
    import adspark
    import schemas
    from adspark.models import pyfunc_entry
    from adspark.models.pyfunc import DOCUMENT, model_document

    params, metrics, tags = mlflow_payload(model)
    mlflow.set_tracking_uri(uri)
    if cfg.registry_uri:
        mlflow.set_registry_uri(cfg.registry_uri)
    _experiment(mlflow, cfg, uri, warehouse)
    with tempfile.TemporaryDirectory(prefix="adspark-mlflow-") as tmp:
        document = Path(tmp) / DOCUMENT
        document.write_text(json.dumps(model_document(model, feature_names, top_k), sort_keys=True))
        with mlflow.start_run(run_name=model.model_id, tags=tags) as run:
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
            said = io.StringIO()  # MLflow prints its registration lines to stderr: logged at INFO instead
            with warnings.catch_warnings(), contextlib.redirect_stderr(said):
                warnings.filterwarnings("ignore", message=".*input example was not provided")  # it would run the model
                info = mlflow.pyfunc.log_model(
                    name="model", python_model=pyfunc_entry.__file__,
                    artifacts={"networks": model.artifact, "document": str(document)},
                    code_paths=[str(Path(adspark.__file__).parent), str(Path(schemas.__file__).parent)],
                    signature=signature(), pip_requirements=serving_requirements(),
                    registered_model_name=cfg.registered_model,
                )
    for line in said.getvalue().splitlines():
        log.info("mlflow: %s", line)
    version = str(info.registered_model_version) if cfg.registered_model else None
    if version and cfg.alias:
        mlflow.MlflowClient().set_registered_model_alias(cfg.registered_model, cfg.alias, version)
    model_uri = f"models:/{cfg.registered_model}/{version}" if version else info.model_uri
    log.info("train: model %s logged to MLflow as %s%s", model.model_id, model_uri,
             f" (alias @{cfg.alias})" if version and cfg.alias else "")
    return LoggedModel(run.info.run_id, model_uri, version)

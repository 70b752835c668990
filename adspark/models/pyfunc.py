"""adspark models as MLflow pyfunc models: window values in; score, probability and top features out.

The registry (``models`` table + artifacts) stays the source of truth of the jobs; the pyfunc is
the same model in MLflow's format, so that ``mlflow.pyfunc.load_model``,
``mlflow.pyfunc.spark_udf`` (SQL over the ``windows`` table), Model Serving and registry aliases
(``models:/adspark@champion``) work on it. Its artifacts are the model's network files and one
JSON document (:func:`model_document`); :class:`AdsparkPyfunc` is loaded from code
(:mod:`adspark.models.pyfunc_entry`), nothing is pickled.

Per window it gives what ``adspark score`` gives without the per-entity history: the model's
score (``model_score`` in ``scores``), the model's threshold and verdict, the top features and
their shares, and ``probability``: how rare the window's least likely feature error is among the
validation errors of every entity (the fitted Pareto tail the adaptive alerts use as the model's
reference floor), times the number of features (Bonferroni). The entity-calibrated ``p_value`` of
the ``scores`` table also needs the entity's state of the previous nights (``alert_state``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from adspark.core.calibration import pareto_tail
from adspark.core.contributions import top_contributors
from adspark.core.thresholds import Threshold
from adspark.errors import DataContractError
from adspark.models.registry import RegisteredModel, feature_error_tail

DOCUMENT = "adspark-model.json"
INPUT_COLUMNS = (("entity", "string", False), ("values", "float", True))  # (name, type, required); values: array
OUTPUT_COLUMNS = (("score", "double"), ("threshold", "double"), ("is_anomaly", "boolean"),
                  ("probability", "double"), ("top_features", "string"), ("top_shares", "double"))
ARRAYS = ("values", "top_features", "top_shares")
# the Spark SQL type of the pyfunc's output, for mlflow.pyfunc.spark_udf(result_type=...)
SPARK_RESULT_TYPE = ("score double, threshold double, is_anomaly boolean, probability double, "
                     "top_features array<string>, top_shares array<double>")


def model_document(model: RegisteredModel, feature_names: list[str], top_k: int) -> dict:
    """Everything the pyfunc needs besides the network files, as JSON-ready data.

    Args:
        model: The registered model.
        feature_names: The window spec's features (the F axis), length F.
        top_k: Features reported per window.
    """
    body = dataclasses.asdict(model)
    body.update(train_from=model.train_from.isoformat(), train_to=model.train_to.isoformat(), artifact="",
                feature_names=list(feature_names), top_k=int(top_k))
    return body


def _from_document(body: dict, artifact: str) -> tuple[RegisteredModel, list[str], int]:
    fields = {f.name for f in dataclasses.fields(RegisteredModel)}
    model = RegisteredModel(**{
        **{k: v for k, v in body.items() if k in fields},
        "threshold": Threshold(**body["threshold"]),
        "train_from": dt.date.fromisoformat(body["train_from"]),
        "train_to": dt.date.fromisoformat(body["train_to"]),
        "artifact": artifact,
    })
    return model, list(body["feature_names"]), int(body["top_k"])


def window_verdicts(
    scores: np.ndarray, errors: np.ndarray, thresholds: np.ndarray, tail: tuple | None,
    names: list[str], top_k: int,
) -> pd.DataFrame:
    """The pyfunc's output from the model's scores and per-feature errors.

    Args:
        scores: Window scores, shape (n,).
        errors: The model's error per feature, shape (n, F).
        thresholds: Threshold in force per window, shape (n,).
        tail: The model's validation error tail per feature as (u, xi, sigma), each (F,), or
            None (models registered without it: probability 1).
        names: Feature names, length F.
        top_k: Features reported per window.

    Returns:
        Columns of :data:`OUTPUT_COLUMNS`, n rows.
    """
    n, f = errors.shape
    if tail is not None and f:
        u, xi, sigma = (np.asarray(v, np.float64)[None, :] for v in tail)
        p = pareto_tail(np.asarray(errors, np.float64), u, xi, sigma)
        probability = np.minimum(1.0, f * p.min(axis=1))
    else:
        probability = np.ones(n)
    idx, shares = top_contributors(errors, top_k)
    labels = np.asarray(names, dtype=object)
    return pd.DataFrame({
        "score": scores.astype(np.float64), "threshold": thresholds.astype(np.float64),
        "is_anomaly": scores > thresholds, "probability": probability,
        "top_features": [list(labels[row]) for row in idx], "top_shares": [list(row) for row in shares],
    })


class AdsparkPyfunc(mlflow.pyfunc.PythonModel):
    """The pyfunc's ``python_model``: detectors loaded once per process (per entity for an
    entity-scoped model), windows scored in batches."""

    def load_context(self, context: Any) -> None:
        """Read the model document and remember where the networks are (loaded on first use)."""
        body = json.loads(Path(context.artifacts["document"]).read_text())
        self.model_, self.names_, self.top_k_ = _from_document(body, context.artifacts["networks"])
        self.tail_ = feature_error_tail(self.model_, self.model_.n_features)
        self.detectors_: dict[str, Any] = {}

    def _detector(self, entity: str | None) -> Any:
        from adspark.models.lookup import load_detector

        key = entity if self.model_.scope == "entity" else ""
        if key not in self.detectors_:
            self.detectors_[key] = load_detector(self.model_, entity if self.model_.scope == "entity" else None)
        return self.detectors_[key]

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """Score windows.

        Args:
            context: MLflow's context (unused after :meth:`load_context`).
            model_input: ``values`` (W*F floats each, row-major time x feature, as the ``windows``
                table) and ``entity`` (needed by entity-scoped models and per-entity thresholds).
            params: Unused.

        Returns:
            Columns of :data:`OUTPUT_COLUMNS`, one row per input row, same order.

        Raises:
            DataContractError: Naming the row when a window has the wrong length or non-finite values.
        """
        m = self.model_
        width = m.n_steps * m.n_features
        values = model_input["values"].to_numpy()
        lengths = np.fromiter((len(v) for v in values), np.int64, len(values))
        if (lengths != width).any():
            bad = int(np.argmax(lengths != width))
            raise DataContractError(f"row {bad}: values holds {lengths[bad]} numbers; model {m.model_id} expects "
                                    f"{m.n_steps} x {m.n_features} = {width}")
        x = (np.stack(values).astype(np.float32) if len(values) else np.zeros((0, width), np.float32)).reshape(
            -1, m.n_steps, m.n_features)
        if not np.isfinite(x).all():
            raise DataContractError(f"row {int(np.argmin(np.isfinite(x).all(axis=(1, 2))))}: values holds NaN or "
                                    "infinite numbers")
        entities = (model_input["entity"].astype(str).to_numpy() if "entity" in model_input
                    else np.full(len(x), "", dtype=object))
        scores, errors = np.zeros(len(x)), np.zeros((len(x), m.n_features))
        groups = np.unique(entities) if m.scope == "entity" else [None]
        for entity in groups:
            mine = entities == entity if entity is not None else np.ones(len(x), bool)
            if mine.any():
                scores[mine], errors[mine] = self._detector(entity).explain(x[mine], 1024)
        thresholds = np.fromiter((m.entity_thresholds.get(e, m.threshold.value) for e in entities), np.float64,
                                 len(x))
        return window_verdicts(scores, errors, thresholds, self.tail_, self.names_, self.top_k_)


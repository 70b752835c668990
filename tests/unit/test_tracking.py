"""MLflow payload of a registered model (the mlflow call itself runs only when installed)."""

import datetime as dt

from adspark.config import MlflowConfig
from adspark.core.thresholds import Threshold
from adspark.models.registry import RegisteredModel
from adspark.models.tracking import log_to_mlflow, mlflow_payload


def _model() -> RegisteredModel:
    return RegisteredModel(
        model_id="m-1", config_key="k1", detector="dense_ae", params={"hidden": [8], "epochs": 2},
        spec_id="s1", n_steps=4, n_features=3, threshold=Threshold("quantile", 1.5, {"q": 0.99}),
        entity_thresholds={}, train_from=dt.date(2026, 1, 5), train_to=dt.date(2026, 1, 7),
        data_version=3, metrics={"loss": 0.5, "epochs": 2, "skipped": ["a"], "val_loss": None,
                                 "flag": True},
    )


def test_payload_flattens_params_and_keeps_numeric_metrics():
    params, metrics, tags = mlflow_payload(_model())
    assert params["detector.hidden"] == "[8]" and params["window"] == "4x3"
    assert params["train_range"] == "2026-01-05..2026-01-07"
    assert metrics == {"loss": 0.5, "epochs": 2.0, "threshold": 1.5}
    assert tags == {"adspark.model_id": "m-1", "adspark.config_key": "k1"}


def test_no_tracking_uri_logs_nothing(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert log_to_mlflow(_model(), MlflowConfig()) is None

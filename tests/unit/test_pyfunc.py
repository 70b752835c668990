"""adspark models in MLflow: the run payload, the tracking URI, and the model as a pyfunc (logged to a
sqlite tracking store, registered, aliased, loaded back with ``mlflow.pyfunc.load_model``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adspark.config import MlflowConfig, PCAConfig
from adspark.core.calibration import fit_error_tails, pareto_tail
from adspark.core.thresholds import Threshold
from adspark.detectors.factory import build_detector
from adspark.errors import DataContractError
from adspark.models.pyfunc import window_verdicts
from adspark.models.registry import RegisteredModel, write_networks
from adspark.models.tracking import log_to_mlflow, mlflow_payload, tracking_uri

W, F = 4, 3
NAMES = ["amount_sum", "event_count", "latency_ms_mean"]


def test_verdicts_take_the_least_likely_feature_times_the_features():
    errors = np.array([[0.1, 0.2, 0.3], [0.1, 9.0, 0.3]])
    tail = (np.full(3, 1.0), np.zeros(3), np.ones(3))  # exponential above 1: P = 0.1 exp(-(x - 1))
    out = window_verdicts(np.array([0.6, 9.4]), errors, np.array([1.0, 1.0]), tail, NAMES, 2)
    assert out["probability"].tolist() == pytest.approx([1.0, 3 * 0.1 * np.exp(-8.0)])
    assert out["is_anomaly"].tolist() == [False, True]
    assert out["top_features"][1] == ["event_count", "latency_ms_mean"]
    assert out["top_shares"][1] == pytest.approx([9.0 / 9.4, 0.3 / 9.4])
    no_tail = window_verdicts(np.array([9.4]), errors[1:], np.array([1.0]), None, NAMES, 2)
    assert no_tail["probability"].tolist() == [1.0]


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


def test_tracking_uri_comes_from_config_then_environment(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    assert tracking_uri(MlflowConfig(), "/wh") is None  # nothing known: not logged
    assert tracking_uri(MlflowConfig(tracking_uri="sqlite:///{warehouse}/mlflow.db"), "/wh/") == "sqlite:////wh/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert tracking_uri(MlflowConfig(), "/wh") == "http://mlflow:5000"


def test_a_model_logged_registered_and_aliased_loads_back_and_scores_as_the_detector(tmp_path: Path, monkeypatch):
    import mlflow

    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, W, F)).astype(np.float32)
    detector = build_detector(PCAConfig(n_components=2)).fit(x[:300])
    _, val_errors = detector.explain(x[300:])
    folder = tmp_path / "wh" / "adspark" / "_artifacts" / "m-test"
    folder.mkdir(parents=True)
    write_networks(folder, detector.networks())
    model = RegisteredModel(
        model_id="m-test", config_key="k", detector="pca", params=PCAConfig(n_components=2).model_dump(
            mode="json"), spec_id="s", n_steps=W, n_features=F, threshold=Threshold("quantile", 2.0, {}),
        entity_thresholds={"u2": 50.0}, train_from=dt.date(2026, 1, 5), train_to=dt.date(2026, 1, 6),
        data_version=1, metrics={"val_feature_error_tail": [v.tolist() for v in fit_error_tails(val_errors)]},
        artifact=str(folder),
    )
    cfg = MlflowConfig(tracking_uri="sqlite:///{warehouse}/mlflow.db")
    logged = log_to_mlflow(model, NAMES, cfg, str(tmp_path / "wh"), top_k=2)
    assert logged is not None and logged.model_uri == "models:/adspark/1" and logged.version == "1"
    assert (tmp_path / "wh" / "mlflow.db").exists() and (tmp_path / "wh" / "mlartifacts").is_dir()
    assert not (tmp_path / "mlruns").exists()
    again = log_to_mlflow(model, NAMES, cfg, str(tmp_path / "wh"), top_k=2)
    assert again.version == "2"  # the alias follows the newest model of the config

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'wh' / 'mlflow.db'}")
    assert str(mlflow.MlflowClient().get_model_version_by_alias("adspark", "champion").version) == "2"
    loaded = mlflow.pyfunc.load_model("models:/adspark@champion")
    names = [c.name for c in loaded.metadata.get_output_schema().inputs]
    assert names == ["score", "threshold", "is_anomaly", "probability", "top_features", "top_shares"]
    test = np.r_[x[300:305], x[305:306] + 8.0]
    frame = pd.DataFrame({"entity": ["u1"] * 5 + ["u2"], "values": [w.ravel() for w in test]})
    out = loaded.predict(frame)
    scores, errors = detector.explain(test)
    np.testing.assert_allclose(out["score"], scores, rtol=1e-6)
    assert out["threshold"].tolist() == [2.0] * 5 + [50.0]  # the entity's own threshold where it has one
    u, xi, sigma = fit_error_tails(val_errors)
    want = np.minimum(1.0, F * pareto_tail(errors, u[None], xi[None], sigma[None]).min(axis=1))
    np.testing.assert_allclose(out["probability"], want, rtol=1e-9)
    assert out["probability"].iloc[-1] < 1e-3 < out["probability"].iloc[:5].min()
    assert all(len(t) == 2 and set(t) <= set(NAMES) for t in out["top_features"])
    with pytest.raises(DataContractError, match=r"row 0: values holds 11 numbers; model m-test expects 4 x 3 = 12"):
        loaded.predict(pd.DataFrame({"entity": ["u1"], "values": [np.zeros(11, np.float32)]}))

"""train: windows -> detector + thresholds -> registry; every backend path; registry round trip."""

import datetime as dt

import numpy as np
import pytest

from adspark.config import TrainJobConfig, build_job_config
from adspark.core.thresholds import Threshold
from adspark.detectors.autoencoders import DenseAutoencoder
from adspark.errors import ModelNotFoundError
from adspark.models.lookup import load_detector
from adspark.models.registry import RegisteredModel, find_model, save_model
from adspark.pipeline.train import run_train
from adspark.train.backend import HorovodSparkBackend, LocalBackend
from schemas import LABELS

D5, D7 = dt.date(2026, 1, 5), dt.date(2026, 1, 7)


@pytest.fixture()
def windowed(store, base_config, tiny_windowed, tmp_path):
    base_config["train"] = {
        "validation_fraction": 0.34,
        "petastorm_cache": f"file://{tmp_path}/petastorm",
        "detector": {"hidden": [8], "bottleneck": 2, "epochs": 3, "batch_size": 4, "patience": 2},
        "threshold": {"method": "quantile", "q": 0.9, "scope": "entity", "min_scores": 1, "shrinkage": 1},
    }
    return base_config


# the real Horovod backend (2 processes in Spark tasks) also trains in the CLI's whole path
@pytest.mark.parametrize("path", ["local", "horovod_double", pytest.param("horovod", marks=pytest.mark.slow)])
def test_train_registers_a_model(store, windowed, path):
    if path != "local":
        windowed["train"]["backend"] = "horovod"
    cfg = build_job_config(TrainJobConfig, windowed)
    backend = {"local": None, "horovod_double": LocalBackend(), "horovod": HorovodSparkBackend(2)}[path]
    run, model = run_train(store, cfg, D5, D7, backend=backend)
    assert model.detector == "dense_ae" and model.n_steps == 4
    assert model.metrics["train_windows"] > 0 and model.metrics["val_windows"] > 0
    assert model.metrics["processes"] == (2 if path == "horovod" else 1)
    assert set(model.entity_thresholds) == {"u1", "u2"}
    assert store.read("models").count() == 1
    assert find_model(store, model_id=model.model_id).threshold.value == model.threshold.value
    assert find_model(store, config_key=model.config_key).model_id == model.model_id
    assert "train" in run.message and model.model_id in run.message
    x = np.stack(store.read("windows").toPandas()["values"]).reshape(-1, 4, model.n_features)
    scores = load_detector(find_model(store, model_id=model.model_id)).score(x)
    assert scores.shape == (len(x),) and np.isfinite(scores).all()


class _Recording(LocalBackend):
    """The in-process double, keeping what each run was handed."""

    def __init__(self) -> None:
        self.args: list[tuple] = []

    def run(self, fn, args=()):
        self.args.append(args)
        return super().run(fn, args)


def test_the_horovod_path_hands_its_gradient_aggregation_to_the_loop(store, windowed):
    windowed["train"].update({"backend": "horovod", "backward_passes_per_step": 3})
    backend = _Recording()
    _, model = run_train(store, build_job_config(TrainJobConfig, windowed), D5, D7, backend=backend)
    [(_, params, _)] = backend.args
    assert params.backward_passes_per_step == 3 and model.metrics["processes"] == 1


def test_registry_round_trip_gives_identical_scores(store):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4, 3)).astype(np.float32)
    det = DenseAutoencoder(hidden=(8,), bottleneck=3, epochs=2, batch_size=32).fit(x)
    expected = det.score(x)
    model = RegisteredModel(
        model_id="m-test", config_key="k", detector="dense_ae",
        params={"hidden": [8], "bottleneck": 3, "epochs": 2, "batch_size": 32},
        spec_id="s", n_steps=4, n_features=3, threshold=Threshold("quantile", 1.5, {"q": 0.99}),
        entity_thresholds={"a": 2.0}, train_from=D5, train_to=D7, data_version=0,
    )
    save_model(store, model, networks=det.networks())
    del det
    loaded = load_detector(find_model(store, model_id="m-test"))
    np.testing.assert_array_equal(loaded.score(x), expected)
    with pytest.raises(ModelNotFoundError, match="no registered model for model id 'nope'"):
        find_model(store, model_id="nope")


def test_train_needs_windows(store, base_config):
    base_config["train"] = {}
    cfg = build_job_config(TrainJobConfig, base_config)
    from adspark.errors import TableNotFoundError

    with pytest.raises(TableNotFoundError, match="windows"):
        run_train(store, cfg, D5, D7)


def _labels(spark, store, rows):
    spark.createDataFrame(rows, LABELS.struct_type()).write.format("delta").save(store.path("labels"))


def test_vae_with_supervised_threshold_from_labels(spark, store, windowed):
    # u1's last night is a labeled anomaly: excluded from training, used to fit the threshold
    _labels(spark, store, [("a1", "u1", "spike", dt.datetime(2026, 1, 7), dt.datetime(2026, 1, 7, 12), 1.0, "x")])
    windowed["train"]["detector"] = {"type": "vae", "hidden": [8], "bottleneck": 2, "epochs": 2,
                                     "batch_size": 4, "n_samples": 2}
    windowed["train"]["threshold"] = {"method": "supervised", "beta": 1.0}
    run, model = run_train(store, build_job_config(TrainJobConfig, windowed), D5, D7)
    assert model.detector == "vae" and model.threshold.method == "supervised"
    assert model.metrics["val_labeled_windows"] >= 1
    assert 0 < model.threshold.params["recall"] <= 1
    x = np.stack(store.read("windows").toPandas()["values"]).reshape(-1, 4, model.n_features)
    loaded = load_detector(find_model(store, model_id=model.model_id))
    assert sorted(loaded.networks()) == ["decoder", "encoder"]
    np.testing.assert_allclose(loaded.score(x), loaded.score(x))  # seeded sampling: deterministic
    assert np.isfinite(loaded.score(x)).all()


def test_supervised_threshold_without_labels_is_a_clear_error(store, windowed):
    from adspark.errors import EmptyInputError

    windowed["train"]["threshold"] = {"method": "supervised"}
    with pytest.raises(EmptyInputError, match="supervised needs labeled anomalies"):
        run_train(store, build_job_config(TrainJobConfig, windowed), D5, D7)


def test_entity_scope_trains_one_model_per_entity(store, windowed):
    windowed["train"]["model_scope"] = "entity"
    windowed["train"]["validation_fraction"] = 0.2
    run, model = run_train(store, build_job_config(TrainJobConfig, windowed), D5, D7)
    assert model.scope == "entity" and set(model.entity_models) == {"u1", "u2"}
    assert set(model.entity_thresholds) == {"u1", "u2"}
    assert model.metrics["entities_trained"] == 2
    found = find_model(store, model_id=model.model_id)
    windows = store.read("windows").toPandas()
    for entity in ("u1", "u2"):
        mine = windows[windows.entity == entity]
        x = np.stack(mine["values"]).reshape(-1, 4, model.n_features)
        scores = load_detector(found, entity).score(x)
        assert scores.shape == (len(x),) and np.isfinite(scores).all()
    with pytest.raises(ModelNotFoundError, match="no network for entity 'u9'"):
        load_detector(found, "u9")


@pytest.mark.parametrize("detector", [{"type": "pca", "n_components": 0.9},
                                      {"type": "iforest", "n_estimators": 20},
                                      {"type": "ocsvm", "nu": 0.2}], ids=["pca", "iforest", "ocsvm"])
def test_models_without_a_network_train_register_and_score_like_the_autoencoders(store, windowed, detector):
    """train -> registry (arrays in model.npz, no pickle) -> score through the Spark scorer."""
    from adspark.config import ScoreJobConfig
    from adspark.pipeline.score import run_score

    windowed["train"]["detector"] = detector
    windowed["train"]["threshold"] = {"method": "quantile", "q": 0.9}
    windowed["alerts"] = {"enabled": False}
    run, model = run_train(store, build_job_config(TrainJobConfig, windowed), D5, D7)
    assert model.detector == detector["type"]
    from pathlib import Path

    assert sorted(p.name for p in Path(model.artifact).iterdir()) == ["model.npz"]
    found = find_model(store, model_id=model.model_id)
    windows = store.read("windows").where("date = date'2026-01-07'").toPandas().sort_values("window_id")
    x = np.stack(windows["values"]).reshape(-1, 4, model.n_features)
    expected = load_detector(found).score(x)
    score_run = run_score(store, build_job_config(ScoreJobConfig, windowed), D7, D7)
    assert model.model_id in score_run.message
    scored = store.read("scores").toPandas().sort_values("window_id")
    np.testing.assert_allclose(scored["score"].to_numpy(), expected, rtol=1e-6)
    assert (scored["is_anomaly"] == (scored["score"] > model.threshold.value)).all()
    assert all(len(t) == 3 for t in scored["top_features"])  # score.top_k


def test_entity_scope_with_a_model_without_a_network(store, windowed):
    windowed["train"]["model_scope"] = "entity"
    windowed["train"]["validation_fraction"] = 0.2
    windowed["train"]["detector"] = {"type": "pca", "n_components": 2}
    run, model = run_train(store, build_job_config(TrainJobConfig, windowed), D5, D7)
    assert set(model.entity_models) == {"u1", "u2"}
    x = np.stack(store.read("windows").where("entity = 'u1'").toPandas()["values"]).reshape(-1, 4, model.n_features)
    assert np.isfinite(load_detector(find_model(store, model_id=model.model_id), "u1").score(x)).all()

"""Every detector separates a seeded synthetic set (ROC AUC floor) and honours the contract."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from adspark.detectors.autoencoders import DenseAutoencoder, LSTMAutoencoder
from adspark.detectors.base import Detector
from adspark.detectors.baselines import IsolationForestDetector, OneClassSVMDetector, PCADetector
from adspark.detectors.vae import VariationalAutoencoder

W, F = 8, 3


def _windows(n: int, rng: np.random.Generator, anomalous: bool = False) -> np.ndarray:
    t = np.arange(W)[None, :, None]
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    base = np.sin(t / 2.0 + phase) * np.array([1.0, 0.5, -0.8])
    x = base + 0.05 * rng.normal(size=(n, W, F))
    if anomalous:
        x[:, :, 1] = rng.normal(0, 1.0, (n, W))  # the second feature breaks its relation
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    train, val = _windows(1500, rng), _windows(300, rng)
    test = np.concatenate([_windows(300, rng), _windows(60, rng, anomalous=True)])
    labels = np.r_[np.zeros(300), np.ones(60)]
    return train, val, test, labels


@pytest.mark.parametrize(
    "detector,floor",
    [
        (DenseAutoencoder(hidden=(32,), bottleneck=6, epochs=40, batch_size=64), 0.95),
        (DenseAutoencoder(hidden=(32,), bottleneck=6, epochs=40, batch_size=64, recency_halflife=2.0), 0.95),
        (LSTMAutoencoder(units=16, bottleneck=6, epochs=15, batch_size=64), 0.9),
        (VariationalAutoencoder(hidden=(32,), latent=4, epochs=40, batch_size=64), 0.9),
        (VariationalAutoencoder(hidden=(32,), latent=4, epochs=40, batch_size=64, score_kind="error"), 0.9),
        (PCADetector(n_components=6), 0.95),
        (IsolationForestDetector(n_estimators=100), 0.8),
        (OneClassSVMDetector(nu=0.05), 0.8),
    ],
    ids=["dense_ae", "dense_ae_recent", "lstm_ae", "vae_probability", "vae_error", "pca", "iforest", "ocsvm"],
)
def test_detector_separates_anomalies(detector, floor, data):
    train, val, test, labels = data
    assert isinstance(detector, Detector)
    detector.fit(train, val)
    scores = detector.score(test)
    assert scores.shape == (len(test),) and np.isfinite(scores).all()
    assert roc_auc_score(labels, scores) >= floor
    errors = detector.feature_errors(test)
    assert errors.shape == (len(test), F) and (errors >= 0).all()
    # the broken feature carries most of the error of anomalous windows
    assert np.argmax(errors[labels == 1].mean(axis=0)) == 1


def test_contract_errors(data):
    train = data[0]
    pca = PCADetector(n_components=3)
    with pytest.raises(RuntimeError, match="not fitted"):
        pca.score(train)
    pca.fit(train)
    with pytest.raises(ValueError, match="fitted on windows of 8 x 3"):
        pca.score(train[:, :4])
    bad = train[:5].copy()
    bad[2, 0, 0] = np.nan
    with pytest.raises(ValueError, match="window 2 holds NaN"):
        pca.score(bad)


def test_vae_log_probability_ranks_like_its_score(data):
    train, val, test, labels = data
    vae = VariationalAutoencoder(hidden=(32,), latent=4, epochs=10, batch_size=64).fit(train, val)
    logp = vae.log_probability(test)
    assert logp.shape == (len(test),)
    np.testing.assert_allclose(-logp, vae.score(test), rtol=1e-5)
    assert logp[labels == 0].mean() > logp[labels == 1].mean()


def test_models_without_a_network_score_from_their_arrays_as_scikit_learn_does():
    """The kept arrays reproduce scikit-learn's own scores (so a scoring worker needs no pickle),
    and survive a save / load through ``.npz`` files with pickling off."""
    import tempfile
    from pathlib import Path

    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest
    from sklearn.svm import OneClassSVM

    from adspark.models.registry import load_networks, write_networks

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 2, 3)).astype(np.float32)
    x[:, :, 2] = x[:, :, 0] * 2  # a relation PCA can learn
    test = (rng.normal(size=(100, 2, 3)) * 1.5).astype(np.float32)
    flat, flat_test = x.reshape(600, -1).astype(np.float64), test.reshape(100, -1).astype(np.float64)
    forest = IsolationForestDetector(n_estimators=30, seed=3).fit(x)
    sk_forest = IsolationForest(n_estimators=30, random_state=3).fit(x.reshape(600, -1))
    np.testing.assert_allclose(forest.score(test), -sk_forest.score_samples(test.reshape(100, -1)), atol=1e-12)
    svm = OneClassSVMDetector(nu=0.05).fit(x)
    sk_svm = OneClassSVM(nu=0.05, gamma=1.0 / (6 * flat.var())).fit(flat)
    np.testing.assert_allclose(svm.score(test), -sk_svm.decision_function(flat_test), atol=1e-9)
    pca = PCADetector(n_components=0.9).fit(x)
    sk_pca = PCA(n_components=0.9, svd_solver="full").fit(flat)
    assert pca.state_["components"].shape[0] == sk_pca.n_components_ == 3  # 6 values, 2 dependent, 0.9 of 4
    rec = sk_pca.inverse_transform(sk_pca.transform(flat_test))
    np.testing.assert_allclose(pca.score(test), ((flat_test - rec) ** 2).mean(axis=1), rtol=1e-9)
    for det in (forest, svm, pca):
        with tempfile.TemporaryDirectory() as tmp:
            assert [p.name for p in write_networks(Path(tmp), det.networks())] == ["model.npz"]
            loaded = type(det)().restore(load_networks(tmp), (2, 3))
        np.testing.assert_array_equal(loaded.score(test), det.score(test))
        assert loaded.history_ == {} and np.isfinite(det.history_["loss"][0])


def test_recency_weighting_makes_a_window_speak_for_its_newest_steps():
    from adspark.detectors.base import time_weights

    np.testing.assert_allclose(time_weights(4), [0.25] * 4)
    w = time_weights(4, 1.0)
    np.testing.assert_allclose(w, np.array([1, 2, 4, 8]) / 15)
    rng = np.random.default_rng(0)
    train = rng.normal(0, 0.1, (400, 8, 2)).astype(np.float32)
    late, early = np.zeros((1, 8, 2), np.float32), np.zeros((1, 8, 2), np.float32)
    late[0, -1, 1], early[0, 0, 1] = 3.0, 3.0  # the same jump, in the newest or the oldest step
    plain = PCADetector(n_components=4).fit(train)
    recent = PCADetector(n_components=4, recency_halflife=1.0).fit(train)
    assert plain.score(late)[0] == pytest.approx(plain.score(early)[0], rel=0.2)
    assert recent.score(late)[0] > 20 * recent.score(early)[0]
    assert np.argmax(recent.feature_errors(late)[0]) == 1


@pytest.mark.parametrize("make", [lambda: DenseAutoencoder(activation="gelu"), LSTMAutoencoder],
                         ids=["dense_ae_gelu", "lstm_ae"])
def test_an_autoencoders_errors_compile_once_for_every_batch_size(make):
    # a retrace per new batch shape adds up over the models a nightly trains in one process
    # (TensorFlow then warns of frequent retracing); one input signature serves every size.
    # (A gelu network has no numpy twin, so TensorFlow scores it.)
    det = make()
    det.restore({"model": det._network(4, 3)}, (4, 3))
    assert getattr(det, "stack_", None) is None
    x = np.random.default_rng(0).normal(size=(50, 4, 3)).astype(np.float32)
    sizes = (50, 7, 1, 33)
    errors = [det.feature_errors(x[:n], batch_size=16) for n in sizes]
    assert [len(e) for e in errors] == list(sizes)
    np.testing.assert_allclose(errors[1], errors[0][:7], rtol=1e-5)
    assert det._errors.experimental_get_tracing_count() == 1


def test_config_key_of_a_model_registered_before_the_new_detector_options_is_unchanged():
    from pathlib import Path

    import yaml

    from adspark.config import TrainJobConfig, build_job_config
    from adspark.models.lookup import config_key

    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "conf" / "demo.yaml").read_text())
    # the key main computed before the pca / iforest / ocsvm / recency options existed
    assert config_key(build_job_config(TrainJobConfig, data), "abc") == "b3d3625b0c94fcad"
    data["train"]["detector"]["recency_halflife"] = 3
    assert config_key(build_job_config(TrainJobConfig, data), "abc") != "b3d3625b0c94fcad"

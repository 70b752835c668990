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
        (LSTMAutoencoder(units=16, bottleneck=6, epochs=15, batch_size=64), 0.9),
        (VariationalAutoencoder(hidden=(32,), latent=4, epochs=40, batch_size=64), 0.9),
        (VariationalAutoencoder(hidden=(32,), latent=4, epochs=40, batch_size=64, score_kind="error"), 0.9),
        (PCADetector(n_components=6), 0.95),
        (IsolationForestDetector(n_estimators=100), 0.8),
        (OneClassSVMDetector(nu=0.05), 0.8),
    ],
    ids=["dense_ae", "lstm_ae", "vae_probability", "vae_error", "pca", "iforest", "ocsvm"],
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

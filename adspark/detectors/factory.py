"""The detector a config describes: one factory for every detector type (model or model-free)."""

from __future__ import annotations

from adspark.config import DetectorConfig, IForestConfig, LstmAEConfig, OCSVMConfig, PCAConfig, VAEConfig
from adspark.detectors.autoencoders import DenseAutoencoder, LSTMAutoencoder
from adspark.detectors.baselines import IsolationForestDetector, OneClassSVMDetector, PCADetector
from adspark.detectors.vae import VariationalAutoencoder

Reconstructor = (
    DenseAutoencoder | LSTMAutoencoder | VariationalAutoencoder | PCADetector | IsolationForestDetector
    | OneClassSVMDetector
)


def build_detector(cfg: DetectorConfig, verbose: int = 0) -> Reconstructor:
    """The detector wrapper a config describes (untrained)."""
    if isinstance(cfg, PCAConfig):
        n = cfg.n_components
        return PCADetector(n_components=n if n < 1 else int(n), recency_halflife=cfg.recency_halflife)
    if isinstance(cfg, IForestConfig):
        return IsolationForestDetector(n_estimators=cfg.n_estimators, max_samples=cfg.max_samples, seed=cfg.seed,
                                       recency_halflife=cfg.recency_halflife)
    if isinstance(cfg, OCSVMConfig):
        return OneClassSVMDetector(nu=cfg.nu, gamma=cfg.gamma, max_train=cfg.max_train, seed=cfg.seed,
                                   recency_halflife=cfg.recency_halflife)
    if isinstance(cfg, VAEConfig):
        return VariationalAutoencoder(
            hidden=tuple(cfg.hidden), latent=cfg.bottleneck, beta=cfg.beta, score_kind=cfg.score_kind,
            n_samples=cfg.n_samples, epochs=cfg.epochs, batch_size=cfg.batch_size,
            learning_rate=cfg.learning_rate, patience=cfg.patience, seed=cfg.seed,
        )
    common = dict(
        epochs=cfg.epochs, batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
        patience=cfg.patience, seed=cfg.seed, verbose=verbose, recency_halflife=cfg.recency_halflife,
    )
    if isinstance(cfg, LstmAEConfig):
        return LSTMAutoencoder(units=cfg.units, bottleneck=cfg.bottleneck, **common)
    return DenseAutoencoder(
        hidden=tuple(cfg.hidden), bottleneck=cfg.bottleneck, activation=cfg.activation,
        dropout=cfg.dropout, l2=cfg.l2, **common,
    )

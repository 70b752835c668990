"""Baselines for comparison: PCA reconstruction error, Isolation Forest, One-Class SVM."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adspark.detectors.base import as_windows, check_fitted, check_shape


@dataclass
class PCADetector:
    """Reconstruction error of a PCA projection.

    Attributes:
        n_components: Components kept (an int, or a float in (0, 1) = explained variance).
    """

    n_components: float | int = 0.95
    pca_: object | None = None
    shape_: tuple[int, int] | None = None

    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> "PCADetector":
        """Fit the projection on windows (n, W, F)."""
        from sklearn.decomposition import PCA

        w = as_windows(x)
        self.shape_ = w.shape[1:]
        self.pca_ = PCA(n_components=self.n_components, svd_solver="full").fit(w.reshape(len(w), -1))
        return self

    def _residual(self, x: np.ndarray) -> np.ndarray:
        check_fitted(self, "pca_")
        w = as_windows(x)
        check_shape(w, *self.shape_, "PCADetector")
        flat = w.reshape(len(w), -1)
        rec = self.pca_.inverse_transform(self.pca_.transform(flat))
        return ((flat - rec) ** 2).reshape(w.shape)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Mean squared reconstruction error, shape (n,)."""
        return self._residual(x).mean(axis=(1, 2))

    def feature_errors(self, x: np.ndarray) -> np.ndarray:
        """Squared error per feature averaged over time, shape (n, F)."""
        return self._residual(x).mean(axis=1)


def _flat(x: np.ndarray) -> np.ndarray:
    w = as_windows(x)
    return w.reshape(len(w), -1)


@dataclass
class _Deviation:
    """Per-feature attribution for models without one: squared robust deviation from training.

    ``feature_errors`` = mean over time of ((x - median) / IQR)^2, per feature.
    """

    median_: np.ndarray | None = None
    spread_: np.ndarray | None = None

    def fit_deviation(self, x: np.ndarray) -> None:
        w = as_windows(x)
        q25, med, q75 = np.percentile(w, [25, 50, 75], axis=0)
        self.median_ = med
        self.spread_ = np.where(q75 - q25 > 1e-9, q75 - q25, 1.0)

    def deviation(self, x: np.ndarray) -> np.ndarray:
        check_fitted(self, "median_")
        w = as_windows(x)
        check_shape(w, *self.median_.shape, type(self).__name__)
        return (((w - self.median_) / self.spread_) ** 2).mean(axis=1)


@dataclass
class IsolationForestDetector(_Deviation):
    """scikit-learn's Isolation Forest on flattened windows.

    ``feature_errors`` is the squared robust deviation from the training median (the forest
    itself attributes nothing to features).
    """

    n_estimators: int = 200
    max_samples: int | str = "auto"
    seed: int = 0
    model_: object | None = None

    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> "IsolationForestDetector":
        """Fit the forest."""
        from sklearn.ensemble import IsolationForest

        self.fit_deviation(x)
        self.model_ = IsolationForest(
            n_estimators=self.n_estimators, max_samples=self.max_samples, random_state=self.seed
        ).fit(_flat(x))
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        """Negated ``score_samples`` (higher = more anomalous), shape (n,)."""
        check_fitted(self, "model_")
        return -self.model_.score_samples(_flat(x))

    def feature_errors(self, x: np.ndarray) -> np.ndarray:
        """Squared robust deviation from training per feature, shape (n, F)."""
        return self.deviation(x)


@dataclass
class OneClassSVMDetector(_Deviation):
    """scikit-learn's One-Class SVM (RBF) on a seeded sample of the training windows.

    ``feature_errors`` is the squared robust deviation from the training median.
    """

    nu: float = 0.01
    gamma: str | float = "scale"
    max_train: int = 10_000
    seed: int = 0
    model_: object | None = None

    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> "OneClassSVMDetector":
        """Fit on at most ``max_train`` windows."""
        from sklearn.svm import OneClassSVM

        self.fit_deviation(x)
        flat = _flat(x)
        if len(flat) > self.max_train:
            flat = flat[np.random.default_rng(self.seed).choice(len(flat), self.max_train, replace=False)]
        self.model_ = OneClassSVM(nu=self.nu, gamma=self.gamma).fit(flat)
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        """Negated decision function (higher = more anomalous), shape (n,)."""
        check_fitted(self, "model_")
        return -self.model_.decision_function(_flat(x))

    def feature_errors(self, x: np.ndarray) -> np.ndarray:
        """Squared robust deviation from training per feature, shape (n, F)."""
        return self.deviation(x)

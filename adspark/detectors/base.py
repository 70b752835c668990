"""The detector contract (as in pyod): ``fit``, ``score`` (higher = more anomalous),
``feature_errors`` (per-feature contribution); fitted attributes end in ``_``.

Inputs are windows of shape (n, W, F): W time steps of F features (W = 1 in row mode).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Detector(Protocol):
    """What every detector offers."""

    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> "Detector":
        """Learn normal behaviour from windows x, shape (n, W, F); x_val for early stopping."""

    def score(self, x: np.ndarray) -> np.ndarray:
        """Anomaly score per window, shape (n,); higher is more anomalous."""

    def feature_errors(self, x: np.ndarray) -> np.ndarray:
        """Contribution of each feature to the score, shape (n, F), non-negative."""


def as_windows(x: np.ndarray) -> np.ndarray:
    """Check and convert input to float32 windows of shape (n, W, F).

    A 2-D array (n, F) is taken as windows of one step.

    Raises:
        ValueError: On another rank, or NaN/inf values.
    """
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 2:
        a = a[:, None, :]
    if a.ndim != 3:
        raise ValueError(f"expected windows of shape (n, W, F) or (n, F), got {a.shape}")
    if not np.isfinite(a).all():
        bad = int(np.argwhere(~np.isfinite(a))[0][0])
        raise ValueError(f"window {bad} holds NaN or infinite values; scale and fill before scoring")
    return a


def check_fitted(detector: object, attribute: str) -> None:
    """Raise when ``detector`` has not been fitted yet."""
    if getattr(detector, attribute, None) is None:
        raise RuntimeError(f"{type(detector).__name__} is not fitted yet: call fit() first")


def check_shape(x: np.ndarray, n_steps: int, n_features: int, name: str) -> None:
    """Raise when windows do not have the shape the detector was fitted on."""
    if x.shape[1:] != (n_steps, n_features):
        raise ValueError(
            f"{name} was fitted on windows of {n_steps} x {n_features}, got {x.shape[1]} x {x.shape[2]}"
        )


def time_weights(n_steps: int, halflife: float | None = None) -> np.ndarray:
    """Weights of a window's W time steps in its errors, summing to 1, shape (W,): uniform (the
    window mean) without ``halflife``, else ``2 ** (-(W - 1 - t) / halflife)``: the newest step
    weighs most, so a window's score speaks for its newest buckets (an anomaly entering the window
    is not diluted W times)."""
    if halflife is None:
        return np.full(n_steps, 1.0 / n_steps)
    w = 2.0 ** (-(n_steps - 1 - np.arange(n_steps)) / float(halflife))
    return w / w.sum()

"""Model detectors without a network: PCA reconstruction error, Isolation Forest, One-Class SVM.

They follow the same contract as the autoencoders (``fit``, ``score``, ``feature_errors``,
``explain``, ``networks``/``restore``), so the jobs train, register and score them alike
(``train.detector.type: pca | iforest | ocsvm``). scikit-learn fits them; what is kept is plain
arrays (``networks()`` returns ``{"model": {name: array}}``, saved as ``model.npz`` and loaded
with ``allow_pickle=False``: nothing is unpickled), and scoring is numpy over those arrays, so a
scoring worker needs neither scikit-learn's objects nor pickle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from adspark.detectors.base import as_windows, check_fitted, check_shape, time_weights


def _flat(w: np.ndarray) -> np.ndarray:
    return w.reshape(len(w), -1).astype(np.float64)


@dataclass
class _ArrayDetector:
    """Shared plumbing: the fitted arrays (``state_``), window shape checks, the registry hooks."""

    recency_halflife: float | None = None
    state_: dict[str, np.ndarray] | None = None
    shape_: tuple[int, int] | None = None
    history_: dict = field(default_factory=dict)

    def _over_time(self, per_step: np.ndarray) -> np.ndarray:
        """(n, W, F) -> (n, F): the mean over time, weighted toward the newest steps with
        ``recency_halflife`` (:func:`adspark.detectors.base.time_weights`)."""
        return np.tensordot(per_step, time_weights(per_step.shape[1], self.recency_halflife), axes=([1], [0]))

    def _checked(self, x: np.ndarray) -> np.ndarray:
        check_fitted(self, "state_")
        w = as_windows(x)
        check_shape(w, *self.shape_, type(self).__name__)
        return w

    def networks(self) -> dict[str, dict[str, np.ndarray]]:
        """The fitted arrays under the artifact name ``model`` (saved as ``model.npz``)."""
        check_fitted(self, "state_")
        return {"model": dict(self.state_)}

    def restore(self, networks: dict[str, dict[str, np.ndarray]], shape: tuple[int, int]) -> "_ArrayDetector":
        """Set the fitted state from arrays loaded from the registry."""
        self.state_ = {k: np.asarray(v) for k, v in networks["model"].items()}
        self.shape_ = tuple(shape)
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        raise TypeError("subclasses score")

    def feature_errors(self, x: np.ndarray) -> np.ndarray:
        """Squared robust deviation from the training median per feature, averaged over time, shape (n, F)
        (what the models without a reconstruction attribute to each feature)."""
        w = self._checked(x)
        s = self.state_
        return self._over_time(((w - s["median"]) / s["spread"]) ** 2)

    def explain(self, x: np.ndarray, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Scores (n,) and feature errors (n, F)."""
        return self.score(x), self.feature_errors(x)

    def _fitted(self, w: np.ndarray, x_val: np.ndarray | None) -> "_ArrayDetector":
        """Record the mean score of the training (and validation) windows as one epoch's ``loss``
        (``val_loss``), as the autoencoders record theirs; returns self."""
        self.history_ = {"loss": [float(self.score(w).mean())]}
        if x_val is not None and len(x_val):
            self.history_["val_loss"] = [float(self.score(x_val).mean())]
        return self

    def _deviation_state(self, w: np.ndarray) -> dict[str, np.ndarray]:
        q25, med, q75 = np.percentile(w, [25, 50, 75], axis=0)
        return {"median": med.astype(np.float64), "spread": np.where(q75 - q25 > 1e-9, q75 - q25, 1.0)}


@dataclass
class PCADetector(_ArrayDetector):
    """Reconstruction error of a PCA projection of the flattened windows.

    Attributes:
        n_components: Components kept: an int, or a float in (0, 1) = share of variance explained.
    """

    n_components: float | int = 0.95

    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> "PCADetector":
        """Fit the projection on windows (n, W, F) (``x_val`` only gives ``val_loss``)."""
        w = as_windows(x)
        self.shape_ = w.shape[1:]
        flat = _flat(w)
        mean = flat.mean(axis=0)
        _, sv, vt = np.linalg.svd(flat - mean, full_matrices=False)
        var = sv**2
        if isinstance(self.n_components, float) and 0 < self.n_components < 1:
            ratio = np.cumsum(var) / max(var.sum(), 1e-300)
            k = int(np.searchsorted(ratio, self.n_components, side="right") + 1)
        else:
            k = int(self.n_components)
        self.state_ = {"mean": mean, "components": vt[: min(k, len(vt))]}
        return self._fitted(w, x_val)

    def _residual(self, x: np.ndarray) -> np.ndarray:
        w = self._checked(x)
        flat = _flat(w) - self.state_["mean"]
        c = self.state_["components"]
        return ((flat - (flat @ c.T) @ c) ** 2).reshape(w.shape)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Mean squared reconstruction error (over time as :meth:`feature_errors`), shape (n,)."""
        return self.feature_errors(x).mean(axis=1)

    def feature_errors(self, x: np.ndarray) -> np.ndarray:
        """Squared error per feature averaged over time, shape (n, F)."""
        return self._over_time(self._residual(x))

    def explain(self, x: np.ndarray, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Scores (n,) and feature errors (n, F) from one projection."""
        fe = self.feature_errors(x)
        return fe.mean(axis=1), fe


def average_path_length(n: np.ndarray) -> np.ndarray:
    """Expected path length of an unsuccessful search in a binary search tree of n points (the
    normalizer of Isolation Forest): ``2 H(n - 1) - 2 (n - 1) / n``; 1 for n = 2, 0 below."""
    n = np.asarray(n, dtype=np.float64)
    safe = np.maximum(n, 3.0)
    c = 2.0 * (np.log(safe - 1.0) + np.euler_gamma) - 2.0 * (safe - 1.0) / safe
    return np.where(n <= 1, 0.0, np.where(n == 2, 1.0, c))


@dataclass
class IsolationForestDetector(_ArrayDetector):
    """Isolation Forest (Liu et al. 2008) on flattened windows: score ``2 ** (-E[h(x)] / c(psi))``
    in (0, 1], higher = isolated sooner = more anomalous. The trees are kept as arrays.

    Attributes:
        n_estimators: Trees.
        max_samples: Rows per tree (``auto``: min(256, n)).
        seed: Random seed.
    """

    n_estimators: int = 200
    max_samples: int | str = "auto"
    seed: int = 0

    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> "IsolationForestDetector":
        """Grow the forest with scikit-learn, keep its trees as arrays."""
        from sklearn.ensemble import IsolationForest

        w = as_windows(x)
        self.shape_ = w.shape[1:]
        forest = IsolationForest(n_estimators=self.n_estimators, max_samples=self.max_samples,
                                 random_state=self.seed).fit(_flat(w))
        trees = [t.tree_ for t in forest.estimators_]
        sizes = np.array([t.node_count for t in trees])
        offsets = np.r_[0, np.cumsum(sizes)]

        def glued(name: str, shift: bool = False) -> np.ndarray:
            parts = [getattr(t, name) + (o if shift else 0) for t, o in zip(trees, offsets[:-1], strict=True)]
            out = np.concatenate(parts)
            if shift:  # leaves keep -1
                raw = np.concatenate([getattr(t, name) for t in trees])
                out = np.where(raw < 0, -1, out)
            return out

        self.state_ = {
            "roots": offsets[:-1].astype(np.int64), "left": glued("children_left", True).astype(np.int64),
            "right": glued("children_right", True).astype(np.int64),
            "feature": glued("feature").astype(np.int64), "threshold": glued("threshold").astype(np.float64),
            "samples": glued("n_node_samples").astype(np.float64),
            "features": np.stack([np.asarray(f, np.int64) for f in forest.estimators_features_]),
            "max_samples": np.array(float(forest.max_samples_)),
            **self._deviation_state(w),
        }
        return self._fitted(w, x_val)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Isolation score in (0, 1], shape (n,)."""
        w = self._checked(x)
        flat = w.reshape(len(w), -1).astype(np.float32).astype(np.float64)  # the trees split float32 values
        s = self.state_
        depth = np.zeros(len(flat))
        rows = np.arange(len(flat))
        for tree, cols in zip(s["roots"], s["features"], strict=True):
            sub = flat[:, cols]
            node = np.full(len(flat), tree)
            steps = np.zeros(len(flat))
            inner = s["left"][node] >= 0
            while inner.any():
                go_left = sub[rows, np.maximum(s["feature"][node], 0)] <= s["threshold"][node]
                nxt = np.where(go_left, s["left"][node], s["right"][node])
                node = np.where(inner, nxt, node)
                steps += inner
                inner = s["left"][node] >= 0
            depth += steps + average_path_length(s["samples"][node])
        norm = len(s["roots"]) * float(average_path_length(np.array([s["max_samples"]]))[0])
        return 2.0 ** (-depth / max(norm, 1e-12))


@dataclass
class OneClassSVMDetector(_ArrayDetector):
    """One-Class SVM (RBF kernel) on a seeded sample of the flattened training windows: score = minus
    the decision function (higher = more anomalous). Support vectors and weights are kept as arrays.

    Attributes:
        nu: Upper bound on the share of training windows outside the boundary.
        gamma: RBF width: ``scale`` (1 / (features x variance of the training values)) or a number.
        max_train: Training windows sampled at most.
        seed: Seed of that sample.
    """

    nu: float = 0.01
    gamma: str | float = "scale"
    max_train: int = 10_000
    seed: int = 0

    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> "OneClassSVMDetector":
        """Fit on at most ``max_train`` windows."""
        from sklearn.svm import OneClassSVM

        w = as_windows(x)
        self.shape_ = w.shape[1:]
        flat = _flat(w)
        if len(flat) > self.max_train:
            flat = flat[np.random.default_rng(self.seed).choice(len(flat), self.max_train, replace=False)]
        gamma = 1.0 / (flat.shape[1] * max(float(flat.var()), 1e-12)) if self.gamma == "scale" else float(self.gamma)
        svm = OneClassSVM(nu=self.nu, gamma=gamma).fit(flat)
        self.state_ = {
            "support": np.asarray(svm.support_vectors_, np.float64), "dual": np.asarray(svm.dual_coef_[0], np.float64),
            "intercept": np.array(float(svm.intercept_[0])), "gamma": np.array(gamma), **self._deviation_state(w),
        }
        return self._fitted(w, x_val)

    def score(self, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Minus the decision function, shape (n,)."""
        flat = _flat(self._checked(x))
        s = self.state_
        sv, sq_sv = s["support"], (s["support"] ** 2).sum(axis=1)
        out = np.empty(len(flat))
        for i in range(0, len(flat), batch_size):
            b = flat[i : i + batch_size]
            d2 = np.maximum((b**2).sum(axis=1)[:, None] - 2.0 * b @ sv.T + sq_sv[None, :], 0.0)
            out[i : i + batch_size] = -(np.exp(-float(s["gamma"]) * d2) @ s["dual"] + float(s["intercept"]))
        return out

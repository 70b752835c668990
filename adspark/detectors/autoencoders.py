"""Reconstruction detectors around Keras networks (built in :mod:`adspark.detectors.networks`).

Score = mean squared reconstruction error of a window; ``feature_errors`` = squared error per
feature averaged over the window's time steps. Inference is a compiled ``tf.function`` over
fixed-size batches (``model.predict`` is far slower for this); the dense autoencoder's network is
also exported as a :class:`adspark.detectors.dense_stack.DenseStack` and scored in numpy, so a
scoring worker loading it from the registry never imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from adspark.detectors.base import as_windows, check_fitted, check_shape, time_weights
from adspark.detectors.dense_stack import TWIN_SUFFIX, DenseStack

# artifact name of the dense autoencoder's numpy twin of its Keras network ``model``
DENSE_ARTIFACT = f"model{TWIN_SUFFIX}"


@dataclass
class _Reconstruction:
    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 1e-3
    patience: int = 4
    seed: int = 0
    verbose: int = 0
    recency_halflife: float | None = None
    model_: Any = None
    history_: dict = field(default_factory=dict)
    shape_: tuple[int, int] | None = None
    _infer: Any = field(default=None, init=False, repr=False, compare=False)
    _errors: Any = field(default=None, init=False, repr=False, compare=False)

    def networks(self) -> dict[str, Any]:
        """The fitted Keras networks by artifact name (saved as ``<name>.keras``)."""
        check_fitted(self, "model_")
        return {"model": self.model_}

    def restore(self, networks: dict[str, Any], shape: tuple[int, int]) -> "_Reconstruction":
        """Set the fitted state from networks loaded from the registry."""
        self.model_, self.shape_, self._infer, self._errors = networks["model"], tuple(shape), None, None
        return self

    def _network(self, n_steps: int, n_features: int) -> Any:
        raise TypeError("subclasses build their network")

    def _to_model(self, w: np.ndarray) -> np.ndarray:
        return w

    def _from_model(self, y: np.ndarray, w: np.ndarray) -> np.ndarray:
        return y.reshape(w.shape)

    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> "_Reconstruction":
        """Train on windows (n, W, F); early stopping on ``x_val`` when given."""
        import keras

        w = as_windows(x)
        self.shape_ = w.shape[1:]
        keras.utils.set_random_seed(self.seed)
        model = self._network(*self.shape_)
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss="mse")
        callbacks, val = [], None
        if x_val is not None and len(x_val):
            v = as_windows(x_val)
            val = (self._to_model(v), self._to_model(v))
            callbacks.append(
                keras.callbacks.EarlyStopping(patience=self.patience, restore_best_weights=True)
            )
        hist = model.fit(
            self._to_model(w), self._to_model(w), epochs=self.epochs, batch_size=self.batch_size,
            validation_data=val, callbacks=callbacks, verbose=self.verbose, shuffle=True,
        )
        self.model_, self._infer, self._errors = model, None, None
        self.history_ = {k: [float(v) for v in vs] for k, vs in hist.history.items()}
        return self

    def reconstruct(self, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Reconstructions, same shape as the windows."""
        import tensorflow as tf

        check_fitted(self, "model_")
        w = as_windows(x)
        check_shape(w, *self.shape_, type(self).__name__)
        if self._infer is None:  # traced once per fitted model, not once per call
            model = self.model_
            self._infer = tf.function(lambda b: model(b, training=False), reduce_retracing=True)
        infer = self._infer
        inputs = self._to_model(w)
        outs = [infer(tf.constant(inputs[i : i + batch_size])).numpy()
                for i in range(0, len(inputs), batch_size)]
        y = np.concatenate(outs) if outs else np.empty_like(inputs)
        return self._from_model(y, w)

    def feature_errors(self, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Squared error per feature averaged over time (weighted toward the newest steps with
        ``recency_halflife``, :func:`adspark.detectors.base.time_weights`), shape (n, F).

        One compiled function per fitted model computes the reconstruction and the reduction
        together (TensorFlow threads, no (n, W, F) temporaries in numpy).
        """
        import tensorflow as tf

        check_fitted(self, "model_")
        w = as_windows(x)
        check_shape(w, *self.shape_, type(self).__name__)
        if self._errors is None:
            model, width = self.model_, int(np.prod(self.shape_))
            flat = isinstance(self, DenseAutoencoder)
            weights = tf.constant(time_weights(self.shape_[0], self.recency_halflife), tf.float32)

            def errors(b: Any) -> Any:
                y = model(tf.reshape(b, (-1, width)) if flat else b, training=False)
                return tf.tensordot(tf.square(b - tf.reshape(y, tf.shape(b))), weights, axes=[[1], [0]])

            # one trace per model: any batch size (a shape-relaxing retrace per new model would
            # add up across the models of one process and set off TensorFlow's retracing warning)
            spec = tf.TensorSpec((None, *self.shape_), tf.float32)
            self._errors = tf.function(errors, input_signature=[spec])
        outs = [self._errors(tf.constant(w[i : i + batch_size])).numpy() for i in range(0, len(w), batch_size)]
        return np.concatenate(outs) if outs else np.empty((0, self.shape_[1]), np.float32)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Mean squared reconstruction error per window, shape (n,)."""
        return self.feature_errors(x).mean(axis=1)

    def explain(self, x: np.ndarray, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Scores (n,) and feature errors (n, F) from one inference pass."""
        fe = self.feature_errors(x, batch_size)
        return fe.mean(axis=1), fe


@dataclass
class DenseAutoencoder(_Reconstruction):
    """A dense autoencoder over flattened windows.

    Attributes:
        hidden: Encoder widths (mirrored by the decoder).
        bottleneck: Code width.
        activation: Hidden activation.
        dropout: Dropout after hidden layers.
        l2: L2 weight penalty.
        stack_: The fitted network exported to numpy (:class:`DenseStack`), which scores; None
            when the network is not a plain dense stack (Keras then scores).
    """

    hidden: tuple[int, ...] = (64,)
    bottleneck: int = 16
    activation: str = "relu"
    dropout: float = 0.0
    l2: float = 0.0
    stack_: DenseStack | None = None

    def _network(self, n_steps: int, n_features: int) -> Any:
        from adspark.detectors.networks import dense_autoencoder

        return dense_autoencoder(
            n_steps * n_features, self.hidden, self.bottleneck, self.activation, self.dropout,
            self.l2, self.seed,
        )

    def _to_model(self, w: np.ndarray) -> np.ndarray:
        return w.reshape(len(w), -1)

    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> "DenseAutoencoder":
        """Train on windows (n, W, F) as :class:`_Reconstruction` does, then export the network
        to numpy (``stack_``), which then scores."""
        super().fit(x, x_val)
        self.stack_ = DenseStack.from_keras(self.model_, self.seed)
        return self

    def networks(self) -> dict[str, Any]:
        """The Keras network (``model``, when loaded) and its numpy twin (``model_dense``, when
        the network is a plain dense stack), by artifact name."""
        if self.stack_ is None:
            check_fitted(self, "model_")
        out: dict[str, Any] = {} if self.model_ is None else {"model": self.model_}
        if self.stack_ is not None:
            out[DENSE_ARTIFACT] = self.stack_.arrays()
        return out

    def restore(self, networks: dict[str, Any], shape: tuple[int, int]) -> "DenseAutoencoder":
        """Set the fitted state from the Keras network, its numpy twin, or both (the twin then
        scores; a network alone is exported when it can be)."""
        model, arrays = networks.get("model"), networks.get(DENSE_ARTIFACT)
        if model is None and arrays is None:
            raise ValueError(f"a dense autoencoder needs network 'model' or {DENSE_ARTIFACT!r}, got {sorted(networks)}")
        super().restore({"model": model}, shape)
        if arrays is not None:
            self.stack_ = DenseStack.from_arrays(arrays)
        else:
            self.stack_ = DenseStack.from_keras(model, self.seed)
        return self

    def _stack_batches(self, x: np.ndarray, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(windows, reconstructions) of ``batch_size`` windows at a time, from the numpy twin."""
        assert self.stack_ is not None
        w = as_windows(x)
        check_shape(w, *self.shape_, type(self).__name__)
        for i in range(0, len(w), batch_size):
            b = w[i : i + batch_size]
            yield b, self.stack_(b.reshape(len(b), -1)).reshape(b.shape)

    def reconstruct(self, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Reconstructions, same shape as the windows."""
        if self.stack_ is None:
            return super().reconstruct(x, batch_size)
        outs = [y for _, y in self._stack_batches(x, batch_size)]
        return np.concatenate(outs) if outs else np.empty((0, *self.shape_), np.float32)

    def feature_errors(self, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Squared error per feature averaged over time (weighted toward the newest steps with
        ``recency_halflife``), shape (n, F); from the numpy twin when there is one."""
        if self.stack_ is None:
            return super().feature_errors(x, batch_size)
        weights = time_weights(self.shape_[0], self.recency_halflife).astype(np.float32)
        outs = []
        for b, y in self._stack_batches(x, batch_size):
            np.subtract(b, y, out=y)
            np.square(y, out=y)
            # step by step, not tensordot: a BLAS product's rounding would depend on the batch
            acc = y[:, 0, :] * weights[0]
            for t in range(1, len(weights)):
                acc += y[:, t, :] * weights[t]
            outs.append(acc)
        return np.concatenate(outs) if outs else np.empty((0, self.shape_[1]), np.float32)


@dataclass
class LSTMAutoencoder(_Reconstruction):
    """A sequence-to-sequence LSTM autoencoder over windows (time steps x features)."""

    units: int = 32
    bottleneck: int = 8

    def _network(self, n_steps: int, n_features: int) -> Any:
        from adspark.detectors.networks import lstm_autoencoder

        return lstm_autoencoder(n_steps, n_features, self.units, self.bottleneck, self.seed)

"""Variational autoencoder detector.

The decoder outputs a mean and a log-variance per value, so the model gives a reconstruction
probability: ``score_kind="probability"`` scores a window by the negative Gaussian log-likelihood
of the window under its reconstruction, averaged over ``n_samples`` codes drawn from the encoder
(An and Cho, 2015); ``score_kind="error"`` by the squared error of the mean reconstruction.
``log_probability`` exposes the (per-window) log-likelihood itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adspark.detectors.base import as_windows, check_fitted, check_shape

_LOG_2PI = math.log(2 * math.pi)


def _build(n_inputs: int, hidden: tuple[int, ...], latent: int, seed: int) -> tuple[Any, Any]:
    import keras

    init = keras.initializers.GlorotUniform(seed=seed)
    x_in = keras.Input(shape=(n_inputs,))
    h = x_in
    for i, width in enumerate(hidden):
        h = keras.layers.Dense(width, activation="relu", kernel_initializer=init, name=f"enc_{i}")(h)
    z_mean = keras.layers.Dense(latent, kernel_initializer=init, name="z_mean")(h)
    z_log_var = keras.layers.Dense(latent, kernel_initializer=init, name="z_log_var")(h)
    encoder = keras.Model(x_in, [z_mean, z_log_var], name="encoder")
    z_in = keras.Input(shape=(latent,))
    h = z_in
    for i, width in enumerate(reversed(hidden)):
        h = keras.layers.Dense(width, activation="relu", kernel_initializer=init, name=f"dec_{i}")(h)
    x_mean = keras.layers.Dense(n_inputs, kernel_initializer=init, name="x_mean")(h)
    x_log_var = keras.layers.Dense(n_inputs, kernel_initializer=init, name="x_log_var")(h)
    decoder = keras.Model(z_in, [x_mean, x_log_var], name="decoder")
    return encoder, decoder


def _gaussian_nll(x: Any, mean: Any, log_var: Any) -> Any:
    """Per-value negative log-likelihood of x under N(mean, exp(log_var))."""
    import tensorflow as tf

    log_var = tf.clip_by_value(log_var, -10.0, 10.0)
    return 0.5 * (_LOG_2PI + log_var + tf.square(x - mean) / tf.exp(log_var))


@dataclass
class VariationalAutoencoder:
    """A dense VAE over flattened windows with a Gaussian decoder.

    Attributes:
        hidden: Encoder widths (mirrored by the decoder).
        latent: Latent dimension.
        beta: Weight of the KL term.
        score_kind: ``"probability"`` (negative log reconstruction probability) or ``"error"``.
        n_samples: Latent samples per window for the reconstruction probability.
    """

    hidden: tuple[int, ...] = (64,)
    latent: int = 8
    beta: float = 1.0
    score_kind: str = "probability"
    n_samples: int = 16
    epochs: int = 40
    batch_size: int = 256
    learning_rate: float = 1e-3
    patience: int = 5
    seed: int = 0
    encoder_: Any = None
    decoder_: Any = None
    history_: dict = field(default_factory=dict)
    shape_: tuple[int, int] | None = None

    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> "VariationalAutoencoder":
        """Maximize the ELBO on windows (n, W, F); early stopping on ``x_val``'s loss."""
        import keras
        import tensorflow as tf

        if self.score_kind not in ("probability", "error"):
            raise ValueError(f"score_kind must be 'probability' or 'error', got {self.score_kind!r}")
        w = as_windows(x)
        self.shape_ = w.shape[1:]
        keras.utils.set_random_seed(self.seed)
        n_in = int(np.prod(self.shape_))
        encoder, decoder = _build(n_in, self.hidden, self.latent, self.seed)
        opt = keras.optimizers.Adam(self.learning_rate)
        variables = encoder.trainable_variables + decoder.trainable_variables
        beta = self.beta

        def loss_of(xb: Any) -> Any:
            z_mean, z_log_var = encoder(xb, training=True)
            eps = tf.random.normal(tf.shape(z_mean))
            z = z_mean + tf.exp(0.5 * z_log_var) * eps
            x_mean, x_log_var = decoder(z, training=True)
            nll = tf.reduce_sum(_gaussian_nll(xb, x_mean, x_log_var), axis=1)
            kl = -0.5 * tf.reduce_sum(1 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var), axis=1)
            return tf.reduce_mean(nll + beta * kl)

        @tf.function
        def step(xb: Any) -> Any:
            with tf.GradientTape() as tape:
                loss = loss_of(xb)
            grads = tape.gradient(loss, [v.value for v in variables])
            opt.apply_gradients(zip(grads, variables, strict=True))
            return loss

        eval_loss = tf.function(loss_of)
        flat = w.reshape(len(w), -1)
        val = as_windows(x_val).reshape(len(x_val), -1) if x_val is not None and len(x_val) else None
        rng = np.random.default_rng(self.seed)
        best, best_weights, waited = math.inf, None, 0
        history: dict[str, list[float]] = {"loss": [], "val_loss": []}
        for _ in range(self.epochs):
            order = rng.permutation(len(flat))
            losses = [float(step(tf.constant(flat[order[i : i + self.batch_size]])))
                      for i in range(0, len(flat), self.batch_size)]
            history["loss"].append(float(np.mean(losses)))
            if val is None:
                continue
            v = float(eval_loss(tf.constant(val)))
            history["val_loss"].append(v)
            if v < best - 1e-6:
                best, waited = v, 0
                best_weights = (encoder.get_weights(), decoder.get_weights())
            else:
                waited += 1
                if waited >= self.patience:
                    break
        if best_weights is not None:
            encoder.set_weights(best_weights[0])
            decoder.set_weights(best_weights[1])
        self.encoder_, self.decoder_, self.history_ = encoder, decoder, history
        return self

    def networks(self) -> dict[str, Any]:
        """The fitted Keras networks by artifact name (saved as ``<name>.keras``)."""
        check_fitted(self, "encoder_")
        return {"encoder": self.encoder_, "decoder": self.decoder_}

    def restore(self, networks: dict[str, Any], shape: tuple[int, int]) -> "VariationalAutoencoder":
        """Set the fitted state from networks loaded from the registry."""
        self.encoder_, self.decoder_, self.shape_ = networks["encoder"], networks["decoder"], tuple(shape)
        return self

    def _flat(self, x: np.ndarray) -> np.ndarray:
        check_fitted(self, "encoder_")
        w = as_windows(x)
        check_shape(w, *self.shape_, "VariationalAutoencoder")
        return w.reshape(len(w), -1)

    def log_probability(self, x: np.ndarray) -> np.ndarray:
        """Per-window log reconstruction probability (Monte-Carlo over latent codes), shape (n,)."""
        return -self._nll_values(x).sum(axis=1)

    def _nll_values(self, x: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        flat = tf.constant(self._flat(x))
        z_mean, z_log_var = self.encoder_(flat, training=False)
        gen = tf.random.Generator.from_seed(self.seed)
        total = 0.0
        for _ in range(self.n_samples):
            z = z_mean + tf.exp(0.5 * z_log_var) * gen.normal(tf.shape(z_mean))
            x_mean, x_log_var = self.decoder_(z, training=False)
            total += _gaussian_nll(flat, x_mean, x_log_var)
        return (total / self.n_samples).numpy()

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """Mean reconstruction from the latent mean, same shape as the windows."""
        flat = self._flat(x)
        z_mean, _ = self.encoder_(flat, training=False)
        x_mean, _ = self.decoder_(z_mean, training=False)
        return np.asarray(x_mean).reshape(as_windows(x).shape)

    def feature_errors(self, x: np.ndarray) -> np.ndarray:
        """Per-feature contribution averaged over time, shape (n, F): negative log-likelihood
        (probability scores) or squared error (error scores)."""
        w = as_windows(x)
        if self.score_kind == "error":
            return ((w - self.reconstruct(w)) ** 2).mean(axis=1)
        nll = self._nll_values(w).reshape(w.shape)
        return nll.mean(axis=1) - nll.mean(axis=1).min(axis=1, keepdims=True)

    def explain(self, x: np.ndarray, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Scores (n,) and feature contributions (n, F); ``batch_size`` is accepted for symmetry."""
        return self.score(x), self.feature_errors(x)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Negative log reconstruction probability, or mean squared error, shape (n,)."""
        if self.score_kind == "error":
            w = as_windows(x)
            return ((w - self.reconstruct(w)) ** 2).mean(axis=(1, 2))
        return -self.log_probability(x)

"""A plain stack of dense layers evaluated in numpy: a trained network's inference without TensorFlow.

A scoring worker that imports TensorFlow pays about 2.5 s and half a gigabyte per Python process
before its first window. The dense autoencoder is, at inference, a chain of ``x @ kernel + bias``
and an elementwise activation per layer (dropout is the identity), so its trained weights are
also kept as arrays (:meth:`DenseStack.arrays`, saved as ``<name>_dense.npz`` beside the Keras
file) and scored with numpy's BLAS, as fast as TensorFlow's compiled call on these sizes.
:meth:`DenseStack.from_keras` only exports a network it can reproduce: every layer an input,
dense or dropout layer in one chain, every activation one of :data:`ACTIVATIONS`, and the
export's output checked against Keras' on a probe batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0, out=x),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "elu": _elu,
}

# a network ``<name>``'s numpy twin is the artifact ``<name>_dense`` (saved as ``<name>_dense.npz``)
TWIN_SUFFIX = "_dense"

# rows per matrix product (see DenseStack.__call__)
CHUNK_ROWS = 256

# the largest difference from Keras' output on the probe batch that an export accepts
_PROBE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class DenseStack:
    """Dense layers applied in order: ``x <- activation_i(x @ kernels[i] + biases[i])``.

    Attributes:
        kernels: Layer i's weights, shape (in_i, out_i), float32.
        biases: Layer i's bias, shape (out_i,), float32.
        activations: Layer i's activation, a key of :data:`ACTIVATIONS`.
    """

    kernels: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activations: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.kernels or not (len(self.kernels) == len(self.biases) == len(self.activations)):
            raise ValueError(
                f"a dense stack needs as many kernels, biases and activations (at least one), got "
                f"{len(self.kernels)}, {len(self.biases)}, {len(self.activations)}"
            )
        unknown = sorted(set(self.activations) - set(ACTIVATIONS))
        if unknown:
            raise ValueError(f"activation {unknown[0]!r} is not one of {sorted(ACTIVATIONS)}")
        for i, (k, b) in enumerate(zip(self.kernels, self.biases, strict=True)):
            if k.ndim != 2 or b.shape != (k.shape[1],) or (i and k.shape[0] != self.kernels[i - 1].shape[1]):
                raise ValueError(f"dense layer {i}: kernel {k.shape} and bias {b.shape} do not chain")

    @property
    def n_inputs(self) -> int:
        """Width of the input rows."""
        return int(self.kernels[0].shape[0])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The network's output for rows ``x`` of shape (n, n_inputs), float32 (n, n_outputs).

        Rows go through the layers :data:`CHUNK_ROWS` at a time, the last chunk padded with
        zeros: BLAS chooses its kernels and thread splits by the matrices' shapes (a lone row
        takes another path than a batch), so with every product of one shape a row's output is
        the same bits whichever rows share its batch, and scoring nights one by one equals
        scoring them at once.
        """
        x = np.asarray(x, np.float32)
        out = np.empty((len(x), self.kernels[-1].shape[1]), np.float32)
        for i in range(0, len(x), CHUNK_ROWS):
            y = x[i : i + CHUNK_ROWS]
            n = len(y)
            if n < CHUNK_ROWS:
                y = np.concatenate([y, np.zeros((CHUNK_ROWS - n, x.shape[1]), np.float32)])
            for kernel, bias, act in zip(self.kernels, self.biases, self.activations, strict=True):
                y = y @ kernel
                y += bias
                y = ACTIVATIONS[act](y)
            out[i : i + n] = y[:n]
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """The stack as named arrays (what ``np.savez`` writes; no object arrays, so it loads with
        ``allow_pickle=False``)."""
        out: dict[str, np.ndarray] = {"activations": np.asarray(self.activations, dtype=str)}
        for i, (k, b) in enumerate(zip(self.kernels, self.biases, strict=True)):
            out[f"kernel_{i}"], out[f"bias_{i}"] = k, b
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "DenseStack":
        """The stack :meth:`arrays` wrote.

        Raises:
            ValueError: When a layer's arrays are missing or do not chain.
        """
        if "activations" not in arrays:
            raise ValueError(f"dense stack arrays lack 'activations'; got {sorted(arrays)}")
        acts = tuple(str(a) for a in np.asarray(arrays["activations"]).ravel())
        try:
            kernels = tuple(np.asarray(arrays[f"kernel_{i}"], np.float32) for i in range(len(acts)))
            biases = tuple(np.asarray(arrays[f"bias_{i}"], np.float32) for i in range(len(acts)))
        except KeyError as e:
            raise ValueError(f"dense stack arrays lack {e.args[0]!r}; got {sorted(arrays)}") from None
        return cls(kernels, biases, acts)

    @classmethod
    def from_keras(cls, model: Any, seed: int = 0) -> "DenseStack | None":
        """The stack of a Keras network made of one chain of dense (and dropout) layers, or None
        when the network holds any other layer or activation, or the export does not reproduce
        Keras' output on a probe batch of 8 random rows (within 1e-4)."""
        import keras

        kernels, biases, acts = [], [], []
        previous = None
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                previous = layer
                continue
            if previous is not None and getattr(layer, "input", None) is not getattr(previous, "output", None):
                return None  # not one chain
            previous = layer
            if isinstance(layer, keras.layers.Dropout):
                continue
            if not isinstance(layer, keras.layers.Dense) or not layer.use_bias:
                return None
            name = getattr(layer.activation, "__name__", "")
            if name not in ACTIVATIONS:
                return None
            kernels.append(np.asarray(layer.kernel.numpy(), np.float32))
            biases.append(np.asarray(layer.bias.numpy(), np.float32))
            acts.append(name)
        if not kernels:
            return None
        try:
            stack = cls(tuple(kernels), tuple(biases), tuple(acts))
        except ValueError:
            return None
        probe = np.random.default_rng(seed).normal(size=(8, stack.n_inputs)).astype(np.float32)
        expected = np.asarray(model(probe, training=False))
        if expected.shape != (8, kernels[-1].shape[1]):
            return None
        return stack if float(np.abs(stack(probe) - expected).max()) <= _PROBE_TOLERANCE else None

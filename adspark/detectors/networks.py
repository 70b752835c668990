"""Keras networks, built apart from any detector wrapper."""

from __future__ import annotations

from typing import Any, Sequence


def dense_autoencoder(
    n_inputs: int,
    hidden: Sequence[int] = (64,),
    bottleneck: int = 16,
    activation: str = "relu",
    dropout: float = 0.0,
    l2: float = 0.0,
    seed: int = 0,
) -> Any:
    """A symmetric dense autoencoder ``n -> hidden... -> bottleneck -> ...hidden -> n``.

    Args:
        n_inputs: Width of the flattened input (W * F).
        hidden: Encoder layer widths (the decoder mirrors them).
        bottleneck: Code width.
        activation: Hidden activation; the output is linear.
        dropout: Dropout after each hidden layer (0 disables).
        l2: L2 weight penalty (0 disables).
        seed: Seed of the weight initializers.

    Returns:
        An uncompiled ``keras.Model`` mapping (b, n_inputs) -> (b, n_inputs).
    """
    import keras

    reg = keras.regularizers.L2(l2) if l2 > 0 else None
    init = keras.initializers.GlorotUniform(seed=seed)
    inputs = keras.Input(shape=(n_inputs,), name="x")
    x = inputs
    widths = [*hidden, bottleneck, *reversed(hidden)]
    for i, width in enumerate(widths):
        x = keras.layers.Dense(
            width, activation=activation, kernel_regularizer=reg, kernel_initializer=init,
            name=f"dense_{i}",
        )(x)
        if dropout > 0 and width != bottleneck:
            x = keras.layers.Dropout(dropout, seed=seed + i)(x)
    outputs = keras.layers.Dense(n_inputs, kernel_initializer=init, name="reconstruction")(x)
    return keras.Model(inputs, outputs, name="dense_autoencoder")


def lstm_autoencoder(
    n_steps: int, n_features: int, units: int = 32, bottleneck: int = 8, seed: int = 0
) -> Any:
    """A sequence-to-sequence LSTM autoencoder (b, W, F) -> (b, W, F).

    The encoder LSTM's last state is projected to a code of width ``bottleneck``, repeated W
    times and decoded by a second LSTM with a per-step linear output.
    """
    import keras

    init = keras.initializers.GlorotUniform(seed=seed)
    inputs = keras.Input(shape=(n_steps, n_features), name="x")
    h = keras.layers.LSTM(units, kernel_initializer=init, name="encoder")(inputs)
    code = keras.layers.Dense(bottleneck, activation="tanh", kernel_initializer=init, name="code")(h)
    x = keras.layers.RepeatVector(n_steps)(code)
    x = keras.layers.LSTM(units, return_sequences=True, kernel_initializer=init, name="decoder")(x)
    outputs = keras.layers.TimeDistributed(
        keras.layers.Dense(n_features, kernel_initializer=init), name="reconstruction"
    )(x)
    return keras.Model(inputs, outputs, name="lstm_autoencoder")

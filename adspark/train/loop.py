"""The data-parallel training loop of reconstruction models (Keras 3, custom loop).

Keras 3 variables are not ``tf.Variable``s, so Horovod's ``DistributedOptimizer`` cannot wrap
them; the loop averages gradients with a distributed ``GradientTape`` over the underlying
``v.value`` variables instead, which works the same with one process or many.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adspark.train.collective import Collective
from adspark.train.feed import Feed


@dataclass(frozen=True)
class LoopParams:
    """Training hyperparameters.

    Attributes:
        epochs: Passes over the data.
        batch_size: Rows per step per process.
        learning_rate: Base rate, multiplied by the number of processes.
        hidden: Encoder widths.
        bottleneck: Code width.
        seed: Seed of initial weights (rank 0's are broadcast).
        threads: TensorFlow intra-op threads per process (``None``: the host's cores shared
            among the processes on it; 1 process keeps TensorFlow's default).
        pin_cores: Pin each process (and the threads it starts from then on: TensorFlow's pools,
            the feed's readers) to one core of those it may use, by local rank, as ``horovodrun
            --binding-args`` / ``mpirun --bind-to core`` do: every process then gets exactly one
            core, which is what weak scaling compares.
        backward_passes_per_step: Batches whose gradients each process adds up locally before
            one allreduce and one update (Horovod's ``backward_passes_per_step``: local gradient
            aggregation). 1: an allreduce per batch. More: fewer, larger updates (the effective
            batch is ``batch_size x backward_passes_per_step x processes``) and one allreduce per
            that many batches, for processes whose steps are short next to an allreduce's latency
            (``docs/benchmarks.md``, weak scaling).
    """

    epochs: int = 5
    batch_size: int = 256
    learning_rate: float = 1e-3
    hidden: tuple[int, ...] = (64,)
    bottleneck: int = 16
    seed: int = 0
    activation: str = "relu"
    dropout: float = 0.0
    l2: float = 0.0
    patience: int = 3
    threads: int | None = None
    pin_cores: bool = False
    backward_passes_per_step: int = 1


@dataclass
class LoopResult:
    """What one process reports back.

    Attributes:
        rank: The process.
        size: Processes in all.
        losses: Loss per epoch, averaged across processes.
        val_losses: Validation loss per epoch, averaged across processes (empty without one).
        best_epoch: The epoch whose weights are returned (lowest validation loss).
        rows_seen: Rows this process trained on (all epochs).
        seconds: Wall time of the loop.
        weights: Final weights (rank 0 only; empty elsewhere).
        feed_seconds: Time spent waiting for the next training batch from the feed.
        compute_seconds: Time spent in training steps (forward, backward, allreduce, update).
    """

    rank: int
    size: int
    losses: list[float]
    val_losses: list[float]
    best_epoch: int
    rows_seen: int
    seconds: float
    weights: list[np.ndarray] = field(default_factory=list)
    feed_seconds: float = 0.0
    compute_seconds: float = 0.0


def _share_cores(tf: Any, processes: int, threads: int | None = None) -> None:
    """Give each of the processes on this host its share of the cores (no oversubscription), or
    ``threads`` intra-op threads when given."""
    threads = threads or max(1, (os.cpu_count() or 1) // processes)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already initialized in this process: keep its pools
        pass


def train_reconstruction(
    ctx: Collective, feed: Feed, params: LoopParams, val_feed: Feed | None = None
) -> LoopResult:
    """Train a dense autoencoder on ``feed`` with the collective ``ctx``.

    Every process runs the same number of steps per epoch: enough for the largest shard to be
    read whole (``ceil(shard_rows / batch_size)``), reading its shard cyclically. With a
    ``val_feed``, each epoch ends with the validation loss averaged across processes; training
    stops after ``patience`` epochs without improvement and the best weights are kept (every
    process takes the same decision, since it sees the same averaged loss). Rank 0 prints one
    line per epoch.
    """
    import keras
    import tensorflow as tf

    from adspark.detectors.networks import dense_autoencoder

    if params.pin_cores and hasattr(os, "sched_setaffinity"):  # before TensorFlow starts its thread pools
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[ctx.local_rank % len(cores)]})
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        tf.config.set_visible_devices(gpus[ctx.local_rank % len(gpus)], "GPU")
    elif ctx.local_size > 1 or params.threads:
        _share_cores(tf, ctx.local_size, params.threads)
    keras.utils.set_random_seed(params.seed)
    model = dense_autoencoder(
        feed.n_columns, params.hidden, params.bottleneck, params.activation, params.dropout,
        params.l2, seed=params.seed,
    )
    optimizer = keras.optimizers.Adam(params.learning_rate * ctx.size)
    ctx.broadcast([v.value for v in model.variables])
    variables = model.trainable_variables

    def loss_of(x: Any) -> Any:
        return tf.reduce_mean(tf.square(model(x, training=True) - x))

    @tf.function
    def step(x: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = loss_of(x)
        tape = ctx.gradient_tape(tape)
        grads = tape.gradient(loss, [v.value for v in variables])
        optimizer.apply_gradients(zip(grads, variables))
        return loss

    passes = max(1, params.backward_passes_per_step)
    # local gradient aggregation: sums of the batches' gradients since the last update
    sums = [tf.Variable(tf.zeros_like(v.value), trainable=False) for v in variables] if passes > 1 else []

    @tf.function
    def accumulate(x: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = loss_of(x)
        for total, g in zip(sums, tape.gradient(loss, [v.value for v in variables])):
            total.assign_add(g)
        return loss

    @tf.function
    def update(count: Any) -> None:
        grads = ctx.mean_all([total / count for total in sums], name="accumulated_gradients")
        optimizer.apply_gradients(zip(grads, variables))
        for total in sums:
            total.assign(tf.zeros_like(total))

    @tf.function
    def val_sums(x: Any) -> Any:
        return tf.reduce_sum(tf.square(model(x, training=False) - x)), tf.cast(tf.size(x), tf.float32)

    def validate() -> float:
        total = count = 0.0
        with val_feed.dataset(ctx.rank, ctx.size, params.batch_size, repeat=False) as ds:
            for x in ds:
                s, n = val_sums(x)
                total, count = total + float(s), count + float(n)
        total = float(ctx.mean(tf.constant(total), name="val_sum"))
        count = float(ctx.mean(tf.constant(count), name="val_count"))
        return total / max(count, 1.0)

    steps = max(1, -(-feed.shard_rows(ctx.size) // params.batch_size))
    losses: list[float] = []
    val_losses: list[float] = []
    seen, best, best_epoch, waited = 0, float("inf"), 0, 0
    best_weights = None
    feed_s = compute_s = 0.0
    t0 = time.perf_counter()
    with feed.dataset(ctx.rank, ctx.size, params.batch_size, repeat=True) as ds:
        batches = iter(ds)
        for epoch in range(params.epochs):
            total = 0.0
            for i in range(steps):
                t_feed = time.perf_counter()
                x = next(batches)
                t_step = time.perf_counter()
                if passes == 1:
                    total += float(step(x))
                else:  # every process runs the same steps, so all update at the same batches
                    total += float(accumulate(x))
                    done = i + 1 == steps or (i + 1) % passes == 0
                    if done:  # the epoch's last update takes the batches left over
                        update(tf.constant(float((i % passes) + 1)))
                compute_s += time.perf_counter() - t_step
                feed_s += t_step - t_feed
                seen += int(x.shape[0])
            losses.append(float(ctx.mean(tf.constant(total / steps), name="epoch_loss")))
            line = f"epoch {epoch + 1}/{params.epochs} loss {losses[-1]:.5f}"
            if val_feed is not None:
                val_losses.append(validate())
                line += f" val_loss {val_losses[-1]:.5f}"
                if val_losses[-1] < best - 1e-7:
                    best, best_epoch, waited = val_losses[-1], epoch, 0
                    best_weights = model.get_weights()
                else:
                    waited += 1
            else:
                best_epoch = epoch
            if ctx.rank == 0:
                print(line, flush=True)
            if val_feed is not None and waited >= params.patience:
                break
    if best_weights is not None:
        model.set_weights(best_weights)
    weights = [np.asarray(w) for w in model.get_weights()] if ctx.rank == 0 else []
    return LoopResult(
        ctx.rank, ctx.size, losses, val_losses, best_epoch, seen, time.perf_counter() - t0, weights,
        feed_s, compute_s,
    )

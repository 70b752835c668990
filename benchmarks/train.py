"""Benchmark: training throughput, Horovod 2 processes vs 1 vs a plain Keras ``fit``.

The same dense autoencoder (240 -> 128 -> 32 -> 8 -> 32 -> 128 -> 240, the demo's network on
24 x 10 windows), the same windows, batch size and epochs, on the same cores:

- ``keras_fit``: ``model.fit`` on numpy arrays in this process (the plain baseline).
- ``loop_local``: adspark's training loop with the in-process collective and an array feed.
- ``horovod_1`` / ``horovod_2``: ``horovod.spark.run`` with 1 or 2 Gloo processes inside Spark
  tasks, fed by petastorm from the Spark DataFrame (the ``train.backend: horovod`` path).

Samples/s counts training rows processed per second of the training loop (Spark/Horovod start-up
and petastorm materialization are reported apart). For each loop the epoch time is split into
waiting on the feed and computing the step (forward, backward, allreduce, update).

Two scaling figures, as Horovod reports them: strong scaling (2 processes vs 1 on the same data,
each process with its share of the cores) and weak scaling (``--weak``: ``horovod_1t1`` and
``horovod_2t1``, 1 TensorFlow intra-op thread per process, N processes given N times the windows,
so each process has the same work): efficiency = samples/s of N / (N x samples/s of 1); and
the same pinned to one core per process (``horovod_1p1`` / ``horovod_2p1``), so that the single
process cannot borrow the idle core for its feed and Horovod threads; and the ceiling of these
cores: the same loop in 1 or 2 unconnected processes pinned one per core (``independent_*p1``: no
allreduce, no Spark, no petastorm).

Usage: ``python benchmarks/train.py [--windows 200000] [--epochs 3] [--batch 256] [--weak]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np

HIDDEN, BOTTLENECK, WIDTH = (128, 32), 8, 240


def _windows(n: int, seed: int = 0) -> np.ndarray:
    """Low-rank windows plus noise, shape (n, WIDTH), float32."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(6, WIDTH)).astype(np.float32)
    codes = rng.normal(size=(n, 6)).astype(np.float32)
    return (codes @ basis + 0.1 * rng.normal(size=(n, WIDTH))).astype(np.float32)


def run_keras_fit(x: np.ndarray, epochs: int, batch: int) -> dict:
    import keras

    from adspark.detectors.networks import dense_autoencoder

    keras.utils.set_random_seed(0)
    model = dense_autoencoder(WIDTH, HIDDEN, BOTTLENECK, "relu", 0.0, 0.0, 0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    t0 = time.perf_counter()
    hist = model.fit(x, x, epochs=epochs, batch_size=batch, verbose=0, shuffle=True)
    seconds = time.perf_counter() - t0
    return {"method": "keras_fit", "procs": 1, "seconds": seconds,
            "samples_per_s": len(x) * epochs / seconds, "loss": hist.history["loss"][-1],
            "feed_s": None, "compute_s": None, "setup_s": 0.0}


def _loop_row(name: str, results: list, setup_s: float) -> dict:
    r0 = results[0]
    seconds = max(r.seconds for r in results)
    return {"method": name, "procs": r0.size, "seconds": seconds,
            "samples_per_s": sum(r.rows_seen for r in results) / seconds, "loss": r0.losses[-1],
            "feed_s": float(np.mean([r.feed_seconds for r in results])),
            "compute_s": float(np.mean([r.compute_seconds for r in results])), "setup_s": setup_s}


def run_loop_local(x: np.ndarray, epochs: int, batch: int, passes: int = 1) -> dict:
    from adspark.train.backend import LocalBackend
    from adspark.train.feed import ArrayFeed
    from adspark.train.loop import LoopParams, train_reconstruction

    params = LoopParams(epochs=epochs, batch_size=batch, hidden=HIDDEN, bottleneck=BOTTLENECK,
                        backward_passes_per_step=passes)
    results = LocalBackend().run(train_reconstruction, (ArrayFeed(x), params, None))
    return _loop_row("loop_local", results, 0.0)


def _independent(job: tuple[int, int, int, int, int, int]) -> object:
    """One training process pinned to ``core``, 1 thread, on its own windows (no peers)."""
    core, n, epochs, batch, seed, passes = job
    os.sched_setaffinity(0, {core})
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from adspark.train.backend import LocalBackend
    from adspark.train.feed import ArrayFeed
    from adspark.train.loop import LoopParams, train_reconstruction

    params = LoopParams(epochs=epochs, batch_size=batch, hidden=HIDDEN, bottleneck=BOTTLENECK, threads=1,
                        backward_passes_per_step=passes)
    return LocalBackend().run(train_reconstruction, (ArrayFeed(_windows(n, seed)), params, None))[0]


def run_independent(n: int, epochs: int, batch: int, procs: int, passes: int = 1) -> dict:
    """The ceiling of weak scaling on these cores: ``procs`` unconnected processes, each pinned
    to its own core with 1 thread, training at once (no allreduce, no Spark, no petastorm)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    cores = sorted(os.sched_getaffinity(0))
    with ProcessPoolExecutor(procs, mp_context=mp.get_context("spawn")) as pool:
        results = list(pool.map(_independent, [(cores[i % len(cores)], n, epochs, batch, i, passes) for i in range(procs)]))
    row = _loop_row(f"independent_{procs}p1", results, 0.0)
    row["procs"] = procs
    return row


def run_horovod(x: np.ndarray, epochs: int, batch: int, procs: int, cache: str, threads: int | None = None,
                name: str | None = None, pin: bool = False, passes: int = 1,
                cycle_time_ms: float | None = None) -> dict:
    from adspark.config import SparkConfig
    from adspark.session import get_spark
    from adspark.train.backend import HorovodSparkBackend
    from adspark.train.feed import PetastormFeed
    from adspark.train.loop import LoopParams, train_reconstruction

    spark = get_spark(SparkConfig(master="local[2]", shuffle_partitions=2, driver_memory="6g"))
    t0 = time.perf_counter()
    df = spark.createDataFrame([(row.tolist(),) for row in x], "values array<float>")
    feed = PetastormFeed(df, "values", WIDTH, procs, cache)
    setup_s = time.perf_counter() - t0
    params = LoopParams(epochs=epochs, batch_size=batch, hidden=HIDDEN, bottleneck=BOTTLENECK, threads=threads,
                        pin_cores=pin, backward_passes_per_step=passes)
    try:
        t1 = time.perf_counter()
        results = HorovodSparkBackend(num_proc=procs, cycle_time_ms=cycle_time_ms).run(train_reconstruction, (feed, params, None))
        total = time.perf_counter() - t1
    finally:
        feed.delete()
    row = _loop_row(name or f"horovod_{procs}", results, setup_s)
    row["start_s"] = total - row["seconds"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--methods", nargs="+", default=["keras_fit", "loop_local", "horovod_1", "horovod_2"])
    parser.add_argument("--passes", type=int, default=1,
                        help="backward passes per step: batches whose gradients are added up before one allreduce")
    parser.add_argument("--cycle-time", type=float, default=None,
                        help="HOROVOD_CYCLE_TIME of the training processes, ms (default: Horovod's)")
    parser.add_argument("--weak", action="store_true",
                        help="weak scaling: horovod_1t1 and horovod_2t1 (1 thread per process, N x the windows)")
    args = parser.parse_args()
    if args.weak:
        args.methods = ["horovod_1t1", "horovod_2t1", "horovod_1p1", "horovod_2p1", "independent_1p1",
                        "independent_2p1"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    x = _windows(args.windows)
    folder = tempfile.mkdtemp(prefix="adspark-bench-petastorm-")
    cache = f"file://{folder}"
    k = args.passes
    hv = {"passes": k, "cycle_time_ms": args.cycle_time}
    runners = {
        "keras_fit": lambda: run_keras_fit(x, args.epochs, args.batch),
        "loop_local": lambda: run_loop_local(x, args.epochs, args.batch, k),
        "horovod_1": lambda: run_horovod(x, args.epochs, args.batch, 1, cache, **hv),
        "horovod_2": lambda: run_horovod(x, args.epochs, args.batch, 2, cache, **hv),
        "horovod_1t1": lambda: run_horovod(x, args.epochs, args.batch, 1, cache, 1, "horovod_1t1", **hv),
        "horovod_2t1": lambda: run_horovod(np.concatenate([x, _windows(len(x), seed=1)]), args.epochs, args.batch, 2,
                                           cache, 1, "horovod_2t1", **hv),
        "independent_1p1": lambda: run_independent(len(x), args.epochs, args.batch, 1, k),
        "independent_2p1": lambda: run_independent(len(x), args.epochs, args.batch, 2, k),
        "horovod_1p1": lambda: run_horovod(x, args.epochs, args.batch, 1, cache, 1, "horovod_1p1", pin=True, **hv),
        "horovod_2p1": lambda: run_horovod(np.concatenate([x, _windows(len(x), seed=1)]), args.epochs, args.batch, 2,
                                           cache, 1, "horovod_2p1", pin=True, **hv),
    }
    try:
        rows = [runners[m]() for m in args.methods]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    base = {r["method"]: r["samples_per_s"] for r in rows}
    base.setdefault("keras_fit", float("nan"))
    base.setdefault("horovod_1", float("nan"))
    print(f"\n{args.windows} windows x {WIDTH}, {args.epochs} epochs, batch {args.batch}/process, "
          f"{k} backward pass(es) per allreduce, Horovod cycle time {args.cycle_time or 'default'} ms, "
          f"{os.cpu_count()} cores")
    print("| method | processes | loop s | samples/s | vs keras fit | vs horovod 1 | feed s | compute s | "
          "final loss |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        feed = "-" if r["feed_s"] is None else f"{r['feed_s']:.1f}"
        comp = "-" if r["compute_s"] is None else f"{r['compute_s']:.1f}"
        print(f"| {r['method']} | {r['procs']} | {r['seconds']:.1f} | {r['samples_per_s']:,.0f} | "
              f"{r['samples_per_s'] / base['keras_fit']:.2f}x | "
              f"{r['samples_per_s'] / base['horovod_1']:.2f}x | {feed} | {comp} | {r['loss']:.4f} |")
    for r in rows:
        if "start_s" in r:
            print(f"{r['method']}: petastorm materialization {r['setup_s']:.1f} s, "
                  f"horovod.spark.run start-up and teardown {r['start_s']:.1f} s")
    if "horovod_2" in base:
        print(f"strong scaling, horovod 2 vs 1 processes on the same windows: "
              f"{base['horovod_2'] / base['horovod_1']:.2f}x")
    weak = {r["method"]: r for r in rows}
    for a, b, what in (("horovod_1t1", "horovod_2t1", "1 thread each"),
                       ("horovod_1p1", "horovod_2p1", "1 thread each, pinned to one core each"),
                       ("independent_1p1", "independent_2p1", "unconnected, pinned (the cores' own ceiling)")):
        if a in weak and b in weak:
            one, two = weak[a], weak[b]
            print(f"weak scaling efficiency, 2 processes vs 1, {what}: "
                  f"{two['samples_per_s'] / (2 * one['samples_per_s']):.2f} (target >= 0.9); per process: feed "
                  f"{one['feed_s']:.1f} -> {two['feed_s']:.1f} s, step {one['compute_s']:.1f} -> {two['compute_s']:.1f} s "
                  "(step = forward, backward, allreduce, update)")


if __name__ == "__main__":
    main()

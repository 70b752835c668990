"""Benchmark: the demo's autoencoder on GPU vs CPU: training samples/s and scoring windows/s.

The demo's network (240 -> 128 -> 32 -> 8 -> 32 -> 128 -> 240 over 24 x 10 windows, built by
``adspark.detectors.networks.dense_autoencoder``), the same synthetic windows as
``benchmarks/train.py``, measured on every Keras backend this machine has, on CPU and on GPU,
side by side in one run:

- **train**: ``model.fit`` (Adam, mean squared error) at the demo's batch size (256) and at 4096,
  after a warm-up fit that traces and compiles the step; samples/s of the timed epochs.
- **score**: what adspark's scorer computes per window
  (:meth:`adspark.detectors.autoencoders.DenseAutoencoder.feature_errors`): the reconstruction
  and the per-feature squared errors averaged over the window's steps, in one compiled call per
  batch of 4096 windows (the demo's ``score.batch_size``) and of 65536, numpy in and (n, F)
  numpy out (host-device copies included, as a scorer pays them).

Each (backend, device) runs in a child process, since Keras binds its backend at import and a
framework binds its devices at start-up; CPU children hide the GPUs (``CUDA_VISIBLE_DEVICES=``).
The product trains and scores with TensorFlow; the other backends run the same Keras model,
which is what can be measured where TensorFlow's CUDA build cannot be installed.

Usage: ``python benchmarks/gpu.py [--backends tensorflow jax torch] [--windows 262144]
[--epochs 3] [--out results.json]``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np

W, F = 24, 10
HIDDEN, BOTTLENECK = (128, 32), 8
TRAIN_BATCHES = (256, 4096)
SCORE_BATCHES = (4096, 65536)


def _windows(n: int, seed: int = 0) -> np.ndarray:
    """Low-rank windows plus noise, shape (n, W * F), float32 (as ``benchmarks/train.py``)."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(6, W * F)).astype(np.float32)
    codes = rng.normal(size=(n, 6)).astype(np.float32)
    return (codes @ basis + 0.1 * rng.normal(size=(n, W * F))).astype(np.float32)


def _device_of(backend: str) -> str:
    """The device Keras computes on in this process, e.g. ``gpu: NVIDIA H100 80GB HBM3``."""
    if backend == "jax":
        import jax

        d = jax.devices()[0]
        return f"{d.platform}: {d.device_kind}"
    if backend == "torch":
        import torch

        return f"gpu: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"gpu: {tf.config.experimental.get_device_details(gpus[0]).get('device_name', gpus[0].name)}"
    return "cpu"


def _scorer(net: object) -> object:
    """A Keras model mapping windows (b, W, F) to per-feature errors (b, F), one compiled call."""
    import keras
    from keras import ops

    from adspark.detectors.base import time_weights

    x = keras.Input(shape=(W, F), name="windows")
    y = ops.reshape(net(ops.reshape(x, (-1, W * F))), (-1, W, F))
    errors = ops.tensordot(ops.square(x - y), time_weights(W).astype(np.float32), axes=[[1], [0]])
    return keras.Model(x, errors, name="feature_errors")


def child(backend: str, want: str, windows: int, epochs: int) -> dict:
    """Measure one backend on the device this process sees (``want``: cpu or gpu); returns one
    result row, or one with ``error`` when ``want`` is gpu and the backend sees none."""
    import keras

    from adspark.detectors.networks import dense_autoencoder

    device = _device_of(backend)
    if not device.startswith(want):
        return {"backend": backend, "device": want, "error": f"no GPU visible to {backend} ({device})"}
    x = _windows(windows)
    row: dict = {"backend": backend, "device": device, "keras": keras.__version__,
                 "cpus": os.cpu_count(), "windows": windows, "epochs": epochs}
    for batch in TRAIN_BATCHES:
        keras.utils.set_random_seed(0)
        model = dense_autoencoder(W * F, HIDDEN, BOTTLENECK, "relu", 0.0, 0.0, 0)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        model.fit(x[: batch * 8], x[: batch * 8], epochs=1, batch_size=batch, verbose=0)
        n = len(x) // batch * batch
        t0 = time.perf_counter()
        hist = model.fit(x[:n], x[:n], epochs=epochs, batch_size=batch, verbose=0, shuffle=False)
        seconds = time.perf_counter() - t0
        row[f"train_{batch}_samples_per_s"] = n * epochs / seconds
        row[f"train_{batch}_loss"] = float(hist.history["loss"][-1])
    scorer = _scorer(model)
    w = x.reshape(-1, W, F)
    # The scorer's errors equal the plain computation (loose: GPUs multiply in TF32 by default).
    expect = ((np.asarray(model.predict_on_batch(x[:512])).reshape(-1, W, F) - w[:512]) ** 2).mean(axis=1)
    np.testing.assert_allclose(np.asarray(scorer.predict_on_batch(w[:512])), expect, rtol=2e-2, atol=1e-3)
    for batch in SCORE_BATCHES:
        n = len(w) // batch * batch
        scorer.predict_on_batch(w[:batch])
        t0 = time.perf_counter()
        outs = [np.asarray(scorer.predict_on_batch(w[i : i + batch])) for i in range(0, n, batch)]
        seconds = time.perf_counter() - t0
        errors = np.concatenate(outs)
        assert errors.shape == (n, F) and np.isfinite(errors).all(), errors.shape
        row[f"score_{batch}_windows_per_s"] = n / seconds
    return row


def _available(backend: str) -> bool:
    return importlib.util.find_spec(backend) is not None


def run_child(backend: str, device: str, windows: int, epochs: int) -> dict:
    """Run :func:`child` in a fresh interpreter with ``backend`` on ``device`` (cpu or gpu)."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
        if backend == "jax":
            env["JAX_PLATFORMS"] = "cpu"
    args = [sys.executable, __file__, "--child", backend, device, "--windows", str(windows), "--epochs", str(epochs)]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"backend": backend, "device": device, "error": " | ".join(tail)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _ratio(gpu: dict, cpu: dict, key: str) -> str:
    return f"{gpu[key] / cpu[key]:.1f}x" if key in gpu and key in cpu else "-"


def report(rows: list[dict]) -> str:
    """Markdown: one line per backend and device, then GPU / CPU ratios per backend."""
    keys = [f"train_{b}_samples_per_s" for b in TRAIN_BATCHES] + [f"score_{b}_windows_per_s" for b in SCORE_BATCHES]
    heads = [f"train samples/s (batch {b})" for b in TRAIN_BATCHES] + [f"score windows/s (batch {b})" for b in SCORE_BATCHES]
    lines = ["| backend | device | CPUs | " + " | ".join(heads) + " |", "|---" * (3 + len(keys)) + "|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['backend']} | {r['device']} | - | " + " | ".join("-" for _ in keys) + f" | {r['error']}")
            continue
        lines.append(f"| {r['backend']} | {r['device']} | {r['cpus']} | " + " | ".join(f"{r[k]:,.0f}" for k in keys) + " |")
    ratios = []
    for backend in dict.fromkeys(r["backend"] for r in rows):
        found = {r["device"][:3]: r for r in rows if r["backend"] == backend and "error" not in r}
        if "gpu" in found and "cpu" in found:
            ratios.append(f"| {backend} | GPU / CPU | | " + " | ".join(_ratio(found["gpu"], found["cpu"], k) for k in keys) + " |")
    return "\n".join(lines + ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--devices", nargs="+", default=["cpu", "gpu"], choices=["cpu", "gpu"])
    parser.add_argument("--windows", type=int, default=262_144)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", help="write the rows as JSON here too")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.windows < max(SCORE_BATCHES):
        parser.error(f"--windows: expected at least {max(SCORE_BATCHES)} (the largest scoring batch), got {args.windows}")
    if args.child:
        print(json.dumps(child(*args.child, args.windows, args.epochs)), flush=True)
        return
    rows = []
    for backend in args.backends:
        if not _available(backend):
            print(f"{backend}: not installed, skipped", flush=True)
            continue
        for device in args.devices:
            rows.append(run_child(backend, device, args.windows, args.epochs))
            print(json.dumps(rows[-1]), flush=True)
    print(report(rows), flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()

"""The dense autoencoder's numpy twin: exported only where it reproduces Keras, scored without
TensorFlow in a fresh process, and preferred by the scorer's artifact files."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from adspark.detectors.autoencoders import DENSE_ARTIFACT, DenseAutoencoder
from adspark.detectors.dense_stack import ACTIVATIONS, DenseStack
from adspark.detectors.networks import dense_autoencoder, lstm_autoencoder
from adspark.models.registry import load_networks, needs_keras, scoring_files, write_networks


def test_a_stack_computes_layer_by_layer():
    k0 = np.array([[1.0, -1.0], [2.0, 0.5]], np.float32)
    k1 = np.array([[1.0], [3.0]], np.float32)
    stack = DenseStack((k0, k1), (np.array([0.5, 0.0], np.float32), np.array([-1.0], np.float32)), ("relu", "linear"))
    x = np.array([[1.0, 1.0], [-1.0, 0.0]], np.float32)
    # row 0: [3.5, -0.5] -> relu [3.5, 0] -> 3.5 - 1; row 1: [-0.5, 1] -> [0, 1] -> 3 - 1
    np.testing.assert_allclose(stack(x), [[2.5], [2.0]])
    assert stack.n_inputs == 2
    again = DenseStack.from_arrays(stack.arrays())
    np.testing.assert_array_equal(again(x), stack(x))
    assert again.activations == ("relu", "linear")


def test_a_stack_rejects_what_does_not_chain():
    k = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="activation 'gelu' is not one of"):
        DenseStack((k,), (np.zeros(3, np.float32),), ("gelu",))
    with pytest.raises(ValueError, match="dense layer 1: kernel .* do not chain"):
        DenseStack((k, k), (np.zeros(3, np.float32), np.zeros(3, np.float32)), ("relu", "relu"))
    with pytest.raises(ValueError, match="lack 'bias_0'"):
        DenseStack.from_arrays({"activations": np.array(["relu"]), "kernel_0": k})


def test_a_rows_output_does_not_depend_on_the_rows_beside_it():
    """Bit for bit: alone, at any offset of any batch size (BLAS takes other paths for a lone row
    or a narrow layer; the stack multiplies fixed-size chunks)."""
    rng = np.random.default_rng(4)
    model = dense_autoencoder(240, (128, 32), 8, seed=1)
    stack = DenseStack.from_keras(model)
    x = rng.normal(size=(1200, 240)).astype(np.float32)
    whole = stack(x)
    for size in (1, 2, 7, 31, 255, 256, 257, 600):
        for offset in (0, 5, 333):
            np.testing.assert_array_equal(stack(x[offset : offset + size]), whole[offset : offset + size])
    assert stack(x[:0]).shape == (0, 240)


@pytest.mark.parametrize("activation", sorted(set(ACTIVATIONS) - {"linear"}))
def test_export_reproduces_keras(activation):
    model = dense_autoencoder(12, (8,), 3, activation=activation, dropout=0.1, seed=2)
    stack = DenseStack.from_keras(model)
    assert stack is not None and stack.activations == (activation, activation, activation, "linear")
    x = np.random.default_rng(1).normal(size=(50, 12)).astype(np.float32)
    np.testing.assert_allclose(stack(x), np.asarray(model(x, training=False)), atol=1e-5)


def test_networks_that_are_not_a_dense_stack_are_not_exported():
    assert DenseStack.from_keras(lstm_autoencoder(4, 3, units=4, bottleneck=2)) is None
    assert DenseStack.from_keras(dense_autoencoder(12, (8,), 3, activation="gelu")) is None


def test_a_trained_dense_autoencoder_scores_from_its_twin_as_keras_does(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4, 3)).astype(np.float32)
    det = DenseAutoencoder(hidden=(8,), bottleneck=2, epochs=2, batch_size=64, recency_halflife=2.0).fit(x, x[:60])
    assert det.stack_ is not None
    twin = det.feature_errors(x, batch_size=128)
    keras_only = DenseAutoencoder(hidden=(8,), bottleneck=2, recency_halflife=2.0)
    keras_only.restore({"model": det.model_}, (4, 3))
    keras_only.stack_ = None  # force the TensorFlow path
    np.testing.assert_allclose(twin, keras_only.feature_errors(x), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(det.reconstruct(x), keras_only.reconstruct(x), atol=1e-5)
    names = [p.name for p in write_networks(tmp_path, det.networks())]
    assert names == ["model.keras", f"{DENSE_ARTIFACT}.npz"]
    files = {n: (tmp_path / n).read_bytes() for n in names}
    assert sorted(scoring_files(files)) == [f"{DENSE_ARTIFACT}.npz"]
    assert needs_keras(files) and not needs_keras(scoring_files(files))
    # a network without a twin (a model registered before twins existed) keeps its Keras file
    assert sorted(scoring_files({"model.keras": b"", "entities/0/model.keras": b""})) == [
        "entities/0/model.keras", "model.keras",
    ]
    assert sorted(load_networks(tmp_path)) == ["model", DENSE_ARTIFACT]
    assert sorted(load_networks(tmp_path, scoring=True)) == [DENSE_ARTIFACT]
    loaded = DenseAutoencoder(hidden=(8,), bottleneck=2, recency_halflife=2.0).restore(
        load_networks(tmp_path, scoring=True), (4, 3))
    assert loaded.model_ is None and sorted(loaded.networks()) == [DENSE_ARTIFACT]
    np.testing.assert_array_equal(loaded.feature_errors(x, batch_size=128), twin)
    # a window's errors are the same bits in any batch (nights scored one by one equal the range)
    for size, offset in ((1, 0), (1, 77), (13, 5), (150, 100)):
        np.testing.assert_array_equal(loaded.feature_errors(x[offset : offset + size]), twin[offset : offset + size])


def test_the_twin_scores_in_a_process_that_never_imports_tensorflow(tmp_path):
    """What a scoring worker does: load the scoring files, build the detector, score."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 4, 3)).astype(np.float32)
    det = DenseAutoencoder(hidden=(8,), bottleneck=2, epochs=1, batch_size=64).fit(x)
    folder = tmp_path / "artifact"
    write_networks(folder, det.networks())
    (folder / "model.keras").unlink()  # what scoring_files leaves out
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", det.score(x))
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        import adspark.pipeline.scorer  # the worker's own imports
        from adspark.config import detector_config
        from adspark.detectors.factory import build_detector
        from adspark.models.registry import load_networks
        det = build_detector(detector_config({{"type": "dense_ae", "hidden": [8], "bottleneck": 2}}))
        det.restore(load_networks({str(folder)!r}), (4, 3))
        np.testing.assert_array_equal(det.score(np.load({str(tmp_path / "x.npy")!r})),
                                      np.load({str(tmp_path / "expected.npy")!r}))
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
        assert not loaded, loaded[:5]
        print("ok")
    """)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_a_scoring_worker_caps_its_blas_threads():
    from threadpoolctl import threadpool_info, threadpool_limits

    from adspark.pipeline.scorer import limit_threads

    def blas_threads() -> set[int]:
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    with threadpool_limits(limits=None):  # this process's limits come back afterwards
        threadpool_limits(limits=2, user_api="blas")
        assert blas_threads() == {2}
        limit_threads(1, keras=False)
        assert blas_threads() == {1}

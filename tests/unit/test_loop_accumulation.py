"""``LoopParams.backward_passes_per_step``: local gradient aggregation before each update."""

from __future__ import annotations

import numpy as np

from adspark.train.backend import LocalBackend
from adspark.train.collective import LocalCollective
from adspark.train.feed import ArrayFeed
from adspark.train.loop import LoopParams, train_reconstruction


def _train(x: np.ndarray, batch: int, passes: int) -> list[np.ndarray]:
    params = LoopParams(epochs=2, batch_size=batch, hidden=(8,), bottleneck=3, seed=4,
                        backward_passes_per_step=passes)
    return LocalBackend().run(train_reconstruction, (ArrayFeed(x), params))[0].weights


def test_two_passes_of_half_batches_update_as_one_full_batch():
    # the mean loss of a batch of 64 is the mean of its two halves' mean losses: adding up the
    # halves' gradients and averaging them gives the full batch's gradient, hence the same updates
    x = np.random.default_rng(0).normal(size=(128, 6)).astype(np.float32)
    full, halves = _train(x, 64, 1), _train(x, 32, 2)
    assert len(full) == len(halves)
    for a, b in zip(full, halves, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # an update per half batch is another training
    assert not all(np.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(full, _train(x, 32, 1), strict=True))


def test_an_epochs_leftover_batches_make_its_last_update():
    # 4 batches per epoch and 8 passes per update: each epoch still ends with an update over its
    # 4 batches (the validation and early stopping judge updated weights), as one full batch would
    x = np.random.default_rng(1).normal(size=(128, 6)).astype(np.float32)
    for a, b in zip(_train(x, 128, 1), _train(x, 32, 8), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_the_local_collective_averages_a_group_as_itself():
    values = [np.ones(3), np.zeros(2)]
    assert LocalCollective().mean_all(values, name="g") == values

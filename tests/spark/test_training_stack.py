"""The installed stack end to end: petastorm feeds every row; horovod trains with 2 processes."""

import numpy as np
import pytest

from adspark.train.backend import HorovodSparkBackend, LocalBackend
from adspark.train.feed import ArrayFeed, PetastormFeed
from adspark.train.loop import LoopParams, train_reconstruction


@pytest.fixture()
def data():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(1001, 3)) @ rng.normal(size=(3, 12))).astype("float32")


@pytest.fixture()
def feed(spark, tmp_path, data):
    df = spark.createDataFrame([(i, row.tolist()) for i, row in enumerate(data)], "id int, values array<float>")
    f = PetastormFeed(df, "values", 12, shards=2, cache_dir=f"file://{tmp_path}/petastorm")
    yield f
    f.delete()


def test_petastorm_feed_delivers_every_row_once_per_epoch(feed, data):
    seen = []
    for rank in range(2):
        with feed.dataset(rank, 2, batch_size=100, repeat=False) as ds:
            seen.extend(np.concatenate([b.numpy() for b in ds]))
    assert len(seen) == len(data) == feed.n_rows

    def key(a):
        return sorted(map(tuple, np.round(np.asarray(a), 4)))

    assert key(seen) == key(data)
    assert feed.shard_rows(2) == 501


def test_petastorm_feed_turns_tf_data_autotuning_off(feed):
    # an autotuned iterator's deletion waited 15-20 s for its optimization thread in Horovod processes
    with feed.dataset(0, 2, batch_size=100, repeat=True) as ds:
        assert ds.options().autotune.enabled is False
        assert next(iter(ds)).shape == (100, 12)


def test_horovod_two_processes_train_on_petastorm(feed, data):
    params = LoopParams(epochs=4, batch_size=64, hidden=(16,), bottleneck=3, seed=1)
    results = HorovodSparkBackend(num_proc=2).run(train_reconstruction, (feed, params))
    assert [(r.rank, r.size) for r in results] == [(0, 2), (1, 2)]
    assert results[0].losses == results[1].losses  # averaged across ranks
    assert results[0].losses[-1] < results[0].losses[0]
    assert all(r.rows_seen >= 4 * 501 for r in results)
    local = LocalBackend().run(train_reconstruction, (ArrayFeed(data), params))[0]
    # same data, same model: comparable loss whichever backend
    assert abs(local.losses[-1] - results[0].losses[-1]) < 0.5 * local.losses[0]
    assert results[0].weights and not results[1].weights


@pytest.mark.slow
def test_horovod_two_processes_add_up_gradients_before_each_allreduce(feed, data):
    # 501 rows per process, batch 64: 8 batches an epoch, updates after batches 3, 6 and 8
    params = LoopParams(epochs=4, batch_size=64, hidden=(16,), bottleneck=3, seed=1, backward_passes_per_step=3)
    results = HorovodSparkBackend(num_proc=2).run(train_reconstruction, (feed, params))
    assert results[0].losses == results[1].losses and results[0].losses[-1] < results[0].losses[0]
    local = LocalBackend().run(train_reconstruction, (ArrayFeed(data), params))[0]
    assert abs(local.losses[-1] - results[0].losses[-1]) < 0.5 * local.losses[0]

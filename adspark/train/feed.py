"""Data feeds: how each training process gets its share of the windows as ``tf.data``.

:class:`PetastormFeed` materializes a Spark DataFrame once with petastorm's
``make_spark_converter`` and gives rank ``r`` of ``n`` the row groups ``r, r + n, ...``.
:class:`ArrayFeed` serves numpy arrays in process (tests, local backend). Nothing else in adspark
imports petastorm.

Row groups are never shuffled (petastorm 0.13.1 can yield 0 rows for an epoch when they are), and
the DataFrame is repartitioned into one equal-sized file per process, so each shard holds
``ceil(n / size)`` or ``floor(n / size)`` rows.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Protocol

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame


class Feed(Protocol):
    """A source of fixed-width float32 rows for training."""

    n_rows: int
    n_columns: int

    def shard_rows(self, shard_count: int) -> int:
        """The most rows any of ``shard_count`` shards holds."""

    def dataset(self, rank: int, size: int, batch_size: int, repeat: bool) -> Any:
        """A context manager yielding a ``tf.data.Dataset`` of float32 batches (b, n_columns)."""


@dataclass
class ArrayFeed:
    """An in-memory feed over a numpy array, sharded like petastorm (every size-th row).

    Attributes:
        values: Shape (n, d).
    """

    values: np.ndarray

    @property
    def n_rows(self) -> int:
        """Rows in all."""
        return int(self.values.shape[0])

    @property
    def n_columns(self) -> int:
        """Values per row."""
        return int(self.values.shape[1])

    def shard_rows(self, shard_count: int) -> int:
        """``ceil(n / shard_count)``."""
        return math.ceil(self.n_rows / shard_count)

    @contextlib.contextmanager
    def dataset(self, rank: int, size: int, batch_size: int, repeat: bool) -> Iterator[Any]:
        """Rows ``rank, rank + size, ...`` in batches."""
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices(self.values[rank::size].astype(np.float32))
        ds = ds.repeat() if repeat else ds
        yield ds.batch(batch_size)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Petastorm 0.13 calls pyarrow APIs deprecated since pyarrow 5 (a ``FutureWarning`` each time
    it resolves a file system): silence those around its calls."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def without_autotune(ds: Any) -> Any:
    """``ds`` with tf.data's autotuning off.

    An autotuned pipeline's iterator owns a background optimization thread, and deleting the
    iterator waits for it. Over petastorm's generator, inside Horovod processes (one intra-op
    thread each), that wait took 15-20 s in 7 of 15 trainings on the demo's windows (native stacks:
    the main thread in ``RootDataset::Iterator::~Iterator``, waiting on a tf.data pool thread,
    when the training function returned); with autotuning off, 0 of 6. The buffer sizes it would
    tune are petastorm's prefetch and the map, each a few batches.

    Args:
        ds: A ``tf.data.Dataset``.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


class PetastormFeed:
    """A Spark DataFrame with an ``array<float>`` column, converted once with petastorm.

    Args:
        df: The rows; only ``column`` is kept.
        column: The array column (fixed length ``n_columns``).
        n_columns: Its length.
        shards: Training processes that will read it (files written, one per shard).
        cache_dir: A folder (URL) readable by every executor, e.g. ``file:///tmp/adspark-cache``.
    """

    def __init__(
        self, df: "DataFrame", column: str, n_columns: int, shards: int, cache_dir: str
    ) -> None:
        with _quiet():
            from petastorm.spark import SparkDatasetConverter, make_spark_converter
        # its notes that float64 becomes float32 (wanted) and that the files are small (they are: one per process)
        logging.getLogger("petastorm.spark.spark_dataset_converter").setLevel(logging.ERROR)

        spark = df.sparkSession
        spark.conf.set(SparkDatasetConverter.PARENT_CACHE_DIR_URL_CONF, cache_dir)
        self.n_columns = n_columns
        self.column = column
        with _quiet():
            self._converter = make_spark_converter(df.select(column).repartition(shards))
        self.n_rows = len(self._converter)
        self._shards = shards

    def shard_rows(self, shard_count: int) -> int:
        """``ceil(n / shard_count)`` (files are equal-sized by construction)."""
        return math.ceil(self.n_rows / shard_count)

    @contextlib.contextmanager
    def dataset(self, rank: int, size: int, batch_size: int, repeat: bool) -> Iterator[Any]:
        """The rows of shard ``rank`` of ``size``, in batches; endless when ``repeat``."""
        import tensorflow as tf

        n, column = self.n_columns, self.column
        with _quiet(), self._converter.make_tf_dataset(
            batch_size=batch_size,
            num_epochs=None if repeat else 1,
            workers_count=1,
            cur_shard=rank,
            shard_count=size,
            shuffle_row_groups=False,
        ) as ds:
            yield without_autotune(ds.map(lambda b: tf.reshape(getattr(b, column), (-1, n))))

    def delete(self) -> None:
        """Remove the materialized files."""
        with _quiet():
            self._converter.delete()

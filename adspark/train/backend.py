"""Training backends: where and how many training processes run.

A backend runs ``fn(collective, *args)`` in each training process and returns every process's
result, rank order. :class:`LocalBackend` runs it once in this process (tests, tiny data);
:class:`HorovodSparkBackend` runs it in ``num_proc`` Spark tasks through ``horovod.spark.run``
(Gloo on CPU; NCCL where Horovod was built with it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Protocol, TypeVar

from adspark.train.collective import HorovodCollective, LocalCollective

T = TypeVar("T")


class TrainingBackend(Protocol):
    """Runs a training function in one or more processes."""

    def run(self, fn: Callable[..., T], args: tuple[Any, ...] = ()) -> list[T]:
        """Run ``fn(collective, *args)`` in every process; results in rank order."""


class LocalBackend:
    """A single training process: this one."""

    def run(self, fn: Callable[..., T], args: tuple[Any, ...] = ()) -> list[T]:
        """Call ``fn(LocalCollective(), *args)``."""
        return [fn(LocalCollective(), *args)]


def process_env(base: Mapping[str, str], cycle_time_ms: float | None = None) -> dict[str, str]:
    """The environment of the training processes: ``base`` with Python's ``FutureWarning``s off
    (petastorm 0.13 calls pyarrow APIs deprecated since pyarrow 5, a screenful per process and
    epoch; ``PYTHONWARNINGS`` already set in ``base`` is kept, this filter added after it), and
    ``HOROVOD_CYCLE_TIME`` when ``cycle_time_ms`` is given (else as ``base`` has it)."""
    warnings = ",".join(w for w in (base.get("PYTHONWARNINGS", ""), "ignore::FutureWarning") if w)
    cycle = {} if cycle_time_ms is None else {"HOROVOD_CYCLE_TIME": f"{cycle_time_ms:g}"}
    return {**base, "PYTHONWARNINGS": warnings, **cycle}


def _in_horovod(fn: Callable[..., T], *args: Any) -> T:
    return fn(HorovodCollective(), *args)


@dataclass(frozen=True)
class HorovodSparkBackend:
    """``num_proc`` Horovod processes inside Spark tasks (needs the active SparkSession).

    Attributes:
        num_proc: Processes (one per executor slot or GPU).
        start_timeout_s: How long to wait for all tasks to start.
        verbose: Horovod's own verbosity (0-2).
        cycle_time_ms: Horovod's ``HOROVOD_CYCLE_TIME``: how often each process's background
            thread negotiates the pending collective operations with its peers (None: Horovod's
            default, or the driver's environment). Longer cycles cost less CPU between
            allreduces and add latency to each one.
    """

    num_proc: int = 2
    start_timeout_s: int = 600
    verbose: int = 0
    cycle_time_ms: float | None = None

    def run(self, fn: Callable[..., T], args: tuple[Any, ...] = ()) -> list[T]:
        """Run ``fn(HorovodCollective(), *args)`` in each of ``num_proc`` processes."""
        import horovod.spark

        return horovod.spark.run(
            _in_horovod,
            args=(fn, *args),
            num_proc=self.num_proc,
            start_timeout=self.start_timeout_s,
            verbose=self.verbose,
            use_gloo=True,
            env=process_env(os.environ, self.cycle_time_ms),
        )

"""The ``runs`` table: one row per job run, written whether the job succeeds or fails."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from pydantic import BaseModel

from adspark import __version__
from adspark.config import config_hash
from adspark.errors import DataContractError
from adspark.storage import TableStore
from schemas import RUNS


@dataclass
class RunRecord:
    """What a job run reports about itself; filled in by the job while it runs.

    Attributes:
        run_id: Unique id (also stamped on rejects and outputs).
        job: The job's name.
        rows_read: Input rows read (None when the job reads no input).
        rows_accepted: Rows that passed validation.
        rows_rejected: Rows sent to rejects.
        rows_written: Output rows written.
        message: A one-line summary.
        summary: The message without its ``job range:`` head (what a job composing this one,
            such as ``nightly``, quotes in its own message).
    """

    run_id: str
    job: str
    rows_read: int | None = None
    rows_accepted: int | None = None
    rows_rejected: int | None = None
    rows_written: int | None = None
    message: str = ""
    summary: str = ""

    def reconcile(self) -> None:
        """Check ``read == accepted + rejected``.

        Raises:
            DataContractError: Naming the three counts when they disagree.
        """
        if None in (self.rows_read, self.rows_accepted, self.rows_rejected):
            return
        if self.rows_read != self.rows_accepted + self.rows_rejected:
            raise DataContractError(
                f"run {self.run_id}: read {self.rows_read} != accepted {self.rows_accepted} "
                f"+ rejected {self.rows_rejected}"
            )


def new_run_id(job: str) -> str:
    """A unique, sortable run id: ``<job>-<UTC time>-<random>``."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{job}-{stamp}-{uuid.uuid4().hex[:8]}"


@contextmanager
def recorded_run(
    store: TableStore,
    job: str,
    cfg: BaseModel,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    within: str | None = None,
) -> Iterator[RunRecord]:
    """Record a job run in the ``runs`` table, as ``succeeded`` or ``failed``.

    Args:
        within: The run id of a job this one runs as a stage of (``nightly``): the stage takes
            that id (what it writes is stamped with it) and writes no ``runs`` row of its own,
            since the composing job records the stage's counts and outcome in its own table
            (one Delta commit per night fewer for each stage). The counts still reconcile.

    Yields:
        The :class:`RunRecord` the job fills in. Exceptions propagate (after being recorded).
    """
    record = RunRecord(run_id=within or new_run_id(job), job=job)
    started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    t0 = time.perf_counter()
    status, message = "succeeded", ""
    try:
        yield record
        record.reconcile()
        message = record.message
    except BaseException as exc:
        status, message = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        raise
    finally:
        if within is None:
            _write_row(store, record, job, cfg, date_from, date_to, started, t0, status, message)


def _write_row(
    store: TableStore, record: RunRecord, job: str, cfg: BaseModel, date_from: dt.date | None,
    date_to: dt.date | None, started: dt.datetime, t0: float, status: str, message: str,
) -> None:
    """Append the run's row to ``runs``."""
    finished = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    row = (
        record.run_id,
        job,
        config_hash(cfg),
        date_from,
        date_to,
        started,
        finished,
        round(time.perf_counter() - t0, 3),
        status,
        record.rows_read,
        record.rows_accepted,
        record.rows_rejected,
        record.rows_written,
        message,
        __version__,
    )
    frame = store.spark.createDataFrame([row], RUNS.struct_type())
    store.append(frame, RUNS.name)

"""``adspark labels``: load labeled anomalies from a CSV file into the ``labels`` table.

The file is read by Spark (a local path, a volume or an object-store URI), every column as text,
and split by the rules of :func:`adspark.core.labels.parse_labels`. Accepted rows are upserted by
``anomaly_id`` in one Delta MERGE (loading the same file twice changes nothing; ``--replace``
replaces the whole table with the file); rejected rows go to ``rejects`` (job ``labels``) with the
rule, column and what was expected, replacing the rejects of an earlier load of the same rows.
The run is recorded in ``runs``: read = accepted + rejected.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from adspark.config import LabelsJobConfig
from adspark.core.labels import parse_labels
from adspark.errors import EmptyInputError
from adspark.runs import recorded_run
from adspark.storage import URI_SCHEMES, TableStore
from schemas import LABELS, REJECTS

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column

JOB = "labels"


def overlaps(start: "Column", end: "Column", other_start: "Column", other_end: "Column") -> "Column":
    """Whether ``[start, end)`` overlaps ``[other_start, other_end)``: the rule of
    :func:`adspark.core.evaluate.overlap_labels` as a Spark condition (the one every job that
    matches windows with labels or intervals uses). A zero-width span on either side (a point
    label, a row-mode window) covers its instant: it is widened to one second.
    """
    from pyspark.sql import functions as F

    second = F.expr("INTERVAL 1 SECOND")
    return (start < F.greatest(other_end, other_start + second)) & (F.greatest(end, start + second) > other_start)


@dataclass(frozen=True)
class LabelsLoad:
    """What a load did.

    Attributes:
        read: Rows in the file.
        accepted: Rows loaded as labels.
        rejected: Rows sent to ``rejects``.
        labels: Rows of the ``labels`` table after the load.
        message: The one-line summary.
    """

    read: int
    accepted: int
    rejected: int
    labels: int
    message: str


def _read_text(store: TableStore, path: str, delimiter: str) -> pd.DataFrame:
    """The CSV's rows, every column as text, in file order (a relative path is relative to the
    current folder, as for any command-line file)."""
    resolved = path if path.startswith(URI_SCHEMES) else str(Path(path).resolve())
    df = store.spark.read.options(header="true", inferSchema="false", sep=delimiter, mode="PERMISSIVE").csv(resolved)
    return df.toPandas()


def run_labels(
    store: TableStore, cfg: LabelsJobConfig, path: str, timezone: str = "UTC", replace: bool = False,
    delimiter: str = ",",
) -> LabelsLoad:
    """Load the labels file at ``path``.

    Raises:
        SchemaMismatchError: A required column is missing.
        EmptyInputError: The file holds no rows.
    """
    with recorded_run(store, JOB, cfg) as run:
        raw = _read_text(store, path, delimiter)
        if raw.empty:
            raise EmptyInputError(f"labels file {path!r} holds no rows (expected a header and one row per anomaly)")
        parsed = parse_labels(raw, timezone, path)
        run.rows_read, run.rows_accepted, run.rows_rejected = len(raw), len(parsed.accepted), len(parsed.rejected)
        if not parsed.accepted.empty or replace:
            labels = store.spark.createDataFrame(parsed.accepted, LABELS.struct_type())
            if replace:
                store.overwrite(labels, LABELS.name)
            else:
                store.upsert(labels, LABELS.name, ("anomaly_id",))
        if not parsed.rejected.empty:
            today = pd.Timestamp(dt.datetime.now(dt.timezone.utc).date())
            rejects = parsed.rejected.assign(
                run_id=run.run_id, job=JOB, date=parsed.rejected["date"].fillna(today).dt.date,
                rejected_at=pd.Timestamp.now(tz="UTC").tz_localize(None),
            )[[f.name for f in REJECTS.fields]]
            frame = store.spark.createDataFrame(rejects, REJECTS.struct_type())
            if store.exists(REJECTS.name):  # a reload replaces the rejects of the same rows
                store.delete_matching(REJECTS.name, frame.select("job", "raw").distinct(), ("job", "raw"))
            store.append(frame, REJECTS.name, partition_by=REJECTS.partition_by)
        total = store.read(LABELS.name).count() if store.exists(LABELS.name) else 0
        run.rows_written = len(parsed.accepted)
        reasons = parsed.rejected["reason"].value_counts()
        why = f" ({', '.join(f'{k}: {v}' for k, v in reasons.items())}; see the rejects table, job = 'labels')" \
            if len(reasons) else ""
        run.message = (f"labels: read {len(raw)} rows from {path}, loaded {len(parsed.accepted)}, "
                       f"rejected {len(parsed.rejected)}{why}; the labels table holds {total}")
    return LabelsLoad(len(raw), len(parsed.accepted), len(parsed.rejected), total, run.message)

"""Hash groups of entities: many entities per pandas call instead of one call each.

PySpark's grouped pandas functions pay a fixed cost per group; handing each call a hash group of
entities (and looping or vectorizing over entities inside pandas) keeps that cost small.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, SparkSession


def entity_groups(spark: "SparkSession", start: dt.date, end: dt.date) -> int:
    """How many entity groups for a range: one per shuffle partition, up to four for long ranges
    (a multiple of the partitions, so that the task slots get equal shares)."""
    partitions = int(spark.conf.get("spark.sql.shuffle.partitions"))
    days = (end - start).days + 1
    return partitions * max(1, min(4, days // 7 + 1))


def group_of(groups: int, column: str = "entity") -> "Column":
    """The ``_group`` column: a stable hash of ``column`` modulo ``groups``."""
    from pyspark.sql import functions as F

    return F.pmod(F.xxhash64(column), F.lit(groups)).alias("_group")

"""The Spark overlap condition that train and feedback join with is the core's rule."""

from __future__ import annotations

import datetime as dt

import numpy as np
from pyspark.sql import functions as F

from adspark.core.evaluate import overlap_labels
from adspark.pipeline.labels import overlaps

T0 = dt.datetime(2026, 1, 5)


def _at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def test_the_spark_condition_matches_the_core_rule_at_every_edge(spark) -> None:
    # windows: ordinary, zero-width (row mode), adjacent to a label on either side
    windows = [("a", _at(s), _at(e)) for s, e in [(0, 6), (6, 12), (12, 18), (5, 5), (3, 3), (18, 24)]]
    windows += [("b", _at(0), _at(6)), ("b", _at(7), _at(7))]
    # labels: a span, a point at a window's start, a point at a window's end, another entity's
    labels = [("a", _at(8), _at(10)), ("a", _at(12), _at(12)), ("a", _at(24), _at(24)), ("b", _at(7), _at(9))]
    w = spark.createDataFrame(windows, "entity string, window_start timestamp, window_end timestamp") \
        .withColumn("i", F.monotonically_increasing_id())
    lab = spark.createDataFrame(labels, "l_entity string, l_start timestamp, l_end timestamp")
    cond = (F.col("entity") == F.col("l_entity")) & overlaps(
        F.col("window_start"), F.col("window_end"), F.col("l_start"), F.col("l_end"))
    hit = {r.i for r in w.join(lab, cond, "left_semi").select("i").collect()}
    rows = w.orderBy("i").collect()
    spark_says = np.array([r.i in hit for r in rows])
    core_says = overlap_labels(
        np.array([r.entity for r in rows]), np.array([r.window_start for r in rows], "datetime64[s]"),
        np.array([r.window_end for r in rows], "datetime64[s]"),
        np.array([x[0] for x in labels]), np.array([x[1] for x in labels], "datetime64[s]"),
        np.array([x[2] for x in labels], "datetime64[s]"),
    )
    np.testing.assert_array_equal(spark_says, core_says)
    # what the rule says: the span hits (6, 12); the point at 12 hits (12, 18), not (6, 12); the
    # point at 24 hits nothing; a zero-width window inside a label hits it
    assert core_says.tolist() == [False, True, True, False, False, False, False, True]

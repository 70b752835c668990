"""TableStore registration: the catalog name follows the warehouse in use."""

from adspark.config import StorageConfig
from adspark.storage import TableStore


def test_a_second_warehouse_with_the_same_schema_moves_the_name_not_the_data(spark, tmp_path):
    first = TableStore(spark, StorageConfig(warehouse=str(tmp_path / "a"), schema="adspark_moves"))
    second = TableStore(spark, StorageConfig(warehouse=str(tmp_path / "b"), schema="adspark_moves"))
    spark.range(3).write.format("delta").save(first.path("t"))
    spark.range(5).write.format("delta").save(second.path("t"))
    first.register("t")
    assert spark.sql("select count(*) as n from adspark_moves.t").first().n == 3
    second.register("t")
    assert spark.sql("select count(*) as n from adspark_moves.t").first().n == 5
    assert first.read("t").count() == 3  # dropping the old name left its files alone
    TableStore(spark, StorageConfig(warehouse=str(tmp_path / "b"), schema="adspark_moves")).register("t")
    assert spark.sql("select count(*) as n from adspark_moves.t").first().n == 5


def test_partition_dates_come_from_the_log_and_follow_replaced_nights(spark, tmp_path):
    """The nights of a date-partitioned table, as a read of the column would give them, without
    reading a row; a night replaced by nothing is gone; unnamed partitions give None."""
    import datetime as dt

    from pyspark.sql import functions as F

    store = TableStore(spark, StorageConfig(warehouse=str(tmp_path), schema="adspark_dates"))
    days = [dt.date(2026, 1, d) for d in (3, 4, 6, 9)]
    rows = spark.createDataFrame([(d, i) for i, d in enumerate(days)], "date date, n int")
    store.replace_dates(rows, "t", "date", days[0], days[-1], partition_by=("date",))
    store.reads.clear()
    assert store.partition_dates("t", "date", dt.date(2026, 1, 9)) == days[:3]
    assert store.partition_dates("t", "date", dt.date(2026, 1, 3)) == []
    assert not store.reads  # nothing read
    store.replace_dates(rows.where(F.lit(False)), "t", "date", days[2], days[2], partition_by=("date",))
    assert store.partition_dates("t", "date", dt.date(2026, 2, 1)) == [days[0], days[1], days[3]]
    read = sorted(r.date for r in store.read("t").select("date").distinct().collect())
    assert read == [days[0], days[1], days[3]]
    store.append(rows, "flat")  # not partitioned: the paths do not name the nights
    assert store.partition_dates("flat", "date", dt.date(2026, 2, 1)) is None


def test_committed_rows_counts_the_new_rows_of_a_tagged_replace(spark, tmp_path):
    """Delta's own count of what a tagged commit wrote: the rows of another model that a
    replace on a data column rewrote beside them are not counted; an empty replace wrote 0."""
    import datetime as dt

    from pyspark.sql import functions as F

    store = TableStore(spark, StorageConfig(warehouse=str(tmp_path), schema="adspark_commits"))
    day = dt.date(2026, 1, 3)
    rows = spark.createDataFrame([(day, i, "m1" if i % 2 else "m2") for i in range(10)], "date date, n int, model_id string")
    store.replace_dates(rows, "t", "date", day, day, partition_by=("date",), tag="first")
    assert store.committed_rows("t", "first") == 10
    mine = rows.where("model_id = 'm1'")
    store.replace_dates(mine, "t", "date", day, day, partition_by=("date",), extra_predicate="model_id = 'm1'",
                        tag="second")
    assert store.committed_rows("t", "second") == 5 and store.read("t").count() == 10
    store.replace_dates(mine.where(F.lit(False)), "t", "date", day, day, partition_by=("date",),
                        extra_predicate="model_id = 'm1'", tag="third")
    assert store.committed_rows("t", "third") == 0 and store.read("t").count() == 5
    assert store.committed_rows("t", "never written") is None
    assert store.committed_rows("t", "first", within=1) is None  # older than the commits looked at

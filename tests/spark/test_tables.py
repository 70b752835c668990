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

"""The SQL views: created by writing commands, left alone by read-only ones."""

from adspark.views import create_views


def test_read_only_commands_create_only_the_missing_views(store, tiny_windowed, spark):
    # the windowed warehouse has no scores, intervals or nightly table: no view can exist yet
    assert create_views(store, only_missing=True) == []
    spark.createDataFrame([("iv-1", "e1")], "interval_id string, entity string").write.format("delta").save(
        store.path("feedback"))
    assert create_views(store) == []  # feedback alone feeds no view
    from schemas import NIGHTLY

    spark.createDataFrame([], NIGHTLY.struct_type()).write.format("delta").save(store.path("nightly"))
    assert create_views(store) == ["nightly_summary"]
    assert create_views(store, only_missing=True) == []  # it exists: a read-only command keeps it
    assert spark.sql(f"select count(*) as n from {store.qualified('nightly_summary')}").first().n == 0
    spark.sql(f"DROP VIEW {store.qualified('nightly_summary')}")
    assert create_views(store, only_missing=True) == ["nightly_summary"]

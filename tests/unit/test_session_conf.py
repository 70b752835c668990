"""session_conf: a setting held for a block, restored after the last of overlapping blocks."""

import pytest

from adspark.session import session_conf

KEY = "spark.sql.execution.arrow.maxRecordsPerBatch"


class _Conf:
    def __init__(self, values: dict) -> None:
        self.values = dict(values)

    def get(self, key: str, default=None):
        return self.values.get(key, default)

    def set(self, key: str, value: str) -> None:
        self.values[key] = value

    def unset(self, key: str) -> None:
        self.values.pop(key, None)


class _Session:
    def __init__(self, values: dict) -> None:
        self.conf = _Conf(values)


def test_overlapping_blocks_restore_the_value_from_before_the_first():
    """Two nights scored at once in threads: A enters, B enters (it sees A's value), A leaves,
    B leaves; the session ends with its own value, not A's."""
    spark = _Session({KEY: "10000"})
    a, b = session_conf(spark, KEY, "2"), session_conf(spark, KEY, "2")
    a.__enter__()
    b.__enter__()
    assert spark.conf.get(KEY) == "2"
    a.__exit__(None, None, None)
    assert spark.conf.get(KEY) == "2"  # B still scoring
    b.__exit__(None, None, None)
    assert spark.conf.get(KEY) == "10000"


def test_a_setting_absent_before_is_unset_after_even_on_error():
    spark = _Session({})
    with pytest.raises(RuntimeError, match="scoring failed"), session_conf(spark, KEY, "2"):
        assert spark.conf.get(KEY) == "2"
        raise RuntimeError("scoring failed")
    assert spark.conf.get(KEY) is None
    with session_conf(_Session({KEY: "5"}), KEY, "2"):  # another session is another slot
        assert spark.conf.get(KEY) is None


class _Refusing(_Conf):
    def set(self, key: str, value: str) -> None:
        if key.startswith("parquet."):
            raise PermissionError(f"configuration {key} is not available")
        super().set(key, value)


def test_a_refused_setting_holds_nothing_and_the_write_goes_on():
    """A managed session that refuses a Parquet writer setting: the windows are written with the
    session's encoding, and a later block of the same key starts clean."""
    from adspark.storage import writer_settings
    from schemas import WINDOWS

    spark = _Session({})
    spark.conf = _Refusing({})
    with writer_settings(spark, WINDOWS.name):
        assert spark.conf.values == {}
    with pytest.raises(PermissionError), session_conf(spark, "parquet.enable.dictionary", "false"):
        pass
    ok = _Session({})
    with writer_settings(ok, WINDOWS.name):
        assert ok.conf.get("parquet.enable.dictionary#values.list.element") == "false"
        assert ok.conf.get("parquet.enable.dictionary#raw_values.list.element") == "false"
    assert ok.conf.values == {}
    with writer_settings(ok, "features"):  # a table with dictionary encoding everywhere: nothing set
        assert ok.conf.values == {}

"""A lost catalog-registration race is recognised whatever wording Spark or Delta uses."""

from __future__ import annotations

import pytest

from adspark.storage import is_already_exists


class _Analysis(Exception):
    def __init__(self, condition: str) -> None:
        super().__init__(f"[{condition}] Table `adspark_test`.`rejects` already exists.")
        self._condition = condition

    def getCondition(self) -> str:  # noqa: N802 (PySpark's name)
        return self._condition


@pytest.mark.parametrize("condition", ["TABLE_OR_VIEW_ALREADY_EXISTS", "DELTA_TABLE_ALREADY_EXISTS",
                                       "SCHEMA_ALREADY_EXISTS"])
def test_every_already_exists_wording_is_a_lost_race(condition: str) -> None:
    assert is_already_exists(_Analysis(condition))
    assert is_already_exists(RuntimeError(f"[{condition}] Table already exists"))  # no error class


def test_other_errors_are_not() -> None:
    assert not is_already_exists(_Analysis("DELTA_CONCURRENT_APPEND"))
    assert not is_already_exists(RuntimeError("disk full"))

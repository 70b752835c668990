"""The scorer's input checks: NaN never reaches the model; a window of another shape is named."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from adspark.errors import DataContractError
from adspark.pipeline.scorer import _windows, entity_chunks


def _batch(values: list[list[float]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array([f"u1|{i}" for i in range(len(values))]), pa.array(values, pa.list_(pa.float32()))],
        names=["window_id", "values"],
    )


def test_windows_become_n_w_f() -> None:
    x = _windows(_batch([[1, 2, 3, 4], [5, 6, 7, 8]]), 2, 2)
    assert x.shape == (2, 2, 2) and x.dtype == np.float32 and x[1, 1, 0] == 7


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_window_is_named_and_not_scored(bad: float) -> None:
    with pytest.raises(DataContractError, match=r"window 'u1\|1' holds NaN or infinite values"):
        _windows(_batch([[1, 2, 3, 4], [5, bad, 7, 8]]), 2, 2)


def test_window_of_another_shape_is_named() -> None:
    with pytest.raises(DataContractError, match=r"window 'u1\|1' holds 3 values; the model expects 2 x 2 = 4"):
        _windows(_batch([[1, 2, 3, 4], [5, 6, 7]]), 2, 2)


def test_entity_chunks_keep_entities_whole_and_lose_no_row() -> None:
    table = pa.table({"entity": ["b", "a", "b", "c", "a", "c", "c", "d"], "v": np.arange(8)})
    parts = list(entity_chunks(table, 3))
    entities = [p.column("entity").to_pylist() for p in parts]
    assert entities == [["a", "a", "b", "b"], ["c", "c", "c"], ["d"]]
    assert sorted(v for p in parts for v in p.column("v").to_pylist()) == list(range(8))
    assert list(entity_chunks(table, 100)) == [table]

"""The scorer's input checks: NaN never reaches the model; a window of another shape is named; a
hash group scored in slices equals the group scored whole."""

from __future__ import annotations

import datetime as dt
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from adspark.config import PCAConfig
from adspark.core.scaling import GLOBAL_ENTITY
from adspark.core.thresholds import Threshold
from adspark.detectors.factory import build_detector
from adspark.errors import DataContractError
from adspark.models.registry import RegisteredModel, write_networks
from adspark.pipeline.scorer import OUTPUT_FIELDS, _load, _windows, entity_chunks, make_feature_scorer
from adspark.pipeline.specs import StoredSpec
from adspark.pipeline.window import make_cutter


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


def _mean_scorer(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """A scorer without a model: a window's score is the mean of its scaled values."""
    for batch in batches:
        values = batch.column(batch.schema.get_field_index("values"))
        score = values.flatten().to_numpy().reshape(batch.num_rows, -1).mean(axis=1).astype(np.float64)
        empty = pa.array(np.zeros(batch.num_rows + 1, np.int32))
        columns = [batch.column(batch.schema.get_field_index(n))
                   for n in ("entity", "window_id", "window_start", "window_end", "date")]
        columns += [pa.array(score), pa.array(np.ones(batch.num_rows)), pa.array(score > 1.0),
                    pa.ListArray.from_arrays(empty, pa.array([], pa.string())),
                    pa.ListArray.from_arrays(empty, pa.array([], pa.float64()))]
        yield pa.RecordBatch.from_arrays(columns, names=list(OUTPUT_FIELDS))


def test_feature_scorer_scales_each_slice_with_its_own_entities_statistics() -> None:
    names = ("f0", "f1")
    entities = [f"u{i}" for i in range(6)]
    starts = pd.date_range("2026-01-05", periods=30, freq="h", tz="UTC")
    rng = np.random.default_rng(0)
    features = pd.DataFrame({
        "entity": np.repeat(entities, len(starts)),
        "bucket_start": np.tile(starts, len(entities)),
        "f0": rng.normal(size=len(entities) * len(starts)),
        "f1": rng.normal(size=len(entities) * len(starts)),
    }).sample(frac=1.0, random_state=0)  # any row order
    stats = pd.DataFrame([(e, f, 10.0 * i + j, 1.0 + i) for i, e in enumerate(entities) for j, f in enumerate(names)],
                         columns=["entity", "feature", "center", "scale"])
    global_stats = pd.DataFrame({"entity": GLOBAL_ENTITY, "feature": list(names), "center": 0.0, "scale": 1.0})
    spec = StoredSpec("s1", "buckets", names, 4, 2, 3600, "zscore", dt.date(2026, 1, 5), dt.date(2026, 1, 6))
    cut = make_cutter(spec, global_stats, dt.date(2026, 1, 5), dt.date(2026, 1, 6), raw=False)
    features_t, stats_t = pa.Table.from_pandas(features, preserve_index=False), pa.Table.from_pandas(stats)
    whole = make_feature_scorer(cut, _mean_scorer, 10_000)(features_t, stats_t)
    sliced = make_feature_scorer(cut, _mean_scorer, 40)(features_t, stats_t)  # one or two entities a slice
    assert whole.num_rows == 6 * 14
    assert sliced.sort_by("window_id").equals(whole.sort_by("window_id"))
    # every entity's windows were scaled by its own statistics (center 10 i, scale 1 + i)
    by_entity = whole.group_by("entity").aggregate([("score", "mean")]).to_pandas().set_index("entity")
    expected = pd.Series({e: -(10.0 * i + 0.5) / (1.0 + i) for i, e in enumerate(entities)})
    assert np.abs(by_entity["score_mean"].reindex(expected.index) - expected).max() < 0.5


def test_a_worker_loads_the_shipped_networks_and_leaves_no_folder_behind(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4, 3)).astype(np.float32)
    detector = build_detector(PCAConfig(n_components=2)).fit(x)
    write_networks(tmp_path, detector.networks())
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}  # what the broadcast ships
    model = RegisteredModel(
        model_id=f"m-{uuid.uuid4().hex[:8]}", config_key="k", detector="pca",
        params=PCAConfig(n_components=2).model_dump(mode="json"), spec_id="s", n_steps=4, n_features=3,
        threshold=Threshold("quantile", 1.0, {}), entity_thresholds={}, train_from=dt.date(2026, 1, 5),
        train_to=dt.date(2026, 1, 6), data_version=0,
    )
    loaded = _load(model, files, None)
    np.testing.assert_allclose(loaded.score(x[:5]), detector.score(x[:5]), rtol=1e-6)
    assert _load(model, files, None) is loaded  # once per worker
    assert not list(Path(tempfile.gettempdir()).glob(f"adspark-{model.model_id}-*"))

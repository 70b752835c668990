"""window on a tiny table: scaling fitted once, day-by-day == range, row mode."""

import datetime as dt

import numpy as np
import pytest

from adspark.config import DiscretizeJobConfig, WindowJobConfig, build_job_config
from adspark.core.scaling import GLOBAL_ENTITY
from adspark.errors import SchemaMismatchError
from adspark.pipeline.discretize import run_discretize
from adspark.pipeline.window import run_window

D5, D6, D7 = dt.date(2026, 1, 5), dt.date(2026, 1, 6), dt.date(2026, 1, 7)


def _windows(store):
    return store.read("windows").orderBy("entity", "window_start").toPandas()


@pytest.fixture()
def featurized(store, base_config, tiny_events):
    run_discretize(store, build_job_config(DiscretizeJobConfig, base_config), D5, D7)
    return build_job_config(WindowJobConfig, base_config)


def test_windows_by_day_equal_windows_by_range(store, featurized):
    cfg = featurized
    run = run_window(store, cfg, D5, D7).run
    whole = _windows(store)
    # 4 buckets of 6h, stride 2: per entity, 12 buckets -> ends at odd bucket index, 4 buckets back
    assert len(whole) == 2 * 5 and run.rows_written == 10
    assert set(whole.n_steps) == {4} and len(whole["values"].iloc[0]) == 4 * whole.n_features.iloc[0]
    assert (whole.groupby("window_id").size() == 1).all()
    for d in (D7, D5, D6, D6):
        run_window(store, cfg, d, d)
    by_day = _windows(store)
    assert list(by_day.window_id) == list(whole.window_id)
    np.testing.assert_array_equal(np.stack(by_day["values"]), np.stack(whole["values"]))


def test_window_arrays_are_written_without_a_parquet_dictionary(store, featurized):
    """Dense float arrays: dictionary encoding only overflows and falls back (slower, larger);
    the other columns keep it, and the session's settings are back as they were."""
    import glob

    import pyarrow.parquet as pq

    run_window(store, featurized, D5, D7)
    files = glob.glob(f"{store.path('windows')}/date=*/*.parquet")
    assert files
    for f in files:
        group = pq.ParquetFile(f).metadata.row_group(0)
        encodings = {group.column(i).path_in_schema: group.column(i).encodings for i in range(group.num_columns)}
        assert not any("DICTIONARY" in e for e in encodings["values.list.element"]), encodings
        assert not any("DICTIONARY" in e for e in encodings["raw_values.list.element"]), encodings
        assert any("DICTIONARY" in e for e in encodings["spec_id"]), encodings
    assert store.spark.conf.get("parquet.enable.dictionary#values.list.element", None) is None


def test_scaler_fitted_once_on_training_range(store, featurized):
    run_window(store, featurized, D7, D7)
    stats = store.read("scaler_stats").toPandas()
    assert set(stats.entity) == {"u1", "u2", GLOBAL_ENTITY}
    n_features = stats.feature.nunique()
    assert len(stats) == 3 * n_features
    run_window(store, featurized, D6, D6)
    assert store.read("scaler_stats").count() == len(stats)
    w = _windows(store)
    # u1 event_count on D5-D6 is the same pattern each day: scaled values stay small
    assert np.abs(np.stack(w["values"])).max() < 50
    raw = np.stack(w[w.entity == "u1"]["raw_values"]).reshape(-1, 4, n_features)
    assert set(np.unique(raw[:, :, 0])) <= {0.0, 1.0, 2.0}


def test_centered_windows_get_their_own_spec_and_zero_mean(store, base_config, featurized):
    run_window(store, featurized, D7, D7)
    base_config["window"]["scaling"]["center_windows"] = True
    run = run_window(store, build_job_config(WindowJobConfig, base_config), D7, D7).run
    specs = store.read("window_specs").toPandas()
    assert sorted(specs.scaling_method) == ["robust", "robust+center"] and run.rows_written > 0
    w = _windows(store)
    centered = w[w.spec_id == specs.loc[specs.scaling_method == "robust+center", "spec_id"].iloc[0]]
    x = np.stack(centered["values"]).reshape(len(centered), 4, -1)
    np.testing.assert_allclose(x.mean(axis=1), 0.0, atol=1e-5)
    assert store.read("scaler_stats").select("spec_id").distinct().count() == 2


def test_unknown_feature_is_named(store, base_config, featurized):
    base_config["window"]["features"] = ["event_count", "nope"]
    cfg = build_job_config(WindowJobConfig, base_config)
    with pytest.raises(SchemaMismatchError, match="'nope'"):
        run_window(store, cfg, D5, D5)


def test_row_mode_one_hot_and_scaling(store, base_config, tiny_events):
    base_config["window"] = {"mode": "rows", "size": 1, "stride": 1,
                             "scaling": {"method": "minmax", "fit_from": "2026-01-05", "fit_to": "2026-01-05"}}
    cfg = build_job_config(WindowJobConfig, base_config)
    run = run_window(store, cfg, D5, D7).run
    assert (run.rows_read, run.rows_accepted, run.rows_rejected) == (12, 12, 0)
    w = _windows(store)
    assert set(w.n_steps) == {1} and set(w.n_features) == {4}  # amount, latency, category=a, category=b
    spec = store.read("window_specs").first()
    assert list(spec.features) == ["amount", "latency_ms", "category__a", "category__b"]
    first = w[w.window_id == "u1-5-1"].iloc[0]
    np.testing.assert_allclose(first["values"], [(10 - 3) / (20 - 3), (60 - 53) / 17, 1, 0], rtol=1e-6)
    unseen = w[w.window_id == "u1-5-8"].iloc[0]  # category "c" is not in the vocabulary
    assert list(unseen["values"][2:]) == [0.0, 0.0]

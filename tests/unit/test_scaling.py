import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from adspark.core.scaling import (
    GLOBAL_ENTITY,
    apply_scaling,
    fit_entity_stats,
    fit_stats,
    floor_note,
    floored_rows,
    global_stats,
    invert_scaling,
    stats_vectors,
)


def test_robust_and_minmax():
    v = np.array([[1.0, 10.0], [2.0, 10.0], [3.0, 10.0], [4.0, 10.0], [100.0, 10.0]])
    robust = fit_stats("e", v, ["a", "b"], "robust")
    assert robust.loc[0, "center"] == 3.0 and robust.loc[0, "scale"] == 2.0
    assert robust.loc[1, "scale"] == pytest.approx(0.1)  # constant column: IQR 0, std 0 -> the floor, 1% of 10
    mm = fit_stats("e", v, ["a", "b"], "minmax")
    assert (mm.loc[0, "center"], mm.loc[0, "scale"]) == (1.0, 99.0)
    none = fit_stats("e", v, ["a", "b"], "none")  # already-normalized data passes through
    assert list(none["center"]) == [0.0, 0.0] and list(none["scale"]) == [1.0, 1.0]
    assert list(none["median"]) == [3.0, 10.0]  # the statistics are still recorded


def test_nan_ignored_and_never_emitted():
    v = np.array([[np.nan, 1.0], [np.nan, 3.0]])
    stats = fit_stats("e", v, ["a", "b"], "robust")
    assert stats.loc[0, "n"] == 0 and stats.loc[0, "scale"] == 1.0
    c, s = stats_vectors(stats, ["a", "b"])
    out = apply_scaling(np.array([[np.nan, np.inf]]), c, s)
    assert np.isfinite(out).all() and out.dtype == np.float32


def _reference(values: np.ndarray, method: str) -> dict[str, np.ndarray]:
    """One entity's figures straight from NumPy's nan-aware functions (0 where a feature has no value)."""
    import warnings

    from adspark.core.scaling import center_and_scale

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q25, med, q75 = np.nanpercentile(values, [25, 50, 75], axis=0)
        lo, hi, std, mean = (f(values, axis=0) for f in (np.nanmin, np.nanmax, np.nanstd, np.nanmean))
    seen = (~np.isnan(values)).sum(axis=0) > 0
    q25, med, q75, lo, hi, std, mean = (np.where(seen, x, 0.0) for x in (q25, med, q75, lo, hi, std, mean))
    center, scale = center_and_scale(method, med, q75 - q25, lo, hi, std, mean)
    return {"median": med, "iqr": q75 - q25, "min": lo, "max": hi, "center": center, "scale": scale,
            "n": (~np.isnan(values)).sum(axis=0)}


@pytest.mark.parametrize("method", ["robust", "zscore", "minmax", "none"])
def test_many_entities_at_once_equal_each_entity_alone(method):
    rng = np.random.default_rng(7)
    sizes = [1, 2, 3, 5, 8, 40, 170, 1]  # blocks of different row counts, a one-row entity
    entity = np.repeat([f"e{i}" for i in range(len(sizes))], sizes)
    values = np.round(rng.gamma(1.0, 3.0, (len(entity), 4)), 1)  # ties among the values
    values[rng.random(values.shape) < 0.3] = np.nan
    values[entity == "e3", 2] = np.nan  # a feature an entity never saw
    shuffled = rng.permutation(len(entity))
    stats = fit_entity_stats(entity[shuffled], values[shuffled], ["a", "b", "c", "d"], method)
    assert stats["entity"].tolist() == list(np.repeat(sorted(set(entity)), 4))
    for name, part in stats.groupby("entity"):
        ref = _reference(values[entity == name], method)
        for column in ("median", "iqr", "min", "max", "n"):
            np.testing.assert_array_equal(part[column].to_numpy(), ref[column], err_msg=f"{name} {column}")
        for column in ("center", "scale"):  # means and deviations summed in another order: last bits
            np.testing.assert_allclose(part[column].to_numpy(), ref[column], rtol=1e-14, err_msg=f"{name} {column}")
    assert stats.loc[(stats.entity == "e3") & (stats.feature == "c"), "n"].item() == 0


def test_an_entity_without_rows_gets_neutral_statistics():
    stats = fit_stats("e", np.zeros((0, 2)), ["a", "b"], "robust")
    assert stats["n"].tolist() == [0, 0] and stats["scale"].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="does not match"):
        fit_entity_stats(np.array(["e"]), np.zeros((2, 2)), ["a", "b"], "robust")


def test_global_stats_and_missing_feature():
    per = pd.concat(
        [fit_stats(f"e{i}", np.arange(8.0).reshape(4, 2) * i, ["a", "b"], "robust") for i in (1, 2, 3)]
    )
    g = global_stats(per)
    assert set(g["entity"]) == {GLOBAL_ENTITY} and list(g["feature"]) == ["a", "b"]
    assert g.loc[0, "center"] == per[per.feature == "a"]["center"].median()
    with pytest.raises(KeyError, match="lack features"):
        stats_vectors(g, ["a", "zzz"])


@given(arrays(np.float64, (6, 3), elements=st.floats(-1e6, 1e6)), st.sampled_from(["robust", "zscore", "minmax", "none"]))
def test_scaling_round_trips(values, method):
    stats = fit_stats("e", values, ["a", "b", "c"], method)
    c, s = stats_vectors(stats, ["a", "b", "c"])
    back = invert_scaling(apply_scaling(values, c, s), c, s)
    np.testing.assert_allclose(back, values, rtol=1e-5, atol=1e-6 * (1 + np.abs(values).max()) + s.max() * 1e-6)


def test_zscore_and_the_scale_floor_of_a_near_constant_channel():
    """A channel near-constant while fitting (std 0.001 around 90) gets a scale of 1% of 90, so
    ordinary later noise stays in single digits instead of the thousands; the floor is named."""
    rng = np.random.default_rng(0)
    v = np.c_[rng.normal(5.0, 2.0, 500), 90.0 + rng.normal(0.0, 0.001, 500)]
    for method in ("robust", "zscore", "minmax"):
        stats = fit_stats("press-1", v, ["flow", "voltage"], method)
        c, s = stats_vectors(stats, ["flow", "voltage"])
        assert s[1] == pytest.approx(0.9, rel=1e-3), method  # floored: 1% of the largest magnitude
        assert abs(apply_scaling(np.array([[5.0, 90.5]]), c, s)[0, 1]) < 1.0
        assert list(floored_rows(stats)["feature"]) == ["voltage"]
    z = fit_stats("press-1", v, ["flow", "voltage"], "zscore")
    assert z.loc[0, "center"] == pytest.approx(v[:, 0].mean()) and z.loc[0, "scale"] == pytest.approx(v[:, 0].std())
    assert floor_note(0, []) == ""
    note = floor_note(7, ["press-1/voltage", "press-2/voltage"])
    assert "7 near-constant entity/feature pair(s): press-1/voltage, press-2/voltage and 5 more" in note
    zero = fit_stats("e", np.zeros((4, 1)), ["idle"], "robust")  # 0 throughout: scale 1, no floor to name
    assert zero.loc[0, "scale"] == 1.0 and floored_rows(zero).empty

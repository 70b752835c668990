"""The alert pass's Arrow shell (what ``cogroup(...).applyInArrow`` runs), without Spark."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pyspark.sql.pandas.types import to_arrow_schema

from adspark.core.alerts import AlertParams, alert_group
from adspark.pipeline.alerts import (
    make_alerter,
    output_schema,
    output_table,
    states_from_arrow,
    states_to_arrow,
    windows_from_arrow,
)

W, S = 24, 6
FEATURES = ("event_count", "amount_sum", "amount_mean")
PARAMS = AlertParams(features=FEATURES, n_steps=W, stride=S, bucket_seconds=3600,
                     detectors=("level", "diff", "seasonal", "extreme", "profile"))


def _scored(entity: str, days: int, seed: int) -> pd.DataFrame:
    """One entity's scored windows as the scorer hands them on (hourly counts and amounts, a
    burst of large amounts on the last day)."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2026-01-05", periods=24 * days, freq="1h")
    n = rng.poisson(6.0, len(t)).astype(float)
    amounts = n * rng.lognormal(3.0, 0.3, len(t))
    amounts[-10:-7] *= 30.0
    x = np.column_stack([n, amounts, np.where(n > 0, amounts / np.maximum(n, 1), np.nan)])
    ends = [i for i in range(W - 1, len(t)) if i % S == S - 1]
    return pd.DataFrame({
        "entity": entity,
        "window_id": [f"{entity}-{i}" for i in ends],
        "window_start": [t[i - W + 1] for i in ends],
        "window_end": [t[i] + pd.Timedelta(hours=1) for i in ends],
        "date": [t[i].date() for i in ends],
        "score": rng.gamma(4.0, 0.25, len(ends)),
        "threshold": 9.0,
        "is_anomaly": False,
        "top_features": [["amount_sum", "event_count"]] * len(ends),
        "top_shares": [np.array([0.75, 0.25])] * len(ends),
        "raw_values": [x[i - W + 1 : i + 1].astype(np.float32).ravel() for i in ends],
    })


def _arrow(frame: pd.DataFrame) -> pa.Table:
    """The scorer's output as Spark sends it to the worker (UTC microseconds, dates, lists)."""
    return pa.Table.from_pandas(
        frame.assign(window_start=frame["window_start"].dt.tz_localize("UTC"),
                     window_end=frame["window_end"].dt.tz_localize("UTC"), _group=0),
        preserve_index=False,
    )


@pytest.fixture(scope="module")
def night() -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]], dt.date]:
    """Three entities over ten nights: the last night's windows and each entity's state after
    the nights before (one entity has none: it is new)."""
    frames = [_scored("a", 10, 1), _scored("b", 10, 2), _scored("c", 10, 3)]
    last = frames[0]["date"].max()
    history = pd.concat([f[f["date"] < last] for f in frames[:2]], ignore_index=True)
    _, kept = alert_group(history.rename(columns={"score": "model_score"}), {}, PARAMS)
    states = {e: nights[-1][1] for e, nights in kept.items()}
    windows = pd.concat([f[f["date"] == last] for f in frames], ignore_index=True)
    return windows, states, last


def test_output_schema_is_what_spark_expects_of_the_arrow_function() -> None:
    assert to_arrow_schema(output_schema()).types == output_table().arrow_schema().types
    assert to_arrow_schema(output_schema()).names == output_table().arrow_schema().names


def test_states_round_trip_through_arrow_as_read_only_views(night) -> None:
    _, states, last = night
    table = states_to_arrow([(e, last, s) for e, s in states.items()], "k", output_table().arrow_schema())
    assert table.num_rows == sum(len(s) for s in states.values())
    assert set(table.column("kind").to_pylist()) == {"state"} and set(table.column("alert_key").to_pylist()) == {"k"}
    back = states_from_arrow(table)
    assert back.keys() == states.keys()
    for entity, state in states.items():
        assert back[entity].keys() == state.keys()
        for name, values in state.items():
            np.testing.assert_array_equal(back[entity][name], values.ravel(), err_msg=f"{entity} {name}")
            assert not back[entity][name].flags.writeable
    assert states_from_arrow(table.slice(0, 0)) == {}


def test_the_arrow_shell_equals_the_core_for_scores_and_states(night) -> None:
    windows, states, last = night
    state_table = states_to_arrow([(e, last - dt.timedelta(days=1), s) for e, s in states.items()], "k",
                                  output_table().arrow_schema()).select(["entity", "name", "values"])
    out = make_alerter(PARAMS, "k", last, last)(_arrow(windows), state_table)
    assert out.schema == output_table().arrow_schema()
    expected, kept = alert_group(windows.rename(columns={"score": "model_score"}), states, PARAMS)
    scores = out.filter(pa.compute.equal(out.column("kind"), "score")).to_pandas(date_as_object=True)
    assert len(scores) == len(windows)
    expected = expected.sort_values(["entity", "window_start"]).reset_index(drop=True)
    scores = scores.sort_values(["entity", "window_start"]).reset_index(drop=True)
    for column in ("p_value", "model_score", "expected_low", "expected_high", "actual"):
        np.testing.assert_array_equal(scores[column].to_numpy(float), expected[column].to_numpy(float), err_msg=column)
    for column in ("alert", "driver", "driver_feature", "window_id", "date"):
        assert scores[column].tolist() == expected[column].tolist(), column
    assert scores["window_start"].tolist() == expected["window_start"].dt.tz_localize("UTC").tolist()
    assert [list(v) for v in scores["top_features"]] == [list(v) for v in expected["top_features"]]
    assert (scores["p_value"] < 0.05).any()  # the burst stands out: the comparison covers more than warm-up rows
    written = states_from_arrow(out.filter(pa.compute.equal(out.column("kind"), "state")))
    assert written.keys() == {"a", "b", "c"}
    for entity, nights in kept.items():
        (day, state), = nights
        assert day == last
        for name, values in state.items():
            np.testing.assert_array_equal(written[entity][name], np.ravel(values), err_msg=f"{entity} {name}")


def test_nights_before_the_range_leave_no_state_rows_and_a_group_without_windows_no_rows(night) -> None:
    windows, states, last = night
    after = last + dt.timedelta(days=1)
    out = make_alerter(PARAMS, "k", after, after)(_arrow(windows), _empty_states())
    assert out.num_rows == 0 and out.schema == output_table().arrow_schema()
    kept = states_to_arrow([(e, last, s) for e, s in states.items()], "k", output_table().arrow_schema())
    out = make_alerter(PARAMS, "k", after, after)(_arrow(windows).slice(0, 0), kept.select(["entity", "name", "values"]))
    assert out.num_rows == 0 and out.schema == output_table().arrow_schema()


def test_windows_read_as_the_core_expects() -> None:
    frame = windows_from_arrow(_arrow(_scored("a", 2, 0)))
    assert "model_score" in frame and "score" not in frame and "_group" not in frame and "threshold" not in frame
    assert isinstance(frame["date"].iloc[0], dt.date)
    assert str(frame["window_start"].dt.tz) == "UTC"
    assert frame["raw_values"].iloc[0].shape == (W * len(FEATURES),)


def _empty_states() -> pa.Table:
    return pa.table({"entity": pa.array([], pa.string()), "name": pa.array([], pa.string()),
                     "values": pa.array([], pa.list_(pa.float64()))})

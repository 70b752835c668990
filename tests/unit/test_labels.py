"""The labels file rules (pure pandas)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from adspark.core.labels import flag_intervals, label_id, parse_labels
from adspark.errors import SchemaMismatchError


def _raw(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).astype(object).where(pd.DataFrame(rows).notna(), None)


def test_good_rows_become_utc_labels_with_stable_ids() -> None:
    raw = _raw([
        {"entity": "m1", "start": "2011-07-14 12:00:00", "end": "2011-07-15 00:00:00", "kind": None},
        {"entity": " m2 ", "start": "2011-07-14T12:00:00+02:00", "end": "2011-07-14T13:00:00Z", "kind": "outage"},
    ])
    got = parse_labels(raw, timezone="Europe/Paris")
    assert got.rejected.empty
    a = got.accepted
    assert a["entity"].tolist() == ["m1", "m2"] and a["kind"].tolist() == ["labeled", "outage"]
    assert a["start"].tolist() == [pd.Timestamp("2011-07-14 10:00:00"), pd.Timestamp("2011-07-14 10:00:00")]
    assert a["end"].tolist() == [pd.Timestamp("2011-07-14 22:00:00"), pd.Timestamp("2011-07-14 13:00:00")]
    assert a["anomaly_id"][0] == label_id("m1", a["start"][0], a["end"][0])
    assert parse_labels(raw, timezone="Europe/Paris").accepted.equals(a)  # the same file, the same ids


def test_each_bad_row_is_rejected_with_its_rule_column_and_expectation() -> None:
    raw = _raw([
        {"entity": "", "start": "2011-07-14", "end": "2011-07-15", "magnitude": "1"},
        {"entity": "m", "start": "yesterday", "end": "2011-07-15", "magnitude": None},
        {"entity": "m", "start": "2011-07-15", "end": "2011-07-14", "magnitude": None},
        {"entity": "p", "start": "2011-07-15", "end": "2011-07-15", "magnitude": None},
        {"entity": "m", "start": "2011-07-14", "end": "2011-07-16", "magnitude": "big"},
        {"entity": "m", "start": "2011-07-14", "end": "2011-07-15", "magnitude": "2.5"},
        {"entity": "m", "start": "2011-07-14 00:00", "end": "2011-07-15", "magnitude": None},
    ])
    got = parse_labels(raw)
    assert len(got.accepted) + len(got.rejected) == len(raw)
    assert got.accepted["entity"].tolist() == ["p", "m"]  # a point label (end = start) is a label
    assert got.accepted["magnitude"].tolist()[1] == 2.5
    r = got.rejected
    assert r["reason"].tolist() == ["null_entity", "bad_timestamp", "end_before_start", "not_a_number", "duplicate"]
    assert r["column"].tolist() == ["entity", "start", "end", "magnitude", "anomaly_id"]
    assert "expected an ISO-8601 timestamp" in r["detail"][1] and "'yesterday'" in r["detail"][1]
    assert json.loads(r["raw"][1])["start"] == "yesterday"
    assert pd.isna(r["date"][1]) and r["date"][0] == pd.Timestamp("2011-07-14")


def test_a_missing_required_column_names_it_and_what_was_found() -> None:
    with pytest.raises(SchemaMismatchError, match=r"column 'end' expected a column .*found \['entity', 'start'\]"):
        parse_labels(_raw([{"entity": "m", "start": "2011-07-14"}]), origin="labels.csv")


def test_runs_of_flagged_rows_become_labels_ending_at_the_next_reading() -> None:
    t = pd.Timestamp("2026-03-02 10:00:00")
    at = [t + pd.Timedelta(seconds=k) for k in (0, 1, 2, 2, 3, 4, 5, 0, 1, 2, 0)]
    rows = pd.DataFrame({"entity": ["a"] * 7 + ["b"] * 3 + ["c"], "ts": at,
                         "flag": [False, True, True, False, False, True, True, True, False, True, True]})
    got = flag_intervals(rows.sample(frac=1.0, random_state=3), "anomaly")  # any row order
    spans = [(e, (s - t).seconds, (x - t).seconds) for e, s, x in zip(got["entity"], got["start"], got["end"])]
    # a: 1-2 (the second reading at 2 s is not flagged, the step is), ends at the next reading (3 s);
    # 4-5 reaches a's last reading: ends one usual interval (1 s) later; c: one reading, a point label
    assert spans == [("a", 1, 3), ("a", 4, 6), ("b", 0, 1), ("b", 2, 3), ("c", 0, 0)]
    assert got["description"].tolist()[:2] == ["2 row(s) flagged in column anomaly"] * 2
    assert set(got["kind"]) == {"anomaly"} and got["anomaly_id"].is_unique
    assert got["anomaly_id"][0] == label_id("a", got["start"][0], got["end"][0])
    assert flag_intervals(rows.assign(flag=False), "anomaly").empty

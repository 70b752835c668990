"""The labels file rules (pure pandas)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from adspark.core.labels import label_id, parse_labels
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

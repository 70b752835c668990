"""Labeled anomalies from a user's file: parsing and the row rules (pure pandas, no Spark).

A labels file has one row per labeled anomaly: ``entity``, ``start``, ``end`` (required) and
optionally ``kind``, ``description``, ``magnitude`` and ``anomaly_id``. Timestamps are ISO-8601
text (``2011-07-14 12:00:00``, ``2011-07-14T12:00:00Z``); naive ones are read in the given
timezone, and everything is stored in UTC like every adspark timestamp. ``end`` is exclusive; a
label with ``end`` equal to ``start`` marks one point.

Every row either becomes a label or a rejected row with the rule it broke, the column and what
was expected (read = accepted + rejected), as events are.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from adspark.errors import SchemaMismatchError

REQUIRED = ("entity", "start", "end")
OPTIONAL = ("kind", "description", "magnitude", "anomaly_id")
DEFAULT_KIND = "labeled"
LABEL_COLUMNS = ("anomaly_id", "entity", "kind", "start", "end", "magnitude", "description")
REJECT_COLUMNS = ("reason", "column", "detail", "raw", "date")


@dataclass(frozen=True)
class ParsedLabels:
    """A labels file split by the rules.

    Attributes:
        accepted: Columns :data:`LABEL_COLUMNS` (``start``/``end`` naive UTC timestamps).
        rejected: Columns :data:`REJECT_COLUMNS`: rule code, column, what was expected and found,
            the raw row as JSON, and the UTC date of its start when it had one (else NaT).
    """

    accepted: pd.DataFrame
    rejected: pd.DataFrame


def label_id(entity: str, start: pd.Timestamp, end: pd.Timestamp) -> str:
    """A stable id for a label without one: the same row loaded twice is the same label."""
    key = f"{entity}|{start.isoformat()}|{end.isoformat()}"
    return "l-" + hashlib.sha1(key.encode()).hexdigest()[:16]


def _timestamps(text: pd.Series, timezone: str) -> pd.Series:
    """Text -> naive UTC timestamps (NaT where unparseable); naive text is read in ``timezone``."""
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    for i, value in text.items():
        if value is None or (isinstance(value, float) and np.isnan(value)) or not str(value).strip():
            continue
        try:
            ts = pd.Timestamp(str(value).strip())
        except (ValueError, TypeError):
            continue
        if ts is pd.NaT:
            continue
        ts = ts.tz_localize(timezone) if ts.tzinfo is None else ts
        out[i] = ts.tz_convert("UTC").tz_localize(None)
    return out


def parse_labels(raw: pd.DataFrame, timezone: str = "UTC", origin: str = "labels file") -> ParsedLabels:
    """Apply the labels rules to the rows of a file read as text.

    Args:
        raw: The file's rows, every column as text (None for empty cells), in file order.
        timezone: Zone of naive timestamps.
        origin: The file, named in errors.

    Returns:
        The accepted labels and the rejected rows (first broken rule of each row).

    Raises:
        SchemaMismatchError: A required column is missing (the whole file is unusable).
    """
    for col in REQUIRED:
        if col not in raw.columns:
            raise SchemaMismatchError(origin, col, f"a column (labels need {', '.join(REQUIRED)}; "
                                      f"found {sorted(map(str, raw.columns))})", "missing")
    n = len(raw)
    entity = raw["entity"].astype("string").str.strip()
    start, end = _timestamps(raw["start"], timezone), _timestamps(raw["end"], timezone)
    magnitude_text = raw["magnitude"] if "magnitude" in raw else pd.Series([None] * n, index=raw.index)
    magnitude = pd.to_numeric(magnitude_text, errors="coerce")
    given_id = raw["anomaly_id"].astype("string").str.strip() if "anomaly_id" in raw else pd.Series(
        [pd.NA] * n, index=raw.index, dtype="string")
    ids = pd.Series([
        str(g) if pd.notna(g) and g else (label_id(str(e), s, t) if pd.notna(s) and pd.notna(t) and pd.notna(e) else None)
        for g, e, s, t in zip(given_id, entity, start, end, strict=True)
    ], index=raw.index, dtype="object")

    reason = pd.Series([None] * n, index=raw.index, dtype="object")
    column = reason.copy()
    detail = reason.copy()

    def rule(mask: pd.Series, code: str, col: str, expected: str, found: pd.Series) -> None:
        hit = mask & reason.isna()
        reason[hit], column[hit] = code, col
        detail[hit] = [f"expected {expected}, found {v!r}" for v in found[hit]]

    rule(entity.isna() | (entity == ""), "null_entity", "entity", "an entity key", raw["entity"])
    for name, parsed in (("start", start), ("end", end)):
        rule(parsed.isna(), "bad_timestamp", name, "an ISO-8601 timestamp such as 2011-07-14 12:00:00", raw[name])
    rule(end < start, "end_before_start", "end", "an end at or after the start (exclusive; equal: a point label)",
         raw["end"])
    rule(magnitude_text.notna() & (magnitude_text.astype("string").str.strip() != "") & magnitude.isna(),
         "not_a_number", "magnitude", "a number or an empty cell", magnitude_text)
    rule(ids.duplicated(keep="first") & ids.notna(), "duplicate", "anomaly_id",
         "one row per label (the same anomaly_id, or entity/start/end, appears earlier in the file)", ids)

    ok = reason.isna()
    text = {c: raw[c].astype("string") if c in raw else pd.Series([pd.NA] * n, index=raw.index, dtype="string")
            for c in ("kind", "description")}
    kind = text["kind"].str.strip().fillna(DEFAULT_KIND).replace("", DEFAULT_KIND)
    accepted = pd.DataFrame({
        "anomaly_id": ids[ok].astype(str), "entity": entity[ok].astype(str), "kind": kind[ok].astype(str),
        "start": start[ok], "end": end[ok], "magnitude": magnitude[ok].astype(np.float64),
        "description": text["description"][ok].astype(object).where(text["description"][ok].notna(), None),
    }, columns=list(LABEL_COLUMNS)).reset_index(drop=True)
    bad = ~ok
    rows = raw[bad].astype(object).where(raw[bad].notna(), None)
    rejected = pd.DataFrame({
        "reason": reason[bad].astype(str), "column": column[bad].astype(str), "detail": detail[bad].astype(str),
        "raw": [json.dumps({str(k): v for k, v in r.items()}) for r in rows.to_dict("records")],
        "date": start[bad].dt.normalize(),
    }, columns=list(REJECT_COLUMNS)).reset_index(drop=True)
    return ParsedLabels(accepted, rejected)


def flag_intervals(rows: pd.DataFrame, column: str) -> pd.DataFrame:
    """Labels from events flagged one by one (a per-row anomaly column such as ``anomaly``,
    ``label`` or ``attack``): one label per run of consecutive flagged rows of an entity.

    A run's label starts at its first flagged row and ends (exclusive) at the next later
    timestamp of the entity after its last flagged row; a run that reaches the entity's last
    row ends one usual interval (the median between the entity's distinct timestamps) after it,
    or is a point label when the entity has a single timestamp.

    Args:
        rows: ``entity`` (str), ``ts`` (naive UTC timestamps) and ``flag`` (bool) of any number of
            entities, any row order; rows sharing an entity and timestamp belong to one run when
            any of them is flagged.
        column: The flag column's name (the labels' ``kind``).

    Returns:
        Columns :data:`LABEL_COLUMNS`, sorted by entity and start; ``description`` counts the
        flagged rows.
    """
    if rows.empty:
        return pd.DataFrame(columns=list(LABEL_COLUMNS))
    codes, entities = pd.factorize(rows["entity"].to_numpy(object), sort=True)
    ts = pd.to_datetime(rows["ts"]).to_numpy("datetime64[ns]").astype(np.int64)
    flag = rows["flag"].to_numpy(bool)
    order = np.lexsort((ts, codes))
    codes, ts, flag = codes[order], ts[order], flag[order]
    # one step per distinct (entity, timestamp): flagged when any of its rows is
    step_start = np.r_[True, (codes[1:] != codes[:-1]) | (ts[1:] != ts[:-1])]
    step = np.cumsum(step_start) - 1
    s_code, s_ts = codes[step_start], ts[step_start]
    s_flag = np.zeros(len(s_code), bool)
    np.logical_or.at(s_flag, step, flag)
    s_rows = np.bincount(step, weights=flag, minlength=len(s_code)).astype(np.int64)
    first_of_entity = np.r_[True, s_code[1:] != s_code[:-1]]
    last_of_entity = np.r_[s_code[1:] != s_code[:-1], True]
    gaps = np.where(first_of_entity, np.nan, np.r_[np.nan, np.diff(s_ts)].astype(np.float64))
    spacing = pd.Series(gaps).groupby(s_code).median().reindex(range(len(entities))).to_numpy()
    opens = s_flag & (first_of_entity | ~np.r_[False, s_flag[:-1]])
    closes = s_flag & (last_of_entity | ~np.r_[s_flag[1:], False])
    first, last = np.flatnonzero(opens), np.flatnonzero(closes)
    run_rows = np.add.reduceat(s_rows, first) if len(first) else np.zeros(0, np.int64)
    following = np.minimum(last + 1, len(s_ts) - 1)
    tail = np.nan_to_num(spacing[s_code[last]], nan=0.0).astype(np.int64)
    end_ns = np.where(last_of_entity[last], s_ts[last] + tail, s_ts[following])
    start = pd.to_datetime(s_ts[first])
    end = pd.to_datetime(end_ns)
    entity = entities[s_code[first]].astype(str)
    return pd.DataFrame({
        "anomaly_id": [label_id(e, s, t) for e, s, t in zip(entity, start, end, strict=True)],
        "entity": entity, "kind": column, "start": start, "end": end, "magnitude": np.nan,
        "description": [f"{n} row(s) flagged in column {column}" for n in run_rows],
    }, columns=list(LABEL_COLUMNS))

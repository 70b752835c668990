"""The bad-input corpus: every kind of bad event through ``discretize`` into ``rejects``.

One Delta events table (all columns strings, as raw landing tables often are) holds good rows and
one or more rows of each bad kind; ``run_discretize`` runs once on it and each kind is checked
on its own: the row is in ``rejects`` with its reason and column, it never reaches ``features``,
and read = accepted + rejected. Late events are checked through their whole policy (rejected by
the night they arrive in, accepted by a rerun of their own night, counted once).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pytest

from adspark.config import DiscretizeJobConfig, build_job_config
from adspark.pipeline.discretize import run_discretize

D = dt.date(2026, 1, 5)
NEXT = D + dt.timedelta(days=1)
DDL = ("event_id string, event_time string, user_id string, amount string, latency_ms string, "
       "category string, channel string, event_date date")


@dataclass(frozen=True)
class Kind:
    """One kind of bad event: the row(s) and what ``rejects`` must say."""

    name: str
    rows: tuple[tuple, ...]
    reason: str
    column: str | None
    detail: str


def _row(eid: str, time: str = "2026-01-05 10:00:00", user: str | None = "u1", amount: str | None = "1.5",
         latency: str | None = "20", category: str | None = "a", channel: str | None = "web",
         day: dt.date = D) -> tuple:
    return (eid, time, user, amount, latency, category, channel, day)


KINDS = (
    Kind("null entity", (_row("null-entity", user=None),), "null_entity", "user_id", "non-blank"),
    Kind("blank entity", (_row("blank-entity", user="   "),), "null_entity", "user_id", "non-blank"),
    Kind("null timestamp", (_row("null-ts", time=None),), "null_timestamp", "event_time", "expected a timestamp"),
    Kind("unparseable timestamp", (_row("bad-ts", time="05/01/2026 ten o'clock"),), "unparseable_timestamp",
         "event_time", "ten o'clock"),
    Kind("wrong type (boolean in a numeric column)", (_row("wrong-type", latency="true"),), "unparseable_value",
         "latency_ms", "cannot parse true"),
    Kind("unparseable number", (_row("bad-number", amount="12,5€"),), "unparseable_value", "amount", "12,5€"),
    Kind("NaN", (_row("nan", amount="NaN"),), "non_finite", "amount", "NaN"),
    Kind("infinity", (_row("inf", latency="-Infinity"),), "non_finite", "latency_ms", "Infinity"),
    Kind("negative where non-negative", (_row("negative", amount="-3"),), "negative_value", "amount", ">= 0"),
    Kind("huge value", (_row("huge", latency="1e300"),), "huge_value", "latency_ms", "1.0E300"),
    Kind("far future timestamp", (_row("future", time="2199-01-05 10:00:00"),), "timestamp_out_of_range",
         "event_time", "2199-01-05"),
    Kind("far past timestamp", (_row("past", time="1970-01-01 00:00:01"),), "timestamp_out_of_range",
         "event_time", "1970-01-01"),
    Kind("event day after the night", (_row("early", time="2026-01-09 10:00:00"),), "outside_night",
         "event_time", "2026-01-09"),
    Kind("exact duplicate", (_row("dup", time="2026-01-05 12:00:00"),) * 2, "duplicate", None, "exact copy"),
    Kind("unknown category", (_row("unknown-cat", category="zz"),), "unknown_category", "category", "zz"),
    Kind("broken encoding (U+FFFD)", (_row("mojibake", user="u\ufffd1"),), "bad_encoding", "user_id", "u\ufffd1"),
    Kind("control character", (_row("nul-byte", channel="we\x00b"),), "bad_encoding", "channel", "\\u0000"),
    Kind("late event (earlier night, this partition)", (_row("late", time="2026-01-04 23:00:00"),), "late_event",
         "event_time", "rerun `adspark nightly --date 2026-01-04`"),
)
GOOD = tuple(
    _row(f"good-{u}-{h}", time=f"2026-01-05 {h:02d}:15:00", user=u, amount=str(h), category="ab"[h % 2],
         channel="web")
    for u in ("u1", "u2") for h in range(0, 24, 3)
) + (_row("good-u1-3-second-reading", time="2026-01-05 03:15:00", user="u1", amount="7", category="b"),)


def _config(tmp_path) -> DiscretizeJobConfig:
    return build_job_config(DiscretizeJobConfig, {
        "storage": {"warehouse": str(tmp_path / "wh"), "schema": "adspark_test"},
        "source": {
            "table": "raw_events",
            "timestamp": {"column": "event_time"},
            "date_column": "event_date",
            "entity": ["user_id"],
            "event_id": "event_id",
            "measures": [{"name": "amount", "non_negative": True}, {"name": "latency_ms"}],
            "categoricals": [{"name": "category", "values": ["a", "b"]}, {"name": "channel", "top_k": 3}],
        },
        "discretize": {"bucket": "6h", "activity_lookback_days": 0},
    })


@pytest.fixture(scope="module")
def corpus_run(spark, tmp_path_factory):
    """Discretize night D of the corpus once; the rejects and features it wrote."""
    from adspark.storage import TableStore

    tmp = tmp_path_factory.mktemp("bad-input")
    cfg = _config(tmp)
    store = TableStore(spark, cfg.storage)
    rows = [*GOOD, *[r for k in KINDS for r in k.rows]]
    spark.createDataFrame(rows, DDL).write.format("delta").partitionBy("event_date").save(store.path("raw_events"))
    store.register("raw_events")
    run = run_discretize(store, cfg, D, D)
    rejects = {r.raw: r for r in store.read("rejects").collect()}
    return run, rejects, store, cfg


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_each_bad_kind_is_rejected_with_its_reason(corpus_run, kind: Kind) -> None:
    _, rejects, _, _ = corpus_run
    eid = kind.rows[0][0]
    mine = [r for raw, r in rejects.items() if json.loads(raw)["event_id"] == eid]
    assert len(mine) == 1, f"{kind.name}: expected one reject for {eid}, got {len(mine)}"
    r = mine[0]
    assert (r.reason, r.column) == (kind.reason, kind.column), kind.name
    assert kind.detail in r.detail or kind.detail in r.raw, (kind.name, r.detail)
    assert r.job == "discretize" and r.run_id


def test_read_equals_accepted_plus_rejected(corpus_run) -> None:
    run, rejects, store, _ = corpus_run
    bad = sum(len(k.rows) for k in KINDS)
    assert run.rows_read == len(GOOD) + bad
    assert run.rows_rejected == len(rejects) == bad - 1  # one copy of the duplicate is accepted
    assert run.rows_accepted == run.rows_read - run.rows_rejected
    # two readings of u1 at 03:15 (source.same_timestamp: aggregate, the default): kept, counted
    assert "; 2 accepted readings share their entity and timestamp with a different reading" in run.message
    features = store.read("features").toPandas()
    assert int(features["event_count"].sum()) == len(GOOD) + 1  # good rows + the first copy of "dup"
    # nothing non-finite or huge reached the features
    numeric = features.select_dtypes("number")
    assert numeric.abs().max().max() < 1e15


def test_late_events_are_queued_then_rescored_by_a_rerun(corpus_run, spark) -> None:
    """A late row for D arriving in partition D+1: rejected by night D+1, accepted by rerunning D."""
    run, _, store, cfg = corpus_run
    late = _row("late-for-D", time="2026-01-05 20:00:00", user="u1", amount="7", day=NEXT)
    on_time = _row("on-time", time="2026-01-06 01:00:00", user="u1", amount="1", day=NEXT)
    spark.createDataFrame([late, on_time], DDL).write.format("delta").mode("append").save(store.path("raw_events"))

    def count(day: dt.date) -> int:
        f = store.read("features").toPandas()
        return int(f.loc[f["bucket_start"].dt.date == day, "event_count"].sum())

    before = count(D)
    nxt = run_discretize(store, cfg, NEXT, NEXT)
    assert (nxt.rows_read, nxt.rows_rejected) == (2, 1)
    late_rejects = [r for r in store.read("rejects").where("reason = 'late_event'").collect()
                    if json.loads(r.raw)["event_id"] == "late-for-D"]
    assert len(late_rejects) == 1 and "--date 2026-01-05" in late_rejects[0].detail
    assert count(D) == before  # queued, not yet in D

    rerun = run_discretize(store, cfg, D, D)
    assert rerun.rows_read == run.rows_read + 1 and rerun.rows_rejected == run.rows_rejected
    assert count(D) == before + 1  # re-scored night D holds it, once
    assert count(NEXT) == 1

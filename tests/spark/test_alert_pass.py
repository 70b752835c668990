"""The adaptive alerts through the score job: nights one by one equal the range and reruns are
identical, feedback moves the alert level, state retention, a challenger beside the champion."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from adspark.config import ScoreJobConfig, TrainJobConfig, build_job_config
from adspark.pipeline.score import run_score
from adspark.pipeline.train import run_train
from adspark.plans import partitions_read

D5, D6, D7 = dt.date(2026, 1, 5), dt.date(2026, 1, 6), dt.date(2026, 1, 7)


def test_alerts_nights_one_by_one_equal_the_range_and_reruns_are_identical(store, half_trained, table_rows):
    import shutil

    config, _ = half_trained
    # tiny data (5 windows per entity): the model's calibrated errors alone, verdicts from the 2nd window
    config["alerts"] = {"level": 0.999, "detectors": ["model"],  # normal law: Student's is wide on 1 window
                        "calibration": {"min_history": 1, "short_buckets": 1, "tail": "normal"}}
    cfg = build_job_config(ScoreJobConfig, config)

    def snapshot() -> dict:
        return {
            "scores": table_rows(store, "scores", drop=["run_id"]),
            "alert_state": store.read("alert_state").drop("run_id").toPandas()
            .sort_values(["entity", "date", "name"]).reset_index(drop=True),
        }

    run_score(store, cfg, D5, D7)
    whole = snapshot()
    assert whole["scores"]["alert"].any() and whole["scores"]["driver"].notna().all()
    for table in ("scores", "alert_state", "intervals"):
        shutil.rmtree(store.path(table))
    for day in (D5, D6, D7):
        run_score(store, cfg, day, day)
    nightly = snapshot()
    pd.testing.assert_frame_equal(nightly["scores"], whole["scores"])
    for column in ("alert_key", "entity", "date", "name"):
        assert nightly["alert_state"][column].tolist() == whole["alert_state"][column].tolist()
    for a, b in zip(nightly["alert_state"]["values"], whole["alert_state"]["values"], strict=True):
        np.testing.assert_array_equal(a, b)
    # a rerun of the middle night starts from the state of D5 and changes nothing
    run_score(store, cfg, D6, D6)
    pd.testing.assert_frame_equal(snapshot()["scores"], whole["scores"])
    # from scratch, D6..D7 replay D5 first but keep no state of it; D5 run afterwards finds no
    # state before it, and every table ends as the whole range's
    for table in ("scores", "alert_state", "intervals"):
        shutil.rmtree(store.path(table))
    run_score(store, cfg, D6, D7)
    assert set(store.read("alert_state").toPandas()["date"]) == {D6, D7}
    later = whole["scores"][whole["scores"]["date"] > D5].reset_index(drop=True)
    pd.testing.assert_frame_equal(snapshot()["scores"], later)
    run_score(store, cfg, D5, D5)
    again = snapshot()
    pd.testing.assert_frame_equal(again["scores"], whole["scores"])
    for a, b in zip(again["alert_state"]["values"], whole["alert_state"]["values"], strict=True):
        np.testing.assert_array_equal(a, b)
    # intervals carry the explanation of their peak window
    intervals = store.read("intervals").toPandas()
    assert len(intervals) and intervals["p_value"].lt(0.999).all() and intervals["driver"].notna().all()
    assert (intervals["threshold_method"] == "alerts (level 0.999)").all()


def test_feedback_recalibrates_the_alert_level_where_the_alerts_decide(store, half_trained):
    """With the adaptive alerts on, the judged intervals move the alert level (on the -log10 p
    scale, shrunk towards the configured level); the next scoring uses it."""
    from adspark.pipeline.feedback import add_feedback, ensure_feedback_table, recalibrate

    config, model = half_trained
    config["alerts"] = {"level": 0.5, "detectors": ["model"],
                        "calibration": {"min_history": 1, "short_buckets": 1, "tail": "normal"}}
    run_score(store, build_job_config(ScoreJobConfig, config), D5, D7)
    intervals = store.read("intervals").orderBy("p_value").collect()
    assert intervals
    ensure_feedback_table(store)
    add_feedback(store, intervals[0].interval_id, "true", "alice")
    for iv in intervals[1:]:
        add_feedback(store, iv.interval_id, "false", "alice")
    new = recalibrate(store, model, beta=1.0, strength=2.0, alert_level=0.5)
    r = new.metrics["alert_level_recalibration"]
    n = len(intervals)
    assert r["judged_intervals"] == n and r["configured"] == 0.5
    expected = (n * -np.log10(r["supervised"]) + 2.0 * -np.log10(0.5)) / (n + 2.0)
    assert new.metrics["alert_level"] == pytest.approx(10.0 ** -expected)
    assert new.threshold == model.threshold  # the model's own threshold is not what decided
    if n > 1:  # false intervals judged: a stricter level than the configured one
        assert new.metrics["alert_level"] < 0.5
    run = run_score(store, build_job_config(ScoreJobConfig, {**config, "score": {"model_id": new.model_id}}), D7, D7)
    assert f"alerts (level {new.metrics['alert_level']:g})" in run.message
    scores = store.read("scores").where(f"date = date'{D7}'").toPandas()
    assert set(scores["model_id"]) == {model.model_id, new.model_id}  # the old model's scores stay
    scores = scores[scores["model_id"] == new.model_id]
    np.testing.assert_allclose(scores["threshold"], -np.log10(new.metrics["alert_level"]))
    assert (scores["is_anomaly"] == (scores["p_value"] < new.metrics["alert_level"])).all()


def test_alert_state_retention_keeps_the_recent_nights_and_each_entitys_latest(store, half_trained, table_rows):
    """alerts.state_nights: 1 keeps every state of the last night scored and, of older nights, each
    entity's latest; a rerun of the kept night is unchanged."""
    import glob

    import pyarrow.parquet as pq

    from adspark.pipeline.alerts import alert_key, states_before
    from adspark.session import session_conf

    config, _ = half_trained
    config["alerts"] = {"level": 0.5, "detectors": ["model"],
                        "calibration": {"min_history": 1, "short_buckets": 1, "tail": "normal"}}
    keep_all = build_job_config(ScoreJobConfig, config)
    config["alerts"]["state_nights"] = 1
    pruned = build_job_config(ScoreJobConfig, config)
    assert alert_key(keep_all.alerts, "s") == alert_key(pruned.alerts, "s")  # same states either way
    run_score(store, keep_all, D5, D7)
    before = store.read("alert_state").toPandas()
    first = table_rows(store, "scores", drop=["run_id"])
    assert set(before["date"]) == {D5, D6, D7}
    # the arrays are mostly distinct doubles: written without a Parquet dictionary (faster)
    for f in glob.glob(f"{store.path('alert_state')}/date=*/*.parquet"):
        group = pq.ParquetFile(f).metadata.row_group(0)
        encodings = {group.column(i).path_in_schema: group.column(i).encodings for i in range(group.num_columns)}
        assert not any("DICTIONARY" in e for e in encodings["values.list.element"]), encodings
    # each entity's latest state before D7 (D6's), its arrays read from D6's partition alone, the
    # lookup broadcast or not, whatever size Spark estimates (here: it would broadcast nothing)
    key = before["alert_key"].iloc[0]
    latest = before[before["date"] == D6].drop(columns="run_id").assign(values=lambda f: f["values"].map(list))
    with session_conf(store.spark, "spark.sql.autoBroadcastJoinThreshold", "-1"):
        for entities in (before["entity"].nunique(), None):
            got = states_before(store, key, key, D7, entities)
            rows = got.toPandas().assign(values=lambda f: f["values"].map(list))
            pd.testing.assert_frame_equal(rows.sort_values(["entity", "name"]).reset_index(drop=True),
                                          latest[rows.columns].sort_values(["entity", "name"]).reset_index(drop=True))
            assert partitions_read(got, "values") == [1]
    run_score(store, pruned, D7, D7)
    after = store.read("alert_state").toPandas()
    assert set(after["date"]) == {D6, D7}  # D5 pruned: every entity has a later state before D7
    assert len(after) == len(before[before["date"] != D5])
    pd.testing.assert_frame_equal(table_rows(store, "scores", drop=["run_id"]), first)


def test_a_challenger_scored_beside_the_champion_changes_none_of_the_champions_rows(
    store, half_trained, spark
):
    """Scores and alert states are kept per model: scoring a challenger on the champion's nights
    adds its rows beside them, a rerun of either changes nothing of the other, evaluate compares
    them (one row each), and the report asks which one to show."""
    from adspark.config import EvaluateJobConfig
    from adspark.errors import ConfigError
    from adspark.pipeline.alerts import BROADCAST_ENTITIES, state_key, state_origin, states_before
    from adspark.pipeline.evaluate import run_evaluate
    from adspark.pipeline.report import build_report
    from adspark.pipeline.specs import StoredSpec
    from adspark.session import session_conf
    from schemas import LABELS

    config, champion = half_trained
    other = {**config, "train": {**config["train"], "detector": {**config["train"]["detector"], "hidden": [4]}}}
    _, challenger = run_train(store, build_job_config(TrainJobConfig, other), D5, D6)
    assert challenger.model_id != champion.model_id
    config["alerts"] = {"level": 0.5, "detectors": ["model"],
                        "calibration": {"min_history": 1, "short_buckets": 1, "tail": "normal"}}

    def score_with(model, start, end):
        return run_score(store, build_job_config(ScoreJobConfig, {**config, "score": {"model_id": model.model_id}}),
                         start, end)

    def rows_of(table, model):
        pdf = store.read(table).drop("run_id").toPandas()
        if table == "alert_state":
            pdf = pdf[pdf["alert_key"].str.endswith(model.model_id)]
            pdf = pdf.assign(values=pdf["values"].map(list))
            return pdf.sort_values(["entity", "date", "name"]).reset_index(drop=True)
        return pdf[pdf["model_id"] == model.model_id].sort_values(["entity", "window_start"]).reset_index(drop=True)

    score_with(champion, D5, D7)
    champion_scores, champion_state = rows_of("scores", champion), rows_of("alert_state", champion)
    cfg = build_job_config(ScoreJobConfig, config)
    own, theirs = (state_key(cfg.alerts, champion.spec_id, m.model_id) for m in (challenger, champion))
    spec = StoredSpec.load(store, champion.spec_id)
    # a model without states continues the newest one, from the night after its last state
    source, first, entities = state_origin(store, own, spec, D7)
    assert (source, first) == (theirs, D7) and entities == len(champion_state["entity"].unique())
    # the latest-state lookup is broadcast up to BROADCAST_ENTITIES (the state arrays are not
    # shuffled for the join), whatever size Spark estimates (here: it would broadcast nothing)
    with session_conf(spark, "spark.sql.autoBroadcastJoinThreshold", "-1"):
        for n, join in ((entities, "BroadcastHashJoin"), (BROADCAST_ENTITIES + 1, "SortMergeJoin")):
            plan = states_before(store, source, own, first, n)._jdf.queryExecution().executedPlan().toString()
            assert join in plan, plan
    run = score_with(challenger, D5, D7)
    assert run.windows == len(champion_scores)  # its own windows only, not the champion's too
    assert state_origin(store, own, spec, D7)[:2] == (own, D7)
    challenger_scores = rows_of("scores", challenger)
    for _ in range(2):  # each rerun leaves the other model's rows as they were
        pd.testing.assert_frame_equal(rows_of("scores", champion), champion_scores)
        pd.testing.assert_frame_equal(rows_of("alert_state", champion), champion_state)
        score_with(champion, D6, D6)
        pd.testing.assert_frame_equal(rows_of("scores", challenger), challenger_scores)
    assert len(rows_of("alert_state", challenger)) == len(champion_state)

    top = champion_scores.sort_values("score").iloc[-1]
    label = ("a1", top["entity"], "spike", top["window_start"].to_pydatetime(),
             top["window_start"].to_pydatetime() + dt.timedelta(hours=1), 1.0, "test label")
    spark.createDataFrame([label], LABELS.struct_type()).write.format("delta").save(store.path("labels"))
    ev = run_evaluate(store, build_job_config(EvaluateJobConfig, config), D5, D7)
    assert [r["model_ids"] for r in ev.rows] == [[m] for m in sorted((champion.model_id, challenger.model_id))]
    assert all(r["windows"] == len(champion_scores) for r in ev.rows)
    lines = ev.message.splitlines()
    assert len(lines) == 3 and "2 models" in lines[0] and {line.split(":")[0].strip() for line in lines[1:]} == {
        champion.model_id, challenger.model_id}
    assert store.read("evaluations").count() == 2
    with pytest.raises(ConfigError, match=f"scored by several models .*{champion.model_id}.*--model-id"):
        build_report(store, cfg, D5, D7)
    assert build_report(store, build_job_config(ScoreJobConfig, {**config, "score": {"model_id": challenger.model_id}}),
                        D5, D7).summary["models"] == challenger.model_id

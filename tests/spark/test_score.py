"""score + intervals + nightly on tiny data: idempotence, thresholds, cross-night extension."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from delta.tables import DeltaTable

from adspark.config import (
    IntervalConfig,
    NightlyJobConfig,
    ScoreJobConfig,
    TrainJobConfig,
    build_job_config,
)
from adspark.core.thresholds import Threshold
from adspark.errors import EmptyInputError, NightOrderError
from adspark.models.lookup import load_detector
from adspark.models.registry import RegisteredModel
from adspark.pipeline import leases
from adspark.pipeline.intervals import update_intervals
from adspark.pipeline.nightly import _retrain_reason, run_nightly
from adspark.pipeline.score import run_score
from adspark.pipeline.train import run_train
from schemas import EVALUATIONS, SCORES

D5, D6, D7 = dt.date(2026, 1, 5), dt.date(2026, 1, 6), dt.date(2026, 1, 7)


def test_scoring_matches_the_detector_and_is_idempotent(store, trained, table_rows):
    config, model = trained
    cfg = build_job_config(ScoreJobConfig, config)
    batch_rows = store.spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")
    run = run_score(store, cfg, D5, D7)
    assert model.model_id in run.message and run.run.rows_written == run.run.rows_read == run.windows > 0
    assert run.model.model_id == model.model_id and run.end == D7
    assert all(len(n.quantiles) == 101 for n in run.nights.values()) and sum(n.windows for n in run.nights.values()) == run.windows
    assert str(run.intervals) in run.message and 0 <= run.alerts <= run.anomalies <= run.windows
    # score.arrow_batch_rows (2 here) held for the scoring only; later stages get the session's
    assert store.spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch") == batch_rows != "2"
    first = table_rows(store, "scores", drop=["run_id"])
    intervals = table_rows(store, "intervals", drop=["first_seen_run", "last_run", "updated_at"])
    run_score(store, cfg, D5, D7)
    again = table_rows(store, "scores", drop=["run_id"])
    assert again.equals(first)
    assert table_rows(store, "intervals", drop=["first_seen_run", "last_run", "updated_at"]).equals(intervals)
    # the Spark path gives the in-process detector's scores and the entity's own threshold
    windows = store.read("windows").toPandas().sort_values(["entity", "window_start"])
    x = np.stack(windows["values"]).reshape(len(windows), model.n_steps, model.n_features)
    np.testing.assert_allclose(first["model_score"], load_detector(model).score(x), rtol=1e-5)
    # adaptive alerts (the default): score = -log10(p), threshold = -log10(alert level)
    np.testing.assert_allclose(first["score"], -np.log10(first["p_value"]))
    assert (first["threshold"] == 5.0).all() and first["p_value"].between(0, 1).all()
    assert (first["is_anomaly"] == (first["score"] > first["threshold"])).all()
    assert first["top_features"].map(len).eq(2).all()
    assert (first["top_shares"].map(sum) <= 1.0 + 1e-9).all()
    # intervals cover exactly the anomalous windows' entities
    assert set(intervals["entity"]) == set(first.loc[first["is_anomaly"], "entity"])
    assert store.read("alert_state").select("date").distinct().count() == 3  # a state per night


def test_scores_from_features_equal_scores_from_the_windows_table(store, trained, tmp_path, table_rows):
    """The model's threshold deciding (with alerts, the default, the first test compares the
    features path with the detector on the windows table's values, window for window); the same
    model as an MLflow pyfunc over the windows table gives those scores too."""
    config, model = trained
    config = {**config, "alerts": {"enabled": False}}
    tables = {}
    for source in ("windows", "features"):
        cfg = build_job_config(ScoreJobConfig, {**config, "score": {**config["score"], "source": source}})
        run = run_score(store, cfg, D6, D7)
        assert run.run.rows_written == run.run.rows_read == run.windows > 0, run.message
        tables[source] = table_rows(store, "scores", drop=["run_id"])
    pd.testing.assert_frame_equal(tables["features"], tables["windows"])
    assert len(tables["features"]) == store.read("windows").where(f"date >= '{D6}'").count()
    _the_mlflow_pyfunc_gives_the_same_scores(store, model, tables["windows"], tmp_path)


def _the_mlflow_pyfunc_gives_the_same_scores(store, model, scores: pd.DataFrame, tmp_path) -> None:
    """The model logged as an MLflow pyfunc and loaded by its alias: ``mlflow.pyfunc.spark_udf``
    over the ``windows`` table gives adspark score's scores, thresholds, verdicts and top features."""
    import mlflow
    from pyspark.sql import functions as F

    from adspark.config import MlflowConfig
    from adspark.models.pyfunc import SPARK_RESULT_TYPE
    from adspark.models.tracking import log_to_mlflow
    from adspark.pipeline.score import feature_names

    cfg = MlflowConfig(tracking_uri="sqlite:///{warehouse}/mlflow.db", registered_model="adspark_test")
    logged = log_to_mlflow(model, feature_names(store, model.spec_id), cfg, str(tmp_path), top_k=2)
    assert logged is not None and logged.model_uri == "models:/adspark_test/1"
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    udf = mlflow.pyfunc.spark_udf(store.spark, "models:/adspark_test@champion", result_type=SPARK_RESULT_TYPE,
                                  env_manager="local")
    got = (
        store.read("windows").where(F.col("date") >= F.lit(D6))
        .select("window_id", udf(F.struct("entity", "values")).alias("p")).select("window_id", "p.*").toPandas()
    )
    both = scores.merge(got, on="window_id", suffixes=("", "_pyfunc"), validate="one_to_one")
    assert len(both) == len(scores) == len(got)
    np.testing.assert_allclose(both["score_pyfunc"], both["model_score"], rtol=1e-5)
    np.testing.assert_allclose(both["threshold_pyfunc"], both["threshold"])
    assert (both["is_anomaly_pyfunc"] == both["is_anomaly"]).all()
    assert both["top_features_pyfunc"].map(list).tolist() == both["top_features"].map(list).tolist()
    assert both["probability"].between(0, 1).all()


def test_scoring_from_features_needs_the_nights_features(store, trained):
    config, _ = trained
    with pytest.raises(EmptyInputError, match="no windows to cut from features between 2026-01-09"):
        run_score(store, build_job_config(ScoreJobConfig, config), dt.date(2026, 1, 9), dt.date(2026, 1, 9))


def test_a_window_not_in_the_windows_table_is_cut_again_from_features(store, trained):
    from adspark.pipeline.specs import StoredSpec
    from adspark.pipeline.window import window_values

    _, model = trained
    row = store.read("windows").orderBy("entity", "window_start").collect()[5]
    DeltaTable.forPath(store.spark, store.path("windows")).delete(f"window_id = '{row.window_id}'")
    spec = StoredSpec.load(store, model.spec_id)
    values = window_values(store, spec, row.entity, row.window_id, row.window_end)
    np.testing.assert_allclose(values, np.asarray(row["values"], np.float32))


def test_without_alerts_the_models_thresholds_decide(store, trained, table_rows):
    config, model = trained
    run_score(store, build_job_config(ScoreJobConfig, {**config, "alerts": {"enabled": False}}), D5, D7)
    first = table_rows(store, "scores", drop=["run_id"])
    np.testing.assert_allclose(first["score"], first["model_score"])
    np.testing.assert_allclose(first["threshold"], first["entity"].map(model.entity_thresholds))
    assert (first["is_anomaly"] == (first["score"] > first["threshold"])).all()
    assert first["p_value"].isna().all() and not store.exists("alert_state")


def _scores(spark, model_id, day, flags, hours=12):
    rows = []
    for i, flag in enumerate(flags):
        start = dt.datetime.combine(day, dt.time()) + dt.timedelta(hours=6 * i)
        score = 3.0 if flag else 0.1
        rows.append(("u1", f"u1|{start}", start, start + dt.timedelta(hours=hours), day,
                     score, 1.0, flag, ["amount"], [1.0], score, None, flag, None, None, None, None,
                     None, model_id, "r"))
    return spark.createDataFrame(rows, SCORES.struct_type())


def test_interval_continuing_into_the_next_night_is_extended(spark, store):
    model = RegisteredModel(
        model_id="m-x", config_key="k", detector="dense_ae", params={}, spec_id="s", n_steps=2,
        n_features=1, threshold=Threshold("quantile", 1.0), entity_thresholds={},
        train_from=D5, train_to=D5, data_version=0,
    )
    cfg = IntervalConfig()
    store.append(_scores(spark, "m-x", D6, [False, False, True, True]), "scores", ("date",))
    update_intervals(store, cfg, model, D6, D6, "run-6")
    night6 = store.read("intervals").toPandas()
    assert len(night6) == 1 and night6["status"][0] == "open" and night6["n_windows"][0] == 2
    store.append(_scores(spark, "m-x", D7, [True, False, False, False]), "scores", ("date",))
    update_intervals(store, cfg, model, D7, D7, "run-7")
    night7 = store.read("intervals").toPandas()
    assert len(night7) == 1, "extended, not duplicated"
    assert night7["interval_id"][0] == night6["interval_id"][0]
    assert night7["status"][0] == "closed" and night7["n_windows"][0] == 3
    assert night7["first_seen_run"][0] == "run-6" and night7["last_run"][0] == "run-7"
    assert night7["end"][0] == dt.datetime(2026, 1, 7, 12)
    # a later night re-reads from the interval's start: the closed interval is not truncated
    store.append(_scores(spark, "m-x", dt.date(2026, 1, 8), [False, False, False, False]), "scores", ("date",))
    update_intervals(store, cfg, model, dt.date(2026, 1, 8), dt.date(2026, 1, 8), "run-8")
    night8 = store.read("intervals").toPandas()
    assert len(night8) == 1 and night8["interval_id"][0] == night6["interval_id"][0]
    assert night8["n_windows"][0] == 3


def _interval_rows(store, table_rows):
    return table_rows(store, "intervals", drop=["first_seen_run", "last_run", "updated_at"])


def test_a_night_whose_span_went_stale_under_a_concurrent_night_repairs_it(spark, store, tmp_path, table_rows):
    """Night D8 chose its span (D7 on) before night D7 merged the interval D6 18:00 - D7 12:00;
    its MERGE then inserts that interval truncated at D7 00:00. The check after the MERGE sees the
    interval reaching in from D6 and recomputes from there: the table equals the serial run's."""
    model = RegisteredModel(
        model_id="m-x", config_key="k", detector="dense_ae", params={}, spec_id="s", n_steps=2,
        n_features=1, threshold=Threshold("quantile", 1.0), entity_thresholds={},
        train_from=D5, train_to=D5, data_version=0,
    )
    cfg = IntervalConfig()
    d8 = dt.date(2026, 1, 8)
    nights = {D6: [False, False, False, True], D7: [True, True, False, False], d8: [False] * 4}
    for day, flags in nights.items():
        store.append(_scores(spark, "m-x", day, flags, hours=6), "scores", ("date",))
    for day in (D6, D7, d8):  # the serial run
        update_intervals(store, cfg, model, day, day, f"run-{day}")
    serial = _interval_rows(store, table_rows)
    assert len(serial) == 1 and serial["start"][0] == dt.datetime(2026, 1, 6, 18)
    assert serial["n_windows"][0] == 3
    DeltaTable.forPath(spark, store.path("intervals")).delete()
    update_intervals(store, cfg, model, D6, D6, "run-6")
    update_intervals(store, cfg, model, D7, D7, "run-7")
    update_intervals(store, cfg, model, d8, d8, "run-8", span_from=D7)  # D8's span, decided before D7 merged
    assert _interval_rows(store, table_rows).equals(serial)


def _shift_night(store, day: dt.date, factor: float) -> None:
    """Multiply the night's event amounts by ``factor`` in the source (the tiny nights are
    copies of each other: a drift to detect)."""
    from pyspark.sql import functions as F

    rows = store.read("events").where(F.col("event_date") == F.lit(day)).withColumn(
        "amount", F.col("amount") * F.lit(factor)).toPandas()
    shifted = store.spark.createDataFrame(rows, store.read("events").schema)
    store.replace_dates(shifted, "events", "event_date", day, day, partition_by=("event_date",))


def test_nightly_scores_retrains_on_drift_and_handles_an_empty_night(store, model_config, tiny_windowed):
    config = model_config
    config["nightly"] = {"retrain_every_days": None, "drift_psi": 0.01, "drift_min_windows": 1,
                         "train_days": 3}
    _, model = run_train(store, build_job_config(TrainJobConfig, config), D5, D6)
    _shift_night(store, D7, 10.0)
    cfg = build_job_config(NightlyJobConfig, config)
    result = run_nightly(store, cfg, D7)
    # the model in force for a night was trained before it (not the later one through D7)
    assert result.status == "succeeded" and result.model_id == model.model_id
    assert result.windows > 0 and result.psi > 0.01
    assert result.retrained and result.retrain_reason == "drift" and result.new_model_id != model.model_id
    assert set(result.stage_seconds) >= {"discretize", "window", "score", "train", "total"}
    assert store.read("models").count() == 2
    # a rerun of the night scores with the same model and does not retrain again
    store.reads.clear()
    store.commits.clear()
    rerun = run_nightly(store, cfg, D7)
    # one Delta commit per table the night changes (features, alert_state, scores, intervals, the
    # nightly row): the stages write no runs rows of their own, a night without rejects none there
    assert dict(store.commits) == {"features": 1, "alert_state": 1, "scores": 1, "intervals": 1, "nightly": 1}
    # an ordinary night reads each table at most twice (scores: once, by the interval merge; the
    # rows the score stage wrote come from Delta's record of its commit; intervals: the span
    # before the MERGE, the span and summary after it;
    # alert_state: where to start and the states to start from; nightly takes its counts and
    # drift from the score stage's result); features: the difference's context (this config
    # differences event_count) and the scorer's count and pass (the previous-night check lists
    # the Delta log's files, reading no row)
    over = {t: n for t, n in store.reads.items() if n > 2}
    assert not over, f"tables read more often than expected in one night: {over}"
    assert store.reads["scores"] == 1 and store.reads["window_specs"] <= 2
    assert rerun.model_id == model.model_id and rerun.new_model_id == result.new_model_id
    assert rerun.retrain_reason == "drift (earlier run)" and store.read("models").count() == 2
    empty = run_nightly(store, cfg, dt.date(2026, 1, 8))
    assert empty.status == "empty" and "no events" in empty.message
    rows = store.read("nightly").toPandas().sort_values(["date", "run_id"])
    assert list(rows["status"]) == ["succeeded", "succeeded", "empty"]
    gap = dt.date(2026, 1, 10)
    with pytest.raises(EmptyInputError, match="night 2026-01-09 was never processed"):
        run_nightly(store, cfg, gap)
    # the schedule: due once the model's training range ended retrain_every_days ago
    sched = build_job_config(NightlyJobConfig, {**config, "nightly": {"retrain_every_days": 7}})
    assert _retrain_reason(sched, model, model.train_to + dt.timedelta(days=7), None, None, 0) == "schedule"
    assert _retrain_reason(sched, model, model.train_to + dt.timedelta(days=6), None, None, 0) is None


def test_a_model_of_another_window_spec_is_refused(store, trained):
    from dataclasses import replace

    from adspark.errors import SchemaMismatchError
    from adspark.models.registry import save_model

    config, model = trained
    other = save_model(store, replace(model, model_id="m-other-spec", spec_id="0123456789ab"))
    cfg = build_job_config(ScoreJobConfig, {**config, "score": {**config["score"], "model_id": other.model_id}})
    with pytest.raises(SchemaMismatchError, match="spec_id.*0123456789ab.*m-other-spec") as err:
        run_score(store, cfg, D5, D7)
    assert model.spec_id in str(err.value)
    assert not store.exists("scores")  # refused before any write


def test_evaluate_against_labels_writes_one_row(store, trained, spark):
    from adspark.config import EvaluateJobConfig
    from adspark.pipeline.evaluate import run_evaluate
    from schemas import LABELS

    config, _ = trained
    run_score(store, build_job_config(ScoreJobConfig, config), D5, D7)
    scores = store.read("scores").toPandas()
    top = scores.sort_values("score").iloc[-1]
    label = ("a1", top["entity"], "spike", top["window_start"].to_pydatetime(),
             top["window_start"].to_pydatetime() + dt.timedelta(hours=1), 1.0, "test label")
    spark.createDataFrame([label], LABELS.struct_type()).write.format("delta").save(store.path("labels"))
    # an evaluations table written by an adspark without the point-level columns takes them on
    older = EVALUATIONS.struct_type([f.name for f in EVALUATIONS.fields if not f.name.startswith(("point", "positive_p"))])
    spark.createDataFrame([], older).write.format("delta").save(store.path("evaluations"))
    ev = run_evaluate(store, build_job_config(EvaluateJobConfig, config), D5, D7)
    v = ev.values
    assert v["windows"] == len(scores) and v["labels"] == 1 and 0 < v["positive_windows"] < len(scores)
    assert 0.0 <= v["roc_auc"] <= 1.0 and v["best_f1"] >= v["f1"] - 1e-9
    assert "ROC AUC" in ev.message and "NAB standard" in ev.message
    # points: the hourly buckets, each judged once; the label covers exactly one
    assert v["positive_points"] == 1 and v["points"] >= len(scores) and "points: 1/" in ev.message
    assert 0.0 <= v["point_false_alarm_rate"] <= 1.0 and v["point_missed_alarm_rate"] in (0.0, 1.0)
    rows = store.read("evaluations").collect()
    assert len(rows) == 1 and rows[0].windows == len(scores) and rows[0].labels_table == "labels"
    assert rows[0].points == v["points"]


def test_feedback_flows_into_precision_training_and_recalibration(store, trained, spark):
    from adspark.errors import AdsparkError
    from adspark.pipeline.feedback import (
        add_feedback,
        ensure_feedback_table,
        feedback_summary,
        recalibrate,
    )
    from adspark.pipeline.train import _training_windows

    config, model = trained
    config = {**config, "alerts": {"enabled": False}}  # recalibration moves the model's threshold
    run_score(store, build_job_config(ScoreJobConfig, config), D5, D7)
    intervals = store.read("intervals").orderBy("peak_score", ascending=False).collect()
    assert intervals
    ensure_feedback_table(store)
    with pytest.raises(AdsparkError, match="no interval with id 'iv-nope'"):
        add_feedback(store, "iv-nope", "true", "alice")
    with pytest.raises(AdsparkError, match="expected one of"):
        add_feedback(store, intervals[0].interval_id, "maybe", "alice")
    add_feedback(store, intervals[0].interval_id, "false", "alice", "first look")
    add_feedback(store, intervals[0].interval_id, "true", "bob", "confirmed")  # the latest verdict counts
    # SQL INSERT works too
    assert feedback_summary(store) == "feedback: precision 1.00 on 1 judged intervals (1 true, 0 false)"
    # SQL INSERT works too (a later verdict on the same interval)
    spark.sql(f"INSERT INTO {store.qualified('feedback')} VALUES "
              f"('{intervals[0].interval_id}', 'false', 'noise after all', 'carol', current_timestamp())")
    assert feedback_summary(store) == "feedback: precision 0.00 on 1 judged intervals (0 true, 1 false)"
    add_feedback(store, intervals[0].interval_id, "true", "bob", "confirmed again")
    # training leaves out the windows of the interval judged true
    train_cfg = build_job_config(TrainJobConfig, config)
    windows, *_ = _training_windows(store, train_cfg, D5, D7)
    flagged = windows.where("labeled").select("entity", "window_start", "window_end").collect()
    top = intervals[0]
    assert flagged and all(r.entity == top.entity and r.window_start < top.end and r.window_end > top.start
                           for r in flagged)
    # recalibration: supervised on the feedback, shrunk towards the unsupervised threshold
    new = recalibrate(store, model, beta=1.0, strength=2.0)
    p = new.threshold.params
    assert new.threshold.method == "recalibrated" and new.model_id != model.model_id
    assert p["judged_intervals"] == 1 and p["unsupervised"] == model.threshold.value
    expected = (1 * p["supervised"] + 2.0 * p["unsupervised"]) / 3
    assert new.threshold.value == pytest.approx(expected)
    np.testing.assert_allclose(
        load_detector(new).score(np.zeros((1, model.n_steps, model.n_features), np.float32)),
        load_detector(model).score(np.zeros((1, model.n_steps, model.n_features), np.float32)),
    )


def test_the_spark_alert_pass_equals_the_pure_core(store, trained, table_rows):
    from adspark.config import AlertsConfig
    from adspark.core.alerts import ALERT_COLUMNS, alert_nights
    from adspark.pipeline.alerts import alert_params
    from adspark.pipeline.specs import StoredSpec

    config, model = trained
    alerts = {"level": 0.5, "detectors": ["level", "diff", "seasonal", "extreme"], "warmup": "6h",
              "min_visits": 1, "calibration": {"min_history": 1, "short_buckets": 1}}
    run_score(store, build_job_config(ScoreJobConfig, {**config, "alerts": alerts}), D6, D7)
    job = table_rows(store, "scores", drop=["run_id"])
    spec = StoredSpec.load(store, model.spec_id)
    windows = store.read("windows").select("entity", "window_id", "window_start", "window_end", "date",
                                           "raw_values").toPandas()
    params = alert_params(AlertsConfig(**alerts), spec, model)
    parts = []
    for _, mine in windows.assign(model_score=np.nan, top_features=None).groupby("entity"):
        scored, _ = alert_nights(mine, None, params)  # from the spec's first night, as the job replays
        parts.append(scored[scored["date"] >= D6])
    core = pd.concat(parts).sort_values(["entity", "window_start"]).reset_index(drop=True)
    assert core["window_id"].tolist() == job["window_id"].tolist()
    for column in ALERT_COLUMNS:
        a, b = job[column].to_numpy(), core[column].to_numpy()
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            np.testing.assert_allclose(a.astype(float), b.astype(float), err_msg=column)
        else:
            assert a.tolist() == b.tolist(), column


def test_a_night_waits_for_an_earlier_night_in_progress_then_says_which(store, model_config, tiny_windowed):
    """A live run of D6 (a lease held by this process) holds night D7 back; after
    ``wait_for_earlier_nights`` D7 fails with a retryable error naming D6's run, recorded in
    ``nightly``, and leaves no lease behind."""
    config = model_config
    config["nightly"] = {"wait_for_earlier_nights": "3s"}
    folder = leases.lease_folder(store.root)
    held = leases.acquire(folder, D6, "nightly-held", leases.utc_now())
    with pytest.raises(NightOrderError, match=r"nightly 2026-01-07: waited \d+ s .*night 2026-01-06 \(run nightly-held"):
        run_nightly(store, build_job_config(NightlyJobConfig, config), D7)
    row = store.read("nightly").toPandas().iloc[-1]
    assert row["status"] == "failed" and "nightly-held" in row["message"]
    assert leases.read_leases(folder) == [held]
    leases.release(folder, held, succeeded=True)

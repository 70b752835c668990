"""The declarations of every adspark table."""

from __future__ import annotations

from schemas.fields import Field as F
from schemas.fields import TableSchema

EVENTS = TableSchema(
    name="events",
    doc="Generated demo events (a user's own table has its own columns, mapped by config).",
    partition_by=("event_date",),
    fields=(
        F("event_id", "string", False, "unique id of the event"),
        F("event_time", "timestamp", True, "when it happened (UTC)"),
        F("user_id", "string", True, "the entity"),
        F("amount", "double", True, "heavy-tailed amount"),
        F("latency_ms", "double", True, "latency, linked to amount"),
        F("category", "string", True, "merchant category"),
        F("channel", "string", True, "web, mobile or api"),
        F("event_date", "date", False, "partition: the night the row belongs to"),
    ),
)

LABELS = TableSchema(
    name="labels",
    doc="Ground-truth anomalies injected by the generator (or labeled by analysts).",
    fields=(
        F("anomaly_id", "string", False, "label id"),
        F("entity", "string", False, "entity key"),
        F("kind", "string", False, "spike, level_shift, drop_to_zero, daily_shape, ..."),
        F("start", "timestamp", False, "first instant of the anomaly (UTC)"),
        F("end", "timestamp", False, "end of the anomaly, exclusive (UTC)"),
        F("magnitude", "double", True, "strength of the injected effect"),
        F("description", "string", True, "human-readable summary"),
    ),
)

REJECTS = TableSchema(
    name="rejects",
    doc="Rows that failed the events contract, with the reason. read = accepted + rejected.",
    partition_by=("date",),
    fields=(
        F("run_id", "string", False, "the run that rejected the row"),
        F("job", "string", False, "discretize or window (row mode)"),
        F("reason", "string", False, "rule code, e.g. null_entity, non_finite, duplicate, conflicting_readings"),
        F("column", "string", True, "the column that broke the rule"),
        F("detail", "string", True, "what was expected and what was found"),
        F("raw", "string", False, "the raw row as JSON"),
        F("date", "date", False, "partition: the night the row was read for"),
        F("rejected_at", "timestamp", False, "when"),
    ),
)

FEATURE_KEYS = TableSchema(
    name="features",
    doc="One row per entity and bucket; feature columns follow from the config.",
    partition_by=("date",),
    fields=(
        F("entity", "string", False, "entity key (key columns joined with '|')"),
        F("bucket_start", "timestamp", False, "bucket start (UTC)"),
        F("date", "date", False, "partition: UTC day of the bucket"),
        F("padded", "boolean", False, "true when the bucket had no events"),
    ),
)

WINDOW_SPECS = TableSchema(
    name="window_specs",
    doc="What the arrays in the windows table hold, one row per spec id.",
    fields=(
        F("spec_id", "string", False, "hash of everything below"),
        F("mode", "string", False, "buckets or rows"),
        F("features", "array<string>", False, "feature names, the inner axis of values"),
        F("n_steps", "int", False, "W, time steps per window"),
        F("stride", "int", False, "S, buckets between window ends"),
        F("bucket_seconds", "int", False, "bucket width (0 in row mode)"),
        F("scaling_method", "string", False, "robust or minmax"),
        F("fit_from", "date", False, "first day of the scaler's training range"),
        F("fit_to", "date", False, "last day of the scaler's training range"),
        F("created_at", "timestamp", False, "when the spec was first used"),
        F("entity_head_seconds", "bigint", True,
          "each entity's reference range (window.scaling.entity_head), null for calendar nights"),
    ),
)

SCALER_STATS = TableSchema(
    name="scaler_stats",
    doc="Scaling statistics per spec, entity and feature (entity __global__ for fallbacks).",
    fields=(
        F("spec_id", "string", False, "window spec"),
        F("entity", "string", False, "entity key or __global__"),
        F("feature", "string", False, "feature name"),
        F("center", "double", False, "subtracted before scaling"),
        F("scale", "double", False, "divided by after centering (> 0)"),
        F("median", "double", False, "training median"),
        F("iqr", "double", False, "training inter-quartile range"),
        F("min", "double", False, "training minimum"),
        F("max", "double", False, "training maximum"),
        F("n", "bigint", False, "training values seen"),
    ),
)

VOCABULARIES = TableSchema(
    name="vocabularies",
    doc="Categorical vocabularies fitted on a training range (top values, in index order).",
    fields=(
        F("source", "string", False, "source table"),
        F("column", "string", False, "categorical column"),
        F("value", "string", False, "a kept value"),
        F("index", "int", False, "slot of the value"),
        F("frequency", "bigint", False, "count in the fitting range"),
        F("fitted_at", "timestamp", False, "when"),
    ),
)

WINDOWS = TableSchema(
    name="windows",
    doc="Model input: one row per window (bucket mode) or per event (row mode, W = 1).",
    partition_by=("date",),
    fields=(
        F("entity", "string", False, "entity key"),
        F("window_id", "string", False, "deterministic id: entity|window_start (or event id)"),
        F("window_start", "timestamp", False, "first bucket start (UTC)"),
        F("window_end", "timestamp", False, "end of the last bucket, exclusive (UTC)"),
        F("date", "date", False, "partition: UTC day of the last bucket"),
        F("spec_id", "string", False, "window spec (see window_specs)"),
        F("values", "array<float>", False, "scaled values, W*F, row-major (time, feature)"),
        F("raw_values", "array<float>", False, "unscaled values, same layout (for charts and alerts); NaN: a bucket statistic of a bucket without events"),
        F("n_steps", "int", False, "W"),
        F("n_features", "int", False, "F"),
    ),
)

MODELS = TableSchema(
    name="models",
    doc="The model registry: one row per trained model (artifact in _artifacts/<model_id>).",
    fields=(
        F("model_id", "string", False, "unique model id"),
        F("config_key", "string", False, "hash of spec, detector, threshold and training config"),
        F("detector", "string", False, "dense_ae, lstm_ae or vae"),
        F("params", "string", False, "detector hyperparameters (JSON)"),
        F("spec_id", "string", False, "window spec of the inputs (features, W, scaler stats)"),
        F("n_steps", "int", False, "W"),
        F("n_features", "int", False, "F"),
        F("threshold_method", "string", False, "quantile, sigma, distribution or supervised"),
        F("threshold", "double", False, "global threshold on the score"),
        F("threshold_params", "string", False, "what the method used or found (JSON)"),
        F("entity_thresholds", "string", False, "per-entity thresholds (JSON object, may be {})"),
        F("train_from", "date", False, "first training night"),
        F("train_to", "date", False, "last training night"),
        F("data_version", "bigint", False, "Delta version of the windows table read"),
        F("metrics", "string", False, "losses, epochs, samples/s, wall time (JSON)"),
        F("scope", "string", False, "global (one network) or entity (one network per entity)"),
        F("entity_models", "string", False, "entity scope: entity -> artifact subfolder (JSON, may be {})"),
        F("artifact", "string", False, "folder holding the networks as <name>.keras"),
        F("created_at", "timestamp", False, "registration time (UTC)"),
        F("adspark_version", "string", False, "package version"),
    ),
)

SCORES = TableSchema(
    name="scores",
    doc="One row per scored window: score, threshold in force, verdict and top features.",
    partition_by=("date",),
    fields=(
        F("entity", "string", False, "entity key"),
        F("window_id", "string", False, "window id (see windows)"),
        F("window_start", "timestamp", False, "first bucket start (UTC)"),
        F("window_end", "timestamp", False, "end of the last bucket, exclusive (UTC)"),
        F("date", "date", False, "partition: night of the window"),
        F("score", "double", False, "anomaly score, higher is more anomalous: -log10(p_value) with "
          "adaptive alerts, else the model score"),
        F("threshold", "double", False, "threshold in force: -log10(alert level) with adaptive alerts, "
          "else the model's (the entity's, else global)"),
        F("is_anomaly", "boolean", False, "score > threshold"),
        F("top_features", "array<string>", False, "features with the largest share of the model error"),
        F("top_shares", "array<double>", False, "their shares of the window's model error, same order"),
        F("model_score", "double", False, "the model's raw score (reconstruction error)"),
        F("p_value", "double", True, "calibrated tail probability of the window for its entity, fused "
          "over the detectors (null without adaptive alerts)"),
        F("alert", "boolean", False, "an alert fires here: the first anomalous window of a run"),
        F("driver", "string", True, "detector with the smallest probability (model, level, diff, "
          "seasonal, extreme, profile)"),
        F("driver_feature", "string", True, "feature that drove it"),
        F("actual", "double", True, "value of that feature at the window's most unusual bucket"),
        F("expected_low", "double", True, "lower end of the expected range there (baseline - 3 sigma)"),
        F("expected_high", "double", True, "upper end of the expected range there (baseline + 3 sigma)"),
        F("model_id", "string", False, "model that scored the window"),
        F("run_id", "string", False, "the score run"),
    ),
)

ALERT_STATE = TableSchema(
    name="alert_state",
    doc="Per-entity state of the adaptive alerts after each night (baselines, calibration), "
        "one row per entity, night and named array; night D starts from the state of D-1.",
    partition_by=("date",),
    fields=(
        F("alert_key", "string", False, "hash of the window spec and the alerts config"),
        F("entity", "string", False, "entity key"),
        F("date", "date", False, "partition: the night after which this is the state"),
        F("name", "string", False, "which array (e.g. season_loc, cal_level_stats)"),
        F("values", "array<double>", False, "the array's values"),
        F("run_id", "string", False, "the run that wrote it"),
    ),
)

INTERVALS = TableSchema(
    name="intervals",
    doc="Anomaly intervals: consecutive anomalous windows of an entity merged (id = entity+start+model).",
    fields=(
        F("interval_id", "string", False, "deterministic id: hash of entity, start and model id"),
        F("entity", "string", False, "entity key"),
        F("start", "timestamp", False, "start of the first anomalous window (UTC)"),
        F("end", "timestamp", False, "end of the last anomalous window, exclusive (UTC)"),
        F("n_windows", "bigint", False, "anomalous windows merged"),
        F("peak_score", "double", False, "highest score"),
        F("mean_score", "double", False, "mean score of its windows"),
        F("threshold", "double", False, "threshold in force at the peak"),
        F("severity", "double", False, "1 + (peak - threshold) / |threshold|: peak / threshold for a positive "
          "threshold, finite for a negative one"),
        F("top_features", "array<string>", False, "features ranked by score-weighted share"),
        F("top_shares", "array<double>", False, "their weighted shares, same order"),
        F("threshold_method", "string", False, "how the threshold was fitted"),
        F("model_id", "string", False, "model that scored it"),
        F("status", "string", False, "open (reaches the last scored window) or closed"),
        F("p_value", "double", True, "smallest calibrated probability of its windows (adaptive alerts)"),
        F("driver", "string", True, "detector that drove the peak window"),
        F("driver_feature", "string", True, "feature that drove the peak window"),
        F("actual", "double", True, "that feature's value at the peak"),
        F("expected_low", "double", True, "what was normal there: lower end"),
        F("expected_high", "double", True, "what was normal there: upper end"),
        F("first_seen_run", "string", False, "run that created it"),
        F("last_run", "string", False, "run that last updated it"),
        F("updated_at", "timestamp", False, "last update (UTC)"),
    ),
)

NIGHTLY = TableSchema(
    name="nightly",
    doc="One row per nightly run: counts per stage, model used, drift, retraining and wall times.",
    fields=(
        F("run_id", "string", False, "nightly run id"),
        F("date", "date", False, "the night processed"),
        F("status", "string", False, "succeeded, empty (no events) or failed"),
        F("model_id", "string", True, "model that scored the night"),
        F("events_read", "bigint", True, "events read"),
        F("events_rejected", "bigint", True, "events sent to rejects"),
        F("windows", "bigint", True, "windows cut for the night"),
        F("anomalies", "bigint", True, "windows above threshold"),
        F("intervals_open", "bigint", True, "open intervals of the model when the night finished (a snapshot: nights run at once see each other's)"),
        F("psi", "double", True, "population stability index of the night's scores vs validation"),
        F("ks", "double", True, "Kolmogorov-Smirnov statistic, same comparison"),
        F("retrained", "boolean", False, "whether a new model was trained after scoring"),
        F("retrain_reason", "string", True, "schedule, drift or no_model"),
        F("new_model_id", "string", True, "the model used from the next night on"),
        F("stage_seconds", "string", False, "wall time per stage (JSON)"),
        F("message", "string", True, "summary"),
    ),
)

FEEDBACK = TableSchema(
    name="feedback",
    doc="Analysts' verdicts on anomaly intervals (SQL INSERT or `adspark feedback`); the latest per interval counts.",
    fields=(
        F("interval_id", "string", False, "the interval judged (intervals.interval_id)"),
        F("label", "string", False, "true (a real anomaly), false (a false alarm) or unsure"),
        F("comment", "string", True, "free text"),
        F("who", "string", False, "who judged it"),
        F("labeled_at", "timestamp", False, "when (UTC)"),
    ),
)

EVALUATIONS = TableSchema(
    name="evaluations",
    doc="One row per `adspark evaluate`: scores and intervals of a date range against the labels.",
    fields=(
        F("evaluation_id", "string", False, "unique id"),
        F("date_from", "date", False, "first night evaluated"),
        F("date_to", "date", False, "last night evaluated"),
        F("model_ids", "array<string>", False, "models whose scores were evaluated"),
        F("labels_table", "string", False, "where the labels came from"),
        F("windows", "bigint", False, "scored windows"),
        F("positive_windows", "bigint", False, "windows overlapping a labeled anomaly"),
        F("roc_auc", "double", True, "ROC AUC of the scores (NaN without both classes)"),
        F("pr_auc", "double", True, "average precision of the scores"),
        F("precision", "double", True, "window precision at the fitted thresholds (is_anomaly)"),
        F("recall", "double", True, "window recall at the fitted thresholds"),
        F("f1", "double", True, "window F1 at the fitted thresholds"),
        F("best_f1", "double", True, "F1 at the best single threshold (an oracle: reads labels)"),
        F("best_threshold", "double", True, "that threshold"),
        F("labels", "bigint", False, "labeled anomalies in the range"),
        F("labels_detected", "bigint", False, "labeled anomalies overlapped by a detected interval"),
        F("intervals", "bigint", False, "detected intervals in the range"),
        F("true_intervals", "bigint", False, "detected intervals overlapping a label"),
        F("median_delay_s", "double", True, "median seconds from a label's start to its detection"),
        F("false_intervals_per_entity_day", "double", True, "false intervals / (entities x nights)"),
        F("nab_standard", "double", True, "NAB normalized score, standard profile (windows as rows)"),
        F("nab_reward_low_fp", "double", True, "NAB normalized score, reward_low_FP_rate"),
        F("nab_reward_low_fn", "double", True, "NAB normalized score, reward_low_FN_rate"),
        F("points", "bigint", True, "points judged: buckets (each by the window ending at it), events in row mode"),
        F("positive_points", "bigint", True, "points overlapping a labeled anomaly"),
        F("point_precision", "double", True, "flagged points that are labeled"),
        F("point_recall", "double", True, "labeled points that are flagged"),
        F("point_f1", "double", True, "F1 of the two"),
        F("point_false_alarm_rate", "double", True, "flagged normal points / normal points"),
        F("point_missed_alarm_rate", "double", True, "unflagged labeled points / labeled points"),
        F("created_at", "timestamp", False, "when (UTC)"),
    ),
)

RUNS = TableSchema(
    name="runs",
    doc="One row per job run: what ran, on which range, with which counts and outcome.",
    fields=(
        F("run_id", "string", False, "unique run id"),
        F("job", "string", False, "generate, discretize, window, ..."),
        F("config_hash", "string", False, "hash of the validated job config"),
        F("date_from", "date", True, "first day processed"),
        F("date_to", "date", True, "last day processed"),
        F("started_at", "timestamp", False, "start (UTC)"),
        F("finished_at", "timestamp", False, "end (UTC)"),
        F("duration_s", "double", False, "wall time"),
        F("status", "string", False, "succeeded or failed"),
        F("rows_read", "bigint", True, "input rows read"),
        F("rows_accepted", "bigint", True, "input rows that passed validation"),
        F("rows_rejected", "bigint", True, "input rows sent to rejects"),
        F("rows_written", "bigint", True, "output rows written"),
        F("message", "string", True, "summary or error"),
        F("adspark_version", "string", False, "package version"),
    ),
)

TABLES: dict[str, TableSchema] = {
    t.name: t
    for t in (
        EVENTS, LABELS, REJECTS, FEATURE_KEYS, WINDOW_SPECS, SCALER_STATS, VOCABULARIES, WINDOWS,
        MODELS, SCORES, ALERT_STATE, INTERVALS, NIGHTLY, FEEDBACK, EVALUATIONS, RUNS,
    )
}

"""The declarations of every adspark table."""

from __future__ import annotations

from schemas.fields import Field as Col
from schemas.fields import TableSchema

EVENTS = TableSchema(
    name="events",
    doc="Generated demo events (a user's own table has its own columns, mapped by config).",
    partition_by=("event_date",),
    fields=(
        Col("event_id", "string", False, "unique id of the event"),
        Col("event_time", "timestamp", True, "when it happened (UTC)"),
        Col("user_id", "string", True, "the entity"),
        Col("amount", "double", True, "heavy-tailed amount"),
        Col("latency_ms", "double", True, "latency, linked to amount"),
        Col("category", "string", True, "merchant category"),
        Col("channel", "string", True, "web, mobile or api"),
        Col("event_date", "date", False, "partition: the night the row belongs to"),
    ),
)

LABELS = TableSchema(
    name="labels",
    doc="Ground-truth anomalies: injected by the generator, or loaded by `adspark labels` from a CSV of intervals or from runs of the events' own flag column.",
    fields=(
        Col("anomaly_id", "string", False, "label id"),
        Col("entity", "string", False, "entity key"),
        Col("kind", "string", False, "spike, level_shift, drop_to_zero, daily_shape, ..."),
        Col("start", "timestamp", False, "first instant of the anomaly (UTC)"),
        Col("end", "timestamp", False, "end of the anomaly, exclusive (UTC)"),
        Col("magnitude", "double", True, "strength of the injected effect"),
        Col("description", "string", True, "human-readable summary"),
    ),
)

REJECTS = TableSchema(
    name="rejects",
    doc="Rows that failed the events contract, with the reason. read = accepted + rejected.",
    partition_by=("date",),
    fields=(
        Col("run_id", "string", False, "the run that rejected the row"),
        Col("job", "string", False, "discretize or window (row mode)"),
        Col("reason", "string", False, "rule code, e.g. null_entity, non_finite, duplicate, conflicting_readings"),
        Col("column", "string", True, "the column that broke the rule"),
        Col("detail", "string", True, "what was expected and what was found"),
        Col("raw", "string", False, "the raw row as JSON"),
        Col("date", "date", False, "partition: the night the row was read for"),
        Col("rejected_at", "timestamp", False, "when"),
    ),
)

FEATURES = TableSchema(
    name="features",
    doc="One row per entity and bucket; feature columns follow from the config.",
    partition_by=("date",),
    stats_columns=("entity", "bucket_start"),  # readers select by night, entity and bucket
    fields=(
        Col("entity", "string", False, "entity key (key columns joined with '|')"),
        Col("bucket_start", "timestamp", False, "bucket start (UTC)"),
        Col("date", "date", False, "partition: UTC day of the bucket"),
        Col("padded", "boolean", False, "true when the bucket had no events"),
    ),
)

WINDOW_SPECS = TableSchema(
    name="window_specs",
    doc="What the arrays in the windows table hold, one row per spec id.",
    fields=(
        Col("spec_id", "string", False, "hash of everything below"),
        Col("mode", "string", False, "buckets or rows"),
        Col("features", "array<string>", False, "feature names, the inner axis of values"),
        Col("n_steps", "int", False, "W, time steps per window"),
        Col("stride", "int", False, "S, buckets between window ends"),
        Col("bucket_seconds", "int", False, "bucket width (0 in row mode)"),
        Col("scaling_method", "string", False, "robust or minmax"),
        Col("fit_from", "date", False, "first day of the scaler's training range"),
        Col("fit_to", "date", False, "last day of the scaler's training range"),
        Col("created_at", "timestamp", False, "when the spec was first used"),
        Col("entity_head_seconds", "bigint", True,
          "each entity's reference range (window.scaling.entity_head), null for calendar nights"),
    ),
)

SCALER_STATS = TableSchema(
    name="scaler_stats",
    doc="Scaling statistics per spec, entity and feature (entity __global__ for fallbacks).",
    fields=(
        Col("spec_id", "string", False, "window spec"),
        Col("entity", "string", False, "entity key or __global__"),
        Col("feature", "string", False, "feature name"),
        Col("center", "double", False, "subtracted before scaling"),
        Col("scale", "double", False, "divided by after centering (> 0)"),
        Col("median", "double", False, "training median"),
        Col("iqr", "double", False, "training inter-quartile range"),
        Col("min", "double", False, "training minimum"),
        Col("max", "double", False, "training maximum"),
        Col("n", "bigint", False, "training values seen"),
    ),
)

VOCABULARIES = TableSchema(
    name="vocabularies",
    doc="Categorical vocabularies fitted on a training range (top values, in index order).",
    fields=(
        Col("source", "string", False, "source table"),
        Col("column", "string", False, "categorical column"),
        Col("value", "string", False, "a kept value"),
        Col("index", "int", False, "slot of the value"),
        Col("frequency", "bigint", False, "count in the fitting range"),
        Col("fitted_at", "timestamp", False, "when"),
    ),
)

WINDOWS = TableSchema(
    name="windows",
    doc="Model input: one row per window (bucket mode) or per event (row mode, W = 1).",
    partition_by=("date",),
    fields=(
        Col("entity", "string", False, "entity key"),
        Col("window_id", "string", False, "deterministic id: entity|window_start (or event id)"),
        Col("window_start", "timestamp", False, "first bucket start (UTC)"),
        Col("window_end", "timestamp", False, "end of the last bucket, exclusive (UTC)"),
        Col("date", "date", False, "partition: UTC day of the last bucket"),
        Col("spec_id", "string", False, "window spec (see window_specs)"),
        Col("values", "array<float>", False, "scaled values, W*F, row-major (time, feature)", dictionary=False),
        Col("raw_values", "array<float>", False, "unscaled values, same layout (for charts and alerts); NaN: a bucket statistic of a bucket without events", dictionary=False),
        Col("n_steps", "int", False, "W"),
        Col("n_features", "int", False, "F"),
    ),
)

MODELS = TableSchema(
    name="models",
    doc="The model registry: one row per trained model (artifact in _artifacts/<model_id>).",
    fields=(
        Col("model_id", "string", False, "unique model id"),
        Col("config_key", "string", False, "hash of spec, detector, threshold and training config"),
        Col("detector", "string", False, "dense_ae, lstm_ae or vae"),
        Col("params", "string", False, "detector hyperparameters (JSON)"),
        Col("spec_id", "string", False, "window spec of the inputs (features, W, scaler stats)"),
        Col("n_steps", "int", False, "W"),
        Col("n_features", "int", False, "F"),
        Col("threshold_method", "string", False, "quantile, sigma, distribution or supervised"),
        Col("threshold", "double", False, "global threshold on the score"),
        Col("threshold_params", "string", False, "what the method used or found (JSON)"),
        Col("entity_thresholds", "string", False, "per-entity thresholds (JSON object, may be {})"),
        Col("train_from", "date", False, "first training night"),
        Col("train_to", "date", False, "last training night"),
        Col("data_version", "bigint", False, "Delta version of the windows table read"),
        Col("metrics", "string", False, "losses, epochs, samples/s, wall time (JSON)"),
        Col("scope", "string", False, "global (one network) or entity (one network per entity)"),
        Col("entity_models", "string", False, "entity scope: entity -> artifact subfolder (JSON, may be {})"),
        Col("artifact", "string", False, "folder holding the networks as <name>.keras and arrays as <name>.npz"),
        Col("created_at", "timestamp", False, "registration time (UTC)"),
        Col("adspark_version", "string", False, "package version"),
    ),
)

SCORES = TableSchema(
    name="scores",
    doc="One row per scored window: score, threshold in force, verdict and top features.",
    partition_by=("date",),
    fields=(
        Col("entity", "string", False, "entity key"),
        Col("window_id", "string", False, "window id (see windows)"),
        Col("window_start", "timestamp", False, "first bucket start (UTC)"),
        Col("window_end", "timestamp", False, "end of the last bucket, exclusive (UTC)"),
        Col("date", "date", False, "partition: night of the window"),
        Col("score", "double", False, "anomaly score, higher is more anomalous: -log10(p_value) with "
          "adaptive alerts, else the model score"),
        Col("threshold", "double", False, "threshold in force: -log10(alert level) with adaptive alerts, "
          "else the model's (the entity's, else global)"),
        Col("is_anomaly", "boolean", False, "score > threshold"),
        Col("top_features", "array<string>", False, "features with the largest share of the model error"),
        Col("top_shares", "array<double>", False, "their shares of the window's model error, same order"),
        Col("model_score", "double", False, "the model's raw score (reconstruction error)"),
        Col("p_value", "double", True, "calibrated tail probability of the window for its entity, fused "
          "over the detectors (null without adaptive alerts)"),
        Col("alert", "boolean", False, "an alert fires here: the first anomalous window of a run"),
        Col("driver", "string", True, "detector with the smallest probability (model, level, diff, "
          "seasonal, extreme, stuck, silence, mix, profile, neighbor)"),
        Col("driver_feature", "string", True, "feature that drove it"),
        Col("actual", "double", True, "value of that feature at the window's most unusual bucket"),
        Col("expected_low", "double", True, "lower end of the expected range there (baseline - 3 sigma)"),
        Col("expected_high", "double", True, "upper end of the expected range there (baseline + 3 sigma)"),
        Col("model_id", "string", False, "model that scored the window"),
        Col("run_id", "string", False, "the score run"),
    ),
)

ALERT_STATE = TableSchema(
    name="alert_state",
    doc="Per-entity state of the adaptive alerts after each night (baselines, calibration), "
        "one row per entity, night and named array; night D starts from the state of D-1.",
    partition_by=("date",),
    fields=(
        Col("alert_key", "string", False, "hash of the window spec and the alerts config"),
        Col("entity", "string", False, "entity key"),
        Col("date", "date", False, "partition: the night after which this is the state"),
        Col("name", "string", False, "which array (e.g. season_loc, cal_level_stats)"),
        Col("values", "array<double>", False, "the array's values", dictionary=False),
        Col("run_id", "string", False, "the run that wrote it"),
    ),
)

INTERVALS = TableSchema(
    name="intervals",
    doc="Anomaly intervals: consecutive anomalous windows of an entity merged (id = entity+start+model).",
    fields=(
        Col("interval_id", "string", False, "deterministic id: hash of entity, start and model id"),
        Col("entity", "string", False, "entity key"),
        Col("start", "timestamp", False, "start of the first anomalous window (UTC)"),
        Col("end", "timestamp", False, "end of the last anomalous window, exclusive (UTC)"),
        Col("n_windows", "bigint", False, "anomalous windows merged"),
        Col("peak_score", "double", False, "highest score"),
        Col("mean_score", "double", False, "mean score of its windows"),
        Col("threshold", "double", False, "threshold in force at the peak"),
        Col("severity", "double", False, "1 + (peak - threshold) / |threshold|: peak / threshold for a positive "
          "threshold, finite for a negative one"),
        Col("top_features", "array<string>", False, "features ranked by score-weighted share"),
        Col("top_shares", "array<double>", False, "their weighted shares, same order"),
        Col("threshold_method", "string", False, "how the threshold was fitted"),
        Col("model_id", "string", False, "model that scored it"),
        Col("status", "string", False, "open (reaches the last scored window) or closed"),
        Col("p_value", "double", True, "smallest calibrated probability of its windows (adaptive alerts)"),
        Col("driver", "string", True, "detector that drove the peak window"),
        Col("driver_feature", "string", True, "feature that drove the peak window"),
        Col("actual", "double", True, "that feature's value at the peak"),
        Col("expected_low", "double", True, "what was normal there: lower end"),
        Col("expected_high", "double", True, "what was normal there: upper end"),
        Col("first_seen_run", "string", False, "run that created it"),
        Col("last_run", "string", False, "run that last updated it"),
        Col("updated_at", "timestamp", False, "last update (UTC)"),
    ),
)

NIGHTLY = TableSchema(
    name="nightly",
    doc="One row per nightly run: counts per stage, model used, drift, retraining and wall times.",
    fields=(
        Col("run_id", "string", False, "nightly run id"),
        Col("date", "date", False, "the night processed"),
        Col("status", "string", False, "succeeded, empty (no events) or failed"),
        Col("model_id", "string", True, "model that scored the night"),
        Col("events_read", "bigint", True, "events read"),
        Col("events_rejected", "bigint", True, "events sent to rejects"),
        Col("windows", "bigint", True, "windows cut for the night"),
        Col("anomalies", "bigint", True, "windows above threshold"),
        Col("intervals_open", "bigint", True, "open intervals of the model when the night finished (a snapshot: nights run at once see each other's; null on a night scored in one pass with later nights of a range: counted on the pass's last night)"),
        Col("psi", "double", True, "population stability index of the night's scores vs validation"),
        Col("ks", "double", True, "Kolmogorov-Smirnov statistic, same comparison"),
        Col("retrained", "boolean", False, "whether a new model was trained after scoring"),
        Col("retrain_reason", "string", True, "schedule, drift or no_model"),
        Col("new_model_id", "string", True, "the model used from the next night on"),
        Col("stage_seconds", "string", False, "wall time per stage (JSON; a range's pass has its stages on its last night, {} on the others)"),
        Col("message", "string", True, "summary"),
    ),
)

FEEDBACK = TableSchema(
    name="feedback",
    doc="Analysts' verdicts on anomaly intervals (SQL INSERT or `adspark feedback`); the latest per interval counts.",
    fields=(
        Col("interval_id", "string", False, "the interval judged (intervals.interval_id)"),
        Col("label", "string", False, "true (a real anomaly), false (a false alarm) or unsure"),
        Col("comment", "string", True, "free text"),
        Col("who", "string", False, "who judged it"),
        Col("labeled_at", "timestamp", False, "when (UTC)"),
    ),
)

EVALUATIONS = TableSchema(
    name="evaluations",
    doc="One row per `adspark evaluate`: scores and intervals of a date range against the labels.",
    fields=(
        Col("evaluation_id", "string", False, "unique id"),
        Col("date_from", "date", False, "first night evaluated"),
        Col("date_to", "date", False, "last night evaluated"),
        Col("model_ids", "array<string>", False, "models whose scores were evaluated"),
        Col("labels_table", "string", False, "where the labels came from"),
        Col("windows", "bigint", False, "scored windows"),
        Col("positive_windows", "bigint", False, "windows overlapping a labeled anomaly"),
        Col("roc_auc", "double", True, "ROC AUC of the scores (NaN without both classes)"),
        Col("pr_auc", "double", True, "average precision of the scores"),
        Col("precision", "double", True, "window precision at the fitted thresholds (is_anomaly)"),
        Col("recall", "double", True, "window recall at the fitted thresholds"),
        Col("f1", "double", True, "window F1 at the fitted thresholds"),
        Col("best_f1", "double", True, "F1 at the best single threshold (an oracle: reads labels)"),
        Col("best_threshold", "double", True, "that threshold"),
        Col("labels", "bigint", False, "labeled anomalies in the range"),
        Col("labels_detected", "bigint", False, "labeled anomalies overlapped by a detected interval"),
        Col("intervals", "bigint", False, "detected intervals in the range"),
        Col("true_intervals", "bigint", False, "detected intervals overlapping a label"),
        Col("median_delay_s", "double", True, "median seconds from a label's start to its detection"),
        Col("false_intervals_per_entity_day", "double", True, "false intervals / (entities x nights)"),
        Col("nab_standard", "double", True, "NAB normalized score, standard profile (windows as rows)"),
        Col("nab_reward_low_fp", "double", True, "NAB normalized score, reward_low_FP_rate"),
        Col("nab_reward_low_fn", "double", True, "NAB normalized score, reward_low_FN_rate"),
        Col("points", "bigint", True, "points judged: buckets (each by the window ending at it), events in row mode"),
        Col("positive_points", "bigint", True, "points overlapping a labeled anomaly"),
        Col("point_precision", "double", True, "flagged points that are labeled"),
        Col("point_recall", "double", True, "labeled points that are flagged"),
        Col("point_f1", "double", True, "F1 of the two"),
        Col("point_false_alarm_rate", "double", True, "flagged normal points / normal points"),
        Col("point_missed_alarm_rate", "double", True, "unflagged labeled points / labeled points"),
        Col("created_at", "timestamp", False, "when (UTC)"),
    ),
)

RUNS = TableSchema(
    name="runs",
    doc=(
        "One row per job run: what ran, on which range, with which counts and outcome (the stages of a "
        "`nightly` run write none: its `nightly` row holds their counts)."
    ),
    fields=(
        Col("run_id", "string", False, "unique run id"),
        Col("job", "string", False, "generate, discretize, window, ..."),
        Col("config_hash", "string", False, "hash of the validated job config"),
        Col("date_from", "date", True, "first day processed"),
        Col("date_to", "date", True, "last day processed"),
        Col("started_at", "timestamp", False, "start (UTC)"),
        Col("finished_at", "timestamp", False, "end (UTC)"),
        Col("duration_s", "double", False, "wall time"),
        Col("status", "string", False, "succeeded or failed"),
        Col("rows_read", "bigint", True, "input rows read"),
        Col("rows_accepted", "bigint", True, "input rows that passed validation"),
        Col("rows_rejected", "bigint", True, "input rows sent to rejects"),
        Col("rows_written", "bigint", True, "output rows written"),
        Col("message", "string", True, "summary or error"),
        Col("adspark_version", "string", False, "package version"),
    ),
)

TABLES: dict[str, TableSchema] = {
    t.name: t
    for t in (
        EVENTS, LABELS, REJECTS, FEATURES, WINDOW_SPECS, SCALER_STATS, VOCABULARIES, WINDOWS,
        MODELS, SCORES, ALERT_STATE, INTERVALS, NIGHTLY, FEEDBACK, EVALUATIONS, RUNS,
    )
}

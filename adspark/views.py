"""SQL views over the adspark tables (created next to them, in the same catalog and schema).

View texts are fixed; only the schema (a validated identifier) is filled in, never a user value.
"""

from __future__ import annotations

from adspark.storage import TableStore, is_already_exists

VIEW_ATTEMPTS = 5

# view name -> (tables it needs, SELECT with {t[name]} for qualified table names)
VIEWS: dict[str, tuple[tuple[str, ...], str]] = {
    "open_anomalies": (
        ("intervals",),
        "SELECT interval_id, entity, start, `end`, n_windows, round(peak_score, 4) AS peak_score, "
        "round(threshold, 4) AS threshold, round(severity, 2) AS severity, top_features, top_shares, "
        "threshold_method, model_id, updated_at FROM {intervals} WHERE status = 'open' "
        "ORDER BY severity DESC",
    ),
    "anomalies_by_severity": (
        ("intervals",),
        "SELECT CASE WHEN severity >= 3 THEN 'critical' WHEN severity >= 1.5 THEN 'high' ELSE 'elevated' "
        "END AS band, interval_id, entity, start, `end`, status, n_windows, round(peak_score, 4) AS peak_score, "
        "round(severity, 2) AS severity, top_features, model_id FROM {intervals} ORDER BY severity DESC",
    ),
    "entity_history": (
        ("scores",),
        "SELECT entity, date, count(*) AS windows, sum(CAST(is_anomaly AS INT)) AS anomalous_windows, "
        "round(max(score), 4) AS max_score, round(max(score / threshold), 2) AS max_severity, "
        "model_id FROM {scores} GROUP BY entity, date, model_id",
    ),
    "judged_intervals": (
        ("intervals", "feedback"),
        "SELECT i.interval_id, i.entity, i.start, i.`end`, round(i.severity, 2) AS severity, i.model_id, "
        "f.label, f.who, f.comment, f.labeled_at FROM {intervals} i JOIN (SELECT *, row_number() OVER "
        "(PARTITION BY interval_id ORDER BY labeled_at DESC) AS n FROM {feedback}) f "
        "ON f.interval_id = i.interval_id AND f.n = 1",
    ),
    "nightly_summary": (
        ("nightly",),
        "SELECT date, status, model_id, events_read, events_rejected, windows, anomalies, "
        "intervals_open, round(psi, 3) AS psi, retrained, retrain_reason, new_model_id, "
        "get_json_object(stage_seconds, '$.total') AS total_s, message FROM {nightly}",
    ),
}


def create_views(store: TableStore, only_missing: bool = False) -> list[str]:
    """Create (or replace) every view whose tables exist; returns the names created.

    Args:
        only_missing: Leave views that already exist as they are (for read-only commands).
    """
    created = []
    for name, (needs, select) in VIEWS.items():
        if not all(store.exists(t) for t in needs):
            continue
        if only_missing and store.spark.catalog.tableExists(store.qualified(name).replace("`", "")):
            continue
        for t in needs:
            store.register(t)
        body = select.format(**{t: store.qualified(t) for t in needs})
        _replace_view(store, name, body)
        created.append(name)
    return created


def _replace_view(store: TableStore, name: str, body: str) -> None:
    """``CREATE OR REPLACE VIEW``; a concurrent run creating the same view between Spark's own
    check and create (the name "already exists") is retried: the view text is fixed, so whoever
    wins creates the same view."""
    for attempt in range(1, VIEW_ATTEMPTS + 1):
        try:
            store.spark.sql(f"CREATE OR REPLACE VIEW {store.qualified(name)} AS {body}")
            return
        except Exception as exc:
            if attempt == VIEW_ATTEMPTS or not is_already_exists(exc):
                raise

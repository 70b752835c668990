"""Table contracts of adspark: every table's fields are declared once, here.

Spark ``StructType``s, DDL strings and UDF return types are derived from these declarations
(:meth:`TableSchema.struct_type`), never written by hand elsewhere.
"""

from schemas.fields import Field, TableSchema
from schemas.tables import (
    ALERT_STATE,
    EVALUATIONS,
    EVENTS,
    FEATURES,
    FEEDBACK,
    INTERVALS,
    LABELS,
    MODELS,
    NIGHTLY,
    REJECTS,
    RUNS,
    SCALER_STATS,
    SCORES,
    TABLES,
    VOCABULARIES,
    WINDOW_SPECS,
    WINDOWS,
)

__all__ = [
    "ALERT_STATE",
    "EVALUATIONS",
    "EVENTS",
    "FEATURES",
    "FEEDBACK",
    "Field",
    "INTERVALS",
    "LABELS",
    "MODELS",
    "NIGHTLY",
    "REJECTS",
    "RUNS",
    "SCALER_STATS",
    "SCORES",
    "TABLES",
    "TableSchema",
    "VOCABULARIES",
    "WINDOW_SPECS",
    "WINDOWS",
]

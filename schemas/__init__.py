"""Table contracts of adspark: every table's fields are declared once, here.

Spark ``StructType``s, DDL strings and UDF return types are derived from these declarations
(:meth:`TableSchema.struct_type`), never written by hand elsewhere.
"""

from schemas.fields import Field, TableSchema
from schemas.tables import (
    EVENTS,
    FEATURE_KEYS,
    LABELS,
    MODELS,
    REJECTS,
    RUNS,
    SCALER_STATS,
    TABLES,
    VOCABULARIES,
    WINDOW_SPECS,
    WINDOWS,
)

__all__ = [
    "EVENTS",
    "FEATURE_KEYS",
    "Field",
    "LABELS",
    "MODELS",
    "REJECTS",
    "RUNS",
    "SCALER_STATS",
    "TABLES",
    "TableSchema",
    "VOCABULARIES",
    "WINDOW_SPECS",
    "WINDOWS",
]

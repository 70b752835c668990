"""A tiny schema language: named, typed, documented fields that convert to Spark types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from pyspark.sql.types import DataType, StructType

_SIMPLE = {
    "string",
    "double",
    "float",
    "int",
    "bigint",
    "boolean",
    "date",
    "timestamp",
}


@dataclass(frozen=True)
class Field:
    """One column.

    Attributes:
        name: Column name.
        type: ``string``, ``double``, ``float``, ``int``, ``bigint``, ``boolean``, ``date``,
            ``timestamp``, or ``array<...>`` of one of those.
        nullable: Whether nulls are allowed.
        doc: What the column means (shown in the README and table comments).
    """

    name: str
    type: str
    nullable: bool = True
    doc: str = ""

    def __post_init__(self) -> None:
        inner = self.type[6:-1] if self.type.startswith("array<") else self.type
        if inner not in _SIMPLE:
            raise ValueError(f"field {self.name!r}: unsupported type {self.type!r}")

    def arrow_type(self) -> "pa.DataType":
        """The Arrow type Spark exchanges for this field (timestamps in UTC, microseconds)."""
        import pyarrow as pa

        simple = {
            "string": pa.string(),
            "double": pa.float64(),
            "float": pa.float32(),
            "int": pa.int32(),
            "bigint": pa.int64(),
            "boolean": pa.bool_(),
            "date": pa.date32(),
            "timestamp": pa.timestamp("us", tz="UTC"),
        }
        if self.type.startswith("array<"):
            return pa.list_(pa.field("element", simple[self.type[6:-1]], nullable=False))
        return simple[self.type]

    def data_type(self) -> "DataType":
        """The Spark data type of this field."""
        from pyspark.sql import types as T

        simple = {
            "string": T.StringType(),
            "double": T.DoubleType(),
            "float": T.FloatType(),
            "int": T.IntegerType(),
            "bigint": T.LongType(),
            "boolean": T.BooleanType(),
            "date": T.DateType(),
            "timestamp": T.TimestampType(),
        }
        if self.type.startswith("array<"):
            return T.ArrayType(simple[self.type[6:-1]], containsNull=False)
        return simple[self.type]


@dataclass(frozen=True)
class TableSchema:
    """A table: its fields, partition columns and purpose.

    Attributes:
        name: Table name inside the adspark schema.
        fields: Fixed columns, in order.
        partition_by: Partition columns (a subset of the fields).
        doc: What one row means.
    """

    name: str
    fields: tuple[Field, ...]
    partition_by: tuple[str, ...] = ()
    doc: str = ""

    @property
    def names(self) -> list[str]:
        """Column names in order."""
        return [f.name for f in self.fields]

    def with_fields(self, more: Iterable[Field]) -> "TableSchema":
        """This schema plus dynamic columns (e.g. the feature columns a config derives)."""
        return TableSchema(self.name, self.fields + tuple(more), self.partition_by, self.doc)

    def struct_type(self) -> "StructType":
        """The Spark ``StructType`` of this table."""
        from pyspark.sql import types as T

        return T.StructType(
            [T.StructField(f.name, f.data_type(), f.nullable) for f in self.fields]
        )

    def arrow_schema(self) -> "pa.Schema":
        """The Arrow schema of this table (for ``applyInArrow`` results)."""
        import pyarrow as pa

        return pa.schema([pa.field(f.name, f.arrow_type(), f.nullable) for f in self.fields])

    def ddl(self) -> str:
        """A DDL column list, e.g. ``"entity string, date date"``."""
        return ", ".join(f"{f.name} {f.type}" for f in self.fields)

"""A tiny schema language: named, typed, documented fields that convert to Spark types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from pyspark.sql.types import DataType, StructType

# One row per supported type: (Spark type class, pyarrow factory).
_TYPES: dict[str, tuple[str, str]] = {
    "string": ("StringType", "string"),
    "double": ("DoubleType", "float64"),
    "float": ("FloatType", "float32"),
    "int": ("IntegerType", "int32"),
    "bigint": ("LongType", "int64"),
    "boolean": ("BooleanType", "bool_"),
    "date": ("DateType", "date32"),
    "timestamp": ("TimestampType", "timestamp"),
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

    @property
    def _element(self) -> str:
        """The scalar type (the element type for arrays)."""
        return self.type[6:-1] if self.type.startswith("array<") else self.type

    def __post_init__(self) -> None:
        if self._element not in _TYPES:
            raise ValueError(f"field {self.name!r}: unsupported type {self.type!r}")

    def arrow_type(self) -> "pa.DataType":
        """The Arrow type Spark exchanges for this field (timestamps in UTC, microseconds)."""
        import pyarrow as pa

        factory = _TYPES[self._element][1]
        scalar = pa.timestamp("us", tz="UTC") if factory == "timestamp" else getattr(pa, factory)()
        if self.type.startswith("array<"):
            return pa.list_(pa.field("element", scalar, nullable=False))
        return scalar

    def data_type(self) -> "DataType":
        """The Spark data type of this field."""
        from pyspark.sql import types as T

        scalar = getattr(T, _TYPES[self._element][0])()
        if self.type.startswith("array<"):
            return T.ArrayType(scalar, containsNull=False)
        return scalar


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

    def select(self, names: Sequence[str] | None = None) -> tuple[Field, ...]:
        """The fields named (in that order), or all of them.

        Raises:
            KeyError: Naming a field the table does not declare.
        """
        if names is None:
            return self.fields
        by_name = {f.name: f for f in self.fields}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise KeyError(f"table {self.name!r} declares no field {missing}")
        return tuple(by_name[n] for n in names)

    def struct_type(self, names: Sequence[str] | None = None) -> "StructType":
        """The Spark ``StructType`` of this table (or of the fields named)."""
        from pyspark.sql import types as T

        return T.StructType(
            [T.StructField(f.name, f.data_type(), f.nullable) for f in self.select(names)]
        )

    def arrow_schema(self, names: Sequence[str] | None = None) -> "pa.Schema":
        """The Arrow schema of this table or of the fields named (for Arrow UDF results)."""
        import pyarrow as pa

        return pa.schema([pa.field(f.name, f.arrow_type(), f.nullable) for f in self.select(names)])

    def ddl(self) -> str:
        """A DDL column list, e.g. ``"entity string, date date"``."""
        return ", ".join(f"{f.name} {f.type}" for f in self.fields)

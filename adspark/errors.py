"""The adspark error hierarchy.

Every error a user can cause derives from :class:`AdsparkError`; messages name the key, column or
row concerned, what was expected and what was found.
"""

from __future__ import annotations

import datetime as dt


class AdsparkError(Exception):
    """Base class of every error adspark raises on purpose."""


class ConfigError(AdsparkError):
    """A configuration file or CLI argument is invalid (raised before Spark starts)."""


class EnvironmentSetupError(AdsparkError):
    """The runtime is missing something the job needs (Java, the Delta jars, a package)."""


class SchemaMismatchError(AdsparkError):
    """A table lacks a required column, or a column has the wrong type.

    Attributes:
        table: The table (or source) that was checked.
        column: The offending column.
        expected: What the contract asks for.
        actual: What was found (``"missing"`` when the column is absent).
    """

    def __init__(self, table: str, column: str, expected: str, actual: str) -> None:
        self.table = table
        self.column = column
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"table {table!r}: column {column!r} expected {expected}, found {actual}"
        )


class TableNotFoundError(AdsparkError):
    """A table the job reads does not exist yet (usually an earlier job has not run)."""


class SourceReadError(AdsparkError):
    """The configured file source cannot be read: no such path, or no files where Spark looks."""


class RangeError(ConfigError):
    """A date range whose last night is before its first."""


def check_range(start: dt.date, end: dt.date, first_flag: str = "--from") -> None:
    """Raise :class:`RangeError` when ``end`` is before ``start`` (named by their CLI flags)."""
    if end < start:
        raise RangeError(f"--to {end} is before {first_flag} {start}")


class EmptyInputError(AdsparkError):
    """The input of a job holds no rows for the requested range."""


class DataContractError(AdsparkError):
    """Produced data broke an invariant (for example read != accepted + rejected)."""


class IdentifierError(ConfigError):
    """A catalog, schema, table or column name is not a safe SQL identifier."""


class ModelNotFoundError(AdsparkError):
    """No registered model matches the id or config."""


class NightOrderError(AdsparkError):
    """A night waited too long for an earlier night's run to end (retryable once that run ended)."""

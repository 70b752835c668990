"""Strict, typed configuration: one pydantic model per job, validated before Spark starts.

A YAML file (see ``conf/``) holds sections; each job builds its own model from the sections it
needs. Unknown keys anywhere are rejected with the key's path in the message.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Sequence, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from adspark.core.buckets import parse_duration
from adspark.errors import ConfigError, IdentifierError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def check_identifier(name: str, what: str) -> str:
    """Return ``name`` if it is a safe SQL identifier, else raise.

    Args:
        name: The candidate identifier.
        what: What it names (for the message), e.g. ``"column"``.

    Raises:
        IdentifierError: When ``name`` holds anything but letters, digits and underscores.
    """
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise IdentifierError(
            f"{what} name {name!r} is not a valid identifier "
            "(expected letters, digits and '_', not starting with a digit, at most 128 characters)"
        )
    return name


def identifier(what: str) -> Any:
    """A config field type holding a safe SQL identifier; a bad name is a validation error at its
    key path (``source.measures.0.name: measure column name 'a b' is not a valid identifier ...``).

    Args:
        what: What the name names, for the message, e.g. ``"measure column"``.
    """

    def check(v: str) -> str:
        try:
            return check_identifier(v, what)
        except IdentifierError as exc:
            hint = " (map a raw column name with source.rename)" if what.endswith(" column") or what == "column" else ""
            raise ValueError(f"{exc}{hint}") from None

    return Annotated[str, AfterValidator(check)]


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConfig(Strict):
    """Where tables live.

    Tables are Delta folders under ``warehouse/<schema>/<table>`` and are registered by name in
    the session catalog as ``<schema>.<table>`` (``<catalog>.<schema>.<table>`` when ``catalog``
    is set, e.g. on Unity Catalog).
    """

    warehouse: str = "warehouse"
    catalog: identifier("catalog") | None = None
    schema_name: identifier("schema") = Field(default="adspark", alias="schema")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SparkConfig(Strict):
    """How the embedded session is built (ignored when a session already exists)."""

    master: str = "local[*]"
    app_name: str = "adspark"
    shuffle_partitions: int = Field(default=8, ge=1)
    driver_memory: str = "4g"
    conf: dict[str, str] = Field(default_factory=dict)
    connect: str | None = Field(
        default=None,
        description="Spark Connect: `local` starts a local Connect server with the embedded settings "
        "(master, Delta, UTC), `sc://host:port` connects to a running one; unset: a classic session",
    )

    @field_validator("connect")
    @classmethod
    def _connect(cls, v: str | None) -> str | None:
        if v is not None and v != "local" and not v.startswith("sc://"):
            raise ValueError(f"expected local or an sc://host:port URL, got {v!r}")
        return v


class MeasureConfig(Strict):
    """A numeric column of the events table.

    ``max_abs`` bounds plausible values: a row beyond it is rejected (``huge_value``) before it
    can overflow sums and squares downstream.
    """

    name: identifier("measure column")
    non_negative: bool = False
    required: bool = True
    max_abs: float = Field(default=1e15, gt=0)


class CategoricalConfig(Strict):
    """A categorical column: counts per value in buckets, one-hot slots in row mode.

    Either list ``values`` explicitly, or give ``top_k`` to fit the most frequent values on the
    first range processed (stored in the ``vocabularies`` table and reused afterwards). With
    explicit ``values``, another value is rejected (``unknown: reject``, reason
    ``unknown_category``) or counted in the ``__other__`` slot (``unknown: other``); with
    ``top_k`` unseen values always go to ``__other__``.
    """

    name: identifier("categorical column")
    values: list[str] | None = None
    top_k: int = Field(default=8, ge=1, le=256)
    unknown: Literal["reject", "other"] = "reject"


class TimestampConfig(Strict):
    """The event time column.

    ``timezone`` interprets naive timestamps and strings; calendar features are computed in it.
    ``format`` is a Spark datetime pattern for string columns (ISO-8601 when omitted).
    """

    column: identifier("timestamp column")
    timezone: str = "UTC"
    format: str | None = None


class DeltaFormat(Strict):
    """A Delta table folder."""

    type: Literal["delta"] = "delta"


class ParquetFormat(Strict):
    """Parquet files (a file or a folder of them)."""

    type: Literal["parquet"] = "parquet"


class JsonFormat(Strict):
    """JSON lines (one object per line); ``multiline`` for one JSON document per file."""

    type: Literal["json"] = "json"
    multiline: bool = False


class CsvFormat(Strict):
    """CSV files. Every column is read as a string; measures and timestamps are parsed by the
    contract (a timestamp string with ``timestamp.format``), so a bad cell is a rejected row, not a
    failed read."""

    type: Literal["csv"] = "csv"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    header: bool = True
    quote: str = Field(default='"', max_length=1)
    null_value: str = Field(default="", description="the text that means a missing value")


SourceFormat = DeltaFormat | ParquetFormat | JsonFormat | CsvFormat


class SourceConfig(Strict):
    """The user's events table and its contract.

    ``path`` (instead of ``table``): a relative path resolves under the warehouse and may not
    leave it; an absolute path or URI reads elsewhere; ``format`` says how to read it (Delta,
    Parquet, JSON or CSV with its options). ``rename`` maps raw column names (any text, such as
    ``Volume Flow RateRMS``) to the names the rest of the config uses. ``late_days``: when
    ``date_column`` is an arrival date apart from the event time, a night also reads its events
    that arrived up to this many partitions later (see :mod:`adspark.pipeline.validate`, late
    events).
    """

    table: identifier("source table") = "events"
    path: str | None = None
    format: SourceFormat = Field(default_factory=DeltaFormat, discriminator="type")
    rename: dict[str, identifier("column (a rename target)")] = Field(default_factory=dict, description="raw column name -> name used here")
    file_name_column: identifier("column") | None = Field(
        default=None,
        description="add a column naming each row's file: its path below source.path without extension "
        "and key=value folders (run-07.csv -> run-07, valve1/0.csv -> valve1/0); one file per machine or "
        "series: name it in entity; file formats only",
    )
    recursive: bool = Field(
        default=False,
        description="read the files in every sub-folder of source.path (folders of runs by rig or "
        "site); key=value folders are then not partition columns; file formats only",
    )
    timestamp: TimestampConfig
    date_column: identifier("column") | None = None
    entity: list[identifier("column")] = Field(min_length=1)
    event_id: identifier("column") | None = None
    measures: list[MeasureConfig] = Field(default_factory=list)
    categoricals: list[CategoricalConfig] = Field(default_factory=list)
    distinct: list[identifier("column")] = Field(default_factory=list)
    min_timestamp: dt.datetime = dt.datetime(2000, 1, 1)
    max_timestamp: dt.datetime = dt.datetime(2100, 1, 1)
    late_days: int = Field(default=2, ge=0, le=31)
    same_timestamp: Literal["aggregate", "reject"] = Field(
        default="aggregate",
        description="readings of one entity at one timestamp that differ: aggregate them in their bucket "
        "(counted in the discretize summary) or reject them all (reason conflicting_readings)",
    )

    @field_validator("rename")
    @classmethod
    def _renamed(cls, v: dict[str, str]) -> dict[str, str]:
        targets = list(v.values())
        dupes = sorted({t for t in targets if targets.count(t) > 1})
        if dupes:
            raise ValueError(f"several columns renamed to {dupes}")
        return v

    @model_validator(mode="after")
    def _format_needs_path(self) -> "SourceConfig":
        if self.format.type != "delta" and not self.path:
            raise ValueError(f"format {self.format.type!r} reads files: give source.path")
        if self.file_name_column and self.format.type == "delta":
            raise ValueError("file_name_column names the files of a parquet, json or csv source; "
                             "a Delta table's files are not the user's")
        if self.recursive and self.format.type == "delta":
            raise ValueError("recursive reads the sub-folders of a parquet, json or csv source; "
                             "a Delta table is read as a table")
        return self

    @model_validator(mode="after")
    def _distinct_names(self) -> "SourceConfig":
        names = [m.name for m in self.measures] + [c.name for c in self.categoricals]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"columns declared twice among measures/categoricals: {dupes}")
        if not self.measures and not self.categoricals:
            raise ValueError("declare at least one measure or categorical column")
        return self

    @property
    def row_date_column(self) -> str:
        """The column that assigns a row to a night (defaults to the timestamp column)."""
        return self.date_column or self.timestamp.column


class DayPadding(Strict):
    """Every active entity-day (an event that day or within ``activity_lookback_days`` before)
    gets its full grid of buckets: empty ones are zero counts. For entities that are observed all
    day (users, hosts, meters)."""

    mode: Literal["day"] = "day"


class SpanPadding(Strict):
    """Buckets only where the entity is active: between two of its events at most ``max_gap``
    apart on one UTC day the empty buckets are added (idle time, zero counts); a longer gap (or
    midnight, as each night is discretized on its own) ends the span, and nothing is added before
    an entity's first event of a night or after its last, so no window ends after it. For short runs (experiments, machine cycles) and sub-minute buckets, where a
    full day of buckets would be mostly invented."""

    mode: Literal["span"]
    max_gap: str = Field(default="1h", description="longest idle stretch filled with empty buckets")

    @field_validator("max_gap")
    @classmethod
    def _gap(cls, v: str) -> str:
        parse_duration(v)
        return v


Padding = Annotated[DayPadding | SpanPadding, Field(discriminator="mode")]


class DiscretizeConfig(Strict):
    """Bucketing of events into per-entity time buckets."""

    bucket: str = "1h"
    calendar: bool = True
    statistics: list[Literal["mean", "min", "max", "std"]] = Field(
        default_factory=lambda: ["mean", "min", "max"],
        min_length=1,
        description="each measure's statistics per bucket, columns <measure>_<statistic>: mean, min, max, "
        "std (the readings' standard deviation within the bucket, 0 for one reading: for readings many "
        "times faster than the bucket, where a fault changes the spread and not the mean)",
    )
    difference: list[str] = Field(default_factory=list)
    activity_lookback_days: int = Field(default=2, ge=0, le=60)
    padding: Padding = Field(default_factory=DayPadding)

    @field_validator("statistics")
    @classmethod
    def _statistics(cls, v: list[str]) -> list[str]:
        dupes = sorted({x for x in v if v.count(x) > 1})
        if dupes:
            raise ValueError(f"statistics named twice: {dupes}")
        return v

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, v: str) -> str:
        seconds = parse_duration(v)
        if 86400 % seconds:
            raise ValueError(f"bucket {v!r} must divide one day evenly")
        return v

    @property
    def bucket_seconds(self) -> int:
        """The bucket width in seconds."""
        return parse_duration(self.bucket)

    @property
    def max_gap_buckets(self) -> int | None:
        """Span padding: the longest run of empty buckets filled; ``None`` for day padding."""
        if isinstance(self.padding, SpanPadding):
            return parse_duration(self.padding.max_gap) // self.bucket_seconds
        return None


class ScalingConfig(Strict):
    """Scaling statistics, fitted per entity on a training range and stored in a table."""

    method: Literal["robust", "zscore", "minmax", "none"] = Field(
        default="robust",
        description="robust (median, IQR), zscore (mean, std), minmax, or none for data normalized at the source; "
        "every scale is at least 1% of the feature's largest training magnitude",
    )
    fit_from: dt.date
    fit_to: dt.date
    center_windows: bool = Field(
        default=False,
        description="subtract each window's mean per feature after scaling: the model sees shape, "
        "not level (entities whose level drifts); a level shift still shows in the windows holding it",
    )
    entity_head: str | None = Field(
        default=None,
        description="each entity's own reference range: its first ENTITY_HEAD of activity (from its "
        "first event between fit_from and fit_to, e.g. 5min) fits its scaling, and `train` trains "
        "and validates on the windows inside it (the last train.validation_fraction of it validates) "
        "instead of on calendar nights; for short runs that start normal (experiments, machine cycles)",
    )

    @field_validator("entity_head")
    @classmethod
    def _head(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v

    @property
    def entity_head_seconds(self) -> int | None:
        """``entity_head`` in seconds (``None``: calendar nights)."""
        return None if self.entity_head is None else parse_duration(self.entity_head)

    @model_validator(mode="after")
    def _range(self) -> "ScalingConfig":
        if self.fit_to < self.fit_from:
            raise ValueError(f"fit_to {self.fit_to} is before fit_from {self.fit_from}")
        return self


class WindowConfig(Strict):
    """Sliding windows (bucket mode) or one event = one sample (row mode)."""

    mode: Literal["buckets", "rows"] = "buckets"
    size: int = Field(default=24, ge=1, le=10_000)
    stride: int = Field(default=6, ge=1)
    features: list[str] | None = None
    include_calendar: bool = False
    scaling: ScalingConfig

    @model_validator(mode="after")
    def _rows(self) -> "WindowConfig":
        if self.mode == "rows" and (self.size != 1 or self.stride != 1):
            raise ValueError("row mode takes size 1 and stride 1 (one event = one sample)")
        if self.mode == "rows" and self.scaling.center_windows:
            raise ValueError("scaling.center_windows needs bucket windows (a one-row window centers to zeros)")
        if self.mode == "rows" and self.scaling.entity_head is not None:
            raise ValueError("scaling.entity_head needs bucket windows (row mode fits on the nights fit_from..fit_to)")
        return self


class GenerateConfig(Strict):
    """The synthetic events generator (``adspark generate``)."""

    entities: int = Field(default=1000, ge=1)
    days: int = Field(default=60, ge=1)
    events: int = Field(default=5_000_000, ge=1)
    start: dt.date = dt.date(2026, 1, 5)
    seed: int = 7
    anomaly_entity_fraction: float = Field(default=0.08, ge=0.0, le=1.0)
    bad_row_fraction: float = Field(default=0.0005, ge=0.0, le=0.2)
    anomaly_free_days: int = Field(default=14, ge=0)
    tasks: int | None = Field(default=None, ge=1)


class _Detector(Strict):
    """What every detector config has."""

    seed: int = 0


class _Recency(Strict):
    """Detectors that judge each window step by step (all but the vae)."""

    recency_halflife: float | None = Field(
        default=None, gt=0,
        description="weight a window's errors toward its newest steps with this half-life in steps (none: the "
        "window mean)",
    )


class _GradientTrained(_Detector):
    """Networks trained by gradient descent (the autoencoders)."""

    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=256, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0)
    patience: int = Field(default=3, ge=1)


class DenseAEConfig(_GradientTrained, _Recency):
    """``dense_ae``: a dense autoencoder over the flattened window."""

    type: Literal["dense_ae"] = "dense_ae"
    hidden: list[int] = Field(default_factory=lambda: [64])
    bottleneck: int = Field(default=16, ge=1, description="code width")
    activation: str = "relu"
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    l2: float = Field(default=0.0, ge=0.0)


class LstmAEConfig(_GradientTrained, _Recency):
    """``lstm_ae``: a sequence-to-sequence LSTM autoencoder."""

    type: Literal["lstm_ae"] = "lstm_ae"
    units: int = Field(default=32, ge=1)
    bottleneck: int = Field(default=16, ge=1, description="code width")


class VAEConfig(_GradientTrained):
    """``vae``: a variational autoencoder with a Gaussian decoder (scores whole windows)."""

    type: Literal["vae"] = "vae"
    hidden: list[int] = Field(default_factory=lambda: [64])
    bottleneck: int = Field(default=16, ge=1, description="latent size")
    beta: float = Field(default=1.0, ge=0.0, description="weight of the KL term")
    score_kind: Literal["probability", "error"] = "probability"
    n_samples: int = Field(default=16, ge=1, description="latent draws per window when scoring")


class PCAConfig(_Detector, _Recency):
    """``pca``: reconstruction by principal components (no network)."""

    type: Literal["pca"] = "pca"
    n_components: float = Field(
        default=0.95, gt=0, description="components kept (a share of variance in (0, 1), or a count >= 1)"
    )


class IForestConfig(_Detector, _Recency):
    """``iforest``: Isolation Forest (no network)."""

    type: Literal["iforest"] = "iforest"
    n_estimators: int = Field(default=200, ge=1, description="trees")
    max_samples: int | Literal["auto"] = Field(default="auto", description="rows per tree (auto: min(256, n))")


class OCSVMConfig(_Detector, _Recency):
    """``ocsvm``: One-Class SVM (no network)."""

    type: Literal["ocsvm"] = "ocsvm"
    nu: float = Field(default=0.01, gt=0, le=1, description="bound on the share of training windows outside")
    gamma: float | Literal["scale"] = Field(default="scale", description="RBF width (scale: 1 / (F x variance))")
    max_train: int = Field(default=10_000, ge=1, description="training windows sampled at most")


DETECTOR_TYPES: dict[str, type[Strict]] = {
    c.model_fields["type"].default: c
    for c in (DenseAEConfig, LstmAEConfig, VAEConfig, PCAConfig, IForestConfig, OCSVMConfig)
}


def _tag(field: str, default: str) -> Any:
    """Discriminator reading ``field`` from a mapping or a model, ``default`` when it is absent."""
    def tag(value: Any) -> str:
        return (value.get(field, default) if isinstance(value, Mapping) else getattr(value, field, default))
    return Discriminator(tag)


DetectorConfig = Annotated[
    Annotated[DenseAEConfig, Tag("dense_ae")] | Annotated[LstmAEConfig, Tag("lstm_ae")]
    | Annotated[VAEConfig, Tag("vae")] | Annotated[PCAConfig, Tag("pca")]
    | Annotated[IForestConfig, Tag("iforest")] | Annotated[OCSVMConfig, Tag("ocsvm")],
    _tag("type", "dense_ae"),
]
"""The detector to train, one config class per ``type`` (default ``dense_ae``): autoencoders
(``dense_ae``, ``lstm_ae``, ``vae``; networks built apart, see :mod:`adspark.detectors.networks`)
or models without a network (``pca``, ``iforest``, ``ocsvm``). A key of another type is an error."""


def detector_config(params: Mapping[str, Any]) -> DenseAEConfig | LstmAEConfig | VAEConfig | PCAConfig | IForestConfig | OCSVMConfig:
    """The detector config a registered model was trained with (its ``params``).

    Models registered before the per-type configs stored every type's options; the keys of other
    types are dropped here.
    """
    kind = DETECTOR_TYPES[str(params.get("type", "dense_ae"))]
    return kind.model_validate({k: v for k, v in params.items() if k in kind.model_fields})


class _Threshold(Strict):
    """What every threshold config has: scope, per-entity shrinkage and recalibration."""

    scope: Literal["global", "entity"] = "global"
    shrinkage: float = Field(default=50.0, ge=0)
    min_scores: int = Field(default=20, ge=1)
    beta: float = Field(default=1.0, gt=0, description="F-beta maximized by supervised fits and recalibration")
    feedback_strength: float = Field(
        default=10.0, ge=0, description="recalibrate: pseudo-count of the unsupervised threshold vs judged intervals"
    )

    def options(self) -> dict[str, float]:
        """The keyword options of the method's fitter (:func:`adspark.core.thresholds.fit_threshold`)."""
        common = set(_Threshold.model_fields) | {"method"}
        return {k: v for k, v in self.model_dump().items() if k not in common}


class QuantileThreshold(_Threshold):
    """``quantile``: the ``q`` quantile of the validation scores."""

    method: Literal["quantile"] = "quantile"
    q: float = Field(default=0.995, gt=0, lt=1)


class SigmaThreshold(_Threshold):
    """``sigma``: mean + ``k`` standard deviations."""

    method: Literal["sigma"] = "sigma"
    k: float = Field(default=3.0, gt=0, description="sigmas above the mean")


class RobustThreshold(_Threshold):
    """``robust``: median + ``k`` scaled MADs."""

    method: Literal["robust"] = "robust"
    k: float = Field(default=3.0, gt=0, description="scaled MADs above the median")


class DistributionThreshold(_Threshold):
    """``distribution``: a law fitted to the scores (gamma, log-normal, non-central t; chosen by KS),
    cut at tail probability ``tail``."""

    method: Literal["distribution"] = "distribution"
    tail: float = Field(default=1e-3, gt=0, lt=1)


class PotThreshold(_Threshold):
    """``pot``: peaks over threshold (a generalized Pareto law above the ``level`` quantile)."""

    method: Literal["pot"] = "pot"
    tail: float = Field(default=1e-3, gt=0, lt=1)
    level: float = Field(default=0.98, gt=0, lt=1, description="quantile above which scores are peaks")

    @model_validator(mode="after")
    def _pot(self) -> "PotThreshold":
        if self.tail >= 1 - self.level:
            raise ValueError(f"pot: tail {self.tail} must be below 1 - level = {1 - self.level:.6g}")
        return self


class SupervisedThreshold(_Threshold):
    """``supervised``: the F-``beta``-best threshold on labeled validation windows."""

    method: Literal["supervised"] = "supervised"

    def options(self) -> dict[str, float]:
        """The fitter's options: ``beta``."""
        return {"beta": self.beta}


THRESHOLD_METHODS: dict[str, type[_Threshold]] = {
    c.model_fields["method"].default: c
    for c in (QuantileThreshold, SigmaThreshold, RobustThreshold, DistributionThreshold, PotThreshold,
              SupervisedThreshold)
}

ThresholdConfig = Annotated[
    Annotated[QuantileThreshold, Tag("quantile")] | Annotated[SigmaThreshold, Tag("sigma")]
    | Annotated[RobustThreshold, Tag("robust")] | Annotated[DistributionThreshold, Tag("distribution")]
    | Annotated[PotThreshold, Tag("pot")] | Annotated[SupervisedThreshold, Tag("supervised")],
    _tag("method", "quantile"),
]
"""How the threshold is fitted on validation scores, one config class per ``method`` (default
``quantile``). A key of another method is an error."""


def legacy_dump(config: Strict, kinds: Mapping[str, type[Strict]], tag: str) -> dict[str, Any]:
    """A per-type config as the single flat config of every type dumped it before (each other
    type's options at their defaults): what model config keys are hashed from, so models
    registered before the per-type configs keep their key and stay the model in force."""
    flat: dict[str, Any] = {}
    for kind in kinds.values():
        for name, f in kind.model_fields.items():
            if name != tag and name not in flat:
                flat[name] = f.get_default(call_default_factory=True)
    flat.update(config.model_dump(mode="json"))
    return flat


class MlflowConfig(Strict):
    """MLflow logging of trained models (:mod:`adspark.models.tracking`): a run with params and
    metrics, and the model as a pyfunc, registered, with ``alias`` moved to each new version.

    ``tracking_uri`` None: ``$MLFLOW_TRACKING_URI``, else ``databricks`` on Databricks, else
    nothing is logged. ``{warehouse}`` in it is the warehouse folder
    (``sqlite:///{warehouse}/mlflow.db``: a local tracking store beside the tables).
    ``registered_model`` None logs the pyfunc without registering it (Unity Catalog:
    ``catalog.schema.name``). ``artifact_location`` (``{warehouse}`` too) applies when the
    experiment is created; None: the server's default, or ``{warehouse}/mlartifacts`` for a
    ``sqlite:`` store (never the working directory).
    """

    tracking_uri: str | None = None
    registry_uri: str | None = None
    experiment: str = "adspark"
    artifact_location: str | None = None
    registered_model: str | None = "adspark"
    alias: str | None = "champion"


class TrainConfig(Strict):
    """The ``train`` job."""

    backend: Literal["local", "horovod"] = "local"
    model_scope: Literal["global", "entity"] = "global"
    max_entity_models: int = Field(default=1000, ge=1)
    num_proc: int = Field(default=2, ge=1)
    backward_passes_per_step: int = Field(
        default=1, ge=1,
        description="horovod: batches whose gradients each process adds up before one allreduce and update",
    )
    cycle_time_ms: float | None = Field(
        default=None, gt=0,
        description="horovod: HOROVOD_CYCLE_TIME of the training processes (None: Horovod's default)",
    )
    petastorm_cache: str = "file:///tmp/adspark-petastorm"
    validation_fraction: float = Field(default=0.2, gt=0, lt=1)
    exclude_labeled: bool = True
    labels_table: identifier("labels table") = "labels"
    max_local_windows: int = Field(default=2_000_000, ge=1)
    detector: DetectorConfig = Field(default_factory=DenseAEConfig)
    threshold: ThresholdConfig = Field(default_factory=QuantileThreshold)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)

    @model_validator(mode="after")
    def _horovod_detector(self) -> "TrainConfig":
        if self.backend == "horovod" and self.detector.type != "dense_ae":
            raise ValueError(
                f"backend horovod trains detector dense_ae; {self.detector.type} trains with backend local"
            )
        if self.model_scope == "entity" and self.backend == "horovod":
            raise ValueError("model_scope entity trains many small models with applyInPandas; use backend local")
        if self.threshold.method == "supervised" and self.threshold.scope == "entity":
            raise ValueError("threshold method supervised fits one global threshold; use scope global")
        if self.threshold.method == "supervised" and self.model_scope == "entity":
            raise ValueError("threshold method supervised needs model_scope global")
        return self


class NightThresholdConfig(Strict):
    """The night's own threshold where the model's threshold decides (row mode, or alerts off):
    the night's scores read as a mixture of the validation law and anomalies (see
    :mod:`adspark.core.transductive`), used only when the anomalous share is significant."""

    enabled: bool = True
    z: float = Field(default=4.0, gt=0, description="standard errors the night's anomalous share must exceed")
    min_precision: float = Field(default=0.5, gt=0, lt=1, description="smallest estimated precision at the threshold")


class ScoreConfig(Strict):
    """The ``score`` job: which model, how to batch, what to explain."""

    model_id: str | None = Field(default=None, description="default: latest model for the train config")
    source: Literal["features", "windows"] = Field(
        default="features",
        description="bucket mode: cut the windows from `features` inside the scorer (no `windows` "
        "table needed for the nights scored) or read the `windows` table; row mode always reads `windows`",
    )
    batch_size: int = Field(default=4096, ge=1, description="windows per inference call")
    arrow_batch_rows: int = Field(default=10_000, ge=1, description="rows per Arrow batch sent to Python")
    top_k: int = Field(default=3, ge=1, le=64)
    tf_threads: int | None = Field(
        default=1, ge=1,
        description="BLAS and TensorFlow threads per Python worker: Spark runs one worker per task slot, "
        "so 1 (the default) keeps the cores busy without oversubscribing them; null: the libraries' defaults",
    )
    night_threshold: NightThresholdConfig = Field(default_factory=NightThresholdConfig)


def _seconds_or_zero(v: str | None) -> int:
    """A duration option in seconds, 0 when unset or ``0``."""
    return 0 if v in (None, "0", "0s") else parse_duration(v)


def _duration_or_zero(v: str | None) -> str | None:
    if v is not None and v not in ("0", "0s"):
        parse_duration(v)
    return v


class IntervalConfig(Strict):
    """How anomalous windows merge into intervals."""

    gap: str | None = Field(default=None, description="largest gap that still merges, e.g. 1h")
    min_duration: str | None = Field(default=None, description="shorter intervals are dropped")
    top_k: int = Field(default=3, ge=1, le=64)
    lookback_days: int = Field(default=1, ge=0, le=60, description="earlier nights re-read to merge")

    @field_validator("gap", "min_duration")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        return _duration_or_zero(v)

    def seconds(self, name: str) -> int:
        """``gap`` or ``min_duration`` in seconds (0 when unset)."""
        return _seconds_or_zero(getattr(self, name))


HEAD_LEARN_CLIP = 2.0  # calibration.learn_clip: auto with entity heads (docs/alerts.md: why 2)


class CalibrationConfig(Strict):
    """Per-entity calibration of each detector's raw score (see :mod:`adspark.core.calibration`)."""

    short_buckets: int = Field(default=3, ge=1, description="raw scores averaged over windows covering this many buckets")
    halflife: float = Field(default=2000.0, gt=0, description="half-life of the score history, in windows")
    min_history: int = Field(default=30, ge=1, description="windows seen before an entity gets probabilities")
    min_std: float = Field(default=0.1, gt=0, description="floor of the score history's standard deviation")
    learn_clip: float | Literal["auto", "off"] = Field(
        default="auto",
        description="a score enters the history at most this many standard deviations above its mean, so a "
        "sustained anomaly stays improbable while it lasts; off: as it is (the history learns a lasting change "
        "within a few windows: one alert per event); auto: 2 when the window spec has entity heads (each "
        "entity's head is its normal), else off",
    )

    @field_validator("learn_clip", mode="before")
    @classmethod
    def _yaml_off(cls, v: object) -> object:
        """YAML 1.1 reads a bare ``off`` as false: that is the ``off`` the key documents (and a
        ``true``/``on`` is no number of standard deviations, though pydantic would read 1)."""
        if v is True:
            raise ValueError("expected a positive number of standard deviations, auto or off, got true")
        return "off" if v is False else v

    @field_validator("learn_clip")
    @classmethod
    def _clip(cls, v: float | str) -> float | str:
        if not isinstance(v, str) and not v > 0:
            raise ValueError(f"expected a positive number of standard deviations, auto or off, got {v}")
        return v

    def learn_clip_for(self, entity_heads: bool) -> float | None:
        """The clip in standard deviations for a window spec with or without entity heads
        (``None``: the history learns every score as it is)."""
        if self.learn_clip == "auto":
            return HEAD_LEARN_CLIP if entity_heads else None
        return None if self.learn_clip == "off" else float(self.learn_clip)
    tail: Literal["empirical", "student", "normal", "laplace"] = Field(
        default="student",
        description="law of the history: student (t predictive, wide while history is short), normal, "
        "laplace, empirical (the entity's own tail, and never below student)",
    )


Detector = Literal["model", "level", "diff", "seasonal", "extreme", "stuck", "silence", "mix", "profile", "neighbor"]


class AlertsConfig(Strict):
    """Adaptive alerts (bucket mode): per-entity baselines and calibration, fused probabilities.

    Every detector's raw score becomes the probability of a score at least that high under the
    entity's own history; a window is anomalous when the fused probability is below ``level``
    (one label-free default for every dataset), and an alert fires at the first window of a run.
    State is carried night to night in the ``alert_state`` table. ``enabled: false`` keeps the
    model's fitted threshold alone.
    """

    enabled: bool = True
    level: float = Field(default=1e-5, gt=0, lt=1, description="alert when the fused probability is below this")
    detectors: list[Detector] = Field(
        default_factory=lambda: ["model", "level", "diff", "seasonal", "extreme", "stuck", "silence", "mix", "profile",
                                 "neighbor"],
        min_length=1
    )
    fusion: Literal["bonferroni", "fisher"] = "bonferroni"
    timezone: str = Field(default="UTC", description="zone of the seasonal slots (hour of day, weekend)")
    level_halflife: str = Field(default="1d", description="half-life of the level and diff baselines")
    seasonal_halflife: float = Field(default=4.0, gt=0, description="half-life of a seasonal slot, in visits")
    mix_halflife: str = Field(
        default="7d", description="half-life of the mix baseline's counts of each category value and of all events"
    )
    warmup: str = Field(
        default="1d",
        description="history before level, diff and extreme give verdicts (at most window.scaling.entity_head)",
    )
    min_visits: int = Field(default=3, ge=1, description="visits of a seasonal slot before it gives verdicts")
    neighbor_horizon: str = Field(
        default="7d",
        description="how far back the neighbor detector looks for the nearest earlier stretch of a window's length "
        "(at least the warmup and two windows)",
    )
    neighbor_max_buckets: int = Field(
        default=4032, ge=1,
        description="bound on the buckets the neighbor detector keeps and searches per feature (4032: two weeks of "
        "5-minute buckets), so short buckets do not make a week's history huge",
    )
    extreme_tolerance: float = Field(default=0.1, ge=0, description="share of the running range a value may exceed it")
    clip: float = Field(default=3.0, gt=0, description="winsorizing bound of the baselines, in sigmas")
    features: list[str] | None = Field(
        default=None, description="features the baselines judge (default: all but per-bucket mean/min/max)"
    )
    counts: Literal["anscombe", "negbin"] = Field(
        default="negbin", description="how the level and seasonal baselines judge counts; see docs/alerts.md"
    )
    sums: Literal["linear", "sqrt", "log"] = Field(
        default="linear", description="scale on which the baselines compare sums (x_sum); see docs/alerts.md"
    )
    means: Literal["model", "weighted"] = Field(
        default="weighted", description="weighted: the baselines also judge x_mean, each bucket weighted by its events"
    )
    measure_evidence: Literal["peak", "sustained"] = Field(
        default="sustained",
        description="sums and means of measures: sustained = one extreme bucket (one large event) is no evidence, "
        "a shift over the window's buckets is",
    )
    day_type_levels: bool = Field(
        default=True, description="the level baseline keeps activity (counts, sums) per day type (weekday, weekend)"
    )
    resolution_floor: bool = Field(
        default=True,
        description="a measure's sigma is at least the rounding noise of its values (the smallest change between "
        "consecutive values seen, / sqrt(12)): a series sitting on one value does not make every step an extreme z",
    )
    cooldown: str | None = Field(
        default="1h",
        description="an anomalous window starting within this of the end of the entity's last anomalous window "
        "extends its alert instead of raising a new one (0: only overlapping or back-to-back windows)",
    )
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    state_nights: int | None = Field(
        default=None, ge=1,
        description="alert_state retention: keep every state of the last N nights scored (reruns of those stay "
        "exact), of older nights only each entity's latest; none: keep all",
    )

    @field_validator("cooldown")
    @classmethod
    def _cooldown(cls, v: str | None) -> str | None:
        return _duration_or_zero(v)

    @property
    def cooldown_seconds(self) -> int:
        """``cooldown`` in seconds (0 when unset)."""
        return _seconds_or_zero(self.cooldown)

    @field_validator("detectors")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"detectors listed twice: {sorted({d for d in v if v.count(d) > 1})}")
        return v

    @field_validator("level_halflife", "mix_halflife", "warmup", "neighbor_horizon")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (expected an IANA name such as Europe/Paris)") from None
        return v


class EvaluateConfig(Strict):
    """``adspark evaluate``: which labels, which model."""

    labels_table: identifier("labels table") = "labels"
    model_id: str | None = Field(default=None, description="default: every model that scored the range")


class NightlyConfig(Strict):
    """The ``nightly`` job: when to retrain."""

    retrain_every_days: int | None = Field(default=7, ge=1, description="None: only on drift")
    train_days: int = Field(default=21, ge=2, description="nights of windows a retrain reads")
    drift_psi: float | None = Field(default=0.25, gt=0, description="PSI above which to retrain")
    drift_ks: float | None = Field(default=None, gt=0, lt=1, description="KS statistic bound")
    drift_min_windows: int = Field(default=100, ge=1, description="fewer scored windows: no drift test")
    wait_for_earlier_nights: str = Field(
        default="2h", description="how long a night waits for runs of earlier nights in progress (0s: no wait)",
    )
    lease_stale_after: str = Field(
        default="24h", description="a run on another host older than this is presumed dead",
    )

    @field_validator("wait_for_earlier_nights", "lease_stale_after")
    @classmethod
    def _duration(cls, v: str) -> str:
        return _duration_or_zero(v) or "0s"

    def seconds(self, name: str) -> int:
        """``wait_for_earlier_nights`` or ``lease_stale_after`` in seconds (0 when ``0s``)."""
        return _seconds_or_zero(getattr(self, name))


class ProjectFile(Strict):
    """The whole YAML file: every section optional here; jobs say which they need."""

    storage: StorageConfig = Field(default_factory=StorageConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    source: SourceConfig | None = None
    generate: GenerateConfig | None = None
    discretize: DiscretizeConfig | None = None
    window: WindowConfig | None = None
    train: TrainConfig | None = None
    score: ScoreConfig | None = None
    intervals: IntervalConfig | None = None
    alerts: AlertsConfig | None = None
    nightly: NightlyConfig | None = None
    evaluate: EvaluateConfig | None = None


class GenerateJobConfig(Strict):
    """Config of ``adspark generate``."""

    storage: StorageConfig
    spark: SparkConfig
    generate: GenerateConfig


class DiscretizeJobConfig(Strict):
    """Config of ``adspark discretize``."""

    storage: StorageConfig
    spark: SparkConfig
    source: SourceConfig
    discretize: DiscretizeConfig

class WindowJobConfig(Strict):
    """Config of ``adspark window`` (buckets or rows)."""

    storage: StorageConfig
    spark: SparkConfig
    source: SourceConfig
    discretize: DiscretizeConfig
    window: WindowConfig

    @model_validator(mode="after")
    def _head_holds_a_window(self) -> "WindowJobConfig":
        _check_head(self.window, self.discretize)
        return self


def _check_head(window: WindowConfig, discretize: DiscretizeConfig) -> None:
    """An entity head must hold at least one window of buckets."""
    head = window.scaling.entity_head_seconds
    span = window.size * discretize.bucket_seconds
    if window.mode == "buckets" and head is not None and head < span:
        raise ValueError(
            f"window.scaling.entity_head {window.scaling.entity_head} holds no window of "
            f"{window.size} x {discretize.bucket} buckets: expected at least {span} s"
        )


class TrainJobConfig(Strict):
    """Config of ``adspark train``."""

    storage: StorageConfig
    spark: SparkConfig
    train: TrainConfig


class ScoreJobConfig(Strict):
    """Config of ``adspark score`` (``train`` only locates the latest model for its config)."""

    storage: StorageConfig
    spark: SparkConfig
    train: TrainConfig | None = None
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    intervals: IntervalConfig = Field(default_factory=IntervalConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)


class EvaluateJobConfig(Strict):
    """Config of ``adspark evaluate``."""

    storage: StorageConfig
    spark: SparkConfig
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)


class LabelsJobConfig(Strict):
    """Config of ``adspark labels`` (the file and its options are arguments; ``source``: the
    events read by ``--from-column``)."""

    storage: StorageConfig
    spark: SparkConfig
    source: SourceConfig | None = None


class NightlyJobConfig(Strict):
    """Config of ``adspark nightly``: every stage of one night."""

    storage: StorageConfig
    spark: SparkConfig
    source: SourceConfig
    discretize: DiscretizeConfig
    window: WindowConfig
    train: TrainConfig
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    intervals: IntervalConfig = Field(default_factory=IntervalConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    nightly: NightlyConfig = Field(default_factory=NightlyConfig)

    @model_validator(mode="after")
    def _stages_agree(self) -> "NightlyJobConfig":
        """The cross-section checks of the stage configs, once (:meth:`part` does not validate)."""
        _check_head(self.window, self.discretize)
        return self

    def part(self, model: type["JobModel"]) -> "JobModel":
        """The config of one stage's job, from the same (already validated) sections: built, not
        validated again."""
        return model.model_construct(**{k: getattr(self, k) for k in model.model_fields})


JobModel = TypeVar("JobModel", bound=Strict)

_JOB_SECTIONS: dict[type[Strict], tuple[str, ...]] = {
    GenerateJobConfig: ("generate",),
    DiscretizeJobConfig: ("source", "discretize"),
    WindowJobConfig: ("source", "discretize", "window"),
    TrainJobConfig: ("train",),
    ScoreJobConfig: (),
    EvaluateJobConfig: (),
    LabelsJobConfig: (),
    NightlyJobConfig: ("source", "discretize", "window", "train"),
}


def _format_validation(err: ValidationError, origin: str) -> str:
    """One line per problem, each naming its key path; a single problem is one line in all."""
    problems = []
    for e in err.errors():
        loc = list(e["loc"])
        kind = next((loc.pop(i) for i in range(1, len(loc)) if loc[i - 1] in ("detector", "threshold")
                     and loc[i] in {*DETECTOR_TYPES, *THRESHOLD_METHODS}), None)  # the union's tag
        key = ".".join(str(p) for p in loc) or "<root>"
        detail = e["msg"].removeprefix("Value error, ")
        if e["type"] == "union_tag_invalid":
            field = "method" if loc and loc[-1] == "threshold" else "type"
            key, detail = f"{key}.{field}", f"{e['ctx']['tag']!r} is not one of {e['ctx']['expected_tags']}"
        if e["type"] == "extra_forbidden":
            detail = "unknown key (not part of the config schema)" if kind is None else (
                f"unknown key for {loc[-2]} {'method' if loc[-2] == 'threshold' else 'type'} {kind}")
        got = e.get("input")
        shown = isinstance(got, (dict, list)) or got is None or repr(got) in detail
        problems.append(f"{key}: {detail}{'' if shown else f' (got {got!r})'}")
    if len(problems) == 1:
        return f"invalid configuration in {origin}: {problems[0]}"
    return "\n".join([f"invalid configuration in {origin}:", *(f"  {p}" for p in problems)])


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a mapping.

    Raises:
        ConfigError: When the file is missing or is not a YAML mapping.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} not found")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(p)!r} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r}: expected a mapping at the top level")
    return data


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``data`` with each ``KEY.PATH=VALUE`` of ``overrides`` set (a copy; ``data`` is untouched).

    VALUE is read as YAML, so ``train.detector={type: pca, n_components: 4}`` replaces a whole
    section, ``window.stride=6`` sets a number and ``score.model_id=m-x`` a string. Missing
    sections on the path are created; the result is validated like the file itself.

    Raises:
        ConfigError: An override without ``=``, with an empty key part, with a VALUE that is not
            YAML, or whose path runs through a key that holds a value, not a mapping.
    """
    out: dict[str, Any] = copy.deepcopy(dict(data))
    for item in overrides:
        path, sep, text = item.partition("=")
        keys = path.strip().split(".")
        if not sep or not all(k.strip() for k in keys):
            raise ConfigError(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. train.detector.epochs=5")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"--set {path.strip()}: the value is not YAML ({first})") from None
        node = out
        for depth, key in enumerate(keys[:-1]):
            child = node.get(key.strip())
            if child is None:
                child = node[key.strip()] = {}
            elif not isinstance(child, dict):
                where = ".".join(keys[: depth + 1])
                raise ConfigError(f"--set {path.strip()}: {where} holds {child!r}, not a section")
            node = child
        node[keys[-1].strip()] = value
    return out


def build_job_config(
    model: type[JobModel], data: Mapping[str, Any], origin: str = "<config>"
) -> JobModel:
    """Validate raw config data into the model of one job.

    Args:
        model: The job's config class, e.g. :class:`DiscretizeJobConfig`.
        data: The parsed YAML (all sections).
        origin: Where the data came from, for messages.

    Raises:
        ConfigError: On unknown keys, wrong types or a missing section, naming the key path.
    """
    try:
        project = ProjectFile.model_validate(dict(data))
    except ValidationError as err:
        raise ConfigError(_format_validation(err, origin)) from None
    missing = [s for s in _JOB_SECTIONS[model] if getattr(project, s) is None]
    if missing:
        raise ConfigError(f"invalid configuration in {origin}: missing section(s) {missing}")
    fields = {
        name: getattr(project, name)
        for name in model.model_fields
        if getattr(project, name) is not None
    }
    try:
        return model.model_validate(fields)
    except ValidationError as err:
        raise ConfigError(_format_validation(err, origin)) from None


def load_job_config(model: type[JobModel], path: str | Path) -> JobModel:
    """Load and validate the config of one job from a YAML file."""
    return build_job_config(model, load_yaml(path), origin=str(path))


def config_hash(cfg: BaseModel) -> str:
    """A short stable hash of a config (recorded with every run)."""
    payload = json.dumps(cfg.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]

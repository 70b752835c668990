"""Window specs: what the arrays of the ``windows`` table hold, stored once per spec id."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adspark.config import WindowJobConfig
from adspark.core.window import WindowSpec
from adspark.errors import ConfigError
from adspark.storage import TableStore
from schemas import WINDOW_SPECS

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame


@dataclass(frozen=True)
class StoredSpec:
    """A window spec as stored in ``window_specs``: what the stages that cut, score and alert on
    windows take (the core's own :class:`adspark.core.window.WindowSpec` is :attr:`window`).

    ``scaling_method`` is the scaling method, with ``+center`` when windows are centered
    (``window.scaling.center_windows``).
    """

    spec_id: str
    mode: str
    features: tuple[str, ...]
    n_steps: int
    stride: int
    bucket_seconds: int
    scaling_method: str
    fit_from: dt.date
    fit_to: dt.date
    entity_head_seconds: int | None = None

    @property
    def centered(self) -> bool:
        """Whether each window is centered on its own mean (``center_windows``)."""
        return self.scaling_method.endswith("+center")

    @property
    def window(self) -> WindowSpec:
        """The shape the core cuts windows to (:class:`adspark.core.window.WindowSpec`)."""
        return WindowSpec(self.n_steps, self.stride, self.bucket_seconds, self.features, self.centered)

    @property
    def lookback_days(self) -> int:
        """Nights before a night whose buckets its first windows reach back into."""
        return math.ceil((self.n_steps - 1) * self.bucket_seconds / 86400)

    @classmethod
    def load(cls, store: TableStore, spec_id: str) -> "StoredSpec":
        """The spec stored under ``spec_id``.

        Raises:
            ConfigError: When ``window_specs`` does not hold it.
        """
        from pyspark.sql import functions as F

        row = store.read(WINDOW_SPECS.name).where(F.col("spec_id") == spec_id).first()
        if row is None:
            raise ConfigError(f"window spec {spec_id!r} is not in table {WINDOW_SPECS.name}")
        head = row.asDict().get("entity_head_seconds")  # null, or absent from specs stored before it
        return cls(
            row.spec_id, row.mode, tuple(row.features), int(row.n_steps), int(row.stride),
            int(row.bucket_seconds), row.scaling_method, row.fit_from, row.fit_to,
            None if head is None else int(head),
        )

    @classmethod
    def create(cls, mode: str, features: list[str], cfg: WindowJobConfig) -> "StoredSpec":
        """Build a spec (and its id, a hash of every field) from the config."""
        w = cfg.window
        bucket = cfg.discretize.bucket_seconds if mode == "buckets" else 0
        body = {
            "mode": mode,
            "features": list(features),
            "n_steps": w.size,
            "stride": w.stride,
            "bucket_seconds": bucket,
            "scaling_method": w.scaling.method + ("+center" if w.scaling.center_windows else ""),
            "fit_from": w.scaling.fit_from.isoformat(),
            "fit_to": w.scaling.fit_to.isoformat(),
        }
        head = w.scaling.entity_head_seconds if mode == "buckets" else None
        if head is not None:  # only when set: the ids of specs without a head stay as they were
            body["entity_head_seconds"] = head
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]
        return cls(
            digest, mode, tuple(features), w.size, w.stride, bucket, body["scaling_method"],
            w.scaling.fit_from, w.scaling.fit_to, head,
        )

    def save(self, store: TableStore) -> None:
        """Record the spec once (idempotent)."""
        from pyspark.sql import functions as F

        if store.exists(WINDOW_SPECS.name) and (
            store.read(WINDOW_SPECS.name).where(F.col("spec_id") == self.spec_id).limit(1).count()
        ):
            return
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        row = (
            self.spec_id, self.mode, list(self.features), self.n_steps, self.stride,
            self.bucket_seconds, self.scaling_method, self.fit_from, self.fit_to, now,
            self.entity_head_seconds,
        )
        store.append(store.spark.createDataFrame([row], WINDOW_SPECS.struct_type()), WINDOW_SPECS.name)


def spec_head_seconds(store: TableStore, spec_id: str) -> int | None:
    """The spec's ``entity_head`` in seconds (``None``: calendar nights, or a spec stored before
    the column existed)."""
    from pyspark.sql import functions as F

    specs = store.read(WINDOW_SPECS.name)
    if "entity_head_seconds" not in specs.columns:
        return None
    row = specs.where(F.col("spec_id") == spec_id).select("entity_head_seconds").first()
    return None if row is None or row.entity_head_seconds is None else int(row.entity_head_seconds)


def entity_first_buckets(store: TableStore, spec_id: str) -> "DataFrame":
    """Each entity's first non-empty bucket in the spec's fit range, the start of its head
    (:mod:`adspark.core.heads`): columns ``entity``, ``first_s`` (epoch seconds, double)."""
    from pyspark.sql import functions as F

    from schemas import FEATURES

    spec = store.read(WINDOW_SPECS.name).where(F.col("spec_id") == spec_id).first()
    return (
        store.read(FEATURES.name)
        .where(F.col("date").between(F.lit(spec.fit_from), F.lit(spec.fit_to)) & ~F.col("padded"))
        .groupBy("entity").agg(F.min("bucket_start").cast("double").alias("first_s"))
    )

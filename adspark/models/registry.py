"""Model registry: a ``models`` Delta table plus an artifact folder per model.

Everything needed to score is recreatable from the registry alone: the detector type and
hyperparameters, the window spec id (feature names, shape and scaler statistics live in
``window_specs`` and ``scaler_stats`` under that id), the thresholds (global and per entity) and
the networks in Keras native format (``<name>.keras``, loaded with ``safe_mode=True``) or, for
models without a network (PCA, Isolation Forest, One-Class SVM), their arrays (``<name>.npz``,
loaded with ``allow_pickle=False``): nothing is unpickled. A dense autoencoder also keeps its
network's numpy twin (``model_dense.npz``), which scoring loads instead of the Keras file
(:func:`scoring_files`). Per-entity models in ``entities/<n>/``. The artifact is written to a
temporary folder and renamed into place before the table row is appended, so a model is visible
only once complete.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from adspark import __version__
from adspark.core.calibration import exponential_tail_params
from adspark.core.thresholds import Threshold
from adspark.detectors.dense_stack import TWIN_SUFFIX
from adspark.errors import AdsparkError, ModelNotFoundError, TableNotFoundError
from adspark.faults import kill_point
from adspark.storage import TableStore
from schemas import MODELS


@dataclass(frozen=True)
class RegisteredModel:
    """A model as the registry stores it.

    Attributes:
        model_id: Unique id.
        config_key: Hash of what was trained on and how (for "latest for this config").
        detector: Detector type (``dense_ae``, ``lstm_ae``, ``vae``).
        params: Detector hyperparameters.
        spec_id: Window spec of its inputs.
        n_steps: W.
        n_features: F.
        threshold: Global threshold.
        entity_thresholds: Per-entity thresholds (empty for a global scope).
        train_from: First training night.
        train_to: Last training night.
        data_version: Delta version of the windows table that was read.
        metrics: Losses, epochs, samples/s, wall time, ...
        scope: ``global`` (one set of networks) or ``entity`` (one per entity).
        entity_models: Entity scope: entity -> subfolder of ``artifact`` holding its networks.
        artifact: Folder holding the networks as ``<name>.keras`` and arrays as ``<name>.npz``.
    """

    model_id: str
    config_key: str
    detector: str
    params: dict
    spec_id: str
    n_steps: int
    n_features: int
    threshold: Threshold
    entity_thresholds: dict[str, float]
    train_from: dt.date
    train_to: dt.date
    data_version: int
    metrics: dict = field(default_factory=dict)
    scope: str = "global"
    entity_models: dict[str, str] = field(default_factory=dict)
    artifact: str = ""


def new_model_id() -> str:
    """A fresh registry id: ``m-<UTC time>-<6 hex>`` (sorts by creation; matches :data:`_MODEL_ID`)."""
    return f"m-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def _artifact_root(store: TableStore) -> Path:
    root = store.root
    if "://" in root or root.startswith("dbfs:/"):
        raise AdsparkError(f"artifacts need a local or mounted warehouse path, got {root!r}")
    return Path(root) / "_artifacts"


ARTIFACT_SUFFIXES = (".keras", ".npz")


def write_networks(folder: Path, networks: Mapping[str, Any]) -> list[Path]:
    """Save fitted networks by name: a Keras network as ``<name>.keras``, the arrays of a model
    without a network (``{array name: array}``) as ``<name>.npz``. Returns the files written."""

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, net in networks.items():
        if isinstance(net, Mapping):
            path = folder / f"{name}.npz"
            np.savez(path, **{k: np.asarray(v) for k, v in net.items()})
        else:
            path = folder / f"{name}.keras"
            net.save(path)
        paths.append(path)
    return paths


@dataclass
class Fitted:
    """What a training path hands to the registry.

    Attributes:
        networks: Keras networks by name (global scope).
        files: Artifact files by relative path (entity scope).
        threshold: Global threshold.
        entity_thresholds: Per-entity thresholds.
        entity_models: Entity -> artifact subfolder (entity scope).
        metrics: Losses, epochs, samples/s, counts.
    """

    networks: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    threshold: Threshold | None = None
    entity_thresholds: dict[str, float] = field(default_factory=dict)
    entity_models: dict[str, str] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


def save_model(
    store: TableStore,
    model: RegisteredModel,
    networks: Mapping[str, Any] | None = None,
    files: Mapping[str, bytes] | None = None,
) -> RegisteredModel:
    """Write the artifact, then the ``models`` row; returns the model with its artifact path.

    Args:
        store: Tables.
        model: What to register (``artifact`` is filled in here).
        networks: Fitted networks by name (global scope, :func:`write_networks`).
        files: Artifact files as bytes by relative path (e.g. per-entity networks trained on
            executors), written as they are.
    """
    root = _artifact_root(store)
    root.mkdir(parents=True, exist_ok=True)
    final = root / model.model_id
    tmp = root / f".tmp-{model.model_id}-{uuid.uuid4().hex[:6]}"
    tmp.mkdir()
    try:
        with kill_point(MODELS.name, root):
            write_networks(tmp, networks or {})
            for rel, data in (files or {}).items():
                target = (tmp / rel).resolve()
                if tmp.resolve() not in target.parents:
                    raise AdsparkError(f"artifact file {rel!r} would escape the artifact folder")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    saved = replace(model, artifact=str(final))
    row = (
        saved.model_id, saved.config_key, saved.detector, json.dumps(saved.params, sort_keys=True),
        saved.spec_id, saved.n_steps, saved.n_features, saved.threshold.method,
        float(saved.threshold.value), json.dumps(saved.threshold.params, sort_keys=True),
        json.dumps(saved.entity_thresholds, sort_keys=True), saved.train_from, saved.train_to,
        int(saved.data_version), json.dumps(saved.metrics, sort_keys=True), saved.scope,
        json.dumps(saved.entity_models, sort_keys=True), saved.artifact,
        dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), __version__,
    )
    store.append(store.spark.createDataFrame([row], MODELS.struct_type()), MODELS.name)
    return saved


_MODEL_ID = re.compile(r"^m-[0-9A-Za-z-]{1,64}$")


def artifact_folder(store: TableStore, model_id: str) -> Path:
    """Where a model's artifact lives: always ``<warehouse>/<schema>/_artifacts/<model id>``.

    The path recorded in ``models`` is informative only; artifacts are never loaded from a path
    read out of a table (a moved warehouse still works, a tampered row cannot redirect a load).

    Raises:
        AdsparkError: When the id is not a registry id.
    """
    if not isinstance(model_id, str) or not _MODEL_ID.match(model_id):
        raise AdsparkError(f"model id {model_id!r} is not a registry id (expected m-<letters, digits, '-'>)")
    return _artifact_root(store) / model_id


def _from_row(row: Any, store: TableStore) -> RegisteredModel:
    entity_models = json.loads(row.entity_models)
    folder = artifact_folder(store, row.model_id)
    for entity, rel in entity_models.items():
        if folder.resolve() not in (folder / rel).resolve().parents:
            raise AdsparkError(f"model {row.model_id}: network folder {rel!r} of entity {entity!r} escapes its artifact")
    return RegisteredModel(
        model_id=row.model_id,
        config_key=row.config_key,
        detector=row.detector,
        params=json.loads(row.params),
        spec_id=row.spec_id,
        n_steps=row.n_steps,
        n_features=row.n_features,
        threshold=Threshold(row.threshold_method, row.threshold, json.loads(row.threshold_params)),
        entity_thresholds=json.loads(row.entity_thresholds),
        train_from=row.train_from,
        train_to=row.train_to,
        data_version=row.data_version,
        metrics=json.loads(row.metrics),
        scope=row.scope,
        entity_models=entity_models,
        artifact=str(folder),
    )


def find_model(
    store: TableStore,
    model_id: str | None = None,
    config_key: str | Sequence[str] | None = None,
    spec_id: str | None = None,
    trained_before: dt.date | None = None,
    trained_to: dt.date | None = None,
) -> RegisteredModel:
    """A model by id, or the latest one registered for a config key (or for a window spec).

    Args:
        store: Tables.
        model_id: An exact model id.
        config_key: The latest model of this config key (or of any of these keys) ...
        spec_id: ... or of this window spec.
        trained_before: Only models whose training range ended before this night (the model
            in force for a night never saw it, whether the night runs first or is rerun).
        trained_to: Only models whose training range ended on exactly this night.

    Raises:
        ModelNotFoundError: Naming what was looked for.
    """
    from pyspark.sql import functions as F

    try:
        models = store.read(MODELS.name)
    except TableNotFoundError:
        raise ModelNotFoundError("no model is registered yet (run `adspark train`)") from None
    if model_id is not None:
        rows = models.where(F.col("model_id") == model_id).collect()
        what = f"model id {model_id!r}"
    elif config_key is not None or spec_id is not None:
        column, value = ("config_key", config_key) if config_key is not None else ("spec_id", spec_id)
        values = [value] if isinstance(value, str) else list(value or [])
        mine = models.where(F.col(column).isin(values))
        what = f"{column.replace('_', ' ')} {values[0]!r}" if len(values) == 1 else (
            f"{column.replace('_', ' ')}s {', '.join(values) or '(none)'}")
        if trained_before is not None:
            mine = mine.where(F.col("train_to") < F.lit(trained_before))
            what += f" trained before {trained_before}"
        if trained_to is not None:
            mine = mine.where(F.col("train_to") == F.lit(trained_to))
            what += f" trained through {trained_to}"
        rows = mine.orderBy(F.desc("created_at")).limit(1).collect()
    else:
        raise ValueError("give a model_id, a config_key or a spec_id")
    if not rows:
        raise ModelNotFoundError(f"no registered model for {what}")
    return _from_row(rows[0], store)


def artifact_files(model: RegisteredModel) -> dict[str, bytes]:
    """Every file of a model's artifact folder as bytes by relative path (to ship to executors)."""
    folder = Path(model.artifact)
    if not folder.is_dir():
        raise ModelNotFoundError(f"artifact of model {model.model_id} missing at {str(folder)!r}")
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix in ARTIFACT_SUFFIXES
    }


def scoring_files(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The artifact files a scorer loads: all of ``files`` (``{relative path: bytes}``) but a
    Keras network that has a numpy twin beside it (``<name>.keras`` next to ``<name>_dense.npz``,
    :mod:`adspark.detectors.dense_stack`), so that scoring it needs no TensorFlow."""
    return {
        rel: data for rel, data in files.items()
        if not (rel.endswith(".keras") and f"{rel[: -len('.keras')]}{TWIN_SUFFIX}.npz" in files)
    }


def needs_keras(files: Mapping[str, bytes] | Sequence[str]) -> bool:
    """Whether loading these artifact files imports Keras (any ``.keras`` file among them)."""
    return any(str(rel).endswith(".keras") for rel in files)


def load_networks(folder: str | Path, model_id: str = "?", scoring: bool = False) -> dict[str, Any]:
    """The networks in a folder by name: Keras native files in safe mode, array files with
    ``allow_pickle=False`` (nothing is unpickled). ``scoring``: only what scoring needs
    (:func:`scoring_files`: a Keras network with a numpy twin is not loaded, nor TensorFlow)."""

    paths = sorted(p for p in Path(folder).iterdir() if p.suffix in ARTIFACT_SUFFIXES) if Path(folder).is_dir() else []
    if scoring:
        kept = scoring_files(dict.fromkeys((p.name for p in paths), b""))
        paths = [p for p in paths if p.name in kept]
    if not paths:
        raise ModelNotFoundError(f"artifact of model {model_id} holds no network at {str(folder)!r}")
    out: dict[str, Any] = {}
    for p in paths:
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as arrays:
                out[p.stem] = {k: arrays[k] for k in arrays.files}
        else:
            import keras

            out[p.stem] = keras.saving.load_model(p, safe_mode=True, compile=False)
    return out


def feature_error_tail(
    model: RegisteredModel, n_features: int
) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]] | None:
    """The model's validation error tail per feature as (u, xi, sigma), each of length F, when
    recorded for ``n_features`` features: the fitted Pareto tail
    (:func:`adspark.core.calibration.fit_error_tails`), or for models registered before it the
    exponential tail through their 90th and 99th percentiles; else None."""
    tail = model.metrics.get("val_feature_error_tail") or []
    if len(tail) == 3 and len(tail[0]) == n_features:
        return tuple(tuple(float(v) for v in row) for row in tail)  # type: ignore[return-value]
    q = model.metrics.get("val_feature_error_q90_q99") or []
    if len(q) != 2 or len(q[0]) != n_features:
        return None
    return tuple(tuple(float(v) for v in row) for row in exponential_tail_params(q[0], q[1]))  # type: ignore[return-value]

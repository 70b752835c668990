"""The Python-worker side of scoring: models loaded once per worker, Arrow batches in and out.

:func:`make_scorer` returns the function handed to ``DataFrame.mapInArrow``. The model's files
travel as a Spark broadcast (bytes of its ``.keras`` networks, or of their numpy twins where the
registry has them: :func:`adspark.models.registry.scoring_files`), so executors need no access to
the driver's file system; each Python worker writes them to a private temp folder once, loads
them in Keras safe mode and keeps the detector for every later batch and task (Spark reuses
Python workers). Values arrive as an Arrow list column and are reshaped without a Python loop.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from adspark.core.contributions import top_contributors
from adspark.errors import DataContractError
from adspark.models.registry import RegisteredModel, needs_keras
from schemas import SCORES, WINDOWS, Field, TableSchema

# Detectors loaded in this Python worker, by (model id, entity or ""): loaded once, reused.
_LOADED: dict[tuple[str, str], Any] = {}

OUTPUT_FIELDS = ("entity", "window_id", "window_start", "window_end", "date", "score", "threshold",
                 "is_anomaly", "top_features", "top_shares")


FEATURE_ERRORS = Field("feature_errors", "array<double>", False, "the model's error per feature (F)")


def output_struct(passthrough: tuple[str, ...] = (), feature_errors: bool = False) -> Any:
    """The Spark schema of the scorer's output: :data:`OUTPUT_FIELDS`, passed-through window
    columns, then (optionally) :data:`FEATURE_ERRORS`."""
    from pyspark.sql import types as T

    extra = TableSchema("scorer", (FEATURE_ERRORS,)).struct_type().fields if feature_errors else []
    return T.StructType(SCORES.struct_type(OUTPUT_FIELDS).fields + WINDOWS.struct_type(passthrough).fields + extra)


def output_arrow_schema(passthrough: tuple[str, ...] = (), feature_errors: bool = False) -> Any:
    """The Arrow schema of the scorer's output (same fields as :func:`output_struct`)."""
    import pyarrow as pa

    fields = list(SCORES.arrow_schema(OUTPUT_FIELDS)) + list(WINDOWS.arrow_schema(passthrough))
    if feature_errors:
        fields.append(pa.field(FEATURE_ERRORS.name, FEATURE_ERRORS.arrow_type(), FEATURE_ERRORS.nullable))
    return pa.schema(fields)


def make_feature_scorer(
    cut: Callable[[Any, Any], Any],
    score: Callable[[Iterator[Any]], Iterator[Any]],
    batch_rows: int,
    passthrough: tuple[str, ...] = (),
    feature_errors: bool = False,
) -> Callable[[Any, Any], Any]:
    """The function handed to ``cogroup(...).applyInArrow`` to score straight from features: a
    hash group's features and scaler statistics are cut into windows in the Python worker and
    scored there, so window arrays never cross to the JVM.

    Args:
        cut: From :func:`adspark.pipeline.window.make_cutter` (the window job's own function).
        score: From :func:`make_scorer`.
        batch_rows: Feature rows cut at a time (whole entities; about as many windows) and
            windows per scorer batch: bounds the worker's memory whatever the group's size.
        passthrough: As for :func:`make_scorer`.
        feature_errors: As for :func:`make_scorer`.

    Returns:
        ``(features table, stats table) -> scorer output table`` (fields of :func:`output_struct`).
    """
    schema = output_arrow_schema(passthrough, feature_errors)

    def run(features_t: Any, stats_t: Any) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        batches = []
        chunked = features_t.num_rows > batch_rows
        for part in entity_chunks(features_t, batch_rows):
            # a slice's own statistics (the rest of the group's would be converted and skipped)
            mine = stats_t.filter(pc.is_in(stats_t.column("entity"), value_set=pc.unique(part.column("entity")))) \
                if chunked else stats_t
            windows = cut(part, mine)
            batches.extend(score(iter(windows.to_batches(max_chunksize=batch_rows))))
        return pa.Table.from_batches(batches).cast(schema) if batches else schema.empty_table()

    return run


def entity_chunks(table: Any, rows: int) -> Iterator[Any]:
    """Slices of an Arrow table of whole entities, each about ``rows`` rows (one entity may
    exceed it), so that a hash group's windows are cut and scored a slice at a time."""
    import pyarrow.compute as pc

    if table.num_rows <= rows:
        yield table
        return
    table = table.take(pc.sort_indices(table, [("entity", "ascending")]))
    entity = table.column("entity").to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, entity[1:] != entity[:-1]])
    begin = 0
    for nxt in (*starts[1:], table.num_rows):
        if nxt - begin >= rows or nxt == table.num_rows:
            yield table.slice(begin, nxt - begin)
            begin = nxt


def _load(model: RegisteredModel, files: dict[str, bytes], entity: str | None) -> Any:
    from adspark.config import detector_config
    from adspark.detectors.factory import build_detector
    from adspark.models.registry import load_networks

    key = (model.model_id, entity or "")
    if key not in _LOADED:
        prefix = model.entity_models[entity] + "/" if entity is not None else ""
        # the networks are read into memory, so the folder goes once they are loaded (a worker
        # reloads after each idle exit: kept folders would pile up on every executor's disk)
        with tempfile.TemporaryDirectory(prefix=f"adspark-{model.model_id}-") as tmp:
            folder = Path(tmp)
            for rel, data in files.items():
                if rel.startswith(prefix) and "/" not in rel[len(prefix):]:
                    (folder / rel[len(prefix):]).write_bytes(data)
            networks = load_networks(folder, model.model_id, scoring=True)
        detector = build_detector(detector_config(model.params))
        _LOADED[key] = detector.restore(networks, (model.n_steps, model.n_features))
    return _LOADED[key]


def _windows(batch: Any, n_steps: int, n_features: int) -> np.ndarray:
    """The ``values`` list column as float32 (n, W, F), zero-copy where Arrow allows."""
    values = batch.column(batch.schema.get_field_index("values"))
    n = batch.num_rows
    flat = values.flatten().to_numpy(zero_copy_only=False)
    width = n_steps * n_features
    lengths = np.diff(values.offsets.to_numpy())
    if flat.size != n * width or (lengths != width).any():
        bad = int(np.argmax(lengths != width))
        window_id = batch.column(batch.schema.get_field_index("window_id"))[bad].as_py()
        raise DataContractError(
            f"window {window_id!r} holds {lengths[bad]} values; the model expects "
            f"{n_steps} x {n_features} = {width} (window spec mismatch)"
        )
    x = flat.reshape(n, n_steps, n_features)
    if not np.isfinite(flat).all():
        finite = np.isfinite(x).all(axis=(1, 2))
        bad = int(np.argmin(finite))
        window_id = batch.column(batch.schema.get_field_index("window_id"))[bad].as_py()
        raise DataContractError(f"window {window_id!r} holds NaN or infinite values; it is not scored")
    return x


def _explain(
    model: RegisteredModel, files: dict[str, bytes], entities: np.ndarray, x: np.ndarray, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Scores (n,) and feature errors (n, F) with the global network or each entity's own."""
    if model.scope != "entity":
        return _load(model, files, None).explain(x, batch_size)
    scores = np.full(len(x), np.nan)
    errors = np.zeros((len(x), model.n_features))
    for entity in np.unique(entities):
        if entity not in model.entity_models:
            raise DataContractError(
                f"entity {entity!r} has no network in entity-scoped model {model.model_id}; "
                "retrain with it in the training range"
            )
        mine = entities == entity
        scores[mine], errors[mine] = _load(model, files, entity).explain(x[mine], batch_size)
    return scores, errors


def limit_threads(threads: int, keras: bool) -> None:
    """Cap this worker's BLAS threads (numpy's products: the dense twin, PCA) and, when a Keras
    network is scored (``keras``), TensorFlow's pools at ``threads``: Spark runs a worker per task
    slot, so each left at its default (a thread per core) would oversubscribe the cores."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")
    if keras:
        import tensorflow as tf

        with contextlib.suppress(RuntimeError):  # this worker's TensorFlow already runs: its pools stay
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)


def make_scorer(
    model: RegisteredModel,
    files: Any,
    feature_names: list[str],
    batch_size: int,
    top_k: int,
    tf_threads: int | None = None,
    passthrough: tuple[str, ...] = (),
    feature_errors: bool = False,
) -> Callable[[Iterator[Any]], Iterator[Any]]:
    """The ``mapInArrow`` function: windows -> score, threshold, verdict, top features.

    Args:
        model: The registered model.
        files: A Spark broadcast of its artifact files (``{relative path: bytes}``), or the dict.
        feature_names: The window spec's feature names (the F axis).
        batch_size: Windows per inference call.
        top_k: Features reported per window.
        tf_threads: BLAS threads per worker, and TensorFlow's intra/inter-op threads when a
            Keras network is shipped (:func:`limit_threads`; None: the libraries' defaults).
        passthrough: Input columns copied to the output after the scores (e.g. ``raw_values``).
        feature_errors: Also output each window's error per feature (``feature_errors``, F values).

    Input batches need ``entity, window_id, window_start, window_end, date, values`` (and the
    passthrough columns); output batches have the fields :data:`OUTPUT_FIELDS`, then those.
    """
    names = np.asarray(feature_names, dtype=object)
    entity_thresholds = dict(model.entity_thresholds)
    global_threshold = float(model.threshold.value)
    W, F = model.n_steps, model.n_features
    if len(names) != F:
        raise DataContractError(
            f"model {model.model_id} expects {F} features, the window spec lists {len(names)}"
        )

    def score(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        shipped = files.value if hasattr(files, "value") else files
        if tf_threads:
            limit_threads(tf_threads, keras=needs_keras(shipped))
        schema = SCORES.arrow_schema(OUTPUT_FIELDS)
        out_names = list(OUTPUT_FIELDS) + list(passthrough) + (["feature_errors"] if feature_errors else [])
        error_type = FEATURE_ERRORS.arrow_type()
        list_types = {name: schema.field(name).type for name in ("top_features", "top_shares")}
        name_array = pa.array(list(names), pa.string())
        for batch in batches:
            n = batch.num_rows
            if n == 0:
                continue
            x = _windows(batch, W, F)
            entities = batch.column(batch.schema.get_field_index("entity")).to_numpy(zero_copy_only=False)
            scores, errors = _explain(model, shipped, entities, x, batch_size)
            thresholds = np.fromiter(
                (entity_thresholds.get(e, global_threshold) for e in entities), np.float64, n
            ) if entity_thresholds else np.full(n, global_threshold)
            idx, shares = top_contributors(errors, top_k)
            k = idx.shape[1]
            offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
            columns = {
                name: batch.column(batch.schema.get_field_index(name))
                for name in ("entity", "window_id", "window_start", "window_end", "date")
            }
            columns.update(
                score=pa.array(scores.astype(np.float64)),
                threshold=pa.array(thresholds),
                is_anomaly=pa.array(scores > thresholds),
                top_features=pa.ListArray.from_arrays(
                    offsets,
                    pa.DictionaryArray.from_arrays(pa.array(idx.ravel().astype(np.int32)), name_array)
                    .cast(pa.string()),
                    type=list_types["top_features"],
                ),
                top_shares=pa.ListArray.from_arrays(
                    offsets, pa.array(shares.ravel(), pa.float64()), type=list_types["top_shares"]
                ),
            )
            for name in passthrough:
                columns[name] = batch.column(batch.schema.get_field_index(name))
            if feature_errors:
                columns["feature_errors"] = pa.ListArray.from_arrays(
                    pa.array(np.arange(0, n * F + 1, F, dtype=np.int32)),
                    pa.array(np.asarray(errors, np.float64).ravel()), type=error_type,
                )
            yield pa.RecordBatch.from_arrays([columns[f] for f in out_names], names=out_names)

    return score

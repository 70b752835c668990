"""Benchmark: detection quality on labeled public data, through the real pipeline.

For each dataset (``benchmarks/quality_data.py``) the rows become an events table in Delta (one
event = one sample, row mode): the normal training rows on two nights (the second validates:
early stopping and the threshold), the test rows on a third night, the test anomalies in a
``labels`` table. Then the public CLI runs ``window`` -> ``train`` -> ``score`` -> ``evaluate``
for each adspark detector, exactly as a user would; the thresholds are fitted on the validation
night without labels. Baselines (PCA, Isolation Forest, One-Class SVM) are fitted on the same
scaled ``windows`` rows with the same threshold method, for a side-by-side table. Published
figures are printed next to them.

NAB (``--datasets nab``) runs in bucket mode instead: ``benchmarks/quality_nab.py``.

Usage (from the repository root): ``python -m benchmarks.quality [--datasets kdd,ecg,nslkdd,nab]
[--threshold pot] [--epochs 60]``. Figures also go to ``benchmarks/results/quality.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from adspark.core.evaluate import best_f1, pr_auc, prf_at, roc_auc
from benchmarks.quality_data import LOADERS, Dataset

HERE = Path(__file__).resolve().parent
NIGHTS = (dt.date(2026, 1, 5), dt.date(2026, 1, 6), dt.date(2026, 1, 7))  # train, validation, test
VALIDATION_SHARE = 0.2
SEED = 0

# adspark detectors compared (chosen on validation loss only; see the closing note).
# NAB: one dense AE over windows of NAB_WINDOW 5-minute buckets (see quality_nab.py).
NAB_WINDOW = 24
NAB_DETECTOR = {"type": "dense_ae", "hidden": [32, 16], "bottleneck": 4, "batch_size": 64, "patience": 5,
                "learning_rate": 1e-3}

DETECTORS = {
    "adspark dense_ae": {"type": "dense_ae", "hidden": [64, 32], "bottleneck": 4, "batch_size": 128,
                         "patience": 5, "learning_rate": 1e-3},
    "adspark vae": {"type": "vae", "hidden": [64, 32], "bottleneck": 4, "batch_size": 128, "patience": 5,
                    "score_kind": "error"},
}


def events_frames(ds: Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The events table and the labels table of a dataset.

    Training rows are shuffled (seed 0) and split: the first 80% on night 1, the rest on
    night 2 (validation); test rows keep their order on night 3. Event ``i`` of a night happens
    ``i`` seconds after its midnight; event ids are ``train-<i>`` / ``test-<i>`` (test row ``i``).

    Returns:
        ``(events, labels)``: events with the dataset's columns plus ``event_id``, ``entity``,
        ``event_time``, ``event_date``; one point label per anomalous test row.
    """
    order = np.random.default_rng(SEED).permutation(len(ds.train))
    n_val = max(1, int(round(VALIDATION_SHARE * len(order))))
    parts = []
    for night, rows, prefix in (
        (NIGHTS[0], ds.train.iloc[order[:-n_val]], "train"),
        (NIGHTS[1], ds.train.iloc[order[-n_val:]], "val"),
        (NIGHTS[2], ds.test, "test"),
    ):
        frame = rows.reset_index(drop=True).copy()
        seconds = np.arange(len(frame))
        if len(frame) > 86_400:
            raise ValueError(f"{ds.name}: {len(frame)} rows do not fit one night at one per second")
        frame.insert(0, "event_id", [f"{prefix}-{i}" for i in seconds])
        frame.insert(1, "entity", ds.name)
        frame.insert(2, "event_time", pd.Timestamp(night) + pd.to_timedelta(seconds, unit="s"))
        frame["event_date"] = night
        parts.append(frame)
    events = pd.concat(parts, ignore_index=True)
    test = parts[2]
    anomalous = np.flatnonzero(ds.label == 1)
    labels = pd.DataFrame({
        "anomaly_id": [f"{ds.name}-{i}" for i in anomalous],
        "entity": ds.name,
        "kind": ds.group[anomalous],
        "start": test["event_time"].to_numpy()[anomalous],
        "end": test["event_time"].to_numpy()[anomalous],
        "magnitude": np.nan,
        "description": "labeled anomaly of the public dataset",
    })
    return events, labels


def project(ds: Dataset, warehouse: Path, detector: dict, threshold: dict, epochs: int) -> dict:
    """The YAML project (as a dict) of one dataset and detector."""
    return {
        "storage": {"warehouse": str(warehouse), "schema": "adspark"},
        "spark": {"master": "local[2]", "shuffle_partitions": 4, "driver_memory": "4g"},
        "source": {
            "table": "events",
            "timestamp": {"column": "event_time", "timezone": "UTC"},
            "date_column": "event_date",
            "entity": ["entity"],
            "event_id": "event_id",
            "late_days": 0,
            "measures": [{"name": m} for m in ds.measures],
            "categoricals": [{"name": c, "top_k": 128} for c in ds.categoricals],
        },
        "discretize": {"bucket": "1h", "calendar": False},  # required section; unused in row mode
        "window": {"mode": "rows", "size": 1, "stride": 1,
                   "scaling": {"method": ds.scaling, "fit_from": str(NIGHTS[0]), "fit_to": str(NIGHTS[1])}},
        "train": {"backend": "local", "validation_fraction": 0.5, "exclude_labeled": False,
                  "detector": {**detector, "epochs": epochs, "seed": SEED}, "threshold": threshold},
        "score": {"top_k": 3},
        "intervals": {"gap": "0s", "top_k": 3, "lookback_days": 0},
        "evaluate": {"labels_table": "labels"},
    }


def write_inputs(spark, warehouse: Path, events: pd.DataFrame, labels: pd.DataFrame) -> None:
    """Events (partitioned by night) and labels as Delta tables under the warehouse."""
    from schemas import LABELS

    root = warehouse / "adspark"
    spark.createDataFrame(events).write.format("delta").partitionBy("event_date").mode("overwrite").save(
        str(root / "events"))
    spark.createDataFrame(labels[LABELS.names], LABELS.struct_type()).write.format("delta").mode(
        "overwrite").save(str(root / "labels"))


def _cli(argv: list[str]) -> None:
    from adspark.cli import main as cli

    t0 = time.perf_counter()
    if cli(argv) != 0:
        raise SystemExit(f"adspark {' '.join(argv)} failed")
    print(f"  adspark {argv[0]}: {time.perf_counter() - t0:.0f} s", flush=True)


def group_figures(ids: np.ndarray, score: np.ndarray, flag: np.ndarray, ds: Dataset) -> dict:
    """Recall at the fitted threshold and ROC AUC vs the normal rows, per anomaly group.

    Args:
        ids: Test row index of each scored row, shape (m,).
        score: Scores, shape (m,). flag: Verdicts at the fitted threshold, shape (m,).
    """
    group = ds.group[ids]
    normal = ds.label[ids] == 0
    out = {}
    for g in sorted(set(group[~normal])):
        sel = group == g
        both = sel | normal
        out[g] = {"rows": int(sel.sum()), "recall": float(flag[sel].mean()),
                  "roc_auc": roc_auc(score[both], sel[both])}
    return out


def figures(score: np.ndarray, flag: np.ndarray, truth: np.ndarray, at_model: np.ndarray) -> dict:
    """ROC/PR AUC, P/R/F1 of the job's verdicts (``flag``: the night's threshold where it
    applies), F1 at the model's validation threshold alone (``at_model``) and the oracle best F1."""
    at = prf_at(flag.astype(np.float64), truth, 0.5)
    return {"roc_auc": roc_auc(score, truth), "pr_auc": pr_auc(score, truth), "precision": at.precision,
            "recall": at.recall, "f1": at.f1, "f1_model_threshold": prf_at(at_model.astype(np.float64), truth, 0.5).f1,
            "best_f1": best_f1(score, truth).f1}


def run_adspark(store, ds: Dataset, conf: Path, name: str) -> dict:
    """train -> score -> evaluate one detector through the CLI; figures from the tables."""
    from pyspark.sql import functions as F

    c = ["--conf", str(conf)]
    t0 = time.perf_counter()
    _cli(["train", *c, "--from", str(NIGHTS[0]), "--to", str(NIGHTS[1])])
    model = store.read("models").orderBy(F.col("created_at").desc()).first()
    _cli(["score", *c, "--from", str(NIGHTS[2]), "--model-id", model.model_id])
    _cli(["evaluate", *c, "--from", str(NIGHTS[2]), "--model-id", model.model_id])
    seconds = time.perf_counter() - t0
    ev = store.read("evaluations").orderBy(F.col("created_at").desc()).first()
    scores = (store.read("scores").where(F.col("model_id") == model.model_id)
              .select("window_id", "score", "is_anomaly").toPandas())
    ids = scores["window_id"].str.removeprefix("test-").astype(int).to_numpy()
    score, flag = scores["score"].to_numpy(np.float64), scores["is_anomaly"].to_numpy(bool)
    mine = figures(score, flag, ds.label[ids] == 1, score > model.threshold)
    for k in ("roc_auc", "pr_auc", "f1"):  # the evaluations table and this script must agree
        if not np.isclose(mine[k], ev[k], atol=1e-9, equal_nan=True):
            raise AssertionError(f"{name}: {k} {mine[k]} here vs {ev[k]} in evaluations")
    return {**mine, "threshold": model.threshold, "threshold_method": model.threshold_method,
            "model_id": model.model_id, "metrics": json.loads(model.metrics), "seconds": seconds,
            "groups": group_figures(ids, score, flag, ds)}


def _windows(store, night: dt.date) -> tuple[np.ndarray, np.ndarray]:
    from pyspark.sql import functions as F

    pdf = store.read("windows").where(F.col("date") == F.lit(night)).select("window_id", "values").toPandas()
    return pdf["window_id"].to_numpy(), np.stack(pdf["values"].to_numpy()).astype(np.float64)


def run_baselines(store, ds: Dataset, threshold: dict) -> dict:
    """PCA, Isolation Forest and One-Class SVM on the pipeline's scaled windows rows."""
    from adspark.core.drift import score_quantiles
    from adspark.core.thresholds import fit_threshold
    from adspark.core.transductive import night_threshold
    from adspark.detectors.baselines import IsolationForestDetector, OneClassSVMDetector, PCADetector
    from adspark.pipeline.night_threshold import LEVELS

    _, x_train = _windows(store, NIGHTS[0])
    _, x_val = _windows(store, NIGHTS[1])
    test_ids, x_test = _windows(store, NIGHTS[2])
    ids = np.array([int(i.removeprefix("test-")) for i in test_ids])
    truth = ds.label[ids] == 1
    options = {k: v for k, v in threshold.items() if k != "method"}
    out = {}
    for name, det in (("PCA", PCADetector()), ("Isolation Forest", IsolationForestDetector(seed=SEED)),
                      ("One-Class SVM", OneClassSVMDetector())):
        t0 = time.perf_counter()
        det.fit(x_train[:, None, :])
        val = det.score(x_val[:, None, :])
        th = fit_threshold(val, threshold["method"], **options)
        score = det.score(x_test[:, None, :])
        night = night_threshold(np.quantile(score, LEVELS), len(score), np.asarray(score_quantiles(val)), len(val))
        flag = score > (night.value if night.applied else th.value)
        out[name] = {**figures(score, flag, truth, score > th.value), "threshold": th.value,
                     "threshold_method": th.method, "night": night.params(),
                     "seconds": time.perf_counter() - t0, "groups": group_figures(ids, score, flag, ds)}
    return out


def run_dataset(ds: Dataset, threshold: dict, epochs: int, tmp: Path) -> dict:
    """Every detector on one dataset; the figures by detector name."""
    from adspark.config import SparkConfig, StorageConfig
    from adspark.session import get_spark
    from adspark.storage import TableStore

    warehouse = tmp / ds.name
    events, labels = events_frames(ds)
    spark = get_spark(SparkConfig(master="local[2]", shuffle_partitions=4, driver_memory="4g"))
    write_inputs(spark, warehouse, events, labels)
    store = TableStore(spark, StorageConfig(warehouse=str(warehouse), schema="adspark"))
    results: dict[str, dict] = {}
    for i, (name, detector) in enumerate(DETECTORS.items()):
        conf = tmp / f"{ds.name}-{i}.yaml"
        conf.write_text(yaml.safe_dump(project(ds, warehouse, detector, threshold, epochs)))
        if i == 0:
            _cli(["window", "--conf", str(conf), "--from", str(NIGHTS[0]), "--to", str(NIGHTS[2])])
        print(f"{ds.name}: {name}", flush=True)
        results[name] = run_adspark(store, ds, conf, name)
    results.update(run_baselines(store, ds, threshold))
    return results


def print_table(ds: Dataset, results: dict) -> None:
    """One markdown table: every detector side by side, then the published figures."""
    print(f"\n### {ds.name} (scaling {ds.scaling}): {len(ds.train)} normal training rows, {len(ds.test)} test rows "
          f"({int(ds.label.sum())} anomalies); {ds.note}")
    print("| detector | ROC AUC | PR AUC | precision | recall | F1 (job's verdicts: night threshold where it "
          "applies) | F1 (model's validation threshold alone) | best F1 (oracle) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['roc_auc']:.3f} | {r['pr_auc']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} "
              f"| {r['f1']:.3f} | {r['f1_model_threshold']:.3f} | {r['best_f1']:.3f} |")
    for name, r in ds.published.items():
        auc = f"{r['roc_auc']:.3f}" if "roc_auc" in r else "-"
        f1 = f"{r['f1']:.3f}" if "f1" in r else "-"
        print(f"| {name} (published) | {auc} | - | - | - | {f1} | - | - |")
    groups = sorted({g for r in results.values() for g in r["groups"]})
    if len(groups) > 1:
        print("\nrecall at the fitted threshold / ROC AUC vs normal rows, per group:")
        print("| detector | " + " | ".join(f"{g} ({next(iter(results.values()))['groups'][g]['rows']})"
                                          for g in groups) + " |")
        print("|---|" + "---|" * len(groups))
        for name, r in results.items():
            print(f"| {name} | " + " | ".join(
                f"{r['groups'][g]['recall']:.2f} / {r['groups'][g]['roc_auc']:.3f}" for g in groups) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="kdd,ecg,nslkdd,nab",
                        help=f"comma-separated, among {sorted(LOADERS) + ['nab']}")
    parser.add_argument("--nab-window", type=int, default=NAB_WINDOW, help="nab: buckets per window")
    parser.add_argument("--nab-features", choices=("level", "diff", "both"), default="level",
                        help="nab: the bucket's value, its change, or both")
    parser.add_argument("--nab-center", action="store_true", help="nab: center each window on its mean")
    parser.add_argument("--nab-recency", type=float, default=None,
                        help="nab: weight the model's errors toward the newest buckets with this half-life (buckets)")
    parser.add_argument("--nab-clock", choices=("native", "rows"), default="native",
                        help="nab: each series at its own timestamps and cadence, or every row on one 5-minute grid "
                        "(the protocol before 2026-12-07)")
    parser.add_argument("--nab-alerts", choices=("on", "off"), default="on",
                        help="nab: adaptive alerts (default) or the model's fitted thresholds alone")
    parser.add_argument("--threshold", default="pot", choices=("pot", "distribution", "quantile", "sigma", "robust"))
    parser.add_argument("--tail", type=float, default=1e-3, help="pot, distribution: tail probability")
    parser.add_argument("--level", type=float, default=0.98, help="pot: quantile above which scores are peaks")
    parser.add_argument("--q", type=float, default=0.995, help="quantile: q")
    parser.add_argument("--k", type=float, default=3.0, help="sigma, robust: k")
    parser.add_argument("--scaling", choices=("minmax", "robust", "none"),
                        help="override every dataset's scaling (default: minmax; none for ECG5000)")
    parser.add_argument("--epochs", type=int, default=60, help="most epochs (early stopping on validation loss)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="build the warehouses under this folder and keep them (default: a temporary folder)")
    args = parser.parse_args()
    threshold = {"method": args.threshold,
                 **{"pot": {"tail": args.tail, "level": args.level},
                    "distribution": {"tail": args.tail}, "quantile": {"q": args.q}, "sigma": {"k": args.k},
                    "robust": {"k": args.k}}[
                     args.threshold]}
    saved = HERE / "results" / "quality.json"
    everything = json.loads(saved.read_text()) if saved.exists() else {}
    with contextlib.nullcontext(str(args.keep)) if args.keep else tempfile.TemporaryDirectory(
            prefix="adspark-quality-") as tmp:
        for key in args.datasets.split(","):
            if key == "nab":
                from benchmarks.quality_nab import print_nab, run_nab

                detector = {**NAB_DETECTOR, "epochs": args.epochs, "seed": SEED,
                            **({"recency_halflife": args.nab_recency} if args.nab_recency else {})}
                result = run_nab(Path(tmp), args.nab_window, detector, threshold, _cli, args.nab_features,
                                 args.nab_center, args.nab_alerts == "on", args.nab_clock)
                print_nab(result)
                recency = f"-recency{args.nab_recency:g}" if args.nab_recency else ""
                everything[f"nab-{args.nab_features}{'-centered' if args.nab_center else ''}{recency}"
                           f"-alerts-{args.nab_alerts}{'-rows-clock' if args.nab_clock == 'rows' else ''}"] = result
                saved.parent.mkdir(exist_ok=True)
                saved.write_text(json.dumps(everything, indent=2, default=float))
                continue
            ds = LOADERS[key]()
            if args.scaling:
                ds = dataclasses.replace(ds, scaling=args.scaling)
            results = run_dataset(ds, threshold, args.epochs, Path(tmp))
            print_table(ds, results)
            everything[key] = {"scaling": ds.scaling, "threshold": threshold, "epochs": args.epochs,
                               "note": ds.note, "results": results}
            saved.parent.mkdir(exist_ok=True)
            saved.write_text(json.dumps(everything, indent=2, default=float))


if __name__ == "__main__":
    main()

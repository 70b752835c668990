"""The ``adspark`` command line: one subcommand per job, plus ``sql`` and ``tables``.

Configs are loaded and validated before Spark starts; errors print one clear line and exit 1
(2 for bad arguments).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from adspark.config import (
    DiscretizeJobConfig,
    EvaluateJobConfig,
    GenerateJobConfig,
    LabelsJobConfig,
    NightlyJobConfig,
    ProjectFile,
    ScoreJobConfig,
    TrainJobConfig,
    WindowJobConfig,
    apply_overrides,
    build_job_config,
    load_yaml,
)
from adspark.errors import AdsparkError, ConfigError, check_range
from adspark.progress import configure_logging, progress

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from adspark.config import StorageConfig

DEFAULT_CONF = "conf/demo.yaml"
CONF_ENV = "ADSPARK_CONF"


def find_conf(given: str | None) -> str:
    """The config file: ``--conf``, else ``$ADSPARK_CONF``, else ``conf/demo.yaml`` of the
    current folder, else of the source checkout adspark runs from.

    Raises:
        ConfigError: Naming every place looked at, when none holds a file.
    """
    if given:
        return given
    env = os.environ.get(CONF_ENV)
    if env:
        return env
    here = Path(DEFAULT_CONF)
    checkout = Path(__file__).resolve().parent.parent / DEFAULT_CONF
    for candidate in (here, checkout):
        if candidate.is_file():
            return str(candidate)
    raise ConfigError(
        f"no config: pass --conf FILE or set {CONF_ENV} (looked for {str(here.resolve())!r} and {str(checkout)!r})"
    )


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = -1
    if days < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of days >= 0, got {text!r}")
    return days


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adspark", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="log every stage's details to stderr")
    p.add_argument("--log-format", choices=("text", "json"), default=os.environ.get("ADSPARK_LOG_FORMAT", "text"),
                   help="stderr log lines as text or one JSON object per line, for job schedulers "
                        "(default $ADSPARK_LOG_FORMAT, else text)")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, help_: str, dates: bool) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("--conf", help=f"YAML config (default ${CONF_ENV}, else {DEFAULT_CONF})")
        sp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a config key for this run (VALUE is YAML; repeatable), "
                             "e.g. --set 'train.detector={type: pca, n_components: 4}'")
        if dates:
            sp.add_argument("--from", dest="start", type=_date, required=True, help="first night")
            sp.add_argument("--to", dest="end", type=_date, help="last night (default: --from)")
        return sp

    g = add("generate", "write synthetic events + labels tables", dates=False)
    for flag, kind in (("--entities", int), ("--days", int), ("--events", int), ("--seed", int)):
        g.add_argument(flag, type=kind, help=f"override generate.{flag[2:]}")
    g.add_argument("--start", type=_date, help="override generate.start")
    add("discretize", "events -> validated, padded per-entity buckets (features)", dates=True)
    add("window", "features -> scaled sliding windows (or events -> samples in row mode)", dates=True)
    add("train", "windows -> trained detector + thresholds, registered in the models table", dates=True)
    sc = add("score", "features (or windows) -> scores (model loaded once per Python worker) -> intervals", dates=True)
    sc.add_argument("--model-id", help="score with this model (default: score.model_id, else the latest)")
    ev = add("evaluate", "scores + intervals of a range vs labels: AUCs, P/R/F1, interval detection, NAB", dates=True)
    ev.add_argument("--model-id", help="only this model's scores (default: every model that scored the range)")
    ev.add_argument("--labels", help="labels table (default: evaluate.labels_table, else labels)")
    rp = add("report", "self-contained HTML report of a range: scores, curves, a panel per top interval", dates=True)
    rp.add_argument("--out", help="HTML file to write (default reports/adspark-<from>-<to>.html)")
    rp.add_argument("--top", type=int, default=5, help="interval panels (default 5)")
    rp.add_argument("--model-id", help="only this model's scores")
    rp.add_argument("--labels", default="labels", help="labels table for the ROC/PR curves (default labels)")
    fb = add("feedback", "record an analyst's verdict on an anomaly interval", dates=False)
    fb.add_argument("--interval-id", required=True, help="intervals.interval_id")
    fb.add_argument("--label", required=True, choices=("true", "false", "unsure"), help="the verdict")
    fb.add_argument("--who", required=True, help="who judged it")
    fb.add_argument("--comment", help="free text")
    rc = add("recalibrate", "new threshold from the feedback (supervised, shrunk to the unsupervised one)",
             dates=False)
    rc.add_argument("--model-id", help="the model to recalibrate (default: the latest for the train config)")
    n = add("nightly", "one night end to end: discretize, score from features, intervals, retrain when due", dates=False)
    n.add_argument("--date", type=_date, required=True, help="the night to process")
    n.add_argument("--to", dest="end", type=_date, help="process every night from --date to this one (in passes: the nights between two retrains scored at once)")
    n.add_argument("--days-back", dest="days_back", type=_days, default=0, metavar="N",
                   help="process the night N days before --date (and --to), e.g. a scheduler's run "
                        "date with 1 for the night before")
    ch = add("run", "discretize -> window -> train -> score -> evaluate a range in one Spark session", dates=True)
    ch.add_argument("--train-to", dest="train_to", type=_date,
                    help="last night to train on (default window.scaling.fit_to); later nights are scored "
                         "(not with window.scaling.entity_head: each entity trains on its own head)")
    lb = add("labels", "load labeled anomalies (CSV: entity, start, end[, kind, description, magnitude, anomaly_id]; "
             "or --from-column: runs of flagged events)", dates=False)
    lb.add_argument("file", nargs="?", help="CSV file with a header row (a path or URI)")
    lb.add_argument("--from-column", dest="from_column", metavar="COLUMN",
                    help="instead of a file: the events' per-row flag column (anomaly, label, attack); each "
                         "entity's runs of consecutive flagged rows become labels")
    lb.add_argument("--positive", metavar="VALUE",
                    help="with --from-column: the text of a flagged row, e.g. Attack (default: 1/true/yes "
                         "flagged, 0/false/no not)")
    lb.add_argument("--negative", metavar="VALUE",
                    help="with --from-column: the text of an unflagged row, every other value flagged, e.g. normal")
    lb.add_argument("--timezone", default=None,
                    help="zone of naive timestamps in the file (default source.timestamp.timezone, else UTC)")
    lb.add_argument("--delimiter", default=None, help="field delimiter (default ,)")
    lb.add_argument("--replace", action="store_true", help="replace the whole labels table with the file")
    s = add("sql", "run SQL queries on the adspark tables and print the results", dates=False)
    s.add_argument("query", nargs="+", help="one or more queries, e.g. \"select * from adspark.runs\"")
    s.add_argument("--limit", type=int, default=50, help="rows to print (default 50)")
    engine_help = ("duckdb: the Delta tables read in-process, answers in about a second, DuckDB SQL; "
                   "spark: Spark SQL in a Spark session; auto (default): duckdb for a local warehouse "
                   "when duckdb and deltalake are installed, else spark")
    s.add_argument("--engine", choices=("auto", "duckdb", "spark"), default="auto", help=engine_help)
    t = add("tables", "list the tables with their row counts", dates=False)
    t.add_argument("--engine", choices=("auto", "duckdb", "spark"), default="auto", help=engine_help)
    return p


def open_store(data: dict, origin: str, read_only: bool = False):
    """Validate the storage/spark sections, then start Spark and register the tables.

    A command that writes also makes sure the feedback table exists and (re)creates the views; a
    read-only one (``sql``, ``tables``) creates nothing but the views that are missing.
    """
    from adspark.pipeline.feedback import ensure_feedback_table
    from adspark.session import get_spark
    from adspark.storage import TableStore
    from adspark.views import create_views

    try:
        project = ProjectFile.model_validate(data)
    except Exception as exc:  # pydantic error -> the job models give the detailed message
        raise ConfigError(f"invalid configuration in {origin}: {exc}") from None
    spark = get_spark(project.spark, project.storage.warehouse)
    store = TableStore(spark, project.storage)
    store.register_all()
    if not read_only:
        ensure_feedback_table(store)
    create_views(store, only_missing=read_only)
    return store


def _cmd_generate(args: argparse.Namespace, data: dict) -> str:
    from adspark.pipeline.generate import run_generate

    overrides = {k: getattr(args, k) for k in ("entities", "days", "events", "seed", "start")}
    gen = dict(data.get("generate") or {})
    gen.update({k: v for k, v in overrides.items() if v is not None})
    data = {**data, "generate": gen}
    cfg = build_job_config(GenerateJobConfig, data, args.conf)
    return run_generate(open_store(data, args.conf), cfg).message


def _cmd_discretize(args: argparse.Namespace, data: dict) -> str:
    from adspark.pipeline.discretize import run_discretize

    cfg = build_job_config(DiscretizeJobConfig, data, args.conf)
    return run_discretize(open_store(data, args.conf), cfg, args.start, args.end or args.start).message


def _cmd_window(args: argparse.Namespace, data: dict) -> str:
    from adspark.pipeline.window import run_window

    cfg = build_job_config(WindowJobConfig, data, args.conf)
    return run_window(open_store(data, args.conf), cfg, args.start, args.end or args.start).message


def _cmd_train(args: argparse.Namespace, data: dict) -> str:
    from adspark.pipeline.train import run_train

    cfg = build_job_config(TrainJobConfig, data, args.conf)
    run, model = run_train(open_store(data, args.conf), cfg, args.start, args.end or args.start)
    # the scalars; per-feature arrays (error medians, tails) are in the models table's metrics
    shown = {k: v for k, v in model.metrics.items() if not isinstance(v, (list, dict))}
    return run.message + "\nmetrics: " + json.dumps(shown, sort_keys=True)


def _cmd_score(args: argparse.Namespace, data: dict) -> str:
    from adspark.pipeline.score import run_score

    if args.model_id:
        data = {**data, "score": {**(data.get("score") or {}), "model_id": args.model_id}}
    cfg = build_job_config(ScoreJobConfig, data, args.conf)
    return run_score(open_store(data, args.conf), cfg, args.start, args.end or args.start).message


def _cmd_evaluate(args: argparse.Namespace, data: dict) -> str:
    from adspark.pipeline.evaluate import run_evaluate

    section = dict(data.get("evaluate") or {})
    if args.model_id:
        section["model_id"] = args.model_id
    if args.labels:
        section["labels_table"] = args.labels
    data = {**data, "evaluate": section}
    cfg = build_job_config(EvaluateJobConfig, data, args.conf)
    return run_evaluate(open_store(data, args.conf), cfg, args.start, args.end or args.start).message


def _cmd_report(args: argparse.Namespace, data: dict) -> str:
    from pathlib import Path

    from adspark.pipeline.report import run_report

    if args.model_id:
        data = {**data, "score": {**(data.get("score") or {}), "model_id": args.model_id}}
    cfg = build_job_config(ScoreJobConfig, data, args.conf)
    end = args.end or args.start
    out = Path(args.out or f"reports/adspark-{args.start}-{end}.html")
    return run_report(open_store(data, args.conf), cfg, args.start, end, out, args.top, args.labels)


def _cmd_feedback(args: argparse.Namespace, data: dict) -> str:
    from adspark.pipeline.feedback import add_feedback, feedback_summary

    store = open_store(data, args.conf)
    return add_feedback(store, args.interval_id, args.label, args.who, args.comment) + "\n" + feedback_summary(store)


def _cmd_recalibrate(args: argparse.Namespace, data: dict) -> str:
    from adspark.models.lookup import model_in_force
    from adspark.pipeline.feedback import recalibrate

    cfg = build_job_config(TrainJobConfig, data, args.conf)
    store = open_store(data, args.conf)
    model = model_in_force(store, cfg, args.model_id)
    th = cfg.train.threshold
    alerts = build_job_config(ScoreJobConfig, data, args.conf).alerts
    new = recalibrate(store, model, th.beta, th.feedback_strength, alerts.level if alerts.enabled else None)
    if "alert_level_recalibration" in new.metrics:
        r = new.metrics["alert_level_recalibration"]
        return (
            f"recalibrate {model.model_id}: alert level {r['configured']:.3g} (configured) -> "
            f"{new.metrics['alert_level']:.3g} (supervised {r['supervised']:.3g} on {r['judged_intervals']} judged "
            f"intervals, strength {r['strength']:g}); registered as {new.model_id}, used from the next night"
        )
    p = new.threshold.params
    return (
        f"recalibrate {model.model_id}: threshold {p['unsupervised']:.6g} (unsupervised) -> {new.threshold.value:.6g} "
        f"(supervised {p['supervised']:.6g} on {p['judged_intervals']} judged intervals, strength "
        f"{p['strength']:g}); registered as {new.model_id}, used from the next night"
    )


def _cmd_nightly(args: argparse.Namespace, data: dict) -> str:
    from adspark.pipeline.nightly import NightlyResult, run_nights

    cfg = build_job_config(NightlyJobConfig, data, args.conf)
    last = args.end or args.date
    check_range(args.date, last, "--date")
    store = open_store(data, args.conf)
    with progress(f"nightly {args.date}..{last}", (last - args.date).days + 1) as step:

        def night_done(result: NightlyResult) -> None:
            print(result.message, flush=True)
            step(f"{result.date} {result.status}")

        results = run_nights(store, cfg, args.date, last, on_night=night_done)
    statuses = [r.status for r in results]
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    return f"nightly {args.date}..{last}: " + ", ".join(f"{n} {s}" for s, n in counts.items())


def _cmd_run(args: argparse.Namespace, data: dict) -> str:
    from adspark.pipeline.chain import ChainConfigs, chain_ranges, run_chain

    cfgs = ChainConfigs(
        discretize=build_job_config(DiscretizeJobConfig, data, args.conf),
        window=build_job_config(WindowJobConfig, data, args.conf),
        train=build_job_config(TrainJobConfig, data, args.conf),
        score=build_job_config(ScoreJobConfig, data, args.conf),
        evaluate=build_job_config(EvaluateJobConfig, data, args.conf),
    )
    chain_ranges(cfgs, args.start, args.end or args.start, args.train_to)  # before Spark starts
    result = run_chain(open_store(data, args.conf), cfgs, args.start, args.end or args.start, args.train_to)
    return "\n".join(result.lines)


def _cmd_sql(args: argparse.Namespace, data: dict) -> str:
    storage = build_job_config(LabelsJobConfig, data, args.conf).storage
    frames = _local_queries(storage, args) if _local(args.engine, storage) else _spark_queries(data, args)
    return _print_frames(args.query, frames)


def _local_queries(storage: "StorageConfig", args: argparse.Namespace) -> "list[pd.DataFrame]":
    """The queries' first ``--limit`` rows, answered by DuckDB over the Delta tables."""
    import duckdb

    from adspark.localsql import backquotes_to_double, duckdb_frame, open_local

    con = open_local(storage)
    frames = []
    for i, query in enumerate(args.query, start=1):
        try:
            frames.append(duckdb_frame(con.sql(backquotes_to_double(query)).limit(args.limit)))
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AdsparkError(
                f"query {i}: {first} (DuckDB SQL; --engine spark for Spark SQL; tables: `adspark tables`)"
            ) from None
    return frames


def _spark_queries(data: dict, args: argparse.Namespace) -> "list[pd.DataFrame]":
    """The queries' first ``--limit`` rows, answered by Spark SQL."""
    from pyspark.errors import AnalysisException, ParseException

    store = open_store(data, args.conf, read_only=True)
    frames = []
    for i, query in enumerate(args.query, start=1):
        try:
            frames.append(store.spark.sql(query).limit(args.limit).toPandas())
        except (AnalysisException, ParseException) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AdsparkError(f"query {i}: {first} (tables: `adspark tables`)") from None
    return frames


def _print_frames(queries: list[str], frames: "list[pd.DataFrame]") -> str:
    """Each result as a text table (a header before each when there are several)."""
    import pandas as pd

    out = []
    for query, frame in zip(queries, frames, strict=True):
        with pd.option_context("display.max_columns", 50, "display.width", 200,
                               "display.max_colwidth", 60):
            text = frame.to_string(index=False) if len(frame) else "(no rows)"
        out.append(text if len(queries) == 1 else f"-- {query.strip()}\n{text}\n")
    return "\n".join(out)


def _cmd_labels(args: argparse.Namespace, data: dict) -> str:
    from adspark.pipeline.labels import run_flag_labels, run_labels

    if (args.file is None) == (args.from_column is None):
        raise ConfigError("give either a labels CSV file or --from-column COLUMN, not "
                          + ("both" if args.file else "neither"))
    for option, value in (("--positive", args.positive), ("--negative", args.negative)):
        if value is not None and args.from_column is None:
            raise ConfigError(f"{option} goes with --from-column")
    for option, value in (("--timezone", args.timezone), ("--delimiter", args.delimiter)):
        if value is not None and args.from_column is not None:
            raise ConfigError(f"{option} goes with a labels file (--from-column reads the source as its config says)")
    if args.positive is not None and args.negative is not None:
        raise ConfigError("give --positive or --negative, not both")
    cfg = build_job_config(LabelsJobConfig, data, args.conf)
    if args.from_column is not None and cfg.source is None:
        raise ConfigError(f"--from-column: {args.conf} has no source section (the events to read)")
    zone = args.timezone or ((data.get("source") or {}).get("timestamp") or {}).get("timezone") or "UTC"
    store = open_store(data, args.conf)
    if args.from_column is not None:
        return run_flag_labels(store, cfg, args.from_column, args.positive, args.replace, args.negative).message
    return run_labels(store, cfg, args.file, zone, args.replace, args.delimiter or ",").message


def _cmd_tables(args: argparse.Namespace, data: dict) -> str:
    lines = [f"{'table':<24} {'rows':>12}  location"]
    storage = build_job_config(LabelsJobConfig, data, args.conf).storage
    if _local(args.engine, storage):
        from adspark.localsql import local_tables, open_local

        con = open_local(storage)
        for name, path in local_tables(storage):
            rows = con.sql(f'select count(*) from "{storage.schema_name}"."{name}"').fetchall()[0][0]
            lines.append(f"{storage.schema_name + '.' + name:<24} {rows:>12}  {path}")
        return "\n".join(lines)
    store = open_store(data, args.conf, read_only=True)
    for name in store.register_all():
        rows = store.read(name).count()
        lines.append(f"{store.qualified(name).replace('`', ''):<24} {rows:>12}  {store.path(name)}")
    return "\n".join(lines)


def _local(engine: str, storage: "StorageConfig") -> bool:
    """Whether ``--engine`` picks the in-process DuckDB engine for this warehouse."""
    from adspark.localsql import local_engine_available

    return engine == "duckdb" or (engine == "auto" and local_engine_available(storage))


COMMANDS: dict[str, Callable[[argparse.Namespace, dict], str]] = {
    "generate": _cmd_generate,
    "discretize": _cmd_discretize,
    "window": _cmd_window,
    "train": _cmd_train,
    "score": _cmd_score,
    "evaluate": _cmd_evaluate,
    "report": _cmd_report,
    "feedback": _cmd_feedback,
    "recalibrate": _cmd_recalibrate,
    "nightly": _cmd_nightly,
    "run": _cmd_run,
    "labels": _cmd_labels,
    "sql": _cmd_sql,
    "tables": _cmd_tables,
}


def apply_days_back(args: argparse.Namespace) -> None:
    """``--days-back N``: move ``--date`` (and ``--to``) N days back, in place."""
    back = dt.timedelta(days=getattr(args, "days_back", 0))
    if back:
        args.date -= back
        args.end = args.end - back if args.end else None


def error_line(exc: BaseException) -> str | None:
    """The one line a user sees for an error their input can cause, or None for the others.

    adspark's own errors say what they mean; a ``ValueError``/``KeyError`` from the core or a
    library (a value a function cannot take) and Spark's analysis errors (a missing table or
    column of the user's source) become one line with their class named. Everything else is a bug
    or the environment, and keeps its traceback.
    """
    if isinstance(exc, AdsparkError):
        return str(exc)
    try:
        from pyspark.errors import AnalysisException
    except ImportError:  # pragma: no cover - pyspark is a dependency
        AnalysisException = ()  # type: ignore[assignment]  # noqa: N806
    if isinstance(exc, (ValueError, KeyError, AnalysisException)):
        text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        first = text.strip().splitlines()[0] if text.strip() else ""
        return f"{type(exc).__name__}: {first} (-v shows the traceback)"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``adspark`` console script and of ``jobs/*.py``.

    Returns:
        0 on success, 1 on an adspark error (message on stderr), 2 on bad arguments.
    """
    args = _parser().parse_args(argv)
    configure_logging(args.verbose, args.log_format)
    if not args.verbose:  # TensorFlow's C++ start-up notes (driver and Python workers inherit it)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # PySpark logs every failed query's stack as JSON; the error line below says it once
        for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    apply_days_back(args)
    try:
        if getattr(args, "start", None) and getattr(args, "end", None):  # before Spark starts
            check_range(args.start, args.end)
        if getattr(args, "date", None) and getattr(args, "end", None):
            check_range(args.date, args.end, "--date")
        args.conf = find_conf(args.conf)
        data = apply_overrides(load_yaml(args.conf), args.overrides)
        print(COMMANDS[args.command](args, data))
    except Exception as exc:
        line = error_line(exc)
        if line is None:
            raise
        if args.verbose and not isinstance(exc, AdsparkError):
            logging.getLogger("adspark").exception("adspark %s failed", args.command)
        print(f"adspark {args.command}: error: {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

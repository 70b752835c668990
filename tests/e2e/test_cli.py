"""The public CLI end to end on a tiny generated table.

The whole path runs ``adspark.cli.main(argv)`` in the test's SparkSession (a JVM start per command
would cost more than the work); the entry point itself runs in a subprocess below and in
``test_submit.py`` (spark-submit).
"""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _adspark(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "adspark.cli", *args], cwd=cwd, capture_output=True, text=True,
        timeout=600,
    )


def _conf(tmp_path: Path, backend: str = "local") -> Path:
    """The demo's config on tiny data; training in this process unless ``backend`` says horovod
    (as ``make demo`` trains)."""
    data = yaml.safe_load((ROOT / "conf" / "demo.yaml").read_text())
    data["train"]["backend"] = backend
    data["storage"]["warehouse"] = str(tmp_path / "wh")
    data["spark"].update({"master": "local[2]", "shuffle_partitions": 2, "driver_memory": "1g"})
    data["generate"].update({"entities": 12, "days": 5, "events": 12 * 5 * 60, "anomaly_free_days": 2,
                             "bad_row_fraction": 0.01})
    data["window"]["scaling"].update({"fit_from": "2026-01-05", "fit_to": "2026-01-06"})
    data["train"]["detector"].update({"epochs": 2, "hidden": [16], "bottleneck": 4})  # the path, not the model
    path = tmp_path / "conf.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class _Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def test_whole_path_through_the_cli(spark, tmp_path, monkeypatch, capsys):
    """generate -> discretize + window history -> train (Horovod) -> nightly x2 -> SQL views, from
    DuckDB and Spark alike -> every table through delta-rs. (Over Spark Connect: the slow test below.)"""
    from adspark.cli import main

    monkeypatch.chdir(tmp_path)

    def _adspark(*args: str, cwd: Path) -> _Result:
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        return _Result(code, out.out, out.err)

    conf = str(_conf(tmp_path, backend="horovod"))
    gen = _adspark("generate", "--conf", conf, cwd=tmp_path)
    assert gen.returncode == 0, gen.stderr[-3000:]
    assert "labeled anomalies" in gen.stdout
    history = ("--from", "2026-01-05", "--to", "2026-01-07")
    disc = _adspark("discretize", "--conf", conf, *history, cwd=tmp_path)
    assert disc.returncode == 0, disc.stderr[-3000:]
    assert "read " in disc.stdout and "rejected" in disc.stdout
    win = _adspark("window", "--conf", conf, *history, cwd=tmp_path)
    assert win.returncode == 0, win.stderr[-3000:]
    train = _adspark("train", "--conf", conf, *history, cwd=tmp_path)
    assert train.returncode == 0, train.stderr[-3000:]
    assert "model m-" in train.stdout and "threshold distribution" in train.stdout
    # the demo's MLflow store beside the tables: the model registered as a pyfunc, aliased
    assert "MLflow models:/adspark/1 @champion" in train.stdout and (tmp_path / "wh" / "mlflow.db").is_file()
    # trained by Horovod over 2 processes (the test_train case with the real backend is slow)
    metrics = _read(tmp_path / "wh" / "adspark" / "models", "select metrics from t")["metrics"]
    assert [json.loads(m)["processes"] for m in metrics] == [2]
    nightly = _adspark("nightly", "--conf", conf, "--date", "2026-01-08", "--to", "2026-01-09", cwd=tmp_path)
    assert nightly.returncode == 0, nightly.stderr[-3000:]
    assert "nightly 2026-01-08:" in nightly.stdout and "nightly 2026-01-09:" in nightly.stdout
    assert "2 succeeded" in nightly.stdout
    queries = (
        "select r.job, r.status, r.rows_read = r.rows_accepted + r.rows_rejected as ok, "
        "(select count(*) from adspark.windows) as windows, "
        "(select count(distinct entity) from adspark.features) as entities "
        "from adspark.runs r where r.job = 'discretize' order by r.started_at limit 1",
        "select count(*) as nights, cast(sum(windows) as bigint) as windows from adspark.nightly_summary "
        "where status = 'succeeded'",
        "select count(*) as scored from adspark.scores",
        "select entity, start, `end`, n_windows, round(peak_score, 4) as peak from adspark.open_anomalies "
        "order by entity, start",
        "select model_id, count(*) as n from adspark.entity_history group by model_id order by model_id",
    )
    answers = {}
    for engine in ("duckdb", "spark"):  # DuckDB over delta-rs in-process, and Spark SQL: the same answers
        sql = _adspark("sql", "--conf", conf, "--engine", engine, *queries, cwd=tmp_path)
        assert sql.returncode == 0, sql.stderr[-3000:]
        answers[engine] = [b.strip().splitlines() for b in sql.stdout.split("-- ")[1:]]
    assert answers["duckdb"] == answers["spark"], answers
    blocks = answers["duckdb"]
    first = blocks[0][-1].split()
    assert first[:3] == ["discretize", "succeeded", "True"]
    assert int(first[3]) > 0 and int(first[4]) == 12
    nights, windows = map(int, blocks[1][-1].split())
    assert nights == 2 and windows > 0
    assert int(blocks[2][-1]) == windows
    _other_readers_agree(spark, tmp_path / "wh" / "adspark")


@pytest.mark.slow  # another JVM, the Spark Connect server's: with the cluster tests
def test_scoring_over_spark_connect_equals_the_classic_session(spark, tmp_path, monkeypatch, capsys):
    """generate -> nightly x2 (discretizes the history and trains first) in the test's session,
    then the same two nights scored over Spark Connect."""
    from adspark.cli import main

    monkeypatch.chdir(tmp_path)
    conf = str(_conf(tmp_path))
    assert main(["generate", "--conf", conf]) == 0
    code = main(["nightly", "--conf", conf, "--date", "2026-01-08", "--to", "2026-01-09"])
    assert code == 0, capsys.readouterr().err[-3000:]
    _scoring_over_spark_connect_matches(tmp_path, conf)


def _other_readers_agree(spark, root: Path) -> None:
    """Every Delta table adspark wrote opens in delta-rs and, through it, in DuckDB, with Spark's
    row count and Spark's sum of every numeric column (protocol reader 1 / writer 2, no table
    features: ../docs/NOTES.md)."""
    import duckdb
    import numpy as np
    from deltalake import DeltaTable, QueryBuilder
    from pyspark.sql import functions as F

    tables = sorted(p.parent for p in root.glob("*/_delta_log"))
    assert {"events", "features", "windows", "scores", "intervals", "alert_state", "models", "runs",
            "nightly", "labels", "rejects"} <= {t.name for t in tables}
    for path in tables:
        table = DeltaTable(str(path))
        protocol = table.protocol()
        assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 2), (path.name, protocol)
        df = spark.read.format("delta").load(str(path))
        numeric = [f.name for f in df.schema.fields if f.dataType.typeName() in ("double", "long", "integer")]
        want = list(df.agg(F.count("*"), *[F.sum(F.col(c).cast("double")) for c in numeric]).first())
        reader = QueryBuilder().register("t", table).execute("select * from t")  # noqa: F841 (read by DuckDB)
        sums = ", ".join(f'sum(cast("{c}" as double))' for c in numeric)
        got = duckdb.sql(f"select count(*){', ' + sums if sums else ''} from reader").fetchall()[0]
        assert got[0] == want[0], (path.name, got[0], want[0])
        np.testing.assert_allclose(np.array(got[1:], dtype=float), np.array(want[1:], dtype=float),
                                   rtol=1e-9, equal_nan=True, err_msg=path.name)


def test_bad_config_is_one_clear_line(tmp_path):
    conf = tmp_path / "bad.yaml"
    conf.write_text("source:\n  table: events\n  timestamp: {column: t}\n  entity: [u]\n"
                    "  measures: [{name: x, sign: positive}]\ndiscretize: {}\n")
    out = _adspark("discretize", "--conf", str(conf), "--from", "2026-01-05", cwd=tmp_path)
    assert out.returncode == 1
    assert "source.measures.0.sign: unknown key" in out.stderr
    assert "Traceback" not in out.stderr
    bad_date = _adspark("discretize", "--conf", str(conf), "--from", "05/01/2026", cwd=tmp_path)
    assert bad_date.returncode == 2 and "expected a date YYYY-MM-DD" in bad_date.stderr


def test_a_command_in_a_fresh_folder_is_quiet_and_leaves_no_spark_warehouse(tmp_path):
    """The config comes from $ADSPARK_CONF; stderr has no Spark banner; the catalog's folders go
    under the configured warehouse, not into the working folder."""
    import os

    conf = _conf(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    out = subprocess.run([sys.executable, "-m", "adspark.cli", "tables"], cwd=work, capture_output=True, text=True,
                         timeout=600, env={**os.environ, "ADSPARK_CONF": str(conf)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Setting default log level" not in out.stderr and "log4j" not in out.stderr, out.stderr[-2000:]
    assert list(work.iterdir()) == []  # a read-only command on an empty warehouse writes nothing
    # a query naming a missing table: one line, no stack, from either engine
    for engine, says in (("duckdb", "Table with name nope does not exist"),
                         ("spark", "[TABLE_OR_VIEW_NOT_FOUND]")):
        bad = subprocess.run([sys.executable, "-m", "adspark.cli", "sql", "--engine", engine,
                              "select * from adspark.nope"], cwd=work, capture_output=True, text=True,
                             timeout=600, env={**os.environ, "ADSPARK_CONF": str(conf)})
        assert bad.returncode == 1 and "Traceback" not in bad.stderr and "{" not in bad.stderr, bad.stderr[-2000:]
        errors = [line for line in bad.stderr.splitlines() if line.startswith("adspark sql: error: query 1: ")]
        assert len(errors) == 1, bad.stderr
        assert says in bad.stderr, bad.stderr
    # the catalog the query opened lives under the configured warehouse, not in the working folder
    assert list(work.iterdir()) == [] and (tmp_path / "wh" / "_catalog").is_dir()


def test_the_config_is_found_from_the_environment_or_the_project(tmp_path, monkeypatch):
    from adspark.cli import CONF_ENV, find_conf

    assert find_conf("given.yaml") == "given.yaml"
    monkeypatch.setenv(CONF_ENV, str(tmp_path / "env.yaml"))
    assert find_conf(None) == str(tmp_path / "env.yaml")
    monkeypatch.delenv(CONF_ENV)
    monkeypatch.chdir(tmp_path)  # no conf/ here: the source checkout's default
    assert Path(find_conf(None)) == ROOT / "conf" / "demo.yaml"


@pytest.mark.slow  # the tutorial test (slow too) runs `adspark run` as well; make test keeps one CLI path
def test_run_chains_every_step_in_one_session(spark, tmp_path, monkeypatch, capsys):
    """adspark run: discretize -> window -> train -> score -> evaluate, one line per stage."""
    from adspark.cli import main

    monkeypatch.chdir(tmp_path)
    conf = str(_conf(tmp_path))
    assert main(["generate", "--conf", conf]) == 0
    capsys.readouterr()
    code = main(["run", "--conf", conf, "--from", "2026-01-05", "--to", "2026-01-09", "--train-to", "2026-01-07"])
    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    stages = [line.split()[0].strip("[") for line in out.out.strip().splitlines()]
    assert stages == ["discretize", "window", "train", "score", "evaluate"]
    assert "evaluate 2026-01-08..2026-01-09" in out.out and "points:" in out.out
    bad = main(["run", "--conf", conf, "--from", "2026-01-05", "--to", "2026-01-07", "--train-to", "2026-01-07"])
    assert bad == 1 and "--train-to 2026-01-07 must be" in capsys.readouterr().err


def _scoring_over_spark_connect_matches(tmp_path: Path, conf: str) -> None:
    """The two nights the nightly job scored, scored again over a local Spark Connect server (another
    process, a copy of the warehouse): scores, intervals and alert states equal the classic session's."""
    import shutil

    shutil.copytree(tmp_path / "wh", tmp_path / "wh-connect", ignore=shutil.ignore_patterns("_catalog"))
    models = _read(tmp_path / "wh" / "adspark" / "scores", "select distinct model_id from t")["model_id"]
    assert len(models) == 1, models
    model_id = models.iloc[0]
    out = _adspark("score", "--conf", conf, "--set", "spark.connect=local",
                   "--set", f"storage.warehouse={tmp_path / 'wh-connect'}", "--model-id", model_id,
                   "--from", "2026-01-08", "--to", "2026-01-09", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "96 windows scored" in out.stdout, out.stdout
    runs = _read(tmp_path / "wh-connect" / "adspark" / "runs", "select job, status from t order by started_at")
    assert runs.iloc[-1].tolist() == ["score", "succeeded"]  # the rows below were rewritten by that run
    queries = {
        "scores": "select * except (run_id) from t order by entity, window_start",
        "intervals": "select * except (first_seen_run, last_run, updated_at) from t order by interval_id",
        "alert_state": "select * except (run_id) from t order by alert_key, entity, date, name",
    }
    for table, query in queries.items():
        classic = _read(tmp_path / "wh" / "adspark" / table, query)
        connect = _read(tmp_path / "wh-connect" / "adspark" / table, query)
        assert len(classic) > 0 or table == "intervals", table
        pd.testing.assert_frame_equal(connect, classic, obj=table)


def _read(path: Path, query: str) -> "pd.DataFrame":
    """A Delta table through delta-rs (table ``t``), as pandas."""
    import duckdb
    from deltalake import DeltaTable, QueryBuilder

    reader = QueryBuilder().register("t", DeltaTable(str(path))).execute("select * from t")  # noqa: F841
    return duckdb.sql(query.replace(" from t", " from reader")).df()

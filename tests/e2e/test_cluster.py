"""spark-submit.sh against a real multi-process cluster: a Spark standalone master and two
workers on localhost (the scripts ship with pyspark). ``nightly`` submitted there must give the
same tables as the embedded run of the same night (catches anything that only works because
executors share the driver's process or files)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from adspark.config import (
    DiscretizeJobConfig,
    NightlyJobConfig,
    StorageConfig,
    TrainJobConfig,
    WindowJobConfig,
    build_job_config,
)
from adspark.pipeline.discretize import run_discretize
from adspark.pipeline.nightly import run_nightly
from adspark.pipeline.train import run_train
from adspark.pipeline.window import run_window
from adspark.storage import TableStore

ROOT = Path(__file__).resolve().parents[2]
SPARK_CLASS = Path(sys.executable).parent / "spark-class"
D5, D6, D7 = dt.date(2026, 1, 5), dt.date(2026, 1, 6), dt.date(2026, 1, 7)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{path.name} exited early:\n{path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)
    raise TimeoutError(f"{text!r} not seen in {path} after {timeout} s")


@pytest.fixture()
def standalone_cluster(tmp_path):
    """A master and two 1-core workers on 127.0.0.1; yields the master URL."""
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_NO_DAEMONIZE": "1"}
    port = _free_port()
    url = f"spark://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    try:
        master_log = tmp_path / "master.log"
        procs.append(subprocess.Popen(
            [str(SPARK_CLASS), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
             "--port", str(port), "--webui-port", str(_free_port())],
            stdout=master_log.open("w"), stderr=subprocess.STDOUT, env=env,
        ))
        _wait_for(master_log, "I have been elected leader", procs[0])
        for i in range(2):
            log = tmp_path / f"worker{i}.log"
            procs.append(subprocess.Popen(
                [str(SPARK_CLASS), "org.apache.spark.deploy.worker.Worker", "--cores", "1",
                 "--memory", "2g", "--webui-port", str(_free_port()), "--work-dir",
                 str(tmp_path / f"work{i}"), url],
                stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
            ))
            _wait_for(log, "Successfully registered with master", procs[-1])
        yield url
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def _array_text(v) -> str | None:
    """An array cell as text: equal arrays (NaN included) give equal, sortable text."""
    return None if v is None else repr([x if isinstance(x, str) else float(x) for x in v])


def _frame(store: TableStore, table: str, drop: tuple[str, ...]):
    pdf = store.read(table).toPandas()
    pdf = pdf.drop(columns=[c for c in drop if c in pdf.columns])
    for c in pdf.columns:  # arrays -> their text so rows compare and sort (NaN inside equals NaN)
        if pdf[c].dtype == object and pdf[c].map(lambda v: hasattr(v, "__len__") and not isinstance(v, str)).any():
            pdf[c] = pdf[c].map(_array_text)
    return pdf.sort_values(list(pdf.columns)).reset_index(drop=True)


@pytest.mark.timeout(1200)
@pytest.mark.slow
def test_nightly_through_spark_submit_on_a_standalone_cluster(
    spark, store, base_config, tiny_events, tmp_path, standalone_cluster
):
    # history: D5 and D6 processed and a model trained, in the embedded session
    base_config["train"] = {
        "validation_fraction": 0.5,
        "detector": {"hidden": [8], "bottleneck": 2, "epochs": 2, "batch_size": 4},
        "threshold": {"method": "quantile", "q": 0.5},
    }
    base_config["nightly"] = {"retrain_every_days": None, "drift_psi": None}
    run_discretize(store, build_job_config(DiscretizeJobConfig, base_config), D5, D6)
    run_window(store, build_job_config(WindowJobConfig, base_config), D5, D6)
    run_train(store, build_job_config(TrainJobConfig, base_config), D5, D6)
    embedded_wh, cluster_wh = tmp_path / "embedded", tmp_path / "cluster"
    shutil.copytree(tmp_path / "wh", embedded_wh)
    shutil.copytree(tmp_path / "wh", cluster_wh)

    # night D7 in the embedded session
    embedded = TableStore(spark, StorageConfig(warehouse=str(embedded_wh), schema="adspark_test"))
    run_nightly(embedded, build_job_config(NightlyJobConfig, base_config), D7)

    # night D7 submitted to the standalone cluster
    conf = tmp_path / "cluster.yaml"
    conf.write_text(yaml.safe_dump({**base_config, "storage": {"warehouse": str(cluster_wh), "schema": "adspark_test"}}))
    proc = subprocess.run(
        [str(ROOT / "spark-submit.sh"), "nightly", "--conf", str(conf), "--date", str(D7),
         "--master", standalone_cluster, "--executor-memory", "1g", "--total-executor-cores", "2",
         "--spark-conf", "spark.sql.shuffle.partitions=2"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
        env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert "nightly 2026-01-07:" in proc.stdout
    cluster = TableStore(spark, StorageConfig(warehouse=str(cluster_wh), schema="adspark_test"))
    nightly = cluster.read("nightly").toPandas()
    assert list(nightly["status"]) == ["succeeded"]
    for table, drop in (
        ("features", ()),
        ("windows", ()),
        ("rejects", ("run_id", "rejected_at")),
        ("scores", ("run_id",)),
        ("intervals", ("first_seen_run", "last_run", "updated_at")),
    ):
        a, b = _frame(embedded, table, drop), _frame(cluster, table, drop)
        assert len(a) == len(b), table
        if "score" in a.columns:
            import numpy as np

            np.testing.assert_allclose(a.pop("score"), b.pop("score"), rtol=1e-5)
        assert a.equals(b), f"table {table} differs between the embedded and the cluster run"

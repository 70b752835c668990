"""spark-submit.sh: argument errors, and a smoke run in local mode (no --master)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _submit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "spark-submit.sh"), *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})


def test_unknown_job_and_missing_config_are_clear(tmp_path):
    bad = _submit("explode", cwd=tmp_path)
    assert bad.returncode == 2 and "unknown job 'explode'" in bad.stderr and "nightly" in bad.stderr
    missing = _submit("score", "--conf", "nope.yaml", "--from", "2026-01-05", cwd=tmp_path)
    assert missing.returncode == 2 and "config file 'nope.yaml' not found" in missing.stderr


def test_generate_in_local_mode(tmp_path, spark):
    conf = yaml.safe_load((ROOT / "conf" / "demo.yaml").read_text())
    conf["storage"]["warehouse"] = str(tmp_path / "wh")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(conf))
    run = _submit("generate", "--conf", "c.yaml", "--entities", "3", "--days", "2", "--events", "300",
                  "--spark-conf", "spark.sql.shuffle.partitions=2", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "generate" in run.stdout
    events = spark.read.format("delta").load(str(tmp_path / "wh" / "adspark" / "events"))
    assert 0 < events.count() <= 400

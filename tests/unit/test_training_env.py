"""The training processes' environment: petastorm's pyarrow deprecation warnings are off there
(a screenful per process), and a ``PYTHONWARNINGS`` the user set is kept."""

from __future__ import annotations

import os
import subprocess
import sys

from adspark.train.backend import process_env

IMPORT = "import petastorm.spark, petastorm.reader"


def _stderr(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", IMPORT], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stderr


def test_the_filter_is_added_after_the_users_own():
    assert process_env({"A": "1"}) == {"A": "1", "PYTHONWARNINGS": "ignore::FutureWarning"}
    assert process_env({"PYTHONWARNINGS": "error::DeprecationWarning"})["PYTHONWARNINGS"] == \
        "error::DeprecationWarning,ignore::FutureWarning"


def test_a_training_process_imports_petastorm_without_its_future_warnings():
    plain = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    assert "FutureWarning" in _stderr(plain)  # what a training process printed before
    assert "FutureWarning" not in _stderr(process_env(plain))


def test_the_cycle_time_reaches_the_training_processes_only_when_given():
    assert process_env({"A": "1"}, 5.0)["HOROVOD_CYCLE_TIME"] == "5"
    assert process_env({"HOROVOD_CYCLE_TIME": "2"})["HOROVOD_CYCLE_TIME"] == "2"
    assert "HOROVOD_CYCLE_TIME" not in process_env({"A": "1"})

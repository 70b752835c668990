"""The Databricks Asset Bundle (``conf/databricks/databricks.yml``) names only what exists.

Every job task's entry point is the package's console script, every parameter list parses with
the CLI's own argument parser and its config validates with the job's own model (variables at
their defaults, the run date a fixed day), every path the bundle syncs or builds from exists, and
the wheel it installs is the one its artifact builds.
"""

from __future__ import annotations

import datetime as dt
import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

from adspark.cli import _parser
from adspark.config import (
    DiscretizeJobConfig,
    NightlyJobConfig,
    TrainJobConfig,
    WindowJobConfig,
    apply_overrides,
    build_job_config,
    load_yaml,
)

BUNDLE_DIR = Path(__file__).resolve().parents[2] / "conf" / "databricks"
REPO = BUNDLE_DIR.parents[1]
RUN_DATE = "2026-02-02"
JOB_CONFIGS = {"nightly": NightlyJobConfig, "discretize": DiscretizeJobConfig, "window": WindowJobConfig,
               "train": TrainJobConfig}


def _bundle() -> dict:
    return yaml.safe_load((BUNDLE_DIR / "databricks.yml").read_text())


def _resolve(text: str, bundle: dict) -> str:
    """Bundle substitutions at their defaults; the synced files sit at the repository root."""
    values = {f"var.{k}": str(v["default"]) for k, v in bundle["variables"].items()}
    values["workspace.file_path"] = str(REPO)
    values["bundle.name"], values["bundle.target"] = bundle["bundle"]["name"], "prod"

    def sub(m: re.Match) -> str:
        if m.group(1) not in values:
            raise AssertionError(f"unknown bundle substitution ${{{m.group(1)}}} in {text!r}")
        return values[m.group(1)]

    text = re.sub(r"\$\{([^}]+)\}", sub, text)
    return text.replace("{{job.start_time.iso_date}}", RUN_DATE)


def _tasks() -> list[tuple[str, dict]]:
    bundle = _bundle()
    return [(f"{job}.{t['task_key']}", t) for job, spec in bundle["resources"]["jobs"].items() for t in spec["tasks"]]


def test_paths_the_bundle_builds_and_syncs_exist():
    bundle = _bundle()
    artifact = bundle["artifacts"]["adspark_wheel"]
    root = (BUNDLE_DIR / artifact["path"]).resolve()
    assert (root / "setup.py").is_file() and "--wheel-dir dist" in artifact["build"]
    for path in bundle["sync"]["paths"]:
        assert (BUNDLE_DIR / path).resolve().is_dir(), path
    assert any((REPO / "notebooks").glob("*.py"))
    for name, task in _tasks():
        wheels = [lib["whl"] for lib in task.get("libraries", []) if "whl" in lib]
        assert wheels == ["../../dist/*.whl"], name  # what the artifact's build writes
        assert (BUNDLE_DIR / wheels[0]).resolve().parent == root / "dist"


@pytest.mark.parametrize("name", [n for n, _ in _tasks()])
def test_each_task_runs_the_console_script_with_arguments_and_config_it_accepts(name):
    bundle = _bundle()
    task = dict(_tasks())[name]
    wheel = task["python_wheel_task"]
    assert wheel["package_name"] == "adspark"
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get(wheel["entry_point"]) == "adspark.cli:main"
    argv = [_resolve(str(p), bundle) for p in wheel["parameters"]]
    args = _parser().parse_args(argv)  # argparse exits (SystemExit) on anything it refuses
    conf = Path(args.conf)
    assert conf.is_file(), conf
    data = apply_overrides(load_yaml(conf), args.overrides)
    cfg = build_job_config(JOB_CONFIGS[args.command], data, str(conf))
    assert cfg.storage.catalog == "main" and cfg.storage.schema_name == "adspark"
    assert cfg.storage.warehouse == bundle["variables"]["warehouse"]["default"]
    if args.command == "nightly":
        assert args.date == dt.date.fromisoformat(RUN_DATE) and args.days_back == 1


def test_the_nightly_job_is_scheduled_once_at_a_time():
    job = _bundle()["resources"]["jobs"]["adspark_nightly"]
    assert job["max_concurrent_runs"] == 1 and job["schedule"]["timezone_id"] == "UTC"
    assert "ml" in _bundle()["variables"]["spark_version"]["default"]  # TensorFlow comes with ML runtimes


def test_days_back_moves_the_night():
    from adspark.cli import apply_days_back

    args = _parser().parse_args(["nightly", "--date", "2026-02-02", "--to", "2026-02-03", "--days-back", "1"])
    apply_days_back(args)
    assert (args.date, args.end) == (dt.date(2026, 2, 1), dt.date(2026, 2, 2))


def test_days_back_must_not_be_negative(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["nightly", "--date", "2026-02-02", "--days-back", "-1"])
    assert "expected a whole number of days >= 0, got '-1'" in capsys.readouterr().err

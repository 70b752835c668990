"""Fixtures of the scoring tests: tiny warehouses with a trained model, copied per test."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from adspark.config import StorageConfig, TrainJobConfig, build_job_config
from adspark.models.registry import RegisteredModel, find_model
from adspark.pipeline.train import run_train
from adspark.storage import TableStore

D5, D6, D7 = dt.date(2026, 1, 5), dt.date(2026, 1, 6), dt.date(2026, 1, 7)


def with_model(config: dict) -> dict:
    """``config`` with a tiny model's training and scoring sections (changed in place)."""
    config["train"] = {
        "validation_fraction": 0.34,
        "detector": {"hidden": [8], "bottleneck": 2, "epochs": 2, "batch_size": 4, "patience": 2},
        "threshold": {"method": "quantile", "q": 0.5, "scope": "entity", "min_scores": 1, "shrinkage": 1},
    }
    config["score"] = {"batch_size": 3, "arrow_batch_rows": 2, "top_k": 2}
    return config


def half_validated(config: dict) -> dict:
    """The model config validated on D6 (D6 and D7 are out of sample: the model calibrates there)."""
    config = with_model(config)
    config["train"]["validation_fraction"] = 0.5
    return config


def _template(spark, tiny_windowed_template: Path, tmp_path_factory, config: dict, end: dt.date) -> tuple[Path, str]:
    """A copy of the tiny windowed warehouse with one model trained on D5..``end``."""
    root = tmp_path_factory.mktemp("trained-template") / "wh"
    shutil.copytree(tiny_windowed_template, root)
    template = TableStore(spark, StorageConfig(warehouse=str(root), schema="adspark_test"))
    _, model = run_train(template, build_job_config(TrainJobConfig, config), D5, end)
    return root, model.model_id


def _copy_of(template: tuple[Path, str], store: TableStore, tmp_path: Path) -> RegisteredModel:
    """This test's warehouse as a copy of a trained template, and its model (a moved warehouse
    keeps its models: artifacts are found under the warehouse, never by a recorded path)."""
    root, model_id = template
    shutil.copytree(root, tmp_path / "wh")
    return find_model(store, model_id=model_id)


@pytest.fixture()
def model_config(base_config: dict) -> dict:
    """The small project config with a tiny model's sections."""
    return with_model(base_config)


@pytest.fixture(scope="module")
def trained_template(spark, tiny_windowed_template, tmp_path_factory, base_config_factory) -> tuple[Path, str]:
    return _template(spark, tiny_windowed_template, tmp_path_factory, with_model(base_config_factory()), D7)


@pytest.fixture(scope="module")
def half_template(spark, tiny_windowed_template, tmp_path_factory, base_config_factory) -> tuple[Path, str]:
    return _template(spark, tiny_windowed_template, tmp_path_factory, half_validated(base_config_factory()), D6)


@pytest.fixture()
def trained(store, base_config, trained_template, tmp_path) -> tuple[dict, RegisteredModel]:
    """(config, model): a model trained on D5..D7, in a copy of the module's template warehouse."""
    return with_model(base_config), _copy_of(trained_template, store, tmp_path)


@pytest.fixture()
def half_trained(store, base_config, half_template, tmp_path) -> tuple[dict, RegisteredModel]:
    """(config, model): a model trained on D5..D6 with D6 validating, in a copy of a template."""
    return half_validated(base_config), _copy_of(half_template, store, tmp_path)


def _table_rows(store: TableStore, name: str, drop: tuple[str, ...] | list[str] = ()) -> pd.DataFrame:
    pdf = store.read(name).toPandas().drop(columns=list(drop))
    key = [c for c in ("entity", "window_start", "start") if c in pdf.columns]
    return pdf.sort_values(key).reset_index(drop=True)


@pytest.fixture()
def table_rows() -> Callable[..., pd.DataFrame]:
    """``(store, name, drop=())`` -> the table's rows as pandas, in entity and time order."""
    return _table_rows

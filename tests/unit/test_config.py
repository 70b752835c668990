import re

import pytest

from adspark.config import (
    DiscretizeJobConfig,
    TrainJobConfig,
    WindowJobConfig,
    build_job_config,
    check_identifier,
    config_hash,
    load_job_config,
)
from adspark.errors import ConfigError, IdentifierError


def test_valid_config_builds_each_job(base_config):
    d = build_job_config(DiscretizeJobConfig, base_config)
    w = build_job_config(WindowJobConfig, base_config)
    assert d.discretize.bucket_seconds == 6 * 3600 and w.window.size == 4
    assert config_hash(d) == config_hash(build_job_config(DiscretizeJobConfig, base_config))


def test_unknown_key_is_named(base_config):
    base_config["discretize"]["buckett"] = "1h"
    with pytest.raises(ConfigError, match=r"discretize\.buckett: unknown key"):
        build_job_config(DiscretizeJobConfig, base_config)


def test_missing_section(base_config):
    del base_config["window"]
    with pytest.raises(ConfigError, match=r"missing section\(s\) \['window'\]"):
        build_job_config(WindowJobConfig, base_config)


@pytest.mark.parametrize(
    "path,value,message",
    [
        (("discretize", "bucket"), "7h", "must divide one day"),
        (("discretize", "bucket"), "soon", "duration"),
        (("source", "entity"), ["user id; drop table"], "not a valid identifier"),
        (("window", "scaling", "fit_to"), "2025-01-01", "before fit_from"),
        (("window", "size"), 0, "window.size"),
    ],
)
def test_invalid_values_are_named(base_config, path, value, message):
    node = base_config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=message):
        build_job_config(WindowJobConfig, base_config)


def test_centered_windows_need_bucket_mode(base_config):
    base_config["window"].update({"mode": "rows", "size": 1, "stride": 1})
    base_config["window"]["scaling"]["center_windows"] = True
    with pytest.raises(ConfigError, match="center_windows needs bucket windows"):
        build_job_config(WindowJobConfig, base_config)


def test_identifier_checks():
    assert check_identifier("ok_1", "table") == "ok_1"
    for bad in ["", "1a", "a-b", "a.b", "x`y", "a" * 129]:
        with pytest.raises(IdentifierError):
            check_identifier(bad, "table")


def test_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_job_config(DiscretizeJobConfig, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_job_config(DiscretizeJobConfig, bad)


def test_demo_conf_is_valid():
    from pathlib import Path

    conf = Path(__file__).resolve().parents[2] / "conf" / "demo.yaml"
    load_job_config(WindowJobConfig, conf)


def test_set_overrides_replace_keys_and_sections_without_touching_the_file_data(base_config):
    from adspark.config import apply_overrides

    base_config["train"] = {"detector": {"type": "dense_ae", "hidden": [8]}, "validation_fraction": 0.2}
    out = apply_overrides(base_config, ["train.detector={type: pca, n_components: 4}", "window.stride=6",
                                        "score.model_id=m-20260101T000000-abc123"])
    assert out["train"]["detector"] == {"type": "pca", "n_components": 4}
    assert out["train"]["validation_fraction"] == 0.2 and out["window"]["stride"] == 6
    assert out["score"] == {"model_id": "m-20260101T000000-abc123"}  # a missing section is created
    assert base_config["train"]["detector"]["type"] == "dense_ae"  # the input is not changed
    assert build_job_config(TrainJobConfig, out).train.detector.type == "pca"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.detector", "expected KEY.PATH=VALUE"),
        ("train..epochs=3", "expected KEY.PATH=VALUE"),
        ("window.stride.x=1", "window.stride holds 1, not a section"),
        ("window.size=[1, 2", "the value is not YAML"),
    ],
)
def test_bad_set_overrides_are_one_clear_line(base_config, override, message):
    from adspark.config import apply_overrides

    base_config["window"]["stride"] = 1
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        apply_overrides(base_config, [override])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ('source.measures=[{name: "Volume Flow RateRMS"}]',
         "source.measures.0.name: measure column name 'Volume Flow RateRMS' is not a valid identifier"),
        ("storage.schema=a-b", "storage.schema: schema name 'a-b' is not a valid identifier"),
        ('source.entity=[ok, "1x"]', "source.entity.1: column name '1x' is not a valid identifier"),
    ],
)
def test_a_bad_name_in_the_config_is_one_line_naming_its_key_path(base_config, override, line):
    from adspark.config import apply_overrides

    with pytest.raises(ConfigError) as err:
        build_job_config(DiscretizeJobConfig, apply_overrides(base_config, [override]), "c.yaml")
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"invalid configuration in c.yaml: {line}")
    assert ("source.rename" in message) == override.startswith("source.")

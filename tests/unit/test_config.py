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


def test_a_bare_yaml_off_is_the_documented_off(base_config):
    """``learn_clip: off`` in YAML (or ``--set ...=off``) reads as false under YAML 1.1."""
    from adspark.config import ScoreJobConfig, apply_overrides

    out = apply_overrides(base_config, ["alerts.calibration.learn_clip=off"])
    assert out["alerts"]["calibration"]["learn_clip"] is False
    calibration = build_job_config(ScoreJobConfig, out).alerts.calibration
    assert calibration.learn_clip == "off" and calibration.learn_clip_for(entity_heads=True) is None
    with pytest.raises(ConfigError, match="learn_clip: expected a positive number"):
        build_job_config(ScoreJobConfig, apply_overrides(base_config, ["alerts.calibration.learn_clip=true"]))


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


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"detector": {"type": "pca", "hidden": [8]}}, "train.detector.hidden: unknown key for detector type pca"),
        ({"detector": {"type": "vae", "recency_halflife": 2}},
         "train.detector.recency_halflife: unknown key for detector type vae"),
        ({"threshold": {"method": "quantile", "k": 3}}, "train.threshold.k: unknown key for threshold method quantile"),
        ({"detector": {"type": "gru"}}, "train.detector.type: 'gru' is not one of 'dense_ae', 'lstm_ae'"),
        ({"threshold": {"method": "pot", "tail": 0.05}}, "train.threshold: Value error, pot: tail 0.05 must be below"),
    ],
)
def test_each_detector_type_and_threshold_method_takes_its_own_keys_only(base_config, train, message):
    with pytest.raises(ConfigError) as err:
        build_job_config(TrainJobConfig, {**base_config, "train": train})
    assert message.replace("Value error, ", "") in str(err.value)


def test_per_type_configs_keep_the_model_config_keys_of_the_flat_config():
    """Models registered before the per-type configs keep their config key (hashed from the flat
    layout of every type's options), so they stay the model in force after an upgrade."""
    from adspark.config import PCAConfig, detector_config
    from adspark.models.lookup import config_key

    base = {"storage": {"warehouse": "/tmp/x"}, "spark": {}}
    recorded = {  # keys computed by the flat DetectorConfig / ThresholdConfig (2026-12-04)
        "0b79bb4e2c929f45": {},
        "dd87cb46804c73cd": {"detector": {"hidden": [128, 32], "bottleneck": 8, "epochs": 15},
                             "threshold": {"method": "distribution", "tail": 0.001}},
        "fdcc8da0ae7aed1a": {"detector": {"type": "pca", "n_components": 4}},
        "2cd33a9b62d2b69f": {"detector": {"type": "vae", "beta": 0.5},
                             "threshold": {"method": "pot", "tail": 1e-4, "level": 0.99}},
        "3486f7571ccd26cb": {"detector": {"type": "lstm_ae", "units": 8, "recency_halflife": 3},
                             "threshold": {"method": "robust", "k": 4, "scope": "entity"}},
        "ee5396519a20ca98": {"detector": {"type": "iforest", "n_estimators": 50},
                             "threshold": {"method": "supervised", "beta": 2}},
        "b143fb564dbff6df": {"detector": {"type": "ocsvm", "nu": 0.05}, "threshold": {"method": "sigma", "k": 2.5}},
    }
    for key, train in recorded.items():
        assert config_key(build_job_config(TrainJobConfig, {**base, "train": train}), "spec1") == key, train
    # a model's params as the flat config stored them: the other types' keys are dropped
    assert detector_config({"type": "pca", "hidden": [64], "epochs": 20, "n_components": 0.9}) == PCAConfig(
        n_components=0.9)


def test_nightly_hands_each_stage_its_sections_validated_once(base_config):
    from adspark.config import NightlyJobConfig, ScoreJobConfig

    base = {**base_config, "train": {"detector": {"type": "pca"}}}
    nightly = build_job_config(NightlyJobConfig, base)
    for job in (DiscretizeJobConfig, WindowJobConfig, TrainJobConfig, ScoreJobConfig):
        part = nightly.part(job)
        assert type(part) is job and part == build_job_config(job, base)
    head = {**base, "window": {**base["window"], "scaling": {**base["window"]["scaling"], "entity_head": "1h"}}}
    with pytest.raises(ConfigError, match="holds no window of 4 x 6h buckets"):
        build_job_config(NightlyJobConfig, head)  # the window stage's cross-section check, at the nightly's build

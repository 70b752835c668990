"""CLI arguments refused before any config is read or Spark starts."""

import pytest

from adspark.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["score", "--from", "2026-01-07", "--to", "2026-01-05"], "--to 2026-01-05 is before --from 2026-01-07"),
        (["nightly", "--date", "2026-01-07", "--to", "2026-01-06"], "--to 2026-01-06 is before --date 2026-01-07"),
        (["train", "--from", "2026-01-07", "--to", "2026-01-01", "--conf", "/nonexistent.yaml"],
         "--to 2026-01-01 is before --from 2026-01-07"),
    ],
)
def test_a_range_ending_before_it_starts_is_one_line_before_spark(argv, message, capsys, monkeypatch):
    monkeypatch.delenv("ADSPARK_CONF", raising=False)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"adspark {argv[0]}: error: {message}"


def test_a_bad_set_override_is_one_line(tmp_path, capsys):
    conf = tmp_path / "c.yaml"
    conf.write_text("window: {stride: 1}\n")
    assert main(["tables", "--conf", str(conf), "--set", "window.stride.x=1"]) == 1
    assert capsys.readouterr().err.strip() == "adspark tables: error: --set window.stride.x: window.stride holds 1, not a section"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give either a labels CSV file or --from-column COLUMN, not neither"),
        (["labels.csv", "--from-column", "anomaly"], "give either a labels CSV file or --from-column COLUMN, not both"),
        (["labels.csv", "--positive", "Attack"], "--positive goes with --from-column"),
        (["labels.csv", "--negative", "normal"], "--negative goes with --from-column"),
        (["--from-column", "label", "--positive", "a", "--negative", "b"], "give --positive or --negative, not both"),
        (["--from-column", "label", "--delimiter", ";"],
         "--delimiter goes with a labels file (--from-column reads the source as its config says)"),
    ],
)
def test_labels_take_a_file_or_a_flag_column(args, message, tmp_path, capsys):
    conf = tmp_path / "c.yaml"
    conf.write_text("storage: {warehouse: wh}\n")
    assert main(["labels", "--conf", str(conf), *args]) == 1
    assert capsys.readouterr().err.strip() == f"adspark labels: error: {message}"


def test_errors_a_user_can_cause_are_one_line_and_the_rest_keep_their_traceback():
    from pyspark.errors import AnalysisException

    from adspark.cli import error_line
    from adspark.errors import ConfigError

    assert error_line(ConfigError("train.detector.hidden: unknown key")) == "train.detector.hidden: unknown key"
    assert error_line(ValueError("expected windows of shape (n, W, F), got (3,)\nmore")) == (
        "ValueError: expected windows of shape (n, W, F), got (3,) (-v shows the traceback)")
    assert error_line(KeyError("table 'x' declares no field ['y']")) == (
        "KeyError: table 'x' declares no field ['y'] (-v shows the traceback)")
    missing = AnalysisException(message="[TABLE_OR_VIEW_NOT_FOUND] The table or view `events` cannot be found.")
    assert error_line(missing).startswith("AnalysisException: [TABLE_OR_VIEW_NOT_FOUND]")
    assert error_line(RuntimeError("a bug")) is None and error_line(MemoryError()) is None


def test_labels_from_a_column_need_the_events_source(tmp_path, capsys):
    conf = tmp_path / "c.yaml"
    conf.write_text("storage: {warehouse: wh}\n")
    assert main(["labels", "--conf", str(conf), "--from-column", "anomaly"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"adspark labels: error: --from-column: {conf} has no source section (the events to read)")

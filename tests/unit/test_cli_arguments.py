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

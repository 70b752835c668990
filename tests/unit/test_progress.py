"""Progress: a live bar on a terminal, one log line per step elsewhere, JSON lines on request."""

from __future__ import annotations

import io
import json
import logging

import pytest

from adspark.progress import LOGGER, configure_logging, progress


@pytest.fixture()
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    logging.getLogger(LOGGER).setLevel(logging.NOTSET)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_each_step_is_one_line_with_its_count(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    with progress("nightly 2026-01-26..2026-01-28", 3, stream=io.StringIO()) as step:
        for night in ("2026-01-26", "2026-01-27", "2026-01-28"):
            step(f"{night} succeeded")
    lines = [r for r in caplog.records if r.name == LOGGER]
    assert [r.done for r in lines] == [1, 2, 3] and all(r.total == 3 for r in lines)
    assert lines[-1].getMessage().startswith("nightly 2026-01-26..2026-01-28: 2026-01-28 succeeded done (3/3, ")
    assert lines[-1].left_s == 0


def test_json_logs_are_one_object_per_line_with_the_steps_fields(capsys, restore_logging):
    configure_logging(verbose=False, log_format="json")
    with progress("run 2026-03-02..2026-03-04", 2, stream=Terminal()) as step:  # JSON logs: no bar
        step("discretize")
        step("window")
    logging.getLogger("adspark.other").info("not shown without -v")
    logging.getLogger("adspark.other").warning("shown")
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [r.get("step") for r in records] == ["discretize", "window", None]
    assert records[0]["logger"] == LOGGER and records[0]["level"] == "INFO" and records[0]["total"] == 2
    assert records[2]["message"] == "shown" and "time" in records[2]


def test_on_a_terminal_a_bar_counts_the_steps(restore_logging):
    configure_logging(verbose=False, log_format="text")
    term = Terminal()
    with progress("nightly 2026-01-26..2026-01-27", 2, stream=term) as step:
        step("2026-01-26 succeeded")
        step("2026-01-27 succeeded")
    shown = term.getvalue()
    assert "2/2" in shown and "2026-01-27 succeeded" in shown

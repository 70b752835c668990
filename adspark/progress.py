"""Progress of long work (nights of a range, stages of a chain) and the CLI's log format.

On a terminal a live bar (``rich``) shows the step, the count, the elapsed time and an estimate of
the time left; elsewhere (a scheduler's log, a pipe) each finished step is one log line of the
``adspark.progress`` logger, which :func:`configure_logging` keeps at INFO, as text or as one JSON
object per line (``--log-format json``) with the step's fields as keys.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import Literal

LOGGER = "adspark.progress"
HANDLER = "adspark-stderr"
LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(verbose: bool, log_format: LogFormat = "text") -> None:
    """Root handler on stderr: INFO with ``verbose``, else WARNING; progress lines always.

    Args:
        verbose: Log every library's INFO records (Spark's and TensorFlow's stay in their own logs).
        log_format: ``text`` lines, or ``json``: one JSON object per record (``time``, ``level``,
            ``logger``, ``message`` and a progress step's fields).
    """
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        ))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.set_name(HANDLER)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER]:  # an earlier call's, not others'
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger(LOGGER).setLevel(logging.INFO)


def _live(stream: object) -> bool:
    """A bar only on a terminal, and only when the logs are text lines."""
    json_logs = any(
        h.get_name() == HANDLER and type(h.formatter).__name__ == "JsonFormatter" for h in logging.getLogger().handlers
    )
    return bool(getattr(stream, "isatty", lambda: False)()) and not json_logs


@contextlib.contextmanager
def progress(what: str, total: int, stream: object = None) -> Iterator[Callable[[str], None]]:
    """Report ``total`` steps of ``what``; yields ``step(label)``, called as each step ends.

    Args:
        what: The work, e.g. ``nightly 2026-01-26..2026-02-08``.
        total: How many steps.
        stream: Where a live bar would go (default stderr); a bar only when it is a terminal.

    Yields:
        ``step(label)``: one more step done (``label`` says which: a night, a stage).
    """
    stream = sys.stderr if stream is None else stream
    t0 = time.perf_counter()
    if _live(stream):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn())
        with Progress(*columns, console=Console(file=stream)) as bar:
            task = bar.add_task(what, total=total)
            yield lambda label: bar.update(task, advance=1, description=f"{what}: {label}")
        return
    log = logging.getLogger(LOGGER)
    done = 0

    def step(label: str) -> None:
        nonlocal done
        done += 1
        elapsed = time.perf_counter() - t0
        left = elapsed / done * (total - done)
        log.info("%s: %s done (%d/%d, %.0f s, about %.0f s left)", what, label, done, total, elapsed, left,
                 extra={"work": what, "step": label, "done": done, "total": total,
                        "elapsed_s": round(elapsed, 3), "left_s": round(left, 3)})

    yield step

"""Crash injection for the fault tests: SIGKILL the job in the middle of a named write.

Every write of adspark's tables and model artifacts is wrapped in :func:`kill_point` with the
table's name (``features``, ``windows``, ``scores``, ``intervals``, ``models``, ...). In normal
runs it does nothing. When the environment variable ``ADSPARK_KILL_AT`` names the stage, the job is
killed with SIGKILL (no clean-up, no ``finally``), as a lost executor host or an OOM killer would:

- as soon as a new data file appears under the watched folder (Delta has written data files but
  not yet committed them; for artifacts: the model folder is half written), or
- at the end of the block (the write committed) when the watcher did not see the file in time.

Which of the two happened is printed to stderr (``adspark-fault: ...``) just before the kill.
When this process leads its process group (``adspark`` started in a new session, as the tests
do) the whole group dies: the Python driver, its JVM and the Python workers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Iterator

ENV = "ADSPARK_KILL_AT"


def _files(folder: Path) -> set[str]:
    found = set()
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "_delta_log"]
        found.update(os.path.join(root, f) for f in files if not f.startswith("."))
    return found


def _kill(stage: str, when: str) -> None:
    sys.stderr.write(f"adspark-fault: SIGKILL {when} of stage {stage!r}\n")
    sys.stderr.flush()
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def kill_point(stage: str, watch: str | Path | None = None) -> Iterator[None]:
    """Mark a write; kill the job here when ``ADSPARK_KILL_AT`` equals ``stage``.

    Args:
        stage: The stage name (a table name, or ``models`` for model artifacts).
        watch: A local folder the write puts files in; a new file there triggers the kill
            mid-write. Remote URIs are not watched (the kill then lands after the write).
    """
    if os.environ.get(ENV) != stage:
        yield
        return
    folder = Path(str(watch).removeprefix("file:")) if watch is not None and "://" not in str(watch) else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        before = _files(folder)
        done = threading.Event()

        def watcher() -> None:
            while not done.is_set():
                if _files(folder) - before:
                    _kill(stage, "during the write (files written, not committed)")
                done.wait(0.002)

        threading.Thread(target=watcher, daemon=True, name=f"kill-point-{stage}").start()
        try:
            yield
        finally:
            done.set()
    else:
        yield
    _kill(stage, "right after the write")

"""Night leases: a nightly run of night D waits for runs of earlier nights still in progress.

Night D reads what the nights before it wrote (features for differences and the window lookback,
windows for the alert state's replay, the model a retrain of D-1 registers). Run at once, D would
read them half-done; run in order, it reads them final. So every nightly run holds a *lease* on
its night while it runs (a small JSON file ``<warehouse>/<schema>/_leases/<night>__<run id>.json``,
written atomically, removed when the run ends), and a run first waits until no lease of an
earlier night is live. Waiting only on earlier nights cannot deadlock.

A lease is dead, and ignored, when its process is gone (same host: the pid no longer exists) or
when it is older than ``stale_after`` (another host, whose process cannot be checked). A run that
succeeds also removes the leases of its night taken before it started (its outputs replace
theirs). Files, not a Delta table: each run writes only its own file, so there is nothing to
conflict on and no table for a killed run to leave half-written. Like model artifacts, leases
need a local or mounted warehouse path.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from adspark.errors import AdsparkError, NightOrderError

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Lease:
    """A nightly run's claim on its night.

    Attributes:
        night: The night the run processes.
        run_id: The run's id (unique).
        host: The driver's host name.
        pid: The driver's process id.
        started: When the run took the lease (UTC, naive).
    """

    night: dt.date
    run_id: str
    host: str
    pid: int
    started: dt.datetime

    def file_name(self) -> str:
        return f"{self.night.isoformat()}__{self.run_id}.json"

    def describe(self) -> str:
        return f"night {self.night} (run {self.run_id} on {self.host} pid {self.pid}, since {self.started:%Y-%m-%d %H:%M:%S} UTC)"


def utc_now() -> dt.datetime:
    """The current UTC time, naive (as the tables store it)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def lease_folder(root: str) -> Path:
    """``<root>/_leases`` for a warehouse schema root (a local or mounted path)."""
    if "://" in root or root.startswith("dbfs:/"):
        raise AdsparkError(f"night leases need a local or mounted warehouse path, got {root!r}")
    return Path(root) / "_leases"


def acquire(folder: Path, night: dt.date, run_id: str, now: dt.datetime) -> Lease:
    """Write this run's lease (temporary file, then an atomic rename)."""
    lease = Lease(night=night, run_id=run_id, host=socket.gethostname(), pid=os.getpid(), started=now)
    folder.mkdir(parents=True, exist_ok=True)
    body = {**asdict(lease), "night": night.isoformat(), "started": now.isoformat()}
    tmp = folder / f".{lease.file_name()}.tmp"
    tmp.write_text(json.dumps(body, sort_keys=True))
    os.replace(tmp, folder / lease.file_name())
    return lease


def read_leases(folder: Path) -> list[Lease]:
    """Every lease in the folder (files that vanish or do not parse are skipped)."""
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            body = json.loads(path.read_text())
            out.append(Lease(
                night=dt.date.fromisoformat(body["night"]), run_id=str(body["run_id"]), host=str(body["host"]),
                pid=int(body["pid"]), started=dt.datetime.fromisoformat(body["started"]),
            ))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # released meanwhile, or not a lease
    return out


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def is_live(lease: Lease, now: dt.datetime, stale_after_s: float, host: str | None = None) -> bool:
    """A lease holds while younger than ``stale_after_s`` and, on this host, while its process runs."""
    if (now - lease.started).total_seconds() > stale_after_s:
        return False
    if lease.host == (host or socket.gethostname()):
        return process_alive(lease.pid)
    return True


def earlier_live(leases: list[Lease], mine: Lease, now: dt.datetime, stale_after_s: float) -> list[Lease]:
    """The live leases of nights before ``mine``'s night, oldest night first."""
    return sorted(
        (x for x in leases if x.night < mine.night and is_live(x, now, stale_after_s)),
        key=lambda x: (x.night, x.started),
    )


def wait_for_earlier_nights(
    folder: Path, mine: Lease, timeout_s: float, stale_after_s: float, poll_s: float = 2.0,
    clock: Callable[[], dt.datetime] = utc_now, sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Block until no live lease of an earlier night is left.

    Returns:
        Seconds waited (0.0 when nothing was running).

    Raises:
        NightOrderError: Still waiting after ``timeout_s``; names the night waited for.
    """
    began = clock()
    while True:
        now = clock()
        running = earlier_live(read_leases(folder), mine, now, stale_after_s)
        waited = (now - began).total_seconds()
        if not running:
            if waited > 0:
                log.info("nightly %s: waited %.0f s for earlier nights to finish", mine.night, waited)
            return waited
        if waited >= timeout_s:
            raise NightOrderError(
                f"nightly {mine.night}: waited {waited:.0f} s (nightly.wait_for_earlier_nights) for "
                f"{running[0].describe()} to end; rerun night {mine.night} once it has"
            )
        log.info("nightly %s: waiting for %s", mine.night, running[0].describe())
        sleep(poll_s)


def release(folder: Path, mine: Lease, succeeded: bool) -> None:
    """Remove this run's lease; after a success also the older leases of the same night."""
    (folder / mine.file_name()).unlink(missing_ok=True)
    if not succeeded:
        return
    for other in read_leases(folder):
        if other.night == mine.night and other.started < mine.started:
            (folder / other.file_name()).unlink(missing_ok=True)

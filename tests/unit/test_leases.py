"""Night leases: a night waits for runs of earlier nights in progress, never for later ones."""

import datetime as dt
import json
import os
import subprocess
import sys

import pytest

from adspark.errors import NightOrderError
from adspark.pipeline import leases

T0 = dt.datetime(2026, 1, 8, 2, 0)
D7, D8, D9 = dt.date(2026, 1, 7), dt.date(2026, 1, 8), dt.date(2026, 1, 9)


class FakeClock:
    """A clock that advances only when the waiter sleeps; ``on_sleep`` runs at each sleep."""

    def __init__(self, on_sleep=None) -> None:
        self.now = T0
        self.sleeps = 0
        self.on_sleep = on_sleep

    def __call__(self) -> dt.datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += dt.timedelta(seconds=seconds)
        if self.on_sleep:
            self.on_sleep(self.sleeps)


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_a_lease_is_one_file_written_whole_and_released(tmp_path):
    lease = leases.acquire(tmp_path, D8, "nightly-x", T0)
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == ["2026-01-08__nightly-x.json"]
    body = json.loads(files[0].read_text())
    assert body["pid"] == os.getpid() and body["night"] == "2026-01-08"
    assert leases.read_leases(tmp_path) == [lease]
    leases.release(tmp_path, lease, succeeded=False)
    assert leases.read_leases(tmp_path) == []


def test_nothing_earlier_running_means_no_wait(tmp_path):
    mine = leases.acquire(tmp_path, D8, "r8", T0)
    leases.acquire(tmp_path, D9, "r9", T0)  # a later night never holds an earlier one back
    leases.acquire(tmp_path, D8, "r8b", T0)  # nor does the same night
    clock = FakeClock()
    assert leases.wait_for_earlier_nights(tmp_path, mine, 60, 3600, 1.0, clock, clock.sleep) == 0.0
    assert clock.sleeps == 0


def test_a_night_waits_until_the_earlier_night_releases(tmp_path):
    earlier = leases.acquire(tmp_path, D7, "r7", T0)
    mine = leases.acquire(tmp_path, D8, "r8", T0)
    clock = FakeClock(on_sleep=lambda n: n == 3 and leases.release(tmp_path, earlier, succeeded=True))
    waited = leases.wait_for_earlier_nights(tmp_path, mine, 60, 3600, 2.0, clock, clock.sleep)
    assert clock.sleeps == 3 and waited == 6.0


def test_waiting_too_long_is_a_clear_retryable_error(tmp_path):
    leases.acquire(tmp_path, D7, "r7", T0)
    mine = leases.acquire(tmp_path, D8, "r8", T0)
    clock = FakeClock()
    with pytest.raises(NightOrderError, match=r"nightly 2026-01-08: waited 10 s .* night 2026-01-07 \(run r7 .*rerun"):
        leases.wait_for_earlier_nights(tmp_path, mine, 10, 3600, 5.0, clock, clock.sleep)


def test_dead_and_stale_leases_are_ignored(tmp_path):
    host = leases.acquire(tmp_path, D7, "r7", T0).host
    dead = leases.Lease(night=D7, run_id="killed", host=host, pid=_dead_pid(), started=T0)
    old = leases.Lease(night=D7, run_id="old", host="elsewhere", pid=1, started=T0 - dt.timedelta(hours=30))
    young = leases.Lease(night=D7, run_id="young", host="elsewhere", pid=1, started=T0 - dt.timedelta(hours=1))
    assert not leases.is_live(dead, T0, 24 * 3600)
    assert not leases.is_live(old, T0, 24 * 3600)
    assert leases.is_live(young, T0, 24 * 3600)  # another host: only its age can tell
    mine = leases.Lease(night=D8, run_id="r8", host=host, pid=os.getpid(), started=T0)
    live = leases.earlier_live([dead, old, young], mine, T0, 24 * 3600)
    assert [x.run_id for x in live] == ["young"]


def test_a_successful_run_supersedes_older_leases_of_its_night(tmp_path):
    killed = leases.acquire(tmp_path, D7, "killed", T0 - dt.timedelta(minutes=5))
    other_night = leases.acquire(tmp_path, D8, "r8", T0 - dt.timedelta(minutes=5))
    rerun = leases.acquire(tmp_path, D7, "rerun", T0)
    leases.release(tmp_path, rerun, succeeded=True)
    assert leases.read_leases(tmp_path) == [other_night]
    assert killed not in leases.read_leases(tmp_path)


def test_a_failed_run_leaves_the_others(tmp_path):
    first = leases.acquire(tmp_path, D7, "first", T0 - dt.timedelta(minutes=5))
    failed = leases.acquire(tmp_path, D7, "failed", T0)
    leases.release(tmp_path, failed, succeeded=False)
    assert leases.read_leases(tmp_path) == [first]


def test_leases_need_a_local_or_mounted_warehouse():
    with pytest.raises(Exception, match="local or mounted"):
        leases.lease_folder("s3://bucket/wh/adspark")

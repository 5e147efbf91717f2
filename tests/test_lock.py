"""The lakehouse lock (cdp.lock) with real processes holding it: a second run stops with one line naming the holder,
waits when asked, takes over from a holder killed with SIGKILL or whose lease expired, and joins its own run.
(Two real `cdp run` processes racing on one lakehouse: tests/test_crash.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cdp.config import LockSettings
from cdp.lock import LOCK_FILE, LakehouseBusy, lakehouse_lock

FAST = LockSettings(lease_seconds=10, heartbeat_seconds=1, wait_seconds=0)


def _holder(root: Path, run_id: str, hold: float) -> subprocess.Popen:
    """Another process that takes the lock as run `run_id`, says so on stdout, and holds it `hold` seconds."""
    code = textwrap.dedent(f"""
        import sys, time
        from cdp.config import LockSettings
        from cdp.lock import lakehouse_lock
        with lakehouse_lock(None, {str(root)!r}, {run_id!r}, "cdp run", LockSettings(lease_seconds=10,
                            heartbeat_seconds=1)):
            print("held", flush=True)
            time.sleep({hold})
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_stops_with_one_line_naming_the_holder_and_the_lock_is_released_after(tmp_path):
    holder = _holder(tmp_path, "run-A", hold=30)
    try:
        with pytest.raises(LakehouseBusy) as err, lakehouse_lock(None, str(tmp_path), "run-B", "cdp run", FAST):
            pass
        line = str(err.value)
        assert "\n" not in line
        assert line.startswith(f"the lakehouse {tmp_path} is in use by run run-A (cdp run, pid {holder.pid} on host ")
        assert line.endswith("wait for it to end, or give --wait SECONDS to wait for it")
    finally:
        holder.kill()
        holder.wait()


def test_of_runs_started_at_the_same_instant_exactly_one_holds_the_lakehouse(tmp_path):
    # four processes released together (they sleep until the same wall-clock instant): one holds, three stop
    start = time.time() + 1.0
    code = textwrap.dedent(f"""
        import sys, time
        from cdp.config import LockSettings
        from cdp.lock import LakehouseBusy, lakehouse_lock
        time.sleep(max(0.0, {start} - time.time()))
        try:
            with lakehouse_lock(None, {str(tmp_path)!r}, sys.argv[1], "cdp run", LockSettings()):
                print("held", flush=True)
                time.sleep(1.5)
        except LakehouseBusy as exc:
            print(exc, flush=True)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, f"run-{i}"], stdout=subprocess.PIPE, text=True)
             for i in range(4)]
    said = [p.communicate(timeout=30)[0].strip() for p in procs]
    held = [i for i, s in enumerate(said) if s == "held"]
    assert len(held) == 1, said
    for i, s in enumerate(said):
        if i not in held:
            assert s.startswith(f"the lakehouse {tmp_path} is in use by run run-{held[0]} "), s


def test_a_second_run_with_wait_runs_once_the_holder_is_done(tmp_path):
    holder = _holder(tmp_path, "run-A", hold=1)
    said = []
    t0 = time.monotonic()
    with lakehouse_lock(None, str(tmp_path), "run-B", "cdp run", FAST, wait=60, say=said.append) as me:
        waited = time.monotonic() - t0
        assert me.run_id == "run-B"
        assert json.loads((tmp_path / LOCK_FILE).read_text())["run_id"] == "run-B"
    assert holder.wait() == 0
    assert 0.5 < waited < 30 and said == []          # it waited for the release, took nothing over
    assert not (tmp_path / LOCK_FILE).exists()      # released at the end


@pytest.mark.parametrize("run_id", ["run-B", "run-A"], ids=["another run", "the same run resumed"])
def test_the_lock_of_a_holder_killed_with_sigkill_is_taken_over(tmp_path, run_id):
    holder = _holder(tmp_path, "run-A", hold=60)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    said = []
    with lakehouse_lock(None, str(tmp_path), run_id, "cdp run", FAST, say=said.append) as me:
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == me.pid == os.getpid()
    assert len(said) == 1 and said[0].startswith("took over the lakehouse lock from run run-A")
    assert said[0].endswith(f"its process {holder.pid} no longer runs on this host")
    assert not (tmp_path / LOCK_FILE).exists()


def test_an_expired_lease_is_taken_over_and_its_holder_does_not_release_the_new_one(tmp_path):
    stale = {"run_id": "run-A", "command": "cdp run", "pid": 1, "host": "another-host",
             "started_at": "2026-01-01 00:00:00 UTC", "heartbeat_at": time.time() - 600, "token": "t"}
    (tmp_path / LOCK_FILE).write_text(json.dumps(stale))
    said = []
    with lakehouse_lock(None, str(tmp_path), "run-B", "cdp run", FAST, say=said.append):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["run_id"] == "run-B"
    assert "its lease expired" in said[0]


def test_a_live_holder_on_another_host_keeps_the_lock_while_its_lease_runs(tmp_path):
    live = {"run_id": "run-A", "command": "cdp forget", "pid": 1, "host": "another-host",
            "started_at": "2026-01-01 00:00:00 UTC", "heartbeat_at": time.time(), "token": "t"}
    (tmp_path / LOCK_FILE).write_text(json.dumps(live))
    with pytest.raises(LakehouseBusy, match=r"in use by run run-A \(cdp forget, pid 1 on host another-host"), \
            lakehouse_lock(None, str(tmp_path), "run-B", "cdp run", FAST, wait=1):
        pass
    assert json.loads((tmp_path / LOCK_FILE).read_text()) == live   # untouched


def test_a_process_of_the_same_run_joins_it_and_leaves_the_lock_to_its_holder(tmp_path):
    holder = _holder(tmp_path, "run-A", hold=30)
    try:
        said = []
        with lakehouse_lock(None, str(tmp_path), "run-A", "cdp run", FAST, say=said.append) as held:
            assert held.pid == holder.pid
        assert said == [f"joining run run-A, which holds the lakehouse (pid {holder.pid} on host {held.host})"]
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_the_holder_renews_its_lease(tmp_path):
    with lakehouse_lock(None, str(tmp_path), "run-A", "cdp run", FAST):
        first = json.loads((tmp_path / LOCK_FILE).read_text())["heartbeat_at"]
        time.sleep(1.5)
        assert json.loads((tmp_path / LOCK_FILE).read_text())["heartbeat_at"] > first

"""The lakehouse lock: one writer at a time, a clear line for the second, and no lock left behind by a crash.

A run (or `cdp forget`) holds `<lakehouse>/_cdp_lock.json` while it writes. The file is created exclusively
(O_CREAT|O_EXCL on a local path; on HDFS, ABFS or S3 through the Hadoop FileSystem's create without overwrite),
names its holder (run id, command, pid, host, start) and carries a lease the holder renews every
`lock.heartbeat_seconds` from a daemon thread. Another run finding it:
- joins it when it is a process of the same run (`--run-id` of a Databricks job run: its tasks are one run, and
  tasks that run at the same time write different tables by the DAG's design);
- takes it over when the holder is gone: its lease expired (`lock.lease_seconds`), or it ran on this host and its
  process no longer exists (a SIGKILL, an out-of-memory kill, a power cut of the driver);
- otherwise waits up to `lock.wait_seconds` (`cdp run --wait N`) and then stops with LakehouseBusy, one line
  naming the holder.

Delta's own optimistic concurrency still protects each table's log; the lock keeps two runs from interleaving
whole steps (two identity runs would each assign customer ids). On object stores whose create is not atomic the
exclusive create has a small race window, which the read-back of the token narrows (docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from cdp.config import LockSettings
from cdp.errors import CdpError

LOCK_FILE = "_cdp_lock.json"
POLL_SECONDS = 1.0


class LakehouseBusy(CdpError):
    """Another run holds the lakehouse."""


@dataclass(frozen=True)
class Holder:
    run_id: str
    command: str
    pid: int
    host: str
    started_at: str       # ISO UTC
    heartbeat_at: float   # epoch seconds of the last renewal
    token: str            # this holder's own id: a renewal or release never touches another holder's file

    def describe(self, now: float) -> str:
        return (f"run {self.run_id} ({self.command}, pid {self.pid} on host {self.host}, since {self.started_at}, "
                f"lease renewed {max(0, now - self.heartbeat_at):.0f}s ago)")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's process: alive
        return True
    return True


def gone_because(holder: Holder, lease_seconds: int, now: float, host: str) -> str | None:
    """Why the holder no longer holds the lock (None: it still does)."""
    if now - holder.heartbeat_at > lease_seconds:
        return f"its lease expired {now - holder.heartbeat_at:.0f}s after its last renewal (lock.lease_seconds: " \
               f"{lease_seconds})"
    if holder.host == host and not _pid_alive(holder.pid):
        return f"its process {holder.pid} no longer runs on this host"
    return None


# ---------------------------------------------------------------- storage: local files, or the Hadoop FileSystem

class _LocalStore:
    def __init__(self, path: str) -> None:
        self.path = path

    def create(self, text: str) -> bool:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        return True

    def read(self) -> str | None:
        try:
            with open(self.path, encoding="utf-8") as fh:
                return fh.read()
        except FileNotFoundError:
            return None

    def replace(self, text: str) -> None:
        tmp = f"{self.path}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, self.path)

    def delete(self) -> None:
        with suppress(FileNotFoundError):
            os.remove(self.path)


class _HadoopStore:
    def __init__(self, spark, path: str) -> None:
        from cdp.storage import hadoop_path

        self._fs, self._path = hadoop_path(spark, path)
        self._jvm = spark.sparkContext._jvm

    def _write(self, text: str, overwrite: bool) -> None:
        out = self._fs.create(self._path, overwrite)
        try:
            out.write(bytearray(text.encode("utf-8")))
        finally:
            out.close()

    def create(self, text: str) -> bool:
        if self._fs.exists(self._path):
            return False
        try:
            self._write(text, overwrite=False)
        except Exception as exc:  # noqa: BLE001 - FileAlreadyExistsException through py4j: another run was first
            if "AlreadyExists" in str(exc):
                return False
            raise
        return True

    def read(self) -> str | None:
        if not self._fs.exists(self._path):
            return None
        stream = self._fs.open(self._path)
        try:
            return self._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()

    def replace(self, text: str) -> None:
        self._write(text, overwrite=True)

    def delete(self) -> None:
        self._fs.delete(self._path, False)


def _store(spark, root: str):
    path = f"{root.rstrip('/')}/{LOCK_FILE}"
    if "://" not in path or path.startswith("file:"):
        return _LocalStore(path.removeprefix("file://").removeprefix("file:"))
    return _HadoopStore(spark, path)


def _parse(text: str | None) -> Holder | None:
    if not text:
        return None
    try:
        return Holder(**json.loads(text))
    except (ValueError, TypeError):   # a torn or foreign file: treated as held by nobody alive
        return Holder("unknown", "unknown", -1, "unknown", "unknown", 0.0, "unknown")


# ---------------------------------------------------------------- the lock

def holder_in_the_way(root: str, run_id: str | None, config: LockSettings) -> str | None:
    """Without Spark, for a lakehouse on a local path: who holds it now, alive and not this run, or None. The CLI
    asks before it starts a JVM, so a second `cdp run` stops in a second (the lock itself is taken later)."""
    store = _store(None, root)
    if not isinstance(store, _LocalStore):
        return None
    holder, now = _parse(store.read()), time.time()
    if holder is None or holder.run_id == run_id or gone_because(holder, config.lease_seconds, now,
                                                                   socket.gethostname()):
        return None
    return holder.describe(now)


def busy_line(root: str, holder: str, wait: float) -> str:
    hint = "give --wait SECONDS to wait for it" if wait == 0 else f"waited {wait:.0f}s; give a longer --wait"
    return f"the lakehouse {root} is in use by {holder}; wait for it to end, or {hint}"


@contextmanager
def lakehouse_lock(spark, root: str, run_id: str, command: str, config: LockSettings, wait: float | None = None,
                   say: Callable[[str], None] = print) -> Iterator[Holder]:
    """Hold the lakehouse at `root` for run `run_id` while the block runs (see the module's docstring)."""
    store, host = _store(spark, root), socket.gethostname()
    wait = config.wait_seconds if wait is None else wait
    me = Holder(run_id, command, os.getpid(), host, datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
                time.time(), uuid.uuid4().hex)
    deadline = time.monotonic() + wait
    while True:
        if store.create(json.dumps(asdict(me))) and _parse(store.read()) == me:
            break
        text = store.read()
        holder, now = _parse(text), time.time()
        if holder is None:
            continue   # released between our create and read
        why = gone_because(holder, config.lease_seconds, now, host)
        if why is not None:
            if store.read() == text:   # nobody took it over meanwhile
                store.delete()
                say(f"took over the lakehouse lock from {holder.describe(now)}: {why}")
            continue
        if holder.run_id == run_id:
            say(f"joining run {run_id}, which holds the lakehouse (pid {holder.pid} on host {holder.host})")
            yield holder
            return
        if time.monotonic() >= deadline:
            raise LakehouseBusy(busy_line(root, holder.describe(now), wait))
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(store, me, config.heartbeat_seconds, stop),
                               name="cdp-lakehouse-lock", daemon=True)
    renewer.start()
    try:
        yield me
    finally:
        stop.set()
        renewer.join()
        if (_parse(store.read()) or me).token == me.token:
            store.delete()


def _renew(store, me: Holder, every: float, stop: threading.Event) -> None:
    """Renew the lease while the holder runs; stop when someone took the lock (an expired lease: a paused driver)."""
    while not stop.wait(every):
        current = _parse(store.read())
        if current is None or current.token != me.token:
            return
        store.replace(json.dumps(asdict(Holder(**{**asdict(me), "heartbeat_at": time.time()}))))

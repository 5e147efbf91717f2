"""Kill points for the crash tests: the write path SIGKILLs the driver where CDP_KILL_AT says, not after a sleep.

Every lakehouse write goes through cdp.io.Lakehouse (or, for the two MERGEs with their own clauses, calls these
hooks itself). With `CDP_KILL_AT=<when>:<layer.table>[#n]` set, the n-th (default first) write of that table in
this process is killed:
- `during`: while Spark writes it. The frame being written is wrapped in an identity `mapInArrow` whose Python
  worker kills the driver's process group when it gets its first batch: the write's tasks are running, data
  files may be half written, the Delta commit has not happened;
- `after`: right after its Delta commit, before the step's next write (the step's tables are half updated).

The kill is SIGKILL to the driver's whole process group (the Python driver, its JVM and its Python workers), so
nothing gets to clean up; it is refused unless the driver leads its own process group (started with
start_new_session=True), so a kill point can never take a test runner down with it. Before dying it appends
the point to the file CDP_KILL_LOG names (if set): the test checks the kill happened where it asked.

Unset (always, outside the crash tests), the hooks cost one dict lookup and change no plan.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

ENV, LOG_ENV = "CDP_KILL_AT", "CDP_KILL_LOG"
WHEN = ("during", "after")
_seen: Counter = Counter()
_lock = threading.Lock()


def _points() -> dict[tuple[str, str], int]:
    """{(when, table): n} from CDP_KILL_AT ('during:silver.interactions,after:gold.identity_map#2')."""
    points = {}
    for item in filter(None, (p.strip() for p in os.environ.get(ENV, "").split(","))):
        when, _, rest = item.partition(":")
        table, _, n = rest.partition("#")
        if when not in WHEN or not table:
            raise ValueError(f"{ENV}={item!r}: write <during|after>:<layer.table>[#n]")
        points[(when, table)] = int(n or 1)
    return points


def _armed(when: str, table) -> str | None:
    """The kill point's name when this write of `table` is the one to kill, else None (counts the write)."""
    if ENV not in os.environ:
        return None
    points, name = _points(), str(table)
    if (when, name) not in points:
        return None
    with _lock:
        _seen[(when, name)] += 1
        hit = _seen[(when, name)] == points[(when, name)]
    if hit and os.getpgid(0) != os.getpid():
        raise RuntimeError(f"{ENV} kills the driver's process group: start the driver in its own session "
                           "(subprocess start_new_session=True)")
    return f"{when}:{name}#{points[(when, name)]}" if hit else None


def _kill(group: int, point: str) -> None:
    log = os.environ.get(LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{point} pid={os.getpid()}\n")
    os.killpg(group, signal.SIGKILL)


def writing(df, table):
    """The frame to write to `table`: itself, or (at a `during` kill point) one whose tasks kill the driver."""
    point = _armed("during", table)
    if point is None:
        return df
    group = os.getpgid(0)

    def kill_on_first_batch(batches):
        _kill(group, point)   # runs in the Python worker, a child of the driver's JVM, in its process group
        yield from batches

    return df.mapInArrow(kill_on_first_batch, df.schema)


def written(table) -> None:
    """Called after the commit of a write to `table`: dies there at an `after` kill point."""
    point = _armed("after", table)
    if point is not None:
        _kill(os.getpgid(0), point)

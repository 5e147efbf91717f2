"""Keep the JVM's own console output (Ivy's report, log4j's console appender) out of the terminal.

pyspark starts the JVM as a child process that inherits this process's file descriptors 1 and 2. Pointing
those two descriptors at a log file while the JVM starts, then restoring them, leaves the JVM (and the Python
workers it forks later) writing to the file for its whole life while Python's own output goes back to the
terminal.
"""

from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path

# What to quote from a failed start, best first: the cause a user can act on, not the Python traceback.
_CAUSES = (
    re.compile(r"unresolved dependency: .*"),
    re.compile(r"^(?:Invalid|Unrecognized) .*"),  # the JVM rejecting an option (e.g. spark.driver.memory)
    re.compile(r"Error: .*"),
    re.compile(r"Exception in thread .*"),
    re.compile(r"(?:[\w$]+\.)+[\w$]*(?:Exception|Error): .*"),
)
# Why a dependency was not resolved, when the network is the reason (quoted after the cause).
_NETWORK = re.compile(r"(?:Host \S+ not found|UnknownHostException|Connection refused|Connect timed out|"
                      r"Server access error)[^.]*")


def _flush_python_streams() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


@contextmanager
def jvm_output_to(log_path: str | os.PathLike):
    """Point fd 1 and fd 2 at `log_path` (truncated) for the duration of the block; always restore them.

    A process started inside the block (the JVM) keeps the file as its stdout and stderr after the block.
    """
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _flush_python_streams()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    saved: dict[int, int] = {}
    try:
        for target in (1, 2):
            saved[target] = os.dup(target)
        for target in saved:
            os.dup2(fd, target)
        yield str(path)
    finally:
        _flush_python_streams()
        for target, copy in saved.items():
            os.dup2(copy, target)
            os.close(copy)
        os.close(fd)


def start_failure_cause(log_path: str | os.PathLike, limit: int = 240) -> str | None:
    """The most telling line of a JVM log after a failed start (None when the log says nothing useful)."""
    try:
        lines = Path(log_path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    cause = next((m.group(0) for pattern in _CAUSES for line in lines if (m := pattern.search(line))), None)
    if cause is None:
        return None
    cause = cause.strip(" :\t]")
    network = next((m.group(0).strip() for line in lines if (m := _NETWORK.search(line))), None)
    if network and cause.startswith("unresolved"):
        cause = f"{cause}; {network}"
    return cause if len(cause) <= limit else cause[: limit - 3] + "..."

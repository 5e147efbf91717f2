"""What a step cost Spark and the machine: the Spark jobs and stages it launched and the peak resident memory of
the driver's JVM and of this Python process while it ran (`cdp run --json` reports them per step; the pipeline
benchmark reads them there).

Jobs and stages are the driver's own counters (the DAG scheduler numbers every job and stage it creates), so
they count every job, in every thread, whatever its job group. Peaks are the kernel's high-water mark of the
resident set (VmHWM), reset when the step starts: on Linux with the JVM on this host (local mode, a cluster's
driver); elsewhere (Spark Connect, another OS) a figure is None. Best effort: measuring never fails a step.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StepCost:
    spark_jobs: int | None = None
    spark_stages: int | None = None
    jvm_peak_mb: float | None = None
    python_peak_mb: float | None = None


def _counters(spark) -> tuple[int, int] | None:
    """(jobs, stages) the driver has numbered so far."""
    try:
        scheduler = spark.sparkContext._jsc.sc().dagScheduler()
        return _int(scheduler.nextJobId()), _int(scheduler.nextStageId())
    except Exception:  # noqa: BLE001 - no classic driver here (Spark Connect): not measured
        return None


def _int(counter) -> int:
    """An AtomicInteger as Py4J hands it over: already an int, or the Java object."""
    return int(counter) if isinstance(counter, int) else int(counter.get())


def _jvm_pid(spark) -> int | None:
    try:
        pid = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
    except Exception:  # noqa: BLE001
        return None
    return pid if Path(f"/proc/{pid}/status").exists() else None   # the JVM on another host: not measured


def _reset_peak(pid: int | None) -> None:
    if pid is None:
        return
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")   # "5": reset the peak resident set to the current one


def _peak_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class step_cost:  # noqa: N801 - a context manager used as `with step_cost(spark) as cost:`
    """Measures the block it wraps; `.cost` is its StepCost once the block has ended."""

    def __init__(self, spark):
        self.spark = spark
        self.cost = StepCost()

    def __enter__(self):
        self.jvm, self.python = _jvm_pid(self.spark), os.getpid()   # no /proc here: the peaks read None
        _reset_peak(self.jvm)
        _reset_peak(self.python)
        self.before = _counters(self.spark)
        return self

    def __exit__(self, *exc) -> None:
        after = _counters(self.spark)
        jobs, stages = (after[0] - self.before[0], after[1] - self.before[1]) if after and self.before else (None, None)
        self.cost = StepCost(jobs, stages, _peak_mb(self.jvm), _peak_mb(self.python))

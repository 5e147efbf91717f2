"""Progress while a step runs: a live status line on a terminal, a line every so often in a log."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cdp.run_context import RunContext


class step_progress:  # noqa: N801 - a context manager used as `with step_progress(...)`
    """While a step runs: a live status line on a terminal, or a line every `heartbeat` seconds in a log, saying
    the step in hand, its elapsed time and what Spark is doing (the active stage and its tasks done)."""

    def __init__(self, ctx: RunContext, step: str, heartbeat: float | None):
        self.ctx, self.step = ctx, step
        terminal = ctx.console.is_terminal and not ctx.console.quiet
        self.live = heartbeat is None and terminal
        self.every = 0.0 if ctx.console.quiet else (1.0 if self.live else (30.0 if heartbeat is None else heartbeat))
        self.stop = threading.Event()
        self.t0 = time.monotonic()

    def line(self) -> str:
        elapsed = int(time.monotonic() - self.t0)
        text = f"{self.step}: {elapsed // 60}m{elapsed % 60:02d}s"
        try:
            tracker = self.ctx.spark.sparkContext.statusTracker()
            stages = [tracker.getStageInfo(i) for i in tracker.getActiveStageIds()]
            stages = [s for s in stages if s is not None]
            if stages:
                s = max(stages, key=lambda s: s.stageId)
                text += f", Spark stage {s.stageId} ({s.numCompletedTasks}/{s.numTasks} tasks) {s.name.split(' at ')[0]}"
        except Exception:  # noqa: BLE001 - progress is best effort; the step's own errors surface elsewhere
            pass
        return text

    def _tick(self) -> None:
        if self.live:
            with self.ctx.console.status(self.line()) as status:
                while not self.stop.wait(self.every):
                    status.update(self.line())
            return
        while not self.stop.wait(self.every):
            self.ctx.console.print(f"[dim]  ... {self.line()}[/dim]")

    def __enter__(self):
        self.thread = threading.Thread(target=self._tick, daemon=True) if self.every > 0 else None
        if self.thread:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.thread:
            self.thread.join(timeout=5)

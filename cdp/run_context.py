"""What a step receives: the run's settings and configuration (each section loaded once), Spark session,
lakehouse, id, console, and what the run gathers as it goes (the steps' outputs, problems, how each step ended). cdp/pipeline.py builds one per run; every function of
cdp/steps.py takes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from rich.console import Console

from cdp.config import Settings
from cdp.config.project import ProjectConfig
from cdp.io import Lakehouse
from cdp.runs import StepRecord


@dataclass
class RunContext:
    settings: Settings
    spark: object
    lake: Lakehouse
    run_id: str
    started_at: datetime
    console: Console
    outputs: dict[str, object] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)   # what makes the run exit non-zero (files not landed)
    summary: list[str] = field(default_factory=list)    # what the closing summary adds (interactions with no customer)
    as_of: date | None = None                            # scoring and value date (cdp run --as-of), else conf
    plan: list[str] = field(default_factory=list)        # the steps this invocation set out to run
    records: list[StepRecord] = field(default_factory=list)  # how each step ended (audit.pipeline_runs)
    failure: BaseException | None = None                 # the first step that failed (its error, step named)
    status: str = "running"                              # succeeded | failed | interrupted at the end
    report: str | None = None                            # where the report step wrote the run report
    capabilities: object | None = None                   # what the data can give (cdp.capabilities): which steps apply
    conf: ProjectConfig | None = None                    # every configuration section, loaded once (default: settings')

    def __post_init__(self) -> None:
        if self.conf is None:
            self.conf = ProjectConfig(self.settings)

"""docs/benchmarks.md holds one section per benchmark between markers, so each `make bench` part rewrites its own
section and leaves the others (and the hand-written notes) as they are."""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from pathlib import Path


def machine() -> str:
    """'2 cores, 24 GiB RAM, Linux 6.1': what a benchmark's figures were measured on."""
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {mem_gb:.0f} GiB RAM, {platform.system()} {platform.release()}"


def customer_size_args(ap: argparse.ArgumentParser, root: Path) -> None:
    """--dir, --customers and --report of the benchmarks over the prepared customer lakehouses."""
    ap.add_argument("--dir", default=str(root / "bench_data" / "journeys"))
    ap.add_argument("--customers", default="10000,30000,100000")
    ap.add_argument("--report", default=str(root / "docs" / "benchmarks.md"))


def scaling_exponent(sizes: list[float], seconds: list[float]) -> float:
    """b in time ~ size^b: the least-squares slope of log(time) on log(size); nan with fewer than two sizes."""
    if len(sizes) < 2:
        return float("nan")
    xs, ys = [math.log(x) for x in sizes], [math.log(y) for y in seconds]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def replace_section(path: Path, name: str, text: str) -> str:
    """Put `text` between <!-- bench:name --> markers in the file (appended when the section is new)."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{begin}\n{text.strip()}\n{end}"
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if begin in old and end in old:
        new = old[:old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    path.write_text(new, encoding="utf-8")
    return new


def publish(report: str | Path, name: str, text: str, started: float) -> int:
    """Write `text` as the report's `name` section, print it and the benchmark's wall time (since the
    time.monotonic() `started`); the exit code of a benchmark that finished."""
    replace_section(Path(report), name, text)
    print(text)
    print(f"bench done in {time.monotonic() - started:.0f}s")
    return 0

"""Synthetic data generator for the CDP: landing files for 11 channels plus ground truth.

Usage::

    from cdp.synth import generate
    result = generate(5000, seed=42, landing_dir=Path("data/landing"), truth_dir=Path("data/truth"))

Output is deterministic for (customers, seed, start, end, chunk_size) whatever `workers` is:
each chunk of persons has its own RNG seeded from (seed, chunk_index) and is written to its
own files, so chunks can be produced in any order or in parallel.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from cdp.synth import channels, feedback
from cdp.synth.behaviour import Ctx
from cdp.synth.people import build_persons, truth_row
from cdp.synth.writers import SOURCE_NAMES, SOURCES, reset_dirs, write_chunk

__all__ = ["generate", "GenerationResult", "SOURCES"]


@dataclass(frozen=True)
class GenerationResult:
    customers: int
    records_by_source: dict[str, int]
    files: int  # landing files written
    seconds: float
    hostile_records: int = 0  # extra hostile records (hostile_share), in landing files of their own


class _Out:
    __slots__ = ("sinks", "owners")

    def __init__(self):
        self.sinks = {name: [] for name in SOURCE_NAMES}
        self.owners = []


def _person_records(rng: random.Random, ctx: Ctx, p, out: _Out) -> None:
    if p.crm:
        channels.crm(rng, ctx, p, out)
    if p.loyalty_id:
        channels.loyalty(rng, ctx, p, out)
    touches = channels.clickstream(rng, ctx, p, out)
    touches += channels.store(rng, ctx, p, out)
    feedback.email_marketing(rng, ctx, p, out)
    touches += feedback.callcenter(rng, ctx, p, out)
    touches.sort(key=lambda t: t[1])
    feedback.surveys(rng, ctx, p, touches, out)
    feedback.suggestions(rng, ctx, p, out)
    feedback.reviews(rng, ctx, p, out)
    feedback.social(rng, ctx, p, out)


def _run_chunk(args) -> tuple[int, dict[str, int], int]:
    chunk, customers, seed, start, end, chunk_size, landing, truth = args
    ctx = Ctx(seed, start, end, customers)
    rng = random.Random(f"{seed}:{chunk}")
    g_start = chunk * chunk_size
    n = min(chunk_size, customers - g_start)
    persons = build_persons(rng, ctx, g_start, n)
    out = _Out()
    for p in persons:
        _person_records(rng, ctx, p, out)
    files = write_chunk(Path(landing), Path(truth), chunk, out.sinks, out.owners,
                        [truth_row(p) for p in persons])
    return chunk, {k: len(v) for k, v in out.sinks.items()}, files


def generate(customers: int, seed: int, landing_dir: Path, truth_dir: Path, *,
             start: date = date(2024, 1, 1), end: date = date(2025, 12, 31),
             chunk_size: int = 10_000, workers: int = 1,
             progress: Callable[[int, int], None] | None = None, hostile_share: float = 0.0,
             hostile_sources: list | None = None) -> GenerationResult:
    """Generate `customers` latent persons and all their source records.

    Writes landing_dir/<folder>/<file>_<chunk:05d>.<ext> for every source and
    truth_dir/{record_owners,persons}/..._<chunk:05d>.csv; previous output in those
    folders is removed first. hostile_share > 0 adds about that share of hostile records
    (cdp.synth.hostile.DEMO_KINDS, which the quarantine must stop) in <file>_hostile_rows.<ext>
    files, listed in truth_dir/hostile_manifest.jsonl; hostile_sources: the source definitions
    to write them for (default: the project's conf/sources that this generator writes).
    """
    if customers < 1:
        raise ValueError("customers must be >= 1")
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    if end < start or (end - start).days < 180:
        raise ValueError("the window [start, end] must span at least 180 days")
    t_start = time.perf_counter()
    landing_dir, truth_dir = Path(landing_dir), Path(truth_dir)
    reset_dirs(landing_dir, truth_dir)
    n_chunks = (customers + chunk_size - 1) // chunk_size
    tasks = [(c, customers, seed, start, end, chunk_size, str(landing_dir), str(truth_dir))
             for c in range(n_chunks)]
    totals = {name: 0 for name in SOURCE_NAMES}
    files = 0
    done = 0

    def _collect(res) -> None:
        nonlocal files, done
        _, counts, nfiles = res
        for k, v in counts.items():
            totals[k] += v
        files += nfiles
        done += 1
        if progress is not None:
            progress(done, n_chunks)

    if workers <= 1 or n_chunks == 1:
        for t in tasks:
            _collect(_run_chunk(t))
    else:
        # fork: works whether or not the caller guards its main module; each worker only
        # reads its task tuple, so nothing from the parent's state leaks into the output.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        ctx = multiprocessing.get_context(method)
        with ctx.Pool(min(workers, n_chunks), maxtasksperchild=4) as pool:
            for res in pool.imap_unordered(_run_chunk, tasks):
                _collect(res)
    hostile = 0
    if hostile_share > 0:
        from cdp.synth.hostile_files import write_demo_share

        cases = write_demo_share(landing_dir, truth_dir, round(sum(totals.values()) * hostile_share), seed,
                                 hostile_sources)
        hostile, files = len(cases), files + len({c.file for c in cases})
    return GenerationResult(customers=customers, records_by_source=dict(sorted(totals.items())),
                            files=files, seconds=round(time.perf_counter() - t_start, 3), hostile_records=hostile)

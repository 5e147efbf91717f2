"""Independent pieces of one step run at once from a thread pool (Spark schedules concurrent jobs from threads;
on small batches this hides each job's and each commit's fixed latency): bronze's sources, silver's."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def in_threads(work: Callable[[T], R], items: Sequence[T], workers: int,
               on_done: Callable[[int, int, T, R], None] | None = None,
               release: Callable[[R], None] | None = None) -> list[R]:
    """work(item) for every item, up to `workers` at once; the results in the items' order. on_done(done, total,
    item, result) as each finishes (one at a time). When any fails, the others finish, `release` is called on
    each result there is, and the first failure (in the items' order) is raised."""
    finished, lock = [0], threading.Lock()

    def one(item: T) -> R:
        result = work(item)
        with lock:
            finished[0] += 1
            if on_done:
                on_done(finished[0], len(items), item, result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(one, item) for item in items]
    failure = next((f.exception() for f in futures if f.exception() is not None), None)
    if failure is not None:
        for f in futures:
            if f.exception() is None and release is not None and f.result() is not None:
                release(f.result())
        raise failure
    return [f.result() for f in futures]

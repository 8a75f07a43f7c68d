"""A small closed-loop load generator: N threads, each sending back to back.

The naive-baseline comparison needs one load generator for two different
protocols (plain HTTP and Triton gRPC); perf_analyzer speaks only the latter,
so both sides use this instead. Each thread owns its client (made by
``make_call``), so no connection is shared across threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Call = Callable[[], None]


@dataclass(frozen=True)
class LoadResult:
    """One load level's outcome: what completed, what failed, and each request's latency."""

    concurrency: int
    seconds: float
    completed: int
    errors: int
    latencies_ms: tuple[float, ...]

    @property
    def throughput(self) -> float:
        """Completed requests per second over the run."""
        return self.completed / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile latency in milliseconds; NaN when nothing completed."""
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


def run_load(make_call: Callable[[], Call], concurrency: int, seconds: float, warmup_s: float = 1.0) -> LoadResult:
    """Run ``concurrency`` threads for ``warmup_s + seconds``; keep requests that start after warm-up."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    start = time.perf_counter() + warmup_s
    stop = start + seconds

    def worker() -> None:
        call = make_call()
        while (begun := time.perf_counter()) < stop:
            try:
                call()
            except Exception:  # noqa: BLE001 - any failure of the system under test is counted, not fatal
                with lock:
                    errors[0] += 1
                continue
            ended = time.perf_counter()
            if begun >= start and ended <= stop:
                with lock:
                    latencies.append((ended - begun) * 1e3)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + warmup_s + 120)
    return LoadResult(concurrency, seconds, len(latencies), errors[0], tuple(latencies))

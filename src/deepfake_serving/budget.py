"""A per-request work budget: CPU seconds and cancellation, checked inside long loops.

Limits computed from headers (pixels, JPEG scans, TIFF strips, sample rates,
frames to decode, MTCNN candidates) refuse most expensive inputs before the
work starts. What headers cannot predict is cut off here: the decode, MTCNN
and resampling loops call :meth:`WorkBudget.check` and the request is refused
with ``INVALID_ARG`` naming the limit once it has used ``max_cpu_s`` of CPU.

CPU time of the calling process (``time.process_time``), not wall time: a
Python-backend instance serves one request at a time, and under load a request
waiting for a core must not be refused for the wait. A cancelled request (the
client gave up, ``request.is_cancelled()``) stops at the next check with
:class:`RequestCancelled`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from deepfake_serving.errors import RequestError

#: No input within the documented limits should cost a request more than this.
DEFAULT_MAX_CPU_S = 10.0
#: ``is_cancelled()`` is a round trip to Triton's process: asked at most this often.
_CANCEL_POLL_S = 0.05


class RequestCancelled(Exception):  # noqa: N818 - a state, not a failure of ours
    """The client cancelled the request; nobody reads the answer."""


class WorkBudget:
    """CPU seconds left for one request's work, and whether its client still waits."""

    def __init__(
        self,
        max_cpu_s: float = DEFAULT_MAX_CPU_S,
        input_name: str = "INPUT",
        is_cancelled: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.process_time,
    ) -> None:
        if max_cpu_s <= 0:
            raise ValueError("max_cpu_s must be positive")
        self.max_cpu_s = max_cpu_s
        self.input_name = input_name
        self._is_cancelled = is_cancelled
        self._clock = clock
        self._start = clock()
        self._asked_at = -float("inf")

    @property
    def used_s(self) -> float:
        """CPU seconds this request has used since the budget was made."""
        return self._clock() - self._start

    def check(self, step: str) -> None:
        """Raise when the budget is spent (``RequestError``) or the request was cancelled."""
        if self._is_cancelled is not None and time.monotonic() - self._asked_at >= _CANCEL_POLL_S:
            self._asked_at = time.monotonic()
            if self._is_cancelled():
                raise RequestCancelled(f"{self.input_name}: cancelled by the client during {step}")
        if self.used_s > self.max_cpu_s:
            raise RequestError(
                self.input_name,
                f"{step} exceeded the work limit of {self.max_cpu_s:g} CPU seconds per request "
                "(max_cpu_s); send a smaller or simpler file",
            )


#: For callers without a request (tests, tools): never cancelled, effectively unlimited.
UNLIMITED = WorkBudget(max_cpu_s=float("inf"))

"""Errors that reach clients.

A :class:`RequestError` is the client's fault (bad media, wrong shape, over a
limit). Python-backend models turn it into a per-request ``INVALID_ARG`` error
with its message, and keep serving every other request of the batch.
Anything else is a server bug and is reported as ``INTERNAL``.
"""

from __future__ import annotations


class RequestError(ValueError):
    """A request that cannot be served as sent.

    The message must say which input was wrong, what was wrong with it and what
    is accepted, e.g. ``"IMAGE: 12000x12000 pixels exceeds the limit of
    40000000 pixels"``.
    """

    def __init__(self, input_name: str, problem: str) -> None:
        self.input_name = input_name
        self.problem = problem
        super().__init__(f"{input_name}: {problem}")

"""A small exception hierarchy that hides which transport was used.

Callers branch on *what* went wrong (bad input, no server, too slow), not on
whether gRPC or HTTP reported it; the transport error stays reachable as
``__cause__`` and the server's own message is kept verbatim.
"""

from __future__ import annotations

__all__ = [
    "DeepfakeClientError",
    "InvalidInputError",
    "UnsupportedMediaError",
    "PayloadTooLargeError",
    "UnavailableError",
    "DeadlineExceededError",
    "ModelNotFoundError",
    "ServerError",
]


class DeepfakeClientError(Exception):
    """Base class of every error this package raises.

    Attributes:
        message: the server's (or the client's) explanation, unchanged.
        status: the transport status (``"INVALID_ARGUMENT"``, ``"400"``...) or None.
        url: the endpoint that answered last, when there was one.
        attempts: how many requests were sent for this call (1 means no retry).
        source: what was being analysed (a path, ``"<bytes>"``...), when known.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: str | None = None,
        url: str | None = None,
        attempts: int = 0,
        source: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.url = url
        self.attempts = attempts
        self.source = source

    def __str__(self) -> str:
        where = f" ({self.url}, {self.attempts} attempt{'s' if self.attempts != 1 else ''})" if self.url else ""
        return f"{self.message}{where}"


class InvalidInputError(DeepfakeClientError):
    """The media was refused (gRPC INVALID_ARGUMENT, HTTP 400); retrying cannot help."""


class UnsupportedMediaError(InvalidInputError):
    """The content is not a format this client recognises; nothing was sent."""


class PayloadTooLargeError(InvalidInputError):
    """The media is larger than ``max_bytes``; nothing was sent."""


class UnavailableError(DeepfakeClientError):
    """No server answered (connection refused, UNAVAILABLE, HTTP 503, or the model
    is being unloaded before a shutdown), even after retries."""

    retryable = True


class DeadlineExceededError(DeepfakeClientError):
    """The call did not finish within its deadline (``timeout``)."""

    retryable = True


class ModelNotFoundError(DeepfakeClientError):
    """The server does not serve the model this call needs (for example no ``detect_video``)."""


class ServerError(DeepfakeClientError):
    """Any other failure reported by the server (INTERNAL, HTTP 500...)."""

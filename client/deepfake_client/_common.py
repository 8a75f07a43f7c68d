"""What the sync and asyncio clients share: input loading, endpoints, retries, error mapping.

Kept transport-free so both clients behave identically; each client only adds
the blocking or awaiting calls.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from deepfake_client._errors import (
    DeadlineExceededError,
    DeepfakeClientError,
    InvalidInputError,
    ModelNotFoundError,
    PayloadTooLargeError,
    ServerError,
    UnavailableError,
    UnsupportedMediaError,
)
from deepfake_client._results import AudioResult, DetectionResult, ImageResult, VideoResult
from deepfake_client._sniff import SNIFF_BYTES, MediaKind, sniff
from deepfake_contract import MEDIA

__all__ = ["Media", "Protocol", "RetryPolicy", "ModelNames", "TlsOptions", "Endpoints", "load_media", "map_error"]

Media = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes]
Protocol = Literal["grpc", "http"]

DEFAULT_PORTS = {"grpc": 8001, "http": 8000}

#: Each kind of media with its entry model, input tensor, size limit and formats,
#: from the contract the server's configs are checked against.
MEDIA_BY_KIND = {media.kind: media for media in MEDIA}
#: The entry model that accepts the most: a larger file is refused before it is read whole.
_LARGEST = max(MEDIA, key=lambda media: media.max_bytes)
RESULT_TYPES = {"image": ImageResult, "audio": AudioResult, "video": VideoResult}
INPUT_NAMES = {kind: media.input for kind, media in MEDIA_BY_KIND.items()}
ACCEPTED = ", ".join(
    f"{'images' if kind == 'image' else kind} ({media.formats})" for kind, media in MEDIA_BY_KIND.items()
)


@dataclass(frozen=True)
class RetryPolicy:
    """When and how often a failed call is sent again.

    Only failures that cannot have been caused by the request are retried:
    UNAVAILABLE (no server, overloaded, shutting down) always, DEADLINE_EXCEEDED
    when ``retry_deadline_exceeded`` (safe here because inference has no side
    effects), never INVALID_ARGUMENT. Each retry goes to the next endpoint.

    Attributes:
        attempts: total requests per call, first one included (1 disables retries).
        initial_backoff_s: the pause before the first retry.
        max_backoff_s: the longest pause between two attempts.
        multiplier: how much the pause grows after each attempt.
        jitter: the fraction of each pause drawn at random, so that clients
            restarted together do not retry in lockstep.
        retry_deadline_exceeded: also retry calls that ran past their deadline.
    """

    attempts: int = 4
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.5
    retry_deadline_exceeded: bool = True

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("RetryPolicy.jitter must be between 0 and 1")

    def should_retry(self, error: DeepfakeClientError, attempt: int) -> bool:
        """Whether to send again after ``error`` on attempt number ``attempt`` (1-based)."""
        if attempt >= self.attempts:
            return False
        if isinstance(error, UnavailableError):
            return True
        return isinstance(error, DeadlineExceededError) and self.retry_deadline_exceeded

    def backoff_s(self, attempt: int) -> float:
        """The pause after attempt number ``attempt`` (1-based), jitter included."""
        pause = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1))
        return pause * (1 - self.jitter * random.random())


@dataclass(frozen=True)
class ModelNames:
    """The ensembles this client calls, for deployments that rename them."""

    image: str = MEDIA_BY_KIND["image"].model
    audio: str = MEDIA_BY_KIND["audio"].model
    video: str = MEDIA_BY_KIND["video"].model

    def for_kind(self, kind: MediaKind) -> str:
        return getattr(self, kind)


class Endpoints:
    """Server addresses handed out round-robin, one per request.

    Spreading per request (not per connection) is what balances a headless
    Kubernetes Service: ``dns:///name:port`` is resolved to every address
    behind the name, and re-resolved every ``refresh_s`` so that new or
    rescheduled pods join.
    """

    def __init__(self, urls: str | Sequence[str], *, protocol: Protocol, refresh_s: float = 30.0) -> None:
        self._targets = [urls] if isinstance(urls, str) else list(urls)
        if not self._targets:
            raise ValueError("at least one url is needed")
        self._protocol = protocol
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._resolved_at = 0.0
        self._urls: list[str] = []
        self._cycle: itertools.cycle[str] = itertools.cycle([])
        self._resolve()

    @property
    def urls(self) -> list[str]:
        """Every address currently in rotation (``host:port``)."""
        with self._lock:
            return list(self._urls)

    def next(self) -> str:
        """The address for the next request."""
        if any(t.startswith("dns:") for t in self._targets) and time.monotonic() - self._resolved_at > self._refresh_s:
            try:
                self._resolve()
            except UnavailableError:
                pass  # keep the last known addresses
        with self._lock:
            return next(self._cycle)

    def _resolve(self) -> None:
        urls: list[str] = []
        for target in self._targets:
            for url in self._expand(target):
                if url not in urls:
                    urls.append(url)
        with self._lock:
            if urls != self._urls:
                self._urls = urls
                self._cycle = itertools.cycle(urls)
            self._resolved_at = time.monotonic()

    def _expand(self, target: str) -> list[str]:
        for scheme in ("http://", "https://", "grpc://"):
            if target.startswith(scheme):
                target = target[len(scheme) :]
        if not target.startswith("dns:"):
            return [target.rstrip("/")]
        hostport = target.split("/", 3)[-1] if target.startswith("dns:///") else target[len("dns:") :]
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit():
            host, port = hostport, str(DEFAULT_PORTS[self._protocol])
        try:
            infos = socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)
        except OSError as error:
            raise UnavailableError(f"cannot resolve {target}: {error}", status="UNAVAILABLE") from error
        addresses = sorted({info[4][0] for info in infos})
        return [f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in addresses]


def load_media(media: Media, *, max_bytes: int, limit: str = "max_bytes") -> tuple[bytes, str]:
    """The bytes to send and a name for reports, refusing anything over ``max_bytes`` before reading it all."""
    if isinstance(media, (bytes, bytearray, memoryview)):
        data, source = bytes(media), "<bytes>"
    elif isinstance(media, (str, os.PathLike)):
        path = Path(media)
        source = str(path)
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise _too_large(size, max_bytes, source, limit=limit)
            data = path.read_bytes()
        except OSError as error:
            raise InvalidInputError(f"cannot read {source}: {error.strerror or error}", source=source) from error
    elif hasattr(media, "read"):
        source = str(getattr(media, "name", "<stream>"))
        data = media.read(max_bytes + 1)
        if not isinstance(data, bytes):
            raise TypeError("file objects must be opened in binary mode ('rb')")
    else:
        raise TypeError(f"expected a path, bytes or a binary file object, not {type(media).__name__}")
    if len(data) > max_bytes:
        at_least = not isinstance(media, (bytes, bytearray, memoryview))
        raise _too_large(len(data), max_bytes, source, at_least=at_least, limit=limit)
    if not data:
        raise InvalidInputError("the media is empty (0 bytes)", source=source)
    return data, source


def _too_large(
    size: int, max_bytes: int, source: str, at_least: bool = False, limit: str = "max_bytes"
) -> PayloadTooLargeError:
    more = "more than " if at_least else ""
    return PayloadTooLargeError(
        f"{source} is {more}{size / 2**20:.1f} MiB, over the {max_bytes / 2**20:.1f} MiB limit ({limit}); "
        "nothing was sent",
        source=source,
    )


def check_size(data: bytes, source: str, kind: MediaKind, max_bytes: int | None) -> None:
    """Refuse what the server would refuse for its size: its limit for ``kind`` unless ``max_bytes`` is set."""
    media = MEDIA_BY_KIND[kind]
    limit, named = (max_bytes, "max_bytes") if max_bytes is not None else (media.max_bytes, f"{media.model} accepts")
    if len(data) > limit:
        raise _too_large(len(data), limit, source, limit=named)


def kind_of(data: bytes, source: str) -> MediaKind:
    """Which ensemble ``data`` goes to, judged from its content."""
    found = sniff(data[:SNIFF_BYTES])
    if found is None:
        raise UnsupportedMediaError(f"{source}: not a recognised media file; accepted: {ACCEPTED}", source=source)
    return found.kind


#: Triton's words for a model that is in the repository but has no loaded version.
NO_VERSION = "has no available versions"

_GRPC_STATUS = {
    "INVALID_ARGUMENT": InvalidInputError,
    "UNAVAILABLE": UnavailableError,
    "DEADLINE_EXCEEDED": DeadlineExceededError,
    "NOT_FOUND": ModelNotFoundError,
}
_HTTP_STATUS = {
    "400": InvalidInputError,
    "404": ModelNotFoundError,
    "502": UnavailableError,
    "503": UnavailableError,
    "504": DeadlineExceededError,
}


def map_error(error: BaseException, *, url: str, source: str | None = None) -> DeepfakeClientError:
    """This package's error for a transport ``error`` (the caller raises it ``from`` the original)."""
    from tritonclient.utils import InferenceServerException

    if isinstance(error, DeepfakeClientError):
        return error
    if isinstance(error, InferenceServerException):
        status = str(error.status() or "")
        status = status.removeprefix("StatusCode.")
        message = error.message() or str(error)
        cls = _GRPC_STATUS.get(status) or _HTTP_STATUS.get(status)
        if NO_VERSION in message:
            # The model exists but is not loaded here: a server draining before
            # shutdown (deepfake_serving.supervise) or reloading. Another
            # endpoint, or this one a moment later, can serve it.
            cls = UnavailableError
        if cls is None and status in ("", "None"):
            cls = _by_text(message)
        if cls is None:
            cls = ModelNotFoundError if "unknown model" in message.lower() or "is not found" in message else ServerError
        if cls is InvalidInputError and ("unknown model" in message.lower() or "is not found" in message):
            cls = ModelNotFoundError
        return cls(message, status=status or None, url=url, source=source)
    if isinstance(error, (TimeoutError, socket.timeout)) or type(error).__name__ in ("Timeout", "ServerTimeoutError"):
        return DeadlineExceededError(
            f"no answer within the deadline: {error or type(error).__name__}",
            status="DEADLINE_EXCEEDED",
            url=url,
            source=source,
        )
    if isinstance(error, OSError) or type(error).__name__ in (
        "ClientConnectorError",
        "ServerDisconnectedError",
        "ClientOSError",
    ):
        return UnavailableError(f"cannot reach the server: {error}", status="UNAVAILABLE", url=url, source=source)
    return ServerError(f"{type(error).__name__}: {error}", url=url, source=source)


def _by_text(message: str) -> type[DeepfakeClientError] | None:
    """tritonclient reports some transport failures with no status, only text."""
    lowered = message.lower()
    if "timed out" in lowered or "deadline" in lowered:
        return DeadlineExceededError
    if "connect" in lowered or "unavailable" in lowered or "refused" in lowered:
        return UnavailableError
    return None


@dataclass(frozen=True)
class TlsOptions:
    """gRPC TLS: a server certificate to trust and, for mutual TLS, this client's own.

    Attributes:
        root_certificates: PEM file of the CA(s) that signed the server's certificate
            (None: the system's trust store).
        private_key: PEM file of this client's private key (mutual TLS).
        certificate_chain: PEM file of this client's certificate chain (mutual TLS).
    """

    root_certificates: str | None = None
    private_key: str | None = None
    certificate_chain: str | None = None


def grpc_tls(tls: TlsOptions | None) -> dict[str, Any]:
    """The TLS keyword arguments of ``tritonclient.grpc`` (and ``.aio``) ``InferenceServerClient``."""
    return {
        "ssl": tls is not None,
        "root_certificates": tls.root_certificates if tls else None,
        "private_key": tls.private_key if tls else None,
        "certificate_chain": tls.certificate_chain if tls else None,
    }


class ClientSettings:
    """The options both clients take, validated once."""

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        protocol: Protocol,
        timeout: float | None,
        retry: RetryPolicy | None,
        max_bytes: int | None,
        headers: dict[str, str] | None,
        tls: TlsOptions | bool | None,
        models: ModelNames | None,
        dns_refresh_s: float,
    ) -> None:
        if protocol not in ("grpc", "http"):
            raise ValueError(f"protocol must be 'grpc' or 'http', not {protocol!r}")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive (or None for no deadline)")
        if max_bytes is not None and max_bytes <= 0:
            raise ValueError("max_bytes must be positive (or None for the server's limit per kind of media)")
        self.protocol: Protocol = protocol
        self.endpoints = Endpoints(url, protocol=protocol, refresh_s=dns_refresh_s)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.max_bytes = max_bytes
        self.headers = dict(headers or {})
        self.tls = TlsOptions() if tls is True else (tls or None)
        self.models = models or ModelNames()

    def model_for(self, kind: MediaKind) -> str:
        return self.models.for_kind(kind)

    def timeout_for(self, timeout: float | None | object) -> float | None:
        return self.timeout if timeout is _DEFAULT else timeout  # type: ignore[return-value]

    def prepare(self, media: Media, kind: MediaKind | None, timeout: float | None | object) -> Call:
        """Read ``media`` and choose its ensemble; nothing is sent yet."""
        source: str | None = None
        try:
            if self.max_bytes is None:
                data, source = load_media(media, max_bytes=_LARGEST.max_bytes, limit=f"{_LARGEST.model} accepts")
            else:
                data, source = load_media(media, max_bytes=self.max_bytes)
            kind = kind or kind_of(data, source)
            check_size(data, source, kind, self.max_bytes)
        except DeepfakeClientError as error:
            error.source = error.source or source
            raise
        return Call(data, source, kind, self.model_for(kind), INPUT_NAMES[kind], self.timeout_for(timeout))

    def failure(self, error: BaseException, *, url: str, call: Call, attempt: int) -> tuple[DeepfakeClientError, bool]:
        """This package's error for a failed attempt, and whether to send the call again."""
        mapped = map_error(error, url=url, source=call.source)
        mapped.attempts = attempt
        return mapped, self.retry.should_retry(mapped, attempt)


@dataclass(frozen=True)
class Call:
    """One detection call as every attempt sends it."""

    data: bytes
    source: str
    kind: MediaKind
    model: str
    input_name: str
    deadline: float | None

    def result(self, outputs: dict[str, Any]) -> DetectionResult:
        return RESULT_TYPES[self.kind].from_outputs(outputs, source=self.source)


class ClientBase:
    """The constructor and endpoint list both clients share (see ``DeepfakeClient`` for the options)."""

    def __init__(
        self,
        url: str | Sequence[str] = "localhost:8001",
        *,
        protocol: Protocol = "grpc",
        timeout: float | None = 60.0,
        retry: RetryPolicy | None = None,
        max_bytes: int | None = None,
        headers: dict[str, str] | None = None,
        tls: TlsOptions | bool | None = None,
        models: ModelNames | None = None,
        dns_refresh_s: float = 30.0,
    ) -> None:
        self._settings = ClientSettings(
            url,
            protocol=protocol,
            timeout=timeout,
            retry=retry,
            max_bytes=max_bytes,
            headers=headers,
            tls=tls,
            models=models,
            dns_refresh_s=dns_refresh_s,
        )
        # Guards the transports of the blocking client, which threads share.
        self._lock = threading.Lock()
        self._transports: dict[Any, Any] = {}
        self._closed = False

    @property
    def urls(self) -> list[str]:
        """The endpoints currently in rotation."""
        return self._settings.endpoints.urls


class _Default:
    def __repr__(self) -> str:
        return "<client default>"


#: Marks "use the client's default" where None already means "no deadline".
_DEFAULT: object = _Default()
DEFAULT = _DEFAULT


def output_names(response: object) -> list[str]:
    """The output tensor names of a gRPC (protobuf) or HTTP (dict) response."""
    if isinstance(response, dict):
        return [output["name"] for output in response.get("outputs", [])]
    return [output.name for output in response.outputs]  # type: ignore[attr-defined]

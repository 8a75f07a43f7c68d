"""Media containers held in memory: opening, header checks and PyAV error mapping.

:mod:`deepfake_serving.audio` and :mod:`deepfake_serving.video` both decode
uploads with PyAV (FFmpeg). What happens before and around decoding is the
same for both: the byte limit, FFmpeg's format probing, picking the stream,
checking that a decoder exists, reading the declared duration, and turning
every PyAV exception into a :class:`RequestError` the client can act on. It
lives here so the messages stay identical across the two paths.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Literal

import av

from deepfake_serving.errors import RequestError

#: What PyAV raises for input it cannot read (its own errors plus the Python
#: ones its Cython code lets through on malformed data).
PYAV_ERRORS: tuple[type[BaseException], ...] = (av.FFmpegError, OSError, ValueError, EOFError, IndexError)

#: Container headers round durations; a declared duration must exceed the
#: limit by more than this to be rejected before decoding.
DECLARED_DURATION_SLACK_S = 0.5

StreamKind = Literal["audio", "video"]


def check_bytes(data: bytes, max_bytes: int, input_name: str) -> None:
    """Refuse non-bytes, empty and oversized uploads before FFmpeg sees them."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise RequestError(input_name, f"expected encoded media bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise RequestError(input_name, "empty input; send the encoded file's bytes")
    if len(data) > max_bytes:
        raise RequestError(input_name, f"{len(data)} bytes exceeds the limit of {max_bytes} bytes")


def describe(exc: BaseException) -> str:
    """One short line from a PyAV exception, fit for a client-facing message."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def open_container(data: bytes, input_name: str, accepted: str) -> av.container.InputContainer:
    """Open bytes with FFmpeg's format probing, mapping every failure to a RequestError.

    Args:
        data: the encoded file.
        input_name: the request input the bytes came from (prefixes the message).
        accepted: the formats to name in the message when the bytes are no media file.
    """
    try:
        return av.open(io.BytesIO(bytes(data)), mode="r")
    except PYAV_ERRORS as exc:
        raise RequestError(input_name, f"not a readable media file ({describe(exc)}); accepted: {accepted}") from None


@contextlib.contextmanager
def decoding_errors(input_name: str, what: str) -> Iterator[None]:
    """Inside the block, PyAV exceptions become ``corrupt or truncated <what>`` RequestErrors.

    Decoding can fail anywhere in a damaged file; the client should hear that
    the file is bad, not see a server error. RequestErrors pass unchanged.
    """
    try:
        yield
    except RequestError:
        raise
    except PYAV_ERRORS as exc:
        raise RequestError(input_name, f"corrupt or truncated {what} ({describe(exc)})") from None


def first_stream(
    container: av.container.InputContainer, kind: StreamKind, input_name: str, accepted: str
) -> av.stream.Stream:
    """The container's first ``kind`` stream, the one that is analysed.

    Raises:
        RequestError: the container has no such stream (e.g. a sound-only file sent as video).
    """
    streams = getattr(container.streams, kind)
    if not streams:
        raise RequestError(input_name, f"no {kind} stream found; accepted: {accepted}")
    return streams[0]


def require_decoder(stream: av.stream.Stream, kind: StreamKind, input_name: str, accepted: str) -> None:
    """Refuse a stream FFmpeg found but has no decoder for, naming the codec."""
    ctx = stream.codec_context
    if ctx is None or not ctx.name:
        name = ctx.name if ctx is not None else None
        raise RequestError(input_name, f"{kind} codec {name or 'unknown'} cannot be decoded; accepted: {accepted}")


def declared_duration_s(container: av.container.InputContainer, stream: av.stream.Stream) -> float | None:
    """The duration the stream's header declares, else the container's, else None.

    Headers can lie, so this is only used to refuse early and to detect
    truncation; decoding enforces the limits again.
    """
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None


def check_declared_duration(
    container: av.container.InputContainer, stream: av.stream.Stream, max_duration_s: float, input_name: str
) -> float | None:
    """:func:`declared_duration_s`, refused when over ``max_duration_s`` before any decoding work."""
    declared = declared_duration_s(container, stream)
    if declared is not None and declared > max_duration_s + DECLARED_DURATION_SLACK_S:
        raise RequestError(input_name, f"duration {declared:.1f} s exceeds the limit of {max_duration_s:g} s")
    return declared

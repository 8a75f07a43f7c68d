"""Frame sampling for the temporal analyzer from bytes in memory.

The analyzer's training code samples ``np.linspace(0, total - 1, 16,
dtype=int)`` frame indices with OpenCV, converts BGR->RGB and resizes to
224x224 (``cv2.INTER_LINEAR``).
Here PyAV decodes straight to RGB from an in-memory buffer, and:

* The frame count and every frame's presentation time come from a demux-only
  pass over the video packets (no decoding; one packet per frame for every
  codec we accept). That is exact even where the header has no frame count
  (WebM/Matroska) or the frame rate is variable, unlike OpenCV's
  ``duration * fps`` estimate. Packets flagged "discard" (edit-list pre-roll)
  are not frames.
* Only what is needed is decoded: for each sampled index we seek to the
  keyframe before it (keyframe positions are known from the packet pass) and
  decode forward, unless the decoder is already between that keyframe and the
  target, in which case it just keeps going. Cost is about
  ``16 * GOP length`` frames, bounded by the whole clip. When the targets are
  dense (``detect_video``'s timeline and segment clips), one pass from the
  start costs less than the seeks, and the packet index decides which
  (:func:`prefer_linear`). If the demuxer cannot seek, decoding falls back to
  one pass from the start.
* Frames are yielded one at a time (:class:`VideoReader`), so a caller that
  keeps only what it needs (faces, 224x224 copies) holds one full-resolution
  frame at a time, however many it samples.
* Limits (bytes; resolution from the stream header before decoding and again
  per frame; duration from the header and from packet timestamps) raise
  :class:`RequestError`. So does the decoding work itself, computed from the
  packet index before any frame is decoded: the frames the seeks and the
  decoding forward from each keyframe will touch, times the frame size, must
  stay within ``max_decode_pixels`` (one keyframe and 30,000 4K P-frames
  would otherwise be decoded whole: 81 s). The request's work budget is
  checked after every decoded frame.
* Threading: ``threads`` (default 2) decoder threads with FFmpeg's AUTO
  (frame + slice) mode. Triton runs several model instances per host, so
  per-request decoders should not each take every core.
* Display rotation metadata (phone videos) is applied to the frames, matching
  OpenCV's default ``CAP_PROP_ORIENTATION_AUTO``.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import av
import cv2
import numpy as np

from deepfake_contract import DETECT_VIDEO, TEMPORAL_ANALYZER, VIDEO
from deepfake_serving.audio import DEFAULT_MAX_NATIVE_SAMPLES, SAMPLE_RATE, decode_audio_stream
from deepfake_serving.budget import UNLIMITED, WorkBudget
from deepfake_serving.containers import (
    PYAV_ERRORS,
    check_bytes,
    check_declared_duration,
    decoding_errors,
    first_stream,
    open_container,
    require_decoder,
)
from deepfake_serving.errors import RequestError

NUM_FRAMES = TEMPORAL_ANALYZER.input.dims[0]
FRAME_SIZE = 224
# The limits and why they are what they are: deepfake_contract.pipelines.
DEFAULT_MAX_BYTES = int(DETECT_VIDEO.limits["max_bytes"])
DEFAULT_MAX_DURATION_S = float(DETECT_VIDEO.limits["max_duration_s"])
DEFAULT_MAX_PIXELS = int(DETECT_VIDEO.limits["max_pixels"])
DEFAULT_THREADS = 2
DEFAULT_MAX_DECODE_PIXELS = int(DETECT_VIDEO.limits["max_decode_pixels"])
# Above this rate a "video" is more likely a decompression bomb than footage.
_MAX_FPS = 300.0
#: What one seek costs, in decoded frames: flushing and refilling the decoder (measured
#: order of magnitude for H.264 with frame threads); only decides seek vs. one pass.
SEEK_COST_FRAMES = 4

SUPPORTED_VIDEO = VIDEO.formats


@dataclass
class SampledVideo:
    """Frames and metadata the video pipeline needs from one request.

    ``frames`` feed the temporal analyzer; ``frames_full`` (original
    resolution, RGB) feed face detection; all per-frame arrays have
    ``num_frames`` entries, padded by repeating the last frame for short
    clips, as the training code's sampling does.
    """

    frames: np.ndarray  # uint8[16, 224, 224, 3] RGB
    frames_full: np.ndarray  # uint8[16, H, W, 3] RGB, rotation applied
    times_s: np.ndarray  # float32[16], seconds from the first frame
    frame_indices: np.ndarray  # int64[16], index into the clip's frames
    total_frames: int
    duration_s: float
    fps: float
    audio: np.ndarray | None  # float32 mono 16 kHz, or None
    audio_error: str | None = None  # why a present audio track was not decoded
    decoded_frames: int = 0  # frames the decoder produced (cost metric)
    padded: int = field(default=0)  # how many trailing entries repeat the last frame
    distinct_frames: int = NUM_FRAMES  # different frames among the sampled ones (fewer: short or degenerate clip)

    @property
    def has_audio(self) -> bool:
        """Whether an audio track was present and decoded, i.e. there is audio to score."""
        return self.audio is not None


def sample_indices(total_frames: int, num_frames: int = NUM_FRAMES) -> np.ndarray:
    """``linspace(0, total - 1, num_frames)`` indices, padded with the last index for short clips."""
    if total_frames <= 0:
        raise ValueError("total_frames must be positive")
    if total_frames < num_frames:
        idx = np.arange(total_frames, dtype=np.int64)
        return np.concatenate([idx, np.full(num_frames - total_frames, total_frames - 1, dtype=np.int64)])
    return np.linspace(0, total_frames - 1, num_frames, dtype=int).astype(np.int64)


def frames_to_decode(pts_all: list[int], key_pts: list[int], targets: list[int], linear: bool) -> int:
    """How many frames the sampler decodes to reach ``targets`` (sorted), from the packet index alone.

    Mirrors :func:`_iter_targets`: a target is reached by decoding on from
    the current position when its keyframe is not past it, else by seeking to
    the keyframe at or before it; ``linear`` decodes from the start.
    """
    return _decode_cost(pts_all, key_pts, targets, linear)[0]


def _decode_cost(pts_all: list[int], key_pts: list[int], targets: list[int], linear: bool) -> tuple[int, int]:
    """``(frames decoded, seeks)`` to reach ``targets`` (sorted); see :func:`frames_to_decode`."""
    if linear:
        return bisect.bisect_right(pts_all, targets[-1]), 0
    frames, seeks, position = 0, 0, None
    for target in targets:
        k = bisect.bisect_right(key_pts, target) - 1
        key = key_pts[k] if k >= 0 else pts_all[0]
        start = position if position is not None and key <= position < target else None
        if start is None:
            frames += bisect.bisect_right(pts_all, target) - bisect.bisect_left(pts_all, key)
            seeks += 1
        else:
            frames += bisect.bisect_right(pts_all, target) - bisect.bisect_right(pts_all, start)
        position = target
    return frames, seeks


def prefer_linear(pts_all: list[int], key_pts: list[int], targets: list[int]) -> bool:
    """Whether one pass from the start is cheaper than seeking, from the sampling density.

    A seek flushes the demuxer and the decoder (and, with frame threading,
    refills its pipeline), which costs about :data:`SEEK_COST_FRAMES` decoded
    frames. Sparse targets in a long file (16 frames of a 10-minute video)
    are cheaper by seeking; dense ones (a frame every half second, clips at
    4 Hz) are cheaper decoded forward.
    """
    seek_frames, seeks = _decode_cost(pts_all, key_pts, targets, linear=False)
    linear_frames, _ = _decode_cost(pts_all, key_pts, targets, linear=True)
    return linear_frames <= seek_frames + SEEK_COST_FRAMES * seeks


@dataclass(frozen=True)
class _Limits:
    """The per-request limits the sampler enforces, passed down as one value."""

    max_duration_s: float
    max_pixels: int
    max_decode_pixels: int
    budget: WorkBudget


# --------------------------------------------------------------------------
# Frames: conversion
# --------------------------------------------------------------------------


def _rotate(rgb: np.ndarray, rotation: float) -> np.ndarray:
    """Apply display rotation (phone videos), as OpenCV's ``CAP_PROP_ORIENTATION_AUTO`` does."""
    k = int(round(rotation / 90.0)) % 4  # counter-clockwise quarter turns
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def _to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as the upright RGB array the models see."""
    return _rotate(frame.to_ndarray(format="rgb24"), frame.rotation or 0)


def _stack_frames(full: list[np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(frames_full, frames)``: the sampled frames stacked, and resized to ``size`` for the temporal analyzer.

    A resolution change mid-stream would make the full frames unstackable, so
    frames of another size are resized to the first one's (face detection only
    needs them stackable, not pixel-exact).
    """
    if len({f.shape for f in full}) > 1:
        h0, w0 = full[0].shape[:2]
        full = [f if f.shape == full[0].shape else cv2.resize(f, (w0, h0)) for f in full]
    frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_LINEAR) for f in full])
    return np.stack(full), frames


# --------------------------------------------------------------------------
# Header checks and the packet index (no decoding)
# --------------------------------------------------------------------------


def _check_pixels(width: int, height: int, max_pixels: int, input_name: str) -> None:
    """Refuse frames over ``max_pixels``: checked on the header and again per decoded frame, as headers can lie."""
    if width * height > max_pixels:
        raise RequestError(input_name, f"{width}x{height} pixels exceeds the limit of {max_pixels} pixels")


def _header_size(stream: av.video.stream.VideoStream) -> tuple[int, int]:
    """``(width, height)`` the stream header declares (0 where it declares none)."""
    ctx = stream.codec_context
    return int(ctx.width or 0), int(ctx.height or 0)


def _video_stream(
    container: av.container.InputContainer, max_pixels: int, input_name: str
) -> av.video.stream.VideoStream:
    """The first video stream, once its header shows it is decodable and within the pixel limit."""
    stream = first_stream(container, "video", input_name, SUPPORTED_VIDEO)
    require_decoder(stream, "video", input_name, SUPPORTED_VIDEO)
    _check_pixels(*_header_size(stream), max_pixels, input_name)
    return stream


def _scan_packets(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    max_duration_s: float,
    input_name: str,
) -> tuple[list[int], list[int]]:
    """Presentation timestamps of all frames and of keyframes, in stream time_base.

    A demux-only pass: exact frame count and timing even where the header has
    none (WebM) or the rate is variable, and the keyframe positions that make
    seeking and the decode-cost estimate possible. Refuses over-long streams
    from packet timestamps (and packet count), whatever the header said.
    """
    tb = float(stream.time_base)
    max_packets = int(max_duration_s * _MAX_FPS) + 1
    pts_all: list[int] = []
    key_pts: list[int] = []
    first = None
    for packet in container.demux(stream):
        if packet.size == 0 or packet.is_discard:
            continue
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None:
            # No timestamps at all (raw streams): fall back to packet order.
            ts = len(pts_all)
        pts_all.append(ts)
        if packet.is_keyframe:
            key_pts.append(ts)
        first = ts if first is None else min(first, ts)
        if len(pts_all) > max_packets or (ts - first) * tb > max_duration_s:
            raise RequestError(input_name, f"duration exceeds the limit of {max_duration_s:g} s")
    pts_all.sort()
    key_pts.sort()
    return pts_all, key_pts


def _timing(stream: av.video.stream.VideoStream, pts_all: list[int], declared: float | None) -> tuple[float, float]:
    """``(fps, duration_s)``: the header's values where it has them, else derived from packet timestamps."""
    tb = float(stream.time_base)
    total = len(pts_all)
    fps = float(stream.average_rate) if stream.average_rate else 0.0
    if fps <= 0 and total > 1:
        fps = (total - 1) / max((pts_all[-1] - pts_all[0]) * tb, 1e-9)
    if declared is not None:
        return fps, float(declared)
    return fps, float((pts_all[-1] - pts_all[0]) * tb + (1.0 / fps if fps else 0.0))


def _check_decode_work(
    pts_all: list[int],
    key_pts: list[int],
    targets: list[int],
    linear: bool,
    frame_pixels: int,
    limits: _Limits,
    input_name: str,
) -> None:
    """Refuse before decoding when reaching the targets costs more than ``max_decode_pixels``.

    One keyframe followed by 30,000 4K P-frames passes every other limit yet
    takes minutes to decode; the packet index says so up front.
    """
    work = frames_to_decode(pts_all, key_pts, targets, linear=linear) * max(frame_pixels, 1)
    if work > limits.max_decode_pixels:
        raise RequestError(
            input_name,
            f"reaching the sampled frames means decoding {work / 1e9:.1f} G pixels, over the limit of "
            f"{limits.max_decode_pixels / 1e9:g} G (max_decode_pixels: frames to decode x frame size); "
            "re-encode with more keyframes or at a lower resolution",
        )


def _keyframe_at_or_before(key_pts: list[int], target: int) -> int | None:
    """The pts of the last keyframe at or before ``target``: where a seek for it lands."""
    k = bisect.bisect_right(key_pts, target) - 1
    return key_pts[k] if k >= 0 else None


# --------------------------------------------------------------------------
# Decoding the sampled frames
# --------------------------------------------------------------------------


class _FrameDecoder:
    """The decoder's side of sampling: its position, how it gets near a target, and the per-frame limits.

    Seeking is the fast path. A demuxer that cannot seek switches the decoder
    to one linear pass over a freshly opened container (the packet scan left
    the first one at EOF) for the rest of the request.
    """

    def __init__(
        self,
        container: av.container.InputContainer,
        stream: av.video.stream.VideoStream,
        reopen: Callable[[], av.container.InputContainer],
        *,
        threads: int,
        linear: bool,
        limits: _Limits,
        input_name: str,
    ) -> None:
        self._reopen = reopen
        self._threads = threads
        self._limits = limits
        self._input_name = input_name
        self.linear = linear
        self.decoded = 0  # frames the decoder produced
        self.ended = False  # the last decode run reached the end of the stream
        self.position: int | None = None  # pts of the last decoded frame
        self.last_frame: av.VideoFrame | None = None  # converted to RGB only if needed for padding
        self.container, self.stream = container, stream
        if linear:
            self._restart()
        else:
            self._configure()

    def _configure(self) -> None:
        """Bounded frame + slice threading: several model instances share a host's cores."""
        self.stream.codec_context.thread_type = "AUTO"
        self.stream.codec_context.thread_count = max(1, int(self._threads))

    def _restart(self) -> None:
        """Continue on a fresh container, whose demuxer starts at the first packet."""
        self.container = self._reopen()
        self.stream = self.container.streams.video[0]
        self._configure()

    def go_near(self, key: int, target: int) -> None:
        """Seek to keyframe ``key`` unless decoding on from the current position reaches ``target`` sooner.

        A demuxer that refuses to seek switches the rest of the request to linear decoding.
        """
        if self.linear or (self.position is not None and key <= self.position < target):
            return
        try:
            self.container.seek(key, backward=True, any_frame=False, stream=self.stream)
        except PYAV_ERRORS:
            self.linear = True
            self.position = None
            self._restart()

    def frames(self, target: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """Decode on from here, yielding ``(pts, frame)``; ``target`` numbers frames of a stream without timestamps."""
        for packet in self.container.demux(self.stream):
            for frame in packet.decode():
                self._count(frame)
                pts = frame.pts if frame.pts is not None else frame.dts
                if pts is None:  # no timestamps: count frames from the seek point
                    pts = target if self.position is None else self.position + 1
                self.position, self.last_frame = pts, frame
                yield pts, frame

    def _count(self, frame: av.VideoFrame) -> None:
        """Charge one decoded frame: the cost metric, the work budget and the per-frame pixel limit."""
        self.decoded += 1
        self._limits.budget.check("video decoding")
        _check_pixels(frame.width, frame.height, self._limits.max_pixels, self._input_name)


def _decode_run(decoder: _FrameDecoder, pending: deque[int], key_pts: list[int]) -> Iterator[tuple[int, av.VideoFrame]]:
    """Decode forward, yielding ``(target, frame)`` for the ``pending`` targets, until none is left or a seek pays off.

    Sets ``decoder.ended`` when the stream ended with targets still pending.
    """
    decoder.ended = False
    for pts, frame in decoder.frames(pending[0]):
        if pts < pending[0]:
            continue  # only convert to RGB what is kept
        # pts > target: exact frame missing (broken index); take the next one.
        while pending and pending[0] <= pts:
            yield pending.popleft(), frame
        if not pending:
            return
        key = _keyframe_at_or_before(key_pts, pending[0])
        if not decoder.linear and key is not None and key > pts:
            return  # the next target's keyframe lies ahead: seek there rather than decode on
    decoder.ended = True


def _iter_targets(
    decoder: _FrameDecoder, targets: list[int], pts_all: list[int], key_pts: list[int], input_name: str
) -> Iterator[tuple[int, np.ndarray]]:
    """``(target pts, RGB frame)`` for each of ``targets`` (sorted pts), in order, one frame in memory at a time.

    Targets the stream ended before get the last decoded frame: the index
    promised more frames than decoding gave, and OpenCV's failed reads plus
    the training code's padding would repeat the last frame too.
    """
    pending = deque(targets)
    while pending:
        key = _keyframe_at_or_before(key_pts, pending[0])
        decoder.go_near(pts_all[0] if key is None else key, pending[0])
        last: tuple[av.VideoFrame, np.ndarray] | None = None
        for target, frame in _decode_run(decoder, pending, key_pts):
            if last is None or last[0] is not frame:
                last = frame, _to_rgb(frame)
            yield target, last[1]
        if decoder.ended and pending:
            if decoder.last_frame is None:
                raise RequestError(input_name, "no video frame could be decoded")
            fill = _to_rgb(decoder.last_frame)
            while pending:
                yield pending.popleft(), fill


# --------------------------------------------------------------------------
# The reader: index first, then the frames a caller asks for
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoIndex:
    """What the packet pass knows about a video before any frame is decoded."""

    pts: list[int]  # every frame's presentation timestamp, sorted, in time_base units
    key_pts: list[int]  # the keyframes' timestamps
    time_base: float
    fps: float
    duration_s: float
    width: int  # as the header declares (0 when it declares none)
    height: int

    @property
    def total_frames(self) -> int:
        """Frames in the stream."""
        return len(self.pts)

    @functools.cached_property
    def times_s(self) -> np.ndarray:
        """``float64[total_frames]``: each frame's time in seconds from the first frame."""
        return (np.asarray(self.pts, dtype=np.float64) - self.pts[0]) * self.time_base


class VideoReader:
    """One upload's video stream: its :class:`VideoIndex`, then frames decoded forward on demand.

    Every check that needs no decoding (bytes, header, duration, packet
    timestamps) runs when it opens. :meth:`frames` checks the decoding work
    against ``max_decode_pixels`` before decoding any frame, chooses between
    seeking and one pass (:func:`prefer_linear`), and yields frames one at a
    time, so a caller that does not keep them holds one full-resolution
    frame, whatever the sampling density.
    """

    def __init__(
        self,
        data: bytes,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_duration_s: float = DEFAULT_MAX_DURATION_S,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        threads: int = DEFAULT_THREADS,
        seek: bool = True,
        input_name: str = "VIDEO",
        max_decode_pixels: int = DEFAULT_MAX_DECODE_PIXELS,
        budget: WorkBudget = UNLIMITED,
    ) -> None:
        check_bytes(data, max_bytes, input_name)
        self._data = data
        self.input_name = input_name
        self.limits = _Limits(max_duration_s, max_pixels, max_decode_pixels, budget)
        self._threads = threads
        self._seek = seek
        self._stack = contextlib.ExitStack()
        self.decoded_frames = 0
        with decoding_errors(input_name, "video"):
            self._container = self._reopen()
            self._stream = _video_stream(self._container, max_pixels, input_name)
            declared = check_declared_duration(self._container, self._stream, max_duration_s, input_name)
            pts_all, key_pts = _scan_packets(self._container, self._stream, max_duration_s, input_name)
            if not pts_all:
                raise RequestError(input_name, "the video stream has no frames")
            fps, duration_s = _timing(self._stream, pts_all, declared)
            width, height = _header_size(self._stream)
            self.has_audio_stream = bool(self._container.streams.audio)
        self.index = VideoIndex(pts_all, key_pts, float(self._stream.time_base), fps, duration_s, width, height)
        self._used = False

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every container opened for this upload."""
        self._stack.close()

    def _reopen(self) -> av.container.InputContainer:
        """Open the upload (again): linear decoding needs a demuxer at the start."""
        return self._stack.enter_context(open_container(self._data, self.input_name, SUPPORTED_VIDEO))

    def decode_work(self, indices: list[int]) -> int:
        """Pixels :meth:`frames` would decode for ``indices`` (sorted, distinct frame indices)."""
        targets = [self.index.pts[i] for i in indices]
        linear = not self._seek or prefer_linear(self.index.pts, self.index.key_pts, targets)
        frames = frames_to_decode(self.index.pts, self.index.key_pts, targets, linear=linear)
        return frames * max(self.index.width * self.index.height, 1)

    def frames(self, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        """``(index, RGB frame)`` for sorted, distinct frame ``indices``, decoded forward once.

        Raises:
            RequestError: the decoding work is over ``max_decode_pixels`` (before
                decoding anything), a frame is over ``max_pixels``, the work
                budget is spent, or the stream cannot be decoded.
        """
        if self._used:
            raise RuntimeError("VideoReader.frames decodes forward once per reader")
        self._used = True
        if not indices:
            return
        pts_all, key_pts = self.index.pts, self.index.key_pts
        targets = [pts_all[i] for i in indices]
        linear = not self._seek or prefer_linear(pts_all, key_pts, targets)
        width, height = self.index.width, self.index.height
        _check_decode_work(pts_all, key_pts, targets, linear, width * height, self.limits, self.input_name)
        by_pts = dict(zip(targets, indices, strict=True))
        with decoding_errors(self.input_name, "video"):
            decoder = _FrameDecoder(
                self._container,
                self._stream,
                self._reopen,
                threads=self._threads,
                linear=linear,
                limits=self.limits,
                input_name=self.input_name,
            )
            try:
                for pts, rgb in _iter_targets(decoder, targets, pts_all, key_pts, self.input_name):
                    yield by_pts[pts], rgb
            finally:
                self.decoded_frames = decoder.decoded


def open_video(data: bytes, **limits: Any) -> VideoReader:
    """A :class:`VideoReader` over ``data`` (use it as a context manager); ``limits`` are its keyword arguments."""
    return VideoReader(data, **limits)


def to_size(frame: np.ndarray, size: int = FRAME_SIZE) -> np.ndarray:
    """A frame resized to ``size`` x ``size`` the way the temporal analyzer's training sampling does."""
    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_LINEAR)


# --------------------------------------------------------------------------
# The specification's sampler: 16 frames across the clip
# --------------------------------------------------------------------------


def audio_of_video(
    data: bytes, *, max_duration_s: float, input_name: str, max_native_samples: int, budget: WorkBudget
) -> tuple[np.ndarray | None, str | None]:
    """``(audio, None)`` for the first audio track at 16 kHz, or ``(None, why)`` when it cannot be decoded.

    A bad audio track does not fail the request: the frames are still
    scoreable, and the caller decides how to report it.
    """
    try:
        with open_container(data, input_name, SUPPORTED_VIDEO) as container:
            audio = decode_audio_stream(
                container,
                container.streams.audio[0],
                target_sr=SAMPLE_RATE,
                max_duration_s=max_duration_s,
                input_name=input_name,
                max_native_samples=max_native_samples,
                budget=budget,
            )
    except RequestError as exc:
        return None, exc.problem
    return audio, None


def sample_video(
    data: bytes,
    *,
    num_frames: int = NUM_FRAMES,
    size: int = FRAME_SIZE,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    threads: int = DEFAULT_THREADS,
    seek: bool = True,
    decode_audio_track: bool = True,
    input_name: str = "VIDEO",
    max_decode_pixels: int = DEFAULT_MAX_DECODE_PIXELS,
    max_native_samples: int = DEFAULT_MAX_NATIVE_SAMPLES,
    budget: WorkBudget = UNLIMITED,
) -> SampledVideo:
    """Decode ``num_frames`` evenly spaced frames (and the audio track) of a video in memory.

    ``seek=False`` decodes from the start instead of seeking (what happens
    anyway when the demuxer cannot seek, or when one pass is cheaper).
    Raises :class:`RequestError` for bad, unsupported or over-limit input;
    PyAV's exceptions never escape.
    """
    with VideoReader(
        data,
        max_bytes=max_bytes,
        max_duration_s=max_duration_s,
        max_pixels=max_pixels,
        threads=threads,
        seek=seek,
        input_name=input_name,
        max_decode_pixels=max_decode_pixels,
        budget=budget,
    ) as reader:
        index = reader.index
        indices = sample_indices(index.total_frames, num_frames)
        distinct = sorted(set(indices.tolist()))
        grabbed = dict(reader.frames(distinct))
        frames_full, frames = _stack_frames([grabbed[i] for i in indices], size)
        has_audio_stream = reader.has_audio_stream
        result = SampledVideo(
            frames=frames,
            frames_full=frames_full,
            times_s=index.times_s[indices].astype(np.float32),
            frame_indices=indices,
            total_frames=index.total_frames,
            duration_s=index.duration_s,
            fps=index.fps,
            audio=None,
            decoded_frames=reader.decoded_frames,
            padded=max(0, num_frames - index.total_frames),
            distinct_frames=len(distinct),
        )
    if has_audio_stream and decode_audio_track:
        result.audio, result.audio_error = audio_of_video(
            data,
            max_duration_s=max_duration_s,
            input_name=input_name,
            max_native_samples=max_native_samples,
            budget=budget,
        )
    return result

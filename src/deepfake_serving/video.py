"""Frame sampling for the temporal analyzer (spec section 6) from bytes in memory.

The spec samples ``np.linspace(0, total - 1, 16, dtype=int)`` frame indices
with OpenCV, converts BGR->RGB and resizes to 224x224 (``cv2.INTER_LINEAR``).
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
  ``16 * GOP length`` frames, bounded by the whole clip. If the demuxer
  cannot seek, decoding falls back to one pass from the start.
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
from collections.abc import Callable
from dataclasses import dataclass, field

import av
import cv2
import numpy as np

from deepfake_serving.audio import (
    _PYAV_ERRORS,
    DEFAULT_MAX_NATIVE_SAMPLES,
    SAMPLE_RATE,
    _check_bytes,
    _describe,
    decode_audio_stream,
    open_container,
)
from deepfake_serving.budget import UNLIMITED, WorkBudget
from deepfake_serving.errors import RequestError

NUM_FRAMES = 16
FRAME_SIZE = 224
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_DURATION_S = 600.0
DEFAULT_MAX_PIXELS = 3840 * 2160  # 16 sampled 4K RGB frames are ~400 MB
DEFAULT_THREADS = 2
#: Frames decoded x pixels per frame: about 1,200 4K or 4,800 1080p frames,
#: about 10 CPU seconds at the reported 2.7 ms per 4K frame of one-keyframe H.264 (estimated).
DEFAULT_MAX_DECODE_PIXELS = 10_000_000_000
# Above this rate a "video" is more likely a decompression bomb than footage.
_MAX_FPS = 300.0

SUPPORTED_VIDEO = "MP4/MOV (H.264/AAC), WebM (VP9/Opus) or AVI (MJPEG)"


@dataclass
class SampledVideo:
    """Frames and metadata the video pipeline needs from one request.

    ``frames`` feed the temporal analyzer; ``frames_full`` (original
    resolution, RGB) feed face detection; all per-frame arrays have
    ``num_frames`` entries, padded by repeating the last frame as the spec
    does for short clips.
    """

    frames: np.ndarray  # uint8[16, 224, 224, 3] RGB
    frames_full: np.ndarray  # uint8[16, H, W, 3] RGB, rotation applied
    times_s: np.ndarray  # float32[16], seconds from the first frame
    frame_indices: np.ndarray  # int64[16], index into the clip's frames
    total_frames: int
    duration_s: float
    fps: float
    width: int
    height: int
    has_audio: bool  # an audio track was present and decoded
    audio: np.ndarray | None  # float32 mono 16 kHz, or None
    audio_error: str | None = None  # why a present audio track was not decoded
    decoded_frames: int = 0  # frames the decoder produced (cost metric)
    padded: int = field(default=0)  # how many trailing entries repeat the last frame
    distinct_frames: int = NUM_FRAMES  # different frames among the sampled ones (fewer: short or degenerate clip)


def sample_indices(total_frames: int, num_frames: int = NUM_FRAMES) -> np.ndarray:
    """Spec section 6 indices, padded with the last index for short clips."""
    if total_frames <= 0:
        raise ValueError("total_frames must be positive")
    if total_frames < num_frames:
        idx = np.arange(total_frames, dtype=np.int64)
        return np.concatenate([idx, np.full(num_frames - total_frames, total_frames - 1, dtype=np.int64)])
    return np.linspace(0, total_frames - 1, num_frames, dtype=int).astype(np.int64)


def frames_to_decode(pts_all: list[int], key_pts: list[int], targets: list[int], linear: bool) -> int:
    """How many frames the sampler decodes to reach ``targets`` (sorted), from the packet index alone.

    Mirrors the loop in :func:`_sample`: a target is reached by decoding on
    from the current position when its keyframe is not past it, else by
    seeking to the keyframe at or before it; ``linear`` decodes from the start.
    """
    if linear:
        return bisect.bisect_right(pts_all, targets[-1])
    frames, position = 0, None
    for target in targets:
        k = bisect.bisect_right(key_pts, target) - 1
        key = key_pts[k] if k >= 0 else pts_all[0]
        start = position if position is not None and key <= position < target else None
        if start is None:
            frames += bisect.bisect_right(pts_all, target) - bisect.bisect_left(pts_all, key)
        else:
            frames += bisect.bisect_right(pts_all, target) - bisect.bisect_right(pts_all, start)
        position = target
    return frames


def _rotate(rgb: np.ndarray, rotation: float) -> np.ndarray:
    k = int(round(rotation / 90.0)) % 4  # counter-clockwise quarter turns
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def _to_rgb(frame: av.VideoFrame) -> np.ndarray:
    return _rotate(frame.to_ndarray(format="rgb24"), frame.rotation or 0)


def _scan_packets(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    max_duration_s: float,
    input_name: str,
) -> tuple[list[int], list[int]]:
    """Presentation timestamps of all frames and of keyframes, in stream time_base."""
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
    anyway when the demuxer cannot seek). Raises :class:`RequestError` for
    bad, unsupported or over-limit input; PyAV's exceptions never escape.
    """
    _check_bytes(data, max_bytes, input_name)
    container = open_container(data, input_name, SUPPORTED_VIDEO)
    try:
        with container, contextlib.ExitStack() as stack:

            def reopen() -> av.container.InputContainer:
                return stack.enter_context(open_container(data, input_name, SUPPORTED_VIDEO))

            limits = _Limits(max_duration_s, max_pixels, max_decode_pixels, budget)
            result = _sample(container, reopen, num_frames, size, limits, threads, seek, input_name)
            has_audio_stream = bool(container.streams.audio)
    except RequestError:
        raise
    except _PYAV_ERRORS as exc:
        raise RequestError(input_name, f"corrupt or truncated video ({_describe(exc)})") from None

    if has_audio_stream and decode_audio_track:
        try:
            with open_container(data, input_name, SUPPORTED_VIDEO) as audio_container:
                result.audio = decode_audio_stream(
                    audio_container,
                    audio_container.streams.audio[0],
                    target_sr=SAMPLE_RATE,
                    max_duration_s=max_duration_s,
                    input_name=input_name,
                    max_native_samples=max_native_samples,
                    budget=budget,
                )
                result.has_audio = True
        except RequestError as exc:
            # Frames are still scoreable; the caller decides how to report it.
            result.audio_error = exc.problem
    return result


@dataclass(frozen=True)
class _Limits:
    max_duration_s: float
    max_pixels: int
    max_decode_pixels: int
    budget: WorkBudget


def _sample(
    container: av.container.InputContainer,
    reopen: Callable[[], av.container.InputContainer],
    num_frames: int,
    size: int,
    limits: _Limits,
    threads: int,
    seek: bool,
    input_name: str,
) -> SampledVideo:
    max_duration_s, max_pixels = limits.max_duration_s, limits.max_pixels
    if not container.streams.video:
        raise RequestError(input_name, f"no video stream found; accepted: {SUPPORTED_VIDEO}")
    stream = container.streams.video[0]
    ctx = stream.codec_context
    if ctx is None or not ctx.name:
        raise RequestError(
            input_name,
            f"video codec {(ctx.name if ctx else None) or 'unknown'} cannot be decoded; accepted: {SUPPORTED_VIDEO}",
        )
    width, height = int(ctx.width or 0), int(ctx.height or 0)
    if width * height > max_pixels:
        raise RequestError(input_name, f"{width}x{height} pixels exceeds the limit of {max_pixels} pixels")
    declared = None
    if stream.duration and stream.time_base:
        declared = float(stream.duration * stream.time_base)
    elif container.duration:
        declared = container.duration / av.time_base
    if declared is not None and declared > max_duration_s + 0.5:
        raise RequestError(input_name, f"duration {declared:.1f} s exceeds the limit of {max_duration_s:g} s")

    pts_all, key_pts = _scan_packets(container, stream, max_duration_s, input_name)
    if not pts_all:
        raise RequestError(input_name, "the video stream has no frames")
    total = len(pts_all)
    tb = float(stream.time_base)
    fps = float(stream.average_rate) if stream.average_rate else 0.0
    if fps <= 0 and total > 1:
        fps = (total - 1) / max((pts_all[-1] - pts_all[0]) * tb, 1e-9)
    duration_s = declared if declared is not None else (pts_all[-1] - pts_all[0]) * tb + (1.0 / fps if fps else 0.0)

    indices = sample_indices(total, num_frames)
    targets = sorted({pts_all[i] for i in indices})
    work = frames_to_decode(pts_all, key_pts, targets, linear=not seek) * max(width * height, 1)
    if work > limits.max_decode_pixels:
        raise RequestError(
            input_name,
            f"reaching the sampled frames means decoding {work / 1e9:.1f} G pixels, over the limit of "
            f"{limits.max_decode_pixels / 1e9:g} G (max_decode_pixels: frames to decode x frame size); "
            "re-encode with more keyframes or at a lower resolution",
        )

    def configure(s: av.video.stream.VideoStream) -> None:
        s.codec_context.thread_type = "AUTO"
        s.codec_context.thread_count = max(1, int(threads))

    def go_linear() -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
        # The packet scan left the demuxer at EOF; a fresh one starts at 0.
        fresh = reopen()
        fresh_stream = fresh.streams.video[0]
        configure(fresh_stream)
        return fresh, fresh_stream

    linear = not seek
    if linear:
        container, stream = go_linear()
    else:
        configure(stream)

    grabbed: dict[int, np.ndarray] = {}
    decoded = 0
    position: int | None = None  # pts of the last decoded frame
    last_frame: av.VideoFrame | None = None  # converted to RGB only if needed for padding
    t_iter = iter(targets)
    target = next(t_iter)
    done = False
    while not done:
        k = bisect.bisect_right(key_pts, target) - 1
        key = key_pts[k] if k >= 0 else pts_all[0]
        if not linear and (position is None or not (key <= position < target)):
            try:
                container.seek(key, backward=True, any_frame=False, stream=stream)
            except _PYAV_ERRORS:
                linear = True
                position = None
                container, stream = go_linear()
        reached_end = True
        for packet in container.demux(stream):
            for frame in packet.decode():
                decoded += 1
                limits.budget.check("video decoding")
                if frame.width * frame.height > max_pixels:
                    raise RequestError(
                        input_name, f"{frame.width}x{frame.height} pixels exceeds the limit of {max_pixels} pixels"
                    )
                fpts = frame.pts if frame.pts is not None else frame.dts
                if fpts is None:  # no timestamps: count frames from the seek point
                    fpts = target if position is None else position + 1
                position = fpts
                last_frame = frame
                if fpts < target:
                    continue  # only convert to RGB what is kept
                rgb = _to_rgb(frame)
                # fpts > target: exact frame missing (broken index); take the next one.
                while True:
                    grabbed[target] = rgb
                    target = next(t_iter, None)
                    if target is None or fpts < target:
                        break
                if target is None:
                    done = True
                    break
                # The next target may need a seek rather than decoding on.
                k = bisect.bisect_right(key_pts, target) - 1
                if not linear and k >= 0 and key_pts[k] > position:
                    reached_end = False
                    break
            if done or not reached_end:
                break
        if done:
            break
        if reached_end:
            # Stream ended before the remaining targets (index promised more
            # frames than decode): repeat the last decoded frame, as OpenCV's
            # failed reads + padding would.
            if last_frame is None:
                raise RequestError(input_name, "no video frame could be decoded")
            fill = _to_rgb(last_frame)
            while target is not None:
                grabbed[target] = fill
                target = next(t_iter, None)
            done = True

    full = [grabbed[pts_all[i]] for i in indices]
    shapes = {f.shape for f in full}
    if len(shapes) > 1:  # resolution changed mid-stream: keep face-detector input stackable
        h0, w0 = full[0].shape[:2]
        full = [f if f.shape == full[0].shape else cv2.resize(f, (w0, h0)) for f in full]
    frames_full = np.stack(full)
    frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_LINEAR) for f in full])
    t0 = pts_all[0]
    times = np.array([(pts_all[i] - t0) * tb for i in indices], dtype=np.float32)
    return SampledVideo(
        frames=frames,
        frames_full=frames_full,
        times_s=times,
        frame_indices=indices,
        total_frames=total,
        duration_s=float(duration_s),
        fps=fps,
        width=int(frames_full.shape[2]),
        height=int(frames_full.shape[1]),
        has_audio=False,
        audio=None,
        decoded_frames=decoded,
        padded=max(0, num_frames - total),
        distinct_frames=len(targets),
    )

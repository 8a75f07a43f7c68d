"""Which frames ``detect_video`` looks at: the spec's 16, a timeline, and segment clips.

The specification samples 16 frames across the whole file. For a 10 s clip
that is a frame every 0.6 s; for a 10-minute interview one every 37 s, so a
20-second face swap is seen in at most one frame and the temporal analyzer's
"frame consistency" is measured across frames half a minute apart. So a
request is planned as three sets of frame indices, decoded in one forward
pass (:class:`deepfake_serving.video.VideoReader`):

* **temporal**: the specification's 16 (``TEMPORAL_FAKE_PROB``, unchanged).
* **timeline**: frames every ``1 / frame_rate_hz`` seconds, at least the
  16 (a short clip is sampled exactly as the specification does, so its
  timeline *is* those 16) and at most ``max_frames`` (a longer video is
  sampled evenly at a lower rate). Faces are found and scored on these.
* **segments**: clips of 16 frames taken ``1 / segment_frame_rate_hz``
  apart, so each clip spans ``16 / segment_frame_rate_hz`` seconds, placed
  every ``segment_stride_s`` across the whole duration (the last ends at the
  last frame), at most ``max_segments`` (a longer video spreads them out).
  The temporal analyzer scores each clip.

Defaults and their cost (perf/RESULTS.md, "Whole-video coverage"): 2 Hz
timeline (a person on screen for 2 s is seen in 4 frames, enough for a
track; MTCNN plus the visual detector are the largest per-frame cost) and
4 s clips at 4 Hz every 4 s (the clips tile the video; 4 Hz is denser than
the 16-over-10-s the analyzer was trained on, so a clip still spans
whole movements; the analyzer costs about 0.4 CPU s per clip on the shipped
CPU, so 0.1 CPU s per second of video). ``max_frames`` 240 and
``max_segments`` 16 keep a 10-minute file within the request's work budget.

When the plan's decoding work would exceed ``max_decode_pixels`` (a long,
high-resolution file with few keyframes), :func:`fit_plan` halves the
timeline and the segments until it fits; only when the specification's 16
frames alone do not fit is the request refused, as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from deepfake_contract import DETECT_VIDEO
from deepfake_serving.video import NUM_FRAMES, VideoIndex, sample_indices


@dataclass(frozen=True)
class CoverageSettings:
    """The ``detect_video`` config parameters that choose the frames (see the module docstring)."""

    frame_rate_hz: float = float(DETECT_VIDEO.limits["frame_rate_hz"])
    max_frames: int = int(DETECT_VIDEO.limits["max_frames"])
    segment_stride_s: float = float(DETECT_VIDEO.limits["segment_stride_s"])
    segment_frame_rate_hz: float = float(DETECT_VIDEO.limits["segment_frame_rate_hz"])
    max_segments: int = int(DETECT_VIDEO.limits["max_segments"])

    def __post_init__(self) -> None:
        if not (self.frame_rate_hz > 0 and self.segment_stride_s > 0 and self.segment_frame_rate_hz > 0):
            raise ValueError("frame_rate_hz, segment_stride_s and segment_frame_rate_hz must be positive")
        if self.max_frames < NUM_FRAMES:
            raise ValueError(f"max_frames must be at least {NUM_FRAMES}: the timeline holds the spec's frames")
        if self.max_segments < 1:
            raise ValueError("max_segments must be at least 1")

    @property
    def clip_s(self) -> float:
        """How long one segment clip lasts."""
        return NUM_FRAMES / self.segment_frame_rate_hz


@dataclass(frozen=True)
class VideoPlan:
    """The frame indices one request decodes, by what they are for."""

    temporal: np.ndarray  # int64[16]: the specification's sample
    timeline: np.ndarray  # int64[f]: frames whose faces are scored (repeats in clips under 16 frames)
    segments: np.ndarray  # int64[s, 16]: each segment clip's frames
    segment_start_s: np.ndarray  # float32[s]
    segment_end_s: np.ndarray  # float32[s]

    @property
    def decode(self) -> list[int]:
        """Every frame the plan needs, sorted, each once."""
        return sorted(set(self.temporal.tolist()) | set(self.timeline.tolist()) | set(self.segments.ravel().tolist()))


def _span_s(index: VideoIndex) -> float:
    """Seconds from the first frame to the end of the last one."""
    return float(index.times_s[-1]) + (1.0 / index.fps if index.fps > 0 else 0.0)


def _on_screen(index: VideoIndex, times_s: np.ndarray) -> np.ndarray:
    """The frame on screen at each of ``times_s``; past the end, the last frame."""
    frames = np.searchsorted(index.times_s, times_s + 1e-9, side="right") - 1
    return np.clip(frames, 0, index.total_frames - 1).astype(np.int64)


def timeline_indices(index: VideoIndex, settings: CoverageSettings) -> np.ndarray:
    """Frames every ``1 / frame_rate_hz`` s from the first: at least the spec's 16, at most ``max_frames``.

    A clip too short for 16 grid points is sampled as the specification does
    (its timeline is the temporal frames); a video too long for ``max_frames``
    is sampled evenly at the lower rate that fits.
    """
    # The epsilon keeps 30.0000001 s at 2 Hz at 60 frames, not 61.
    wanted = math.ceil(_span_s(index) * settings.frame_rate_hz - 1e-6)
    if wanted <= NUM_FRAMES or index.total_frames <= NUM_FRAMES:
        return sample_indices(index.total_frames, NUM_FRAMES)
    if wanted > settings.max_frames:
        return sample_indices(index.total_frames, min(settings.max_frames, index.total_frames))
    # A video of fewer frames per second than frame_rate_hz has each frame once.
    return np.unique(_on_screen(index, np.arange(wanted) / settings.frame_rate_hz))


def segment_clips(index: VideoIndex, settings: CoverageSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(frames[s, 16], start_s[s], end_s[s])`` of the segment clips (see the module docstring)."""
    span, clip = _span_s(index), settings.clip_s
    if span <= clip:
        starts = np.zeros(1)
    else:
        count = min(settings.max_segments, math.ceil((span - clip) / settings.segment_stride_s) + 1)
        starts = np.linspace(0.0, span - clip, count) if count > 1 else np.zeros(1)
    offsets = np.arange(NUM_FRAMES) / settings.segment_frame_rate_hz
    wanted_times = starts[:, None] + offsets[None, :]
    # Past the end, the last frame: a short clip is padded as the specification pads.
    frames = _on_screen(index, wanted_times)
    start_s = index.times_s[frames[:, 0]]
    end_s = np.minimum(starts + clip, span)
    return frames, start_s.astype(np.float32), end_s.astype(np.float32)


def plan_video(index: VideoIndex, settings: CoverageSettings) -> VideoPlan:
    """The frames one request decodes at ``settings``."""
    segments, start_s, end_s = segment_clips(index, settings)
    return VideoPlan(
        temporal=sample_indices(index.total_frames, NUM_FRAMES),
        timeline=timeline_indices(index, settings),
        segments=segments,
        segment_start_s=start_s,
        segment_end_s=end_s,
    )


def fit_plan(
    index: VideoIndex, settings: CoverageSettings, decode_work: Callable[[list[int]], int], max_decode_pixels: int
) -> tuple[VideoPlan, bool]:
    """``(plan, reduced)``: the plan at ``settings``, halved until its decoding work fits ``max_decode_pixels``.

    ``reduced`` says the coverage is sparser than configured. The smallest
    plan (16 timeline frames, one segment) is returned even when it does not
    fit: the reader then refuses the request with the limit's message.
    """
    plan, reduced = plan_video(index, settings), False
    while decode_work(plan.decode) > max_decode_pixels:
        frames, segments = len(plan.timeline), len(plan.segments)
        if frames <= NUM_FRAMES and segments <= 1:
            break
        settings = replace(
            settings,
            max_frames=max(NUM_FRAMES, frames // 2),
            max_segments=max(1, segments // 2),
        )
        plan, reduced = plan_video(index, settings), True
    return plan, reduced

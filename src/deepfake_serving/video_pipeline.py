"""Encoded video -> everything ``detect_video`` scores, without Triton.

:func:`analyze_video` is what ``detect_video`` runs: one forward decode of
the frames :mod:`deepfake_serving.video_plan` chooses feeds the
specification's 16-frame view, a frame timeline with faces linked into
tracks (:mod:`deepfake_serving.tracking`), the segment clips, and the audio
track. The detectors are passed in as functions (BLS calls in Triton, ONNX
Runtime sessions in tests and benchmarks), so this module decides what is
scored and how, never where.

The views, as the specification's 16-frame sampling defines them (the
functions below :func:`analyze_video` compute them on a
:class:`~deepfake_serving.video.SampledVideo`, for training and tests):

* **Temporal analyzer input**: the 16 sampled frames, whole, resized to
  224x224 exactly as the analyzer's training sampling code does, then
  normalized with the visual detector's ImageNet mean/std. Whole frames
  rather than face-tracked crops because that is what the training sampling
  code (and so the analyzer's training data) uses, because a face track
  breaks when MTCNN misses a face in some frames (the temporal model needs
  all 16), and because inconsistencies also show at face/background seams.
  The training code fixes no normalization for the analyzer; the visual detector's
  is the one the served frames already get elsewhere, and the choice is
  recorded here so retraining can match it.
* **Frame timeline**: each sampled frame goes through the image path's face
  detector (MTCNN in-process) and its faces to the visual detector. A
  frame's score is the maximum over its faces (one manipulated face is
  enough); a frame without a face gets ``NO_SCORE`` (-1) and
  ``FRAME_HAS_FACE`` false. Repeated frames (clips shorter than 16 frames)
  are detected once.
* **Audio track**: windows and mels as ``detect_audio`` makes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from deepfake_serving.audio_pipeline import (
    DEFAULT_LIMITS,
    LOG_MEL,
    AudioInput,
    AudioLimits,
    AudioWindows,
    windows_from_samples,
)
from deepfake_serving.budget import UNLIMITED, WorkBudget
from deepfake_serving.faces import normalize_for_visual
from deepfake_serving.fusion import NO_SCORE, AudioAggregation, FrameAggregation
from deepfake_serving.image_pipeline import FaceDetector
from deepfake_serving.tracking import Tracks, TrackSettings, link_faces, score_tracks
from deepfake_serving.video import FRAME_SIZE, NUM_FRAMES, SampledVideo, VideoReader, audio_of_video, to_size
from deepfake_serving.video_plan import CoverageSettings, VideoPlan, fit_plan

#: A detector as the pipeline sees it: a batch of inputs -> each one's fake probability.
Scorer = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class FrameFaces:
    """The faces of the 16 sampled frames, flattened for one visual-detector batch."""

    visual_input: np.ndarray  # float32[n, 3, 224, 224], all faces of all frames
    frame_of_face: np.ndarray  # int64[n], which of the 16 frames each face is in
    has_face: np.ndarray  # bool[16]
    face_count: np.ndarray  # int32[16]


def temporal_input(sample: SampledVideo) -> np.ndarray:
    """``float32[1, 16, 3, 224, 224]`` for the temporal analyzer (see the module docstring)."""
    return normalize_for_visual(sample.frames)[np.newaxis]


def detect_frame_faces(detector: FaceDetector, sample: SampledVideo, budget: WorkBudget = UNLIMITED) -> FrameFaces:
    """Run MTCNN on each distinct sampled frame; faces only (no center-crop fallback)."""
    per_frame: dict[int, np.ndarray] = {}
    inputs: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    has_face = np.zeros(NUM_FRAMES, dtype=bool)
    counts = np.zeros(NUM_FRAMES, dtype=np.int32)
    for slot, index in enumerate(sample.frame_indices.tolist()):
        if index not in per_frame:
            faces = detector.detect_rgb(sample.frames_full[slot], budget, "VIDEO")
            per_frame[index] = faces.visual_input if faces.face_found else np.empty((0, 3, 224, 224), np.float32)
        found = per_frame[index]
        has_face[slot] = len(found) > 0
        counts[slot] = len(found)
        if len(found):
            inputs.append(found)
            owners.append(np.full(len(found), slot, dtype=np.int64))
    return FrameFaces(
        visual_input=np.concatenate(inputs) if inputs else np.empty((0, 3, 224, 224), np.float32),
        frame_of_face=np.concatenate(owners) if owners else np.empty(0, np.int64),
        has_face=has_face,
        face_count=counts,
    )


def frame_scores(face_fake_prob: np.ndarray, faces: FrameFaces) -> np.ndarray:
    """``float32[16]``: max fake probability over each frame's faces, ``NO_SCORE`` without a face."""
    out = np.full(NUM_FRAMES, -np.inf)
    np.maximum.at(out, faces.frame_of_face, np.asarray(face_fake_prob, dtype=np.float64).reshape(-1))
    out[~faces.has_face] = NO_SCORE
    return out.astype(np.float32)


def audio_track(
    sample: SampledVideo, limits: AudioLimits = DEFAULT_LIMITS, audio_input: AudioInput = LOG_MEL
) -> AudioWindows | None:
    """The video's audio track as detector windows, or ``None`` without a decodable track."""
    if sample.audio is None or sample.audio.size == 0:
        return None
    return windows_from_samples(sample.audio, limits, audio_input)


def batches(array: np.ndarray, size: int) -> list[np.ndarray]:
    """Split along axis 0 into chunks of at most ``size`` (a model's max_batch_size)."""
    return [array[i : i + size] for i in range(0, len(array), size)]


# --------------------------------------------------------------------------
# The whole video: timeline, tracks, segments and audio (what detect_video runs)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Detectors:
    """The three detectors ``detect_video`` calls, each with the largest batch it takes."""

    visual: Scorer
    temporal: Scorer
    audio: Scorer
    visual_batch: int = 8
    temporal_batch: int = 8


@dataclass(frozen=True)
class VideoRules:
    """Everything that turns frames and scores into the answer: coverage, tracking, aggregation."""

    coverage: CoverageSettings = CoverageSettings()
    tracks: TrackSettings = TrackSettings()
    frames: FrameAggregation = FrameAggregation()
    audio: AudioAggregation = AudioAggregation()
    audio_limits: AudioLimits = DEFAULT_LIMITS
    audio_input: AudioInput = LOG_MEL


DEFAULT_RULES = VideoRules()


@dataclass
class StepTimes:
    """CPU seconds of this process per step, for the benchmarks (perf/measure_video.py)."""

    decode: float = 0.0
    faces: float = 0.0
    visual: float = 0.0
    temporal: float = 0.0
    audio: float = 0.0

    def add(self, step: str, since: float) -> float:
        """Charge the CPU time since ``since`` to ``step``; returns now."""
        now = time.process_time()
        setattr(self, step, getattr(self, step) + now - since)
        return now


@dataclass
class VideoAnalysis:
    """Everything ``detect_video`` answers, before fusion, as arrays named like its outputs."""

    plan: VideoPlan
    coverage_reduced: bool
    temporal_fake_prob: float
    segment_fake_prob: np.ndarray  # float32[s]
    frame_time_s: np.ndarray  # float32[f]
    frame_fake_prob: np.ndarray  # float32[f], NO_SCORE without a face
    frame_face_count: np.ndarray  # int32[f]
    face_frame: np.ndarray  # int32[n]
    face_track: np.ndarray  # int32[n]
    face_boxes: np.ndarray  # float32[n, 4]
    face_fake_prob: np.ndarray  # float32[n]
    tracks: Tracks
    distinct_frames: int
    audio: AudioWindows | None
    audio_fake_prob: np.ndarray  # float32[w], NO_SCORE for silent windows
    audio_score: float | None
    audio_error: str | None
    decoded_frames: int
    times: StepTimes = field(default_factory=StepTimes)

    @property
    def frame_has_face(self) -> np.ndarray:
        """bool[f]."""
        return self.frame_face_count > 0

    @property
    def frames_score(self) -> float | None:
        """The faces' score: the most suspicious judged track's; None when no track is judged."""
        return self.tracks.video_score()

    @property
    def audio_silent(self) -> bool:
        """A sound track was decoded but every window was silent."""
        return self.audio is not None and bool(self.audio.silent.all())


class _FaceScores:
    """Faces found frame by frame, scored by the visual detector in full batches as they come.

    Only the faces' boxes and, until their batch is sent, their normalized
    crops are kept, never the frames.
    """

    def __init__(self, score: Scorer, batch: int, times: StepTimes) -> None:
        self._score, self._batch, self._times = score, batch, times
        self._pending: list[np.ndarray] = []
        self._pending_count = 0
        self.probs: list[np.ndarray] = []
        self.boxes: list[np.ndarray] = []
        self.frames: list[np.ndarray] = []

    def add(self, position: np.ndarray, boxes: np.ndarray, visual_input: np.ndarray) -> None:
        """The faces of the timeline frames at ``position`` (one or, for repeated frames, several)."""
        for p in position:
            self.boxes.append(boxes)
            self.frames.append(np.full(len(boxes), p, dtype=np.int32))
            self._pending.append(visual_input)
            self._pending_count += len(visual_input)
        if self._pending_count >= self._batch:
            self.flush()

    def flush(self) -> None:
        """Score what is pending."""
        if not self._pending_count:
            self._pending, self._pending_count = [], 0
            return
        start = time.process_time()
        batch = np.concatenate(self._pending)
        self.probs += [np.asarray(self._score(chunk), np.float32).reshape(-1) for chunk in batches(batch, self._batch)]
        self._pending, self._pending_count = [], 0
        self._times.add("visual", start)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(face_frame[n], boxes[n, 4], fake_prob[n])`` in timeline order."""
        self.flush()
        frames = np.concatenate(self.frames) if self.frames else np.empty(0, np.int32)
        boxes = np.concatenate(self.boxes).astype(np.float32) if self.boxes else np.empty((0, 4), np.float32)
        probs = np.concatenate(self.probs) if self.probs else np.empty(0, np.float32)
        order = np.argsort(frames, kind="stable")
        return frames[order], boxes[order], probs[order]


def _positions(indices: np.ndarray) -> dict[int, np.ndarray]:
    """Frame index -> the positions it holds in ``indices`` (several when frames repeat)."""
    out: dict[int, list[int]] = {}
    for position, index in enumerate(indices.tolist()):
        out.setdefault(index, []).append(position)
    return {index: np.array(p) for index, p in out.items()}


def _timed(frames: Iterator[tuple[int, np.ndarray]], times: StepTimes) -> Iterator[tuple[int, np.ndarray]]:
    """``frames``, with the time spent producing each charged to decoding."""
    start = time.process_time()
    for item in frames:
        times.add("decode", start)
        yield item
        start = time.process_time()
    times.add("decode", start)


def _clip_input(clips: np.ndarray) -> np.ndarray:
    """``uint8[c, 16, 224, 224, 3]`` clips -> the temporal analyzer's ``float32[c, 16, 3, 224, 224]``."""
    flat = normalize_for_visual(clips.reshape(-1, *clips.shape[2:]))
    return flat.reshape(len(clips), NUM_FRAMES, *flat.shape[1:])


def analyze_video(
    reader: VideoReader,
    face_detector: FaceDetector,
    detectors: Detectors,
    rules: VideoRules = DEFAULT_RULES,
    budget: WorkBudget = UNLIMITED,
    data: bytes | None = None,
) -> VideoAnalysis:
    """Decode the planned frames once and score them: the whole of ``detect_video`` but the fusion.

    ``data`` (the upload) is needed to decode the audio track; without it the
    video is scored without sound.
    """
    times = StepTimes()
    index = reader.index
    plan, reduced = fit_plan(index, rules.coverage, reader.decode_work, reader.limits.max_decode_pixels)
    clips = np.vstack([plan.temporal[np.newaxis], plan.segments])  # clip 0: the specification's 16
    clip_frames = np.empty((len(clips), NUM_FRAMES, FRAME_SIZE, FRAME_SIZE, 3), np.uint8)
    clip_slots = _positions(clips.ravel())
    timeline_slots = _positions(plan.timeline)
    faces = _FaceScores(detectors.visual, detectors.visual_batch, times)
    counts = np.zeros(len(plan.timeline), np.int32)

    for frame_index, rgb in _timed(reader.frames(plan.decode), times):
        start = time.process_time()
        if frame_index in clip_slots:
            clip_frames.reshape(-1, FRAME_SIZE, FRAME_SIZE, 3)[clip_slots[frame_index]] = to_size(rgb)
        start = times.add("decode", start)  # the resize is part of getting the frame
        if frame_index in timeline_slots:
            found = face_detector.detect_rgb(rgb, budget, reader.input_name)
            times.add("faces", start)
            if found.face_found:
                counts[timeline_slots[frame_index]] = len(found.boxes)
                faces.add(timeline_slots[frame_index], found.boxes, found.visual_input)
        budget.check("video analysis")
    face_frame, face_boxes, face_probs = faces.arrays()
    budget.check("the visual detector")

    start = time.process_time()
    clip_probs = np.concatenate(
        [
            np.asarray(detectors.temporal(_clip_input(chunk)), np.float32).reshape(-1)
            for chunk in batches(clip_frames, detectors.temporal_batch)
        ]
    )
    times.add("temporal", start)
    budget.check("the temporal analyzer")

    frame_time_s = index.times_s[plan.timeline].astype(np.float32)
    frame_probs = np.full(len(plan.timeline), -np.inf)
    np.maximum.at(frame_probs, face_frame, face_probs.astype(np.float64))
    frame_probs[counts == 0] = NO_SCORE
    track_of = link_faces(frame_time_s, face_frame, face_boxes, rules.tracks)
    tracks = score_tracks(track_of, face_frame, face_probs, frame_time_s, rules.tracks, rules.frames)

    start = time.process_time()
    audio, audio_error = None, None
    if data is not None and reader.has_audio_stream:
        samples, audio_error = audio_of_video(
            data,
            max_duration_s=reader.limits.max_duration_s,
            input_name=reader.input_name,
            max_native_samples=rules.audio_limits.max_native_samples,
            budget=budget,
        )
        if samples is not None and samples.size:
            audio = windows_from_samples(samples, rules.audio_limits, rules.audio_input)
    window_probs, audio_score = np.empty(0, np.float32), None
    if audio is not None:
        window_probs = np.full(len(audio.silent), NO_SCORE, np.float32)
        voiced = ~audio.silent
        if voiced.any():
            window_probs[voiced] = np.concatenate(
                [np.asarray(detectors.audio(chunk), np.float32).reshape(-1) for chunk in [audio.inputs[voiced]]]
            )
            audio_score, _ = rules.audio.score(window_probs, audio.silent)
    times.add("audio", start)

    return VideoAnalysis(
        plan=plan,
        coverage_reduced=reduced,
        temporal_fake_prob=float(clip_probs[0]),
        segment_fake_prob=clip_probs[1:],
        frame_time_s=frame_time_s,
        frame_fake_prob=frame_probs.astype(np.float32),
        frame_face_count=counts,
        face_frame=face_frame,
        face_track=track_of,
        face_boxes=face_boxes,
        face_fake_prob=face_probs,
        tracks=tracks,
        distinct_frames=len(set(plan.temporal.tolist())),
        audio=audio,
        audio_fake_prob=window_probs,
        audio_score=audio_score,
        audio_error=audio_error,
        decoded_frames=reader.decoded_frames,
        times=times,
    )

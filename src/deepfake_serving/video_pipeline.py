"""Encoded video -> everything ``detect_video`` scores, without Triton.

One decode (:func:`deepfake_serving.video.sample_video`) feeds three views:

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

from dataclasses import dataclass

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
from deepfake_serving.fusion import NO_SCORE
from deepfake_serving.image_pipeline import FaceDetector
from deepfake_serving.video import NUM_FRAMES, SampledVideo


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

"""How per-model probabilities become one verdict.

Image rule (``detect_image``): each face's score is a weighted mean of its
visual and forensic fake probabilities (weights are the ``image_fusion``
config parameters, default 0.7 visual / 0.3 forensic: the visual detector is
the stronger model, with an expected accuracy of 88-92% against 75-80%); the image's
``FAKE_PROB`` is the maximum over faces, because one manipulated face makes
the image a deepfake however many real faces surround it.

Audio rule (``detect_audio``): :class:`AudioAggregation`, the mean of the
most suspicious quarter of the non-silent windows. Video rules
(``detect_video``): :class:`FrameAggregation` for the per-frame timeline,
:class:`VideoFusion` for the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ImageFusion:
    """Per-face visual and forensic scores -> the image's ``FAKE_PROB`` (the module's image rule).

    The weights are ``image_fusion``'s ``visual_weight`` and
    ``forensic_weight`` config parameters; only their ratio matters.
    """

    visual_weight: float = 0.7
    forensic_weight: float = 0.3

    def __post_init__(self) -> None:
        if self.visual_weight < 0 or self.forensic_weight < 0 or self.visual_weight + self.forensic_weight <= 0:
            raise ValueError("fusion weights must be >= 0 and not both 0")

    def trusting(self, visual_real: bool, forensic_real: bool) -> ImageFusion:
        """The rule over the detectors with real weights only, when at least one has them.

        A demo detector's score is noise: with a pretrained visual detector and a
        demo forensic classifier, the image is judged by the visual detector
        alone, so one real detector gives a real verdict.
        """
        if visual_real and not forensic_real:
            return ImageFusion(self.visual_weight or 1.0, 0.0)
        if forensic_real and not visual_real:
            return ImageFusion(0.0, self.forensic_weight or 1.0)
        return self

    def face_scores(self, visual: np.ndarray, forensic: np.ndarray) -> np.ndarray:
        """Each face's weighted mean of its visual and forensic fake probabilities."""
        total = self.visual_weight + self.forensic_weight
        return (self.visual_weight * visual + self.forensic_weight * forensic) / total

    def image_score(self, visual: np.ndarray, forensic: np.ndarray) -> float:
        """``FAKE_PROB`` of an image from its faces' fake probabilities."""
        if len(visual) == 0:
            raise ValueError("an image is scored from at least one region")
        return float(np.max(self.face_scores(visual, forensic)))


# --------------------------------------------------------------------------
# Audio (detect_audio) and video (detect_video) rules
# --------------------------------------------------------------------------

#: Marks "no score" in per-frame and per-track outputs (a frame without a
#: face, a video without a usable audio track). Chosen over NaN so every
#: client and JSON encoder can handle it; valid probabilities are in [0, 1].
NO_SCORE = -1.0


@dataclass(frozen=True)
class AudioAggregation:
    """Per-window fake probabilities -> one score for a recording.

    Rule: ``FAKE_PROB`` is the mean of the top ``top_fraction`` (rounded up,
    at least one) of the non-silent windows' fake probabilities. A plain mean
    would let a few spliced-in synthetic seconds be averaged away by a long
    genuine recording; a plain max would let one noisy window decide. With
    the default 0.25, a 10-window recording is judged on its 3 most
    suspicious windows; a recording of up to 4 windows on its worst one.
    The top-k mean is never below the overall mean, so this only ever raises
    suspicion relative to averaging.

    Silent windows (peak below the preprocessing threshold) are excluded: the
    spectrogram normalization (``ref=max``) blows near-silence up to full
    scale, so the model's output on them is meaningless. If every window is
    silent there is nothing to judge: the score is ``silent_score`` (default
    0.5, "undecided", never NaN) and the caller reports ``AUDIO_SILENT``.
    """

    top_fraction: float = 0.25
    silent_score: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.top_fraction <= 1:
            raise ValueError("top_fraction must be in (0, 1]")
        if not 0 <= self.silent_score <= 1:
            raise ValueError("silent_score must be in [0, 1]")

    def score(self, window_fake_prob: np.ndarray, silent: np.ndarray) -> tuple[float, bool]:
        """``(fake_prob, all_silent)`` for one recording."""
        probs = np.asarray(window_fake_prob, dtype=np.float64).reshape(-1)
        mask = ~np.asarray(silent, dtype=bool).reshape(-1)
        if probs.shape != mask.shape:
            raise ValueError("one silence flag per window is required")
        voiced = probs[mask & np.isfinite(probs)]
        if voiced.size == 0:
            return float(self.silent_score), True
        k = max(1, int(np.ceil(self.top_fraction * voiced.size)))
        return float(np.mean(np.sort(voiced)[-k:])), False


@dataclass(frozen=True)
class FrameAggregation:
    """Per-frame face scores -> one frame-level score, the DFDC winners' way.

    Rule (after the confident-strategy of Seferbekov's 1st-place DFDC
    solution, with its thresholds): over the frames that have a face,

    * if more than ``confident_fake_fraction`` of them are confidently fake
      (``p > confident_fake_threshold``), the score is the mean of those frames: a
      manipulation present in a good part of the clip is not diluted by the
      frames where the face looked clean;
    * else if more than ``confident_real_fraction`` of them are confidently real
      (``p < confident_real_threshold``), the score is the mean of those;
    * else the mean of all face frames.

    Frames without a face are ignored; if no frame has one there is no frame
    score (``None``).
    """

    confident_fake_threshold: float = 0.8
    confident_fake_fraction: float = 11 / 32
    confident_real_threshold: float = 0.2
    confident_real_fraction: float = 0.9

    def score(self, frame_fake_prob: np.ndarray, has_face: np.ndarray) -> float | None:
        """The frame-level score of one clip, or None when no frame has a face."""
        probs = np.asarray(frame_fake_prob, dtype=np.float64).reshape(-1)[np.asarray(has_face, dtype=bool).reshape(-1)]
        if probs.size == 0:
            return None
        fakes = probs[probs > self.confident_fake_threshold]
        if fakes.size > self.confident_fake_fraction * probs.size:
            return float(fakes.mean())
        reals = probs[probs < self.confident_real_threshold]
        if reals.size > self.confident_real_fraction * probs.size:
            return float(reals.mean())
        return float(probs.mean())


@dataclass(frozen=True)
class VideoFusion:
    """Temporal, frame and audio scores -> the video's ``FAKE_PROB``.

    Rule: the weighted mean of the scores that exist, weights renormalized
    over them. The temporal analyzer always scores; the frame score is
    missing when no sampled frame has a face, the audio score when there is
    no decodable, non-silent audio track. Defaults 0.4 temporal / 0.4 frames
    / 0.2 audio: the two visual views carry the clip; audio deepfakes are
    often produced separately, so the audio track informs but does not
    decide alone. All three are ``detect_video`` config parameters.
    """

    temporal_weight: float = 0.4
    frame_weight: float = 0.4
    audio_weight: float = 0.2

    def __post_init__(self) -> None:
        weights = (self.temporal_weight, self.frame_weight, self.audio_weight)
        if min(weights) < 0 or self.temporal_weight <= 0:
            raise ValueError("fusion weights must be >= 0 and the temporal weight > 0")

    def score(self, temporal: float, frames: float | None, audio: float | None) -> float:
        """The weighted mean of ``temporal`` and whichever of ``frames`` and ``audio`` exist."""
        parts = [(self.temporal_weight, temporal)]
        if frames is not None:
            parts.append((self.frame_weight, frames))
        if audio is not None:
            parts.append((self.audio_weight, audio))
        total = sum(w for w, _ in parts)
        return float(sum(w * s for w, s in parts) / total)


@dataclass(frozen=True)
class DecisionThreshold:
    """The ``threshold`` a fusion model returns as ``THRESHOLD``, and where it came from.

    ``FAKE_PROB >= value`` is judged fake. The server never applies it itself:
    it hands it to clients beside the score, so that the one number chosen on
    validation data (``deepfake-eval --calibrate``) is what every client's
    verdict uses, instead of each picking its own.
    """

    value: float = 0.5
    source: str = "default (not calibrated)"

    def __post_init__(self) -> None:
        if not 0.0 <= self.value <= 1.0:  # also refuses NaN: FAKE_PROB is in [0, 1]
            raise ValueError(f"threshold must be in [0, 1], got {self.value!r}")

    @classmethod
    def from_parameters(cls, parameters: dict[str, str]) -> DecisionThreshold:
        """Read ``threshold`` and ``threshold_source``; a missing threshold fails the load."""
        return cls(float(parameters["threshold"]), parameters.get("threshold_source", ""))

    def tensor(self) -> np.ndarray:
        """The ``THRESHOLD`` output."""
        return np.array([self.value], dtype=np.float32)

"""Encoded audio -> model-ready windows: the work of ``audio_preprocess``.

Decode (limits enforced, see :mod:`deepfake_serving.audio`) -> 4 s windows
with a 2 s hop, the last aligned to the end; audio shorter than 4 s is one
zero-padded window -> log-mel per window -> a silence flag per window. All
windows of one request leave as one ``[w, 1, 80, 251]`` tensor, so the audio
detector scores them in one batched call (and Triton's dynamic batcher can
merge them with other requests' windows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepfake_serving import audio as A
from deepfake_serving.budget import UNLIMITED, WorkBudget


@dataclass(frozen=True)
class AudioLimits:
    """The ``audio_preprocess`` config parameters."""

    max_bytes: int = A.DEFAULT_MAX_BYTES
    max_duration_s: float = A.DEFAULT_MAX_DURATION_S
    max_windows: int = A.DEFAULT_MAX_WINDOWS
    silence_peak_dbfs: float = A.SILENCE_PEAK_DBFS
    max_native_samples: int = A.DEFAULT_MAX_NATIVE_SAMPLES
    max_rate_changes: int = A.DEFAULT_MAX_RATE_CHANGES

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_duration_s <= 0:
            raise ValueError("max_bytes and max_duration_s must be positive")
        if not 1 <= self.max_windows <= 64:
            # 64 is audio_detector's max_batch_size: one request's windows are one batch.
            raise ValueError("max_windows must be in [1, 64]")


DEFAULT_LIMITS = AudioLimits()


@dataclass(frozen=True)
class AudioWindows:
    """One recording, ready for the audio detector."""

    mel: np.ndarray  # float32[w, 1, 80, 251]
    starts_s: np.ndarray  # float32[w]
    silent: np.ndarray  # bool[w]
    duration_s: float  # decoded (unpadded) duration


def windows_from_samples(samples_16k: np.ndarray, limits: AudioLimits = DEFAULT_LIMITS) -> AudioWindows:
    """Window, mel and silence flags of already decoded mono 16 kHz audio (also a video's track)."""
    windows, starts, duration_s = A.window_audio(samples_16k, max_windows=limits.max_windows)
    silent = np.array([A.is_silent(w, limits.silence_peak_dbfs) for w in windows], dtype=bool)
    return AudioWindows(
        mel=A.mel_batch_db(windows).astype(np.float32),
        starts_s=starts.astype(np.float32),
        silent=silent,
        duration_s=float(duration_s),
    )


def prepare_audio(
    data: bytes, limits: AudioLimits = DEFAULT_LIMITS, input_name: str = "AUDIO", budget: WorkBudget = UNLIMITED
) -> AudioWindows:
    """Encoded bytes -> :class:`AudioWindows`; bad input raises ``RequestError`` naming ``input_name``."""
    samples = A.decode_audio(
        data,
        max_bytes=limits.max_bytes,
        max_duration_s=limits.max_duration_s,
        input_name=input_name,
        max_native_samples=limits.max_native_samples,
        max_rate_changes=limits.max_rate_changes,
        budget=budget,
    )
    return windows_from_samples(samples, limits)

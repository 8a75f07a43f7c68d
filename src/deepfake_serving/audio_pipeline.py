"""Encoded audio -> model-ready windows: the work of ``audio_preprocess``.

Decode (limits enforced, see :mod:`deepfake_serving.audio`) -> 4 s windows
with a 2 s hop, the last aligned to the end; audio shorter than 4 s is one
zero-padded window -> the audio detector's input per window (see
:class:`AudioInput`) -> a silence flag per window. All windows of one request
leave as one tensor, so the audio detector scores them in one batched call
(and Triton's dynamic batcher can merge them with other requests' windows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepfake_contract import AUDIO_DETECTOR, AUDIO_INPUTS
from deepfake_serving import audio as A
from deepfake_serving.budget import UNLIMITED, WorkBudget
from deepfake_serving.provenance import config_parameters

_TRUE, _FALSE = "true", "false"


@dataclass(frozen=True)
class AudioInput:
    """What the served audio detector reads per window, from its config's ``audio_*`` parameters.

    ``log_mel`` is the project's ResNet18 input (:func:`deepfake_serving.audio.mel_batch_db`).
    ``waveform`` is the 64,000 samples themselves, as a wav2vec2-family model
    reads them; ``normalize`` is its feature extractor's ``do_normalize``
    (zero mean, unit variance per window, computed exactly as
    ``Wav2Vec2FeatureExtractor`` does). Silence is judged on the samples
    before any of this, so the rules are the same for both.
    """

    kind: str = "log_mel"
    normalize: bool = False

    def __post_init__(self) -> None:
        if self.kind not in AUDIO_INPUTS:
            raise ValueError(f"audio_input {self.kind!r} is not one of {', '.join(AUDIO_INPUTS)}")
        if self.normalize and self.kind != "waveform":
            raise ValueError("audio_normalize applies to the waveform input only")

    def apply(self, windows: np.ndarray) -> np.ndarray:
        """``float32[w, 64000]`` windows -> the detector's input batch."""
        windows = np.asarray(windows, dtype=np.float32)
        if self.kind == "log_mel":
            return A.mel_batch_db(windows).astype(np.float32)
        if not self.normalize:
            return windows
        # transformers' zero_mean_unit_var_norm, term for term: the same float32 arithmetic.
        return np.stack([(w - w.mean()) / np.sqrt(w.var() + 1e-7) for w in windows]).astype(np.float32)

    def to_parameters(self) -> dict[str, str]:
        """The ``audio_detector`` config parameters that carry this choice."""
        return {"audio_input": self.kind, "audio_normalize": _TRUE if self.normalize else _FALSE}

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, str]) -> AudioInput:
        """The input a config's parameters describe; none: the project's log-mel."""
        normalize = parameters.get("audio_normalize", _FALSE)
        if normalize not in (_TRUE, _FALSE):
            raise ValueError(f"audio_normalize must be {_TRUE!r} or {_FALSE!r}, not {normalize!r}")
        return cls(kind=parameters.get("audio_input", "log_mel"), normalize=normalize == _TRUE)


#: The project's own audio detector's input.
LOG_MEL = AudioInput()


def served_audio_input(repository: Path) -> AudioInput:
    """What the audio detector served from ``repository`` reads.

    Raises:
        OSError, text_format.ParseError, ValueError: the config cannot be read or
            names an unknown input; a model must not load then, since feeding the
            detector the wrong features gives confident wrong scores.
    """
    return AudioInput.from_parameters(config_parameters(repository, AUDIO_DETECTOR.name))


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

    inputs: np.ndarray  # float32[w, ...]: the audio detector's input, e.g. [w, 1, 80, 251] log-mel
    starts_s: np.ndarray  # float32[w]
    silent: np.ndarray  # bool[w]
    duration_s: float  # decoded (unpadded) duration


def windows_from_samples(
    samples_16k: np.ndarray, limits: AudioLimits = DEFAULT_LIMITS, audio_input: AudioInput = LOG_MEL
) -> AudioWindows:
    """Windows, detector inputs and silence flags of decoded mono 16 kHz audio (also a video's track)."""
    windows, starts, duration_s = A.window_audio(samples_16k, max_windows=limits.max_windows)
    silent = np.array([A.is_silent(w, limits.silence_peak_dbfs) for w in windows], dtype=bool)
    return AudioWindows(
        inputs=audio_input.apply(windows),
        starts_s=starts.astype(np.float32),
        silent=silent,
        duration_s=float(duration_s),
    )


def prepare_audio(
    data: bytes,
    limits: AudioLimits = DEFAULT_LIMITS,
    input_name: str = "AUDIO",
    budget: WorkBudget = UNLIMITED,
    audio_input: AudioInput = LOG_MEL,
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
    return windows_from_samples(samples, limits, audio_input)

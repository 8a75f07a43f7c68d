"""Audio decoding, windowing and log-mel features for the audio detector.

The audio detector is trained on ``librosa.load(sr=16000)`` + a 4-second
``melspectrogram(n_fft=1024, hop_length=256, n_mels=80)`` +
``power_to_db(ref=np.max)``. The serving path cannot depend on librosa (numba,
slow import, file-path oriented), so this module reproduces the same numbers
with NumPy/SciPy and decodes in memory with PyAV. ``tests/unit/test_audio.py``
keeps librosa as the oracle.

Choices that differ from, or are not pinned by, that librosa recipe:

* Resampling: every frame is decoded at its native rate, converted to float
  exactly (integer PCM divided by its full scale), down-mixed to mono by the
  channel mean (``librosa.to_mono`` semantics; swresample's down-mix would
  apply -3 dB centre/surround mix levels instead), then resampled with soxr at
  quality "HQ" in float32, which is what ``librosa.load(sr=16000)`` does, so
  training features computed with librosa match the served ones. The
  resampler streams (``soxr.ResampleStream``, bit-identical to the one-shot
  call): native-rate samples are never held, only the 16 kHz output.
* Cost limits, from the header before decoding and again while decoding:
  ``max_native_samples`` (decoded samples at the native rate: a 600 s track
  declared at 768 kHz is 460 M samples of work), at most
  ``max_rate_changes`` changes of sample rate within a stream (one resampler
  per run of equal rate), and the request's :class:`~deepfake_serving.budget.WorkBudget`.
* Windowing: 4 s windows with a 2 s hop; the last window is aligned to the end
  of the audio (so nothing is padded except audio shorter than 4 s, which is
  zero-padded at the end). Consumers aggregate per-window scores; every
  sample is covered by one to three windows: three near the end, where the
  end-aligned window overlaps the regular ones (a 9 s clip has starts 0, 2,
  4 and 5 s).
* Silence: ``power_to_db(ref=np.max)`` normalises every window to its own peak,
  so digital silence yields a constant 0 dB image (librosa's own output, no
  NaN) and near-silence is amplified to full scale. :func:`is_silent` flags
  windows whose peak is below ``SILENCE_PEAK_DBFS`` so the pipeline can report
  ``silent`` instead of trusting the model on such input.
* Truncation: rejected where FFmpeg reports a declared length the decoded
  audio falls short of (FLAC STREAMINFO, MP4/M4A) or where the cut breaks the
  container. Ogg, raw MP3 and WAV (FFmpeg clamps the data chunk to the bytes
  present) read as valid shorter files, so their prefix is decoded.
* Any codec FFmpeg can decode is accepted (M4A/AAC, WMA, ...), not only the
  five formats the contract names.
"""

from __future__ import annotations

import math

import av
import numpy as np
import soxr

from deepfake_contract import AUDIO, AUDIO_PREPROCESS
from deepfake_serving.budget import UNLIMITED, WorkBudget
from deepfake_serving.containers import (
    check_bytes,
    check_declared_duration,
    decoding_errors,
    first_stream,
    open_container,
    require_decoder,
)
from deepfake_serving.errors import RequestError

SAMPLE_RATE = 16000
WINDOW_S = 4.0
HOP_S = 2.0
WINDOW_SAMPLES = int(SAMPLE_RATE * WINDOW_S)  # 64000
N_FFT = 1024
HOP_LENGTH = 256
N_MELS = 80
N_FRAMES = 1 + WINDOW_SAMPLES // HOP_LENGTH  # 251 (center=True)
AMIN = 1e-10
TOP_DB = 80.0

# The limits and why they are what they are: deepfake_contract.pipelines.
DEFAULT_MAX_BYTES = int(AUDIO_PREPROCESS.limits["max_bytes"])
DEFAULT_MAX_DURATION_S = float(AUDIO_PREPROCESS.limits["max_duration_s"])
DEFAULT_MAX_WINDOWS = int(AUDIO_PREPROCESS.limits["max_windows"])
# Peak below -60 dBFS: quieter than any usable speech recording, louder than
# dither/room noise of a "silent" 16-bit file.
SILENCE_PEAK_DBFS = -60.0

SUPPORTED_AUDIO = AUDIO.formats
# A decodable stream this much shorter than its container's declared duration
# is treated as a truncated upload rather than silently scored on a fragment.
_TRUNCATION_TOLERANCE_S = 0.5
_TRUNCATION_TOLERANCE_FRAC = 0.1
_MAX_NATIVE_RATE = 768000
DEFAULT_MAX_NATIVE_SAMPLES = int(AUDIO_PREPROCESS.limits["max_native_samples"])
DEFAULT_MAX_RATE_CHANGES = int(AUDIO_PREPROCESS.limits["max_rate_changes"])
_RESAMPLE_QUALITY = "HQ"
_BUDGET_EVERY_FRAMES = 256


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------

_INT_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}


def _frame_to_mono(frame: av.AudioFrame) -> np.ndarray:
    """Exact float conversion + channel mean, independent of the sample format."""
    fmt = frame.format.name.rstrip("p")
    channels = len(frame.layout.channels)
    arr = frame.to_ndarray()
    if channels == 1:
        arr = arr.reshape(1, -1)
    elif frame.format.is_planar:
        arr = arr.reshape(channels, -1)
    else:
        arr = arr.reshape(-1, channels).T
    if fmt == "u8":
        out = (arr.astype(np.float64) - 128.0) / 128.0
    elif fmt in _INT_SCALE:
        out = arr.astype(np.float64) / _INT_SCALE[fmt]
    else:  # flt, dbl
        out = arr.astype(np.float64)
    return (out[0] if channels == 1 else out.mean(axis=0)).astype(np.float32)


def resample_to(samples: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """``librosa.resample(res_type="soxr_hq")``: soxr at quality "HQ", float32."""
    samples = np.asarray(samples, dtype=np.float32)
    if orig_sr == target_sr or samples.size == 0:
        return samples
    return soxr.resample(samples, orig_sr, target_sr, quality=_RESAMPLE_QUALITY).astype(np.float32, copy=False)


class _Resampled:
    """Mono chunks at any sequence of native rates -> float32 at ``target_sr``, one resampler per rate run."""

    def __init__(self, target_sr: int) -> None:
        self.target_sr = target_sr
        self.rate: int | None = None
        self.changes = 0
        self._stream: soxr.ResampleStream | None = None
        self._out: list[np.ndarray] = []

    def add(self, rate: int, chunk: np.ndarray) -> None:
        if rate != self.rate:
            if self.rate is not None:
                self.changes += 1
            self._flush()
            self.rate = rate
            if rate != self.target_sr:
                self._stream = soxr.ResampleStream(rate, self.target_sr, 1, dtype="float32", quality=_RESAMPLE_QUALITY)
        if self._stream is None:
            self._out.append(chunk)
        else:
            self._out.append(self._stream.resample_chunk(chunk, last=False))

    def _flush(self) -> None:
        if self._stream is not None:
            self._out.append(self._stream.resample_chunk(np.zeros(0, np.float32), last=True))
            self._stream = None

    def samples(self) -> np.ndarray:
        self._flush()
        return np.concatenate(self._out) if self._out else np.zeros(0, np.float32)


def decode_audio_stream(
    container: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    *,
    target_sr: int,
    max_duration_s: float,
    input_name: str,
    max_native_samples: int = DEFAULT_MAX_NATIVE_SAMPLES,
    max_rate_changes: int = DEFAULT_MAX_RATE_CHANGES,
    budget: WorkBudget = UNLIMITED,
) -> np.ndarray:
    """Decode one audio stream of an open container to mono ``target_sr`` float32.

    Shared with :mod:`deepfake_serving.video` for a video's audio track. The
    duration and cost limits are enforced while decoding too, because headers
    can lie (a tiny Opus/FLAC file can expand to hours of samples).
    """
    require_decoder(stream, "audio", input_name, SUPPORTED_AUDIO)
    declared_s = check_declared_duration(container, stream, max_duration_s, input_name)
    declared_rate = int(stream.codec_context.sample_rate or 0)
    if declared_s is not None and declared_s * declared_rate > max_native_samples:
        raise RequestError(input_name, _native_samples_problem(declared_s * declared_rate, max_native_samples))

    resampled = _Resampled(target_sr)
    decoded_s = 0.0
    native_samples = 0
    with decoding_errors(input_name, "audio"):
        for count, frame in enumerate(container.decode(stream)):
            rate = int(frame.sample_rate)
            if rate <= 0 or rate > _MAX_NATIVE_RATE:
                raise RequestError(
                    input_name, f"unsupported sample rate {rate} Hz (accepted: up to {_MAX_NATIVE_RATE})"
                )
            if frame.samples == 0:
                continue
            resampled.add(rate, _frame_to_mono(frame))
            if resampled.changes > max_rate_changes:
                raise RequestError(
                    input_name,
                    f"the sample rate changes more than {max_rate_changes} times within the stream "
                    "(max_rate_changes); re-encode at one rate",
                )
            decoded_s += frame.samples / rate
            native_samples += frame.samples
            if decoded_s > max_duration_s + _TRUNCATION_TOLERANCE_S:
                raise RequestError(input_name, f"duration exceeds the limit of {max_duration_s:g} s")
            if native_samples > max_native_samples:
                raise RequestError(input_name, _native_samples_problem(native_samples, max_native_samples))
            if count % _BUDGET_EVERY_FRAMES == 0:
                budget.check("audio decoding")

    if decoded_s == 0.0:
        raise RequestError(input_name, "no audio samples could be decoded")
    if declared_s is not None and decoded_s < declared_s * (1 - _TRUNCATION_TOLERANCE_FRAC) - _TRUNCATION_TOLERANCE_S:
        raise RequestError(
            input_name,
            f"container declares {declared_s:.2f} s but only {decoded_s:.2f} s could be decoded (truncated file?)",
        )
    out = resampled.samples()
    return np.ascontiguousarray(np.clip(np.nan_to_num(out), -1.0, 1.0), dtype=np.float32)


def _native_samples_problem(samples: float, limit: int) -> str:
    """The max_native_samples refusal, worded the same whether from the header or from decoding."""
    return (
        f"{samples / 1e6:.0f} M samples at the native rate exceed the limit of {limit / 1e6:.1f} M "
        "(max_native_samples: duration x sample rate); send a shorter file or a lower sample rate"
    )


def decode_audio(
    data: bytes,
    *,
    target_sr: int = SAMPLE_RATE,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    input_name: str = "AUDIO",
    max_native_samples: int = DEFAULT_MAX_NATIVE_SAMPLES,
    max_rate_changes: int = DEFAULT_MAX_RATE_CHANGES,
    budget: WorkBudget = UNLIMITED,
) -> np.ndarray:
    """Decode an audio file held in memory to mono float32 at ``target_sr``.

    Raises :class:`RequestError` for anything the client can fix (empty, not
    audio, truncated, no audio stream, unsupported codec, over a limit); PyAV's
    own exceptions never escape.
    """
    check_bytes(data, max_bytes, input_name)
    container = open_container(data, input_name, SUPPORTED_AUDIO)
    with container:
        return decode_audio_stream(
            container,
            first_stream(container, "audio", input_name, SUPPORTED_AUDIO),
            target_sr=target_sr,
            max_duration_s=max_duration_s,
            input_name=input_name,
            max_native_samples=max_native_samples,
            max_rate_changes=max_rate_changes,
            budget=budget,
        )


# --------------------------------------------------------------------------
# Windowing and silence
# --------------------------------------------------------------------------


def max_windows_for(max_duration_s: float, window_s: float = WINDOW_S, hop_s: float = HOP_S) -> int:
    """Number of windows :func:`window_audio` produces for the longest accepted audio."""
    if max_duration_s <= window_s:
        return 1
    return 1 + math.ceil((max_duration_s - window_s) / hop_s)


def window_audio(
    samples: np.ndarray,
    *,
    window_s: float = WINDOW_S,
    hop_s: float = HOP_S,
    sr: int = SAMPLE_RATE,
    max_windows: int = DEFAULT_MAX_WINDOWS,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Cut audio into model-sized windows.

    Returns ``(windows float32[w, window], starts_s float32[w], real_seconds)``
    where ``real_seconds`` is the length of the actual (unpadded) audio.
    Shorter-than-window audio is zero-padded at the end (as the training features are).
    Longer audio gets windows every ``hop_s`` plus one aligned to the end, so
    the tail is covered without padding. If more than ``max_windows`` would be
    needed, ``max_windows`` starts are spread evenly from the first to the
    last (coverage gets gaps, cost stays bounded) rather than rejecting input
    that already passed the duration limit.
    """
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    n_win = int(round(window_s * sr))
    n_hop = int(round(hop_s * sr))
    if n_win <= 0 or n_hop <= 0 or max_windows < 1:
        raise ValueError("window_s, hop_s and max_windows must be positive")
    real_seconds = x.size / sr
    if x.size <= n_win:
        win = np.zeros((1, n_win), dtype=np.float32)
        win[0, : x.size] = x
        return win, np.zeros(1, dtype=np.float32), real_seconds
    last = x.size - n_win
    starts = np.arange(0, last, n_hop, dtype=np.int64)
    starts = np.append(starts, last)
    if starts.size > max_windows:
        pick = np.unique(np.round(np.linspace(0, starts.size - 1, max_windows)).astype(np.int64))
        starts = starts[pick]
    windows = np.lib.stride_tricks.sliding_window_view(x, n_win)[starts]
    return np.ascontiguousarray(windows), (starts / sr).astype(np.float32), real_seconds


def peak_dbfs(window: np.ndarray) -> float:
    """Peak level in dB relative to full scale (``-inf`` for digital silence)."""
    peak = float(np.max(np.abs(window))) if np.size(window) else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else float("-inf")


def is_silent(window: np.ndarray, threshold_dbfs: float = SILENCE_PEAK_DBFS) -> bool:
    """True when the window's peak is below ``threshold_dbfs``.

    ``ref=np.max`` makes the spectrogram scale-free, so the model would see a
    -90 dBFS hiss exactly like a full-scale signal; such a score is meaningless
    and the pipeline should flag it instead.
    """
    return peak_dbfs(window) < threshold_dbfs


# --------------------------------------------------------------------------
# Log-mel spectrogram (librosa-equivalent)
# --------------------------------------------------------------------------


def _hz_to_mel_slaney(freqs: np.ndarray) -> np.ndarray:
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    freqs = np.asarray(freqs, dtype=np.float64)
    mels = freqs / f_sp
    above = freqs >= min_log_hz
    mels[above] = min_log_mel + np.log(freqs[above] / min_log_hz) / logstep
    return mels


def _mel_to_hz_slaney(mels: np.ndarray) -> np.ndarray:
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    mels = np.asarray(mels, dtype=np.float64)
    freqs = f_sp * mels
    above = mels >= min_log_mel
    freqs[above] = min_log_hz * np.exp(logstep * (mels[above] - min_log_mel))
    return freqs


def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)`` defaults: Slaney scale and norm, 0..sr/2."""
    fftfreqs = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    mel_pts = np.linspace(_hz_to_mel_slaney(np.array([0.0]))[0], _hz_to_mel_slaney(np.array([sr / 2.0]))[0], n_mels + 2)
    mel_f = _mel_to_hz_slaney(mel_pts)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels])
    return weights * enorm[:, None]


def _hann_periodic(n: int) -> np.ndarray:
    # scipy.signal.get_window("hann", n, fftbins=True), which librosa uses.
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


_MEL_BASIS = mel_filterbank()
_WINDOW = _hann_periodic(N_FFT)


def mel_power(samples_16k: np.ndarray) -> np.ndarray:
    """Mel power spectrogram of one window (``librosa.feature.melspectrogram`` defaults).

    ``center=True`` with librosa >= 0.10's default ``pad_mode="constant"``
    (zeros; older librosa reflected), periodic Hann window, power 2.
    """
    y = np.asarray(samples_16k, dtype=np.float32).reshape(-1)
    pad = N_FFT // 2
    y = np.pad(y.astype(np.float64), (pad, pad), mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(y, N_FFT)[::HOP_LENGTH]
    spec = np.fft.rfft(frames * _WINDOW, axis=-1)
    power = spec.real**2 + spec.imag**2  # (T, 513)
    return _MEL_BASIS @ power.T  # (80, T)


def power_to_db(mel: np.ndarray, *, amin: float = AMIN, top_db: float = TOP_DB) -> np.ndarray:
    """``librosa.power_to_db(S, ref=np.max, amin=1e-10, top_db=80)``.

    All-zero input gives all zeros (both terms clamp to ``amin``), never NaN.
    """
    ref = max(amin, float(np.max(mel))) if mel.size else amin
    log_spec = 10.0 * np.log10(np.maximum(amin, mel)) - 10.0 * math.log10(ref)
    return np.maximum(log_spec, log_spec.max() - top_db)


def mel_spectrogram_db(samples_16k: np.ndarray) -> np.ndarray:
    """The audio detector's input for one 4 s window: float32[80, 251] in dB (max 0).

    Input shorter than 64000 samples is zero-padded at the end and longer
    input is trimmed to its first 64000 samples, as in the training code.
    """
    y = np.asarray(samples_16k, dtype=np.float32).reshape(-1)
    if y.size != WINDOW_SAMPLES:
        y = np.pad(y, (0, max(0, WINDOW_SAMPLES - y.size)))[:WINDOW_SAMPLES]
    if not np.all(np.isfinite(y)):
        y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
    return power_to_db(mel_power(y)).astype(np.float32)


def mel_batch_db(windows: np.ndarray) -> np.ndarray:
    """``float32[w, 1, 80, 251]`` model input for the windows of :func:`window_audio`."""
    return np.stack([mel_spectrogram_db(w) for w in np.asarray(windows)])[:, None]

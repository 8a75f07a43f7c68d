"""Audio decoding, windowing and log-mel parity with librosa (the reference implementation).

All media is synthesized and encoded with PyAV in the test. librosa is only the
oracle here; the serving code does not import it.
"""

from __future__ import annotations

import io
import time

import av
import librosa  # noqa: E402  (the test oracle)
import numpy as np
import pytest

from deepfake_serving import audio as A
from deepfake_serving.errors import RequestError
from deepfake_serving.testing.media_av import AUDIO_FORMATS as FORMATS
from deepfake_serving.testing.media_av import encode_audio
from deepfake_serving.testing.media_av import tone as _tone
from tests import bad_media


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_decode_each_format_duration_and_rate(name: str) -> None:
    """Every accepted format decodes to 16 kHz mono of the right length, pitch and level."""
    fmt, codec, sr, stereo, options = FORMATS[name]
    seconds = 2.5
    data = encode_audio(_tone(sr, seconds, 440.0), sr, fmt, codec, stereo=stereo, options=options)
    y = A.decode_audio(data)
    assert y.dtype == np.float32 and y.ndim == 1
    # Lossy codecs add/strip a few ms of priming; 16 kHz output either way.
    assert abs(len(y) / 16000 - seconds) < 0.06, len(y) / 16000
    mid = y[4000:-4000]
    assert np.all(np.isfinite(y))
    # The 440 Hz tone survives decoding + resampling at about the same level.
    spectrum = np.abs(np.fft.rfft(mid * np.hanning(mid.size)))
    peak_hz = np.argmax(spectrum) * 16000 / mid.size
    assert abs(peak_hz - 440.0) < 5.0
    assert 0.4 < np.sqrt(2) * np.sqrt(np.mean(mid**2)) < 0.6


def test_stereo_44k_is_downmixed_mean_and_resampled() -> None:
    """Stereo is down-mixed by the channel mean (``librosa.to_mono``), not swresample's -3 dB mix."""
    sr = 44100
    left = _tone(sr, 2.0, 440.0, 0.6)
    right = _tone(sr, 2.0, 1000.0, 0.2)
    data = encode_audio(np.vstack([left, right]), sr, "wav", "pcm_s16le", stereo=True)
    y = A.decode_audio(data)
    assert len(y) == 32000
    # Oracle: librosa's to_mono (channel mean) + soxr_hq resampling, as in librosa.load.
    expected = librosa.resample((left + right) / 2, orig_sr=sr, target_sr=16000, res_type="soxr_hq")
    core = slice(1000, -1000)
    err = y[core] - expected[core]
    snr_db = 10 * np.log10(np.mean(expected[core] ** 2) / np.mean(err**2))
    assert snr_db > 50, snr_db


def test_mel_matches_librosa() -> None:
    """The NumPy log-mel reproduces librosa's (the training features) on varied signals."""
    rng = np.random.default_rng(0)
    t = np.arange(64000) / 16000
    signals = {
        "noise": 0.1 * rng.standard_normal(64000),
        "chirp": 0.5 * np.sin(2 * np.pi * (100 * t + 900 * t**2)),
        "bursts": rng.standard_normal(64000) * (np.sin(2 * np.pi * 1.5 * t) > 0.7),
        "padded_short": np.r_[0.3 * np.sin(2 * np.pi * 300 * t[:20000]), np.zeros(44000)],
        "quiet": 1e-6 * rng.standard_normal(64000),
        "zeros": np.zeros(64000),
    }
    for name, y in signals.items():
        y = y.astype(np.float32)
        ref = librosa.power_to_db(
            librosa.feature.melspectrogram(y=y, sr=16000, n_fft=1024, hop_length=256, n_mels=80), ref=np.max
        )
        got = A.mel_spectrogram_db(y)
        assert got.shape == (80, 251) and got.dtype == np.float32
        assert np.abs(got - ref).max() <= 1e-3, name


def test_filterbank_matches_librosa() -> None:
    """The Slaney mel filterbank equals ``librosa.filters.mel`` at 16 kHz, n_fft 1024, 80 bands."""
    ref = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=80)
    np.testing.assert_allclose(A.mel_filterbank(), ref, rtol=1e-5, atol=1e-8)


def test_mel_on_decoded_audio_matches_the_librosa_reference() -> None:
    """Decode, window and mel end to end give librosa's features for the same samples."""
    # End to end on the same samples: decode -> window -> mel vs librosa on those samples.
    sr = 44100
    data = encode_audio(_tone(sr, 3.0, 700.0), sr, "flac", "flac")
    windows, starts, real = A.window_audio(A.decode_audio(data))
    assert windows.shape == (1, 64000) and real == pytest.approx(3.0, abs=1e-3)
    ref = librosa.power_to_db(
        librosa.feature.melspectrogram(y=windows[0], sr=16000, n_fft=1024, hop_length=256, n_mels=80), ref=np.max
    )
    assert np.abs(A.mel_batch_db(windows)[0, 0] - ref).max() <= 1e-3


def test_window_counts_and_starts() -> None:
    """Windows every 2 s plus one aligned to the end; capped windows spread over the whole clip."""
    sr = 16000
    # Exactly 4 s: one window, no padding.
    w, s, real = A.window_audio(np.ones(64000, np.float32))
    assert w.shape == (1, 64000) and list(s) == [0.0] and real == 4.0
    # 9 s: starts 0, 2, 4 and one aligned to the end at 5 s.
    x = np.arange(9 * sr, dtype=np.float32)
    w, s, real = A.window_audio(x)
    assert list(s) == [0.0, 2.0, 4.0, 5.0] and real == 9.0
    assert w[-1, -1] == x[-1] and w[1, 0] == x[2 * sr]
    # 8 s: the regular grid already ends at the end.
    _, s, _ = A.window_audio(np.zeros(8 * sr, np.float32))
    assert list(s) == [0.0, 2.0, 4.0]
    # The cap spreads windows from the first to the last.
    _, s, _ = A.window_audio(np.zeros(100 * sr, np.float32), max_windows=5)
    assert len(s) == 5 and s[0] == 0.0 and s[-1] == 96.0
    assert A.max_windows_for(A.DEFAULT_MAX_DURATION_S) <= A.DEFAULT_MAX_WINDOWS


def test_short_audio_is_zero_padded_and_real_seconds_reported() -> None:
    """Audio under 4 s is zero-padded at the end and its real length reported."""
    data = encode_audio(_tone(16000, 1.5), 16000, "wav", "pcm_s16le")
    w, s, real = A.window_audio(A.decode_audio(data))
    assert w.shape == (1, 64000) and real == pytest.approx(1.5, abs=1e-3)
    assert np.all(w[0, 24000:] == 0) and np.abs(w[0, :24000]).max() > 0.4


def test_silence_has_no_nan_and_is_flagged() -> None:
    """Digital silence gives finite features and is flagged silent rather than scored."""
    data = encode_audio(np.zeros(16000 * 5, np.float32), 16000, "wav", "pcm_s16le")
    windows, _, _ = A.window_audio(A.decode_audio(data))
    for window in windows:
        mel = A.mel_spectrogram_db(window)
        assert np.all(np.isfinite(mel)) and np.all(mel == 0.0)  # librosa gives the same
        assert A.is_silent(window)
    assert A.is_silent(np.full(100, 1e-4, np.float32))
    assert not A.is_silent(_tone(16000, 0.1, amp=0.01))
    assert A.peak_dbfs(np.zeros(10)) == float("-inf")


def _video_only_avi() -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="avi") as out:
        stream = out.add_stream("mjpeg", rate=5)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuvj420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def _bad_inputs() -> dict[str, bytes]:
    rng = np.random.default_rng(1)
    flac = encode_audio(_tone(44100, 3.0), 44100, "flac", "flac")
    wav = encode_audio(_tone(16000, 3.0), 16000, "wav", "pcm_s16le")
    return {
        "empty": b"",
        "random": rng.integers(0, 256, 20000, dtype=np.uint8).tobytes(),
        "text": b"hello, this is not audio\n" * 100,
        "truncated_flac": flac[: len(flac) // 3],
        "truncated_wav_header": wav[:30],
        "unsupported_codec": bad_media.unsupported_codec_wav(),
        "no_audio_stream": _video_only_avi(),
    }


@pytest.mark.parametrize("case", sorted(_bad_inputs()))
def test_bad_inputs_raise_request_error(case: str) -> None:
    """Unusable uploads become a RequestError naming the input, never a PyAV exception."""
    with pytest.raises(RequestError) as info:
        A.decode_audio(_bad_inputs()[case], input_name="AUDIO")
    assert info.value.input_name == "AUDIO"
    assert str(info.value).startswith("AUDIO: ")


@pytest.mark.parametrize("fmt", ["ogg_opus", "wav"])
def test_truncated_stream_formats_decode_the_prefix(fmt: str) -> None:
    """Formats without a length header read a cut file as a shorter valid one."""
    # Ogg and raw MP3 have no length header, and FFmpeg clamps a WAV data
    # chunk to the bytes present: a cut file reads as a valid shorter file.
    # Truncation is rejected where FFmpeg reports the declared length (FLAC
    # STREAMINFO, MP4 moov) or the container stops parsing.
    data = encode_audio(_tone(48000, 3.0), 48000, *(("ogg", "libopus") if fmt == "ogg_opus" else ("wav", "pcm_s16le")))
    y = A.decode_audio(data[: len(data) // 2])
    assert 0.5 < len(y) / 16000 < 2.5


def test_limits() -> None:
    """Non-bytes, oversized and over-long input is refused up front, with the limit in the message."""
    data = encode_audio(_tone(16000, 3.0), 16000, "wav", "pcm_s16le")
    with pytest.raises(RequestError, match="bytes exceeds the limit"):
        A.decode_audio(data, max_bytes=1000)
    with pytest.raises(RequestError, match="exceeds the limit of 2 s"):
        A.decode_audio(data, max_duration_s=2.0)
    with pytest.raises(RequestError, match="expected encoded media bytes"):
        A.decode_audio("not bytes")  # type: ignore[arg-type]


def test_duration_limit_enforced_while_decoding_when_header_has_none() -> None:
    """The duration limit holds on decoded samples when the header only estimates it."""
    # Raw MP3 stream without a Xing/LAME header: duration is only an estimate,
    # so the limit must also hold on decoded samples.
    data = encode_audio(_tone(16000, 6.0), 16000, "mp3", "libmp3lame")
    with pytest.raises(RequestError, match="exceeds the limit"):
        A.decode_audio(data, max_duration_s=3.0)


def test_decode_and_mel_speed() -> None:
    """Decoding and features of a 4 s clip stay fast enough for the request path."""
    data = encode_audio(_tone(44100, 4.0), 44100, "mp3", "libmp3lame")
    start = time.perf_counter()
    for _ in range(5):
        windows, _, _ = A.window_audio(A.decode_audio(data))
        A.mel_batch_db(windows)
    per_window = (time.perf_counter() - start) / 5
    assert per_window < 0.25, per_window


def test_a_wav_declaring_more_data_than_it_holds_is_decoded_as_what_it_holds():
    """Streaming writers leave the data size at its maximum; FFmpeg reads what is there, and so do we.

    A header declaring 10 hours allocates nothing: decoding is bounded by the bytes sent, and
    ``duration_s`` reports the 0.5 s that were actually there.
    """
    from deepfake_serving.audio_pipeline import prepare_audio

    samples = (_tone(16000, 0.5) * 20000).astype(np.int16).tobytes()
    windows = prepare_audio(bad_media.wav(samples, declared_data_bytes=16000 * 3600 * 10 * 2))
    assert windows.duration_s == pytest.approx(0.5, abs=0.01)
    assert len(windows.inputs) == 1


def _broadband(sr: int, seconds: float) -> np.ndarray:
    """Noise plus a chirp up to 8 kHz: energy in the top mel bands, where resamplers differ."""
    rng = np.random.default_rng(1)
    t = np.arange(int(sr * seconds)) / sr
    chirp = np.sin(2 * np.pi * (50 * t + (8000 - 50) / (2 * seconds) * t**2))
    return (0.4 * chirp + 0.1 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize("sr", [44100, 48000])
@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_the_whole_path_matches_librosa_load_and_the_librosa_mel(tmp_path, fmt: str, sr: int) -> None:
    """The training code starts from ``librosa.load(path, sr=16000)``, which resamples with
    soxr "HQ". With ``resample_poly`` the server's top mel band differed by up to 16.6 dB on this signal."""
    import soundfile

    path = tmp_path / f"broadband.{fmt}"
    soundfile.write(path, _broadband(sr, 9.0), sr, subtype="PCM_16")
    y_spec, _ = librosa.load(path, sr=16000)
    y_served = A.decode_audio(path.read_bytes())
    assert y_served.shape == y_spec.shape
    np.testing.assert_array_equal(y_served, y_spec)  # the same soxr HQ on the same float32 samples
    windows_spec, _, _ = A.window_audio(y_spec)
    windows_served, _, _ = A.window_audio(y_served)
    for spec_window, served_mel in zip(windows_spec, A.mel_batch_db(windows_served), strict=True):
        ref = librosa.power_to_db(
            librosa.feature.melspectrogram(y=spec_window, sr=16000, n_fft=1024, hop_length=256, n_mels=80),
            ref=np.max,
        )
        assert np.abs(served_mel[0] - ref).max() <= 1e-5  # the README's claim; measured 7.6e-6 (float32)

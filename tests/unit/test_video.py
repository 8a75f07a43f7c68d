"""Frame sampling for the temporal analyzer from in-memory video, with clips encoded in the test.

Every frame carries its index as a row of black/white 16x16 blocks (binary,
MSB first), which survives lossy coding, so the test can read back which frame
was sampled.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import av
import numpy as np
import pytest

from deepfake_serving.errors import RequestError
from deepfake_serving.testing import media_av
from deepfake_serving.video import sample_indices, sample_video

BITS = 11
BLOCK = 16
WIDTH, HEIGHT = BITS * BLOCK, 3 * BLOCK


def _frame_image(i: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    img = np.zeros((height, width, 3), np.uint8)
    img[2 * BLOCK :, :, 0] = 200  # a red band to check RGB (not BGR) order
    for b in range(BITS):
        if (i >> (BITS - 1 - b)) & 1:
            img[:BLOCK, b * BLOCK : (b + 1) * BLOCK] = 255
    return img


def _read_index(rgb: np.ndarray) -> int:
    """Inverse of :func:`_frame_image` on a decoded (full-resolution) frame."""
    value = 0
    for b in range(BITS):
        block = rgb[4 : BLOCK - 4, b * BLOCK + 4 : (b + 1) * BLOCK - 4]
        value = (value << 1) | int(block.mean() > 128)
    return value


# name -> (container, video codec, pix_fmt, options, audio codec, audio rate): the
# server tests' formats, plus B-frames (decode order differs from display order).
FORMATS = {
    **media_av.VIDEO_FORMATS,
    "mp4_h264_bframes": ("mp4", "libx264", "yuv420p", {"preset": "veryfast", "g": "12", "bf": "3"}, "aac", 48000),
}


def _tone(rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def encode_video(
    n_frames: int,
    fps: int,
    fmt: str,
    vcodec: str,
    pix_fmt: str,
    options: dict[str, str],
    acodec: str | None = None,
    arate: int = 48000,
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> bytes:
    """``n_frames`` frames that carry their index (:func:`_read_index`), with a 440 Hz tone when ``acodec``."""
    frames = [_frame_image(i, width, height) for i in range(n_frames)]
    return media_av.encode_frames(frames, fps, fmt, vcodec, pix_fmt, options, acodec, arate, audio=_tone)


@pytest.fixture(scope="module")
def clips() -> dict[str, bytes]:
    """One 50-frame, 25 fps clip per accepted format, encoded once for the module."""
    return {name: encode_video(50, 25, *spec) for name, spec in FORMATS.items()}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_samples_right_frames_in_every_format(clips: dict[str, bytes], name: str) -> None:
    """Each format yields the 16 ``linspace`` frame indices, in RGB, with timing and the audio track."""
    result = sample_video(clips[name])
    expected = np.linspace(0, 49, 16, dtype=int)
    assert result.total_frames == 50
    assert list(result.frame_indices) == list(expected)
    assert [_read_index(f) for f in result.frames_full] == list(expected)
    np.testing.assert_allclose(result.times_s, expected / 25.0, atol=1e-3)
    assert result.frames.shape == (16, 224, 224, 3) and result.frames.dtype == np.uint8
    assert result.frames_full.shape == (16, HEIGHT, WIDTH, 3)
    # RGB order: the bottom band is red.
    band = result.frames[0, 200:, :, :].reshape(-1, 3).mean(axis=0)
    assert band[0] > 150 and band[1] < 60 and band[2] < 60
    assert result.duration_s == pytest.approx(2.0, abs=0.1)
    assert result.fps == pytest.approx(25.0)
    assert result.has_audio and result.audio is not None and result.audio_error is None
    assert abs(len(result.audio) / 16000 - 2.0) < 0.1


def test_sample_indices_match_spec() -> None:
    """Indices are ``np.linspace(0, total - 1, 16, dtype=int)``, padded with the last for short clips."""
    assert list(sample_indices(100)) == list(np.linspace(0, 99, 16, dtype=int))
    assert list(sample_indices(5)) == [0, 1, 2, 3, 4] + [4] * 11


def test_short_clip_repeats_last_frame() -> None:
    """A clip under 16 frames repeats its last frame, as the training sampling does."""
    data = encode_video(5, 10, "mp4", "libx264", "yuv420p", {"preset": "ultrafast"})
    result = sample_video(data)
    assert result.total_frames == 5 and result.padded == 11
    assert [_read_index(f) for f in result.frames_full] == [0, 1, 2, 3, 4] + [4] * 11
    assert list(result.frame_indices) == [0, 1, 2, 3, 4] + [4] * 11
    assert not result.has_audio and result.audio is None


def test_single_frame_clip() -> None:
    """A one-frame clip fills all 16 slots with that frame."""
    data = encode_video(1, 10, "avi", "mjpeg", "yuvj420p", {})
    result = sample_video(data)
    assert result.total_frames == 1 and [_read_index(f) for f in result.frames_full] == [0] * 16


def test_long_clip_is_sampled_without_decoding_everything() -> None:
    """Seeking to keyframes keeps a long clip's cost near 16 GOPs, not the whole clip."""
    fps, seconds = 25, 60
    data = encode_video(fps * seconds, fps, "mp4", "libx264", "yuv420p", {"preset": "ultrafast", "g": "25"})
    start = time.perf_counter()
    result = sample_video(data)
    elapsed = time.perf_counter() - start
    expected = np.linspace(0, fps * seconds - 1, 16, dtype=int)
    assert result.total_frames == fps * seconds
    assert [_read_index(f) for f in result.frames_full] == list(expected)
    # 16 targets x at most one 25-frame GOP each (+ decoder lag), not 1500.
    assert result.decoded_frames < 0.35 * result.total_frames, result.decoded_frames
    assert elapsed < 5.0


@pytest.mark.parametrize("name", ["mp4_h264_bframes", "webm_vp9_opus", "avi_mjpeg"])
def test_linear_decode_gives_the_same_frames(clips: dict[str, bytes], name: str) -> None:
    """The linear fallback (no seeking) samples exactly what seeking does."""
    seeking = sample_video(clips[name], decode_audio_track=False)
    linear = sample_video(clips[name], seek=False, decode_audio_track=False)
    np.testing.assert_array_equal(seeking.frames_full, linear.frames_full)
    np.testing.assert_array_equal(seeking.times_s, linear.times_s)
    assert linear.decoded_frames == 50


def test_webm_without_frame_count_in_header() -> None:
    """WebM has no frame count in its header; the packet scan still counts frames exactly."""
    spec = FORMATS["webm_vp9_opus"]
    data = encode_video(40, 20, *spec[:4])
    with av.open(io.BytesIO(data)) as probe:
        assert probe.streams.video[0].frames == 0  # Matroska has no frame count
    result = sample_video(data)
    assert result.total_frames == 40
    assert [_read_index(f) for f in result.frames_full] == list(np.linspace(0, 39, 16, dtype=int))
    assert not result.has_audio


def _bad_inputs() -> dict[str, bytes]:
    rng = np.random.default_rng(3)
    mp4 = encode_video(30, 25, "mp4", "libx264", "yuv420p", {"preset": "ultrafast"})
    buf = io.BytesIO()
    with av.open(buf, "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1600), np.int16), format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return {
        "empty": b"",
        "random": rng.integers(0, 256, 50000, dtype=np.uint8).tobytes(),
        "truncated_mp4": mp4[: len(mp4) // 2],  # moov atom is at the end: unplayable
        "head_only_mp4": mp4[:64],
        "audio_only": buf.getvalue(),
    }


@pytest.mark.parametrize("case", sorted(_bad_inputs()))
def test_bad_inputs_raise_request_error(case: str) -> None:
    """Unusable uploads become a RequestError naming the input, never a PyAV exception."""
    with pytest.raises(RequestError) as info:
        sample_video(_bad_inputs()[case])
    assert info.value.input_name == "VIDEO"


def test_truncated_faststart_mp4_raises(tmp_path: Path) -> None:
    """A cut faststart MP4 whose index promises missing frames is refused as truncated."""
    # With the moov atom first the index promises frames the bytes lack.
    path = tmp_path / "faststart.mp4"
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "g": "10"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(100):
            frame = av.VideoFrame.from_ndarray(_frame_image(i), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    data = path.read_bytes()
    assert sample_video(data).total_frames == 100
    with pytest.raises(RequestError, match="corrupt or truncated"):
        sample_video(data[: int(len(data) * 0.7)])


def test_limits_checked_before_decoding() -> None:
    """Pixel, duration and byte limits refuse from the headers, with the limit in the message."""
    data = encode_video(50, 25, "mp4", "libx264", "yuv420p", {"preset": "ultrafast"}, width=320, height=240)
    with pytest.raises(RequestError, match="320x240 pixels exceeds the limit of 10000 pixels"):
        sample_video(data, max_pixels=10000)
    with pytest.raises(RequestError, match="exceeds the limit of 1 s"):
        sample_video(data, max_duration_s=1.0)
    with pytest.raises(RequestError, match="bytes exceeds the limit"):
        sample_video(data, max_bytes=100)


def test_dense_sampling_decodes_forward_once_and_gets_every_asked_frame() -> None:
    """A frame every 5 of 600 (a timeline): one pass, each frame the right one, yielded in order."""
    from deepfake_serving.video import VideoReader

    data = encode_video(600, 25, "mp4", "libx264", "yuv420p", {"preset": "ultrafast", "g": "100"})
    wanted = list(range(0, 600, 5))
    with VideoReader(data) as reader:
        got = [(index, _read_index(rgb)) for index, rgb in reader.frames(wanted)]
        decoded = reader.decoded_frames
    assert got == [(i, i) for i in wanted]
    # One pass up to the last target (plus decoder lag), never a GOP per target.
    assert decoded <= 600, decoded


def test_sparse_sampling_still_seeks() -> None:
    from deepfake_serving.video import VideoReader

    data = encode_video(1500, 25, "mp4", "libx264", "yuv420p", {"preset": "ultrafast", "g": "25"})
    with VideoReader(data) as reader:
        got = [_read_index(rgb) for _, rgb in reader.frames([0, 700, 1400])]
        decoded = reader.decoded_frames
    assert got == [0, 700, 1400] and decoded < 150, decoded

"""The work limits that need no server: header counts, the decode plan, the CPU budget."""

from __future__ import annotations

import numpy as np
import pytest

from deepfake_serving import audio, imaging, video
from deepfake_serving.budget import RequestCancelled, WorkBudget
from deepfake_serving.errors import RequestError
from deepfake_serving.testing import media, media_av
from tests import bad_media


def test_jpeg_scans_are_counted_from_the_markers():
    baseline = media.encode(media.astronaut(), "JPEG")
    progressive = media.encode(media.astronaut(), "JPEG", progressive=True)
    assert imaging.jpeg_scan_count(baseline) == 1
    assert 2 < imaging.jpeg_scan_count(progressive) <= 12  # libjpeg's progressive script
    assert (
        imaging.jpeg_scan_count(bad_media.repeated_scan_jpeg(64, 64, 100))
        == imaging.jpeg_scan_count(media.encode(np.full((64, 64), 128, np.uint8), "JPEG", progressive=True, quality=90))
        + 100
    )


def test_a_standard_progressive_jpeg_is_decoded():
    data = media.encode(media.astronaut(), "JPEG", progressive=True)
    assert imaging.decode_image(data).shape == (512, 512, 3)


def test_tiff_strips_are_counted_from_the_first_ifd():
    assert imaging.tiff_chunk_count(bad_media.many_strip_tiff(10, 5000)) == 5000
    assert imaging.tiff_chunk_count(media.encode(media.astronaut(), "TIFF")) >= 1
    assert imaging.tiff_chunk_count(media.encode(media.astronaut(), "PNG")) is None
    assert imaging.tiff_chunk_count(b"II*\x00\xff\xff\xff\x7f" + bytes(8)) is None  # IFD past the end


def test_a_tiff_within_the_strip_limit_decodes():
    assert imaging.decode_image(bad_media.many_strip_tiff(10, 5000)).shape == (5000, 10, 3)
    with pytest.raises(RequestError, match="max_tiff_chunks"):
        imaging.decode_image(bad_media.many_strip_tiff(10, 5000), max_tiff_chunks=4999)


def test_the_decode_plan_counts_what_seeking_and_decoding_on_touch():
    pts = list(range(100))
    # One keyframe: reaching frame 99 decodes all 100, whatever the other targets.
    assert video.frames_to_decode(pts, [0], [0, 50, 99], linear=False) == 100
    # A keyframe every 10: each target decodes from its keyframe, or on from the last target.
    assert video.frames_to_decode(pts, list(range(0, 100, 10)), [5, 7, 95], linear=False) == 6 + 2 + 6
    assert video.frames_to_decode(pts, list(range(0, 100, 10)), [5, 95], linear=True) == 96


def test_the_budget_refuses_naming_the_limit_once_the_cpu_is_spent():
    clock = iter([0.0, 5.0, 12.0]).__next__
    budget = WorkBudget(10, "IMAGE", clock=clock)
    budget.check("face detection")  # 5 s used
    with pytest.raises(
        RequestError, match=r"IMAGE: face detection exceeded the work limit of 10 CPU seconds.*max_cpu_s"
    ):
        budget.check("face detection")


def test_a_cancelled_request_stops_at_the_next_check():
    with pytest.raises(RequestCancelled, match="cancelled by the client"):
        WorkBudget(10, "VIDEO", is_cancelled=lambda: True).check("video decoding")


def test_audio_over_the_native_sample_limit_is_refused_before_decoding():
    data = media_av.encode_audio(media_av.tone(48000, 3.0), 48000, "flac", "flac")
    assert audio.decode_audio(data).size == 48000
    with pytest.raises(RequestError, match="max_native_samples"):
        audio.decode_audio(data, max_native_samples=100_000)


def test_rate_changes_are_counted_and_limited():
    # 6 and 15 segments at 44.1, 48 and 32 kHz in turn (FFmpeg's MP3 decoder adds one change at the start).
    assert audio.decode_audio(bad_media.rate_changing_mp3(repeats=2), max_rate_changes=8).size > 0
    with pytest.raises(RequestError, match="max_rate_changes"):
        audio.decode_audio(bad_media.rate_changing_mp3(repeats=5), max_rate_changes=8)


def test_streaming_resampling_equals_the_one_shot_call():
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(44100 * 3)).astype(np.float32)
    resampled = audio._Resampled(16000)
    for start in range(0, x.size, 4608):
        resampled.add(44100, x[start : start + 4608])
    np.testing.assert_array_equal(resampled.samples(), audio.resample_to(x, 44100))


def test_cancellation_is_asked_at_most_every_50_ms():
    asked = []
    budget = WorkBudget(10, "VIDEO", is_cancelled=lambda: asked.append(1) or False)
    for _ in range(1000):
        budget.check("video decoding")
    assert 1 <= len(asked) <= 5  # a thousand frames decoded in well under 250 ms

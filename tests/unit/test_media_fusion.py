"""Aggregation and fusion rules of detect_audio / detect_video, and the pipelines' shaping, without a server."""

from __future__ import annotations

import numpy as np
import pytest

from deepfake_serving.audio_pipeline import AudioLimits, prepare_audio, windows_from_samples
from deepfake_serving.fusion import NO_SCORE, AudioAggregation, FrameAggregation, ImageFusion, VideoFusion
from deepfake_serving.testing import media_av
from deepfake_serving.video_pipeline import FrameFaces, batches, frame_scores


def test_a_few_strongly_fake_windows_are_not_averaged_away():
    probs = np.array([0.05] * 9 + [0.95, 0.97, 0.99])
    score, all_silent = AudioAggregation().score(probs, np.zeros(12, bool))
    assert score == pytest.approx(np.mean([0.95, 0.97, 0.99]))  # top quarter: 3 of 12
    assert score > probs.mean() + 0.5 and not all_silent


def test_silent_windows_are_excluded_from_the_audio_score():
    probs = np.array([0.2, 0.9, 0.3, 0.99])
    silent = np.array([False, True, False, True])
    assert AudioAggregation().score(probs, silent) == (pytest.approx(0.3), False)


def test_all_silent_audio_has_a_defined_score_and_a_flag():
    score, all_silent = AudioAggregation(silent_score=0.5).score(np.array([np.nan, 0.7]), np.array([True, True]))
    assert score == 0.5 and all_silent


def test_audio_aggregation_rejects_bad_parameters():
    with pytest.raises(ValueError):
        AudioAggregation(top_fraction=0)
    with pytest.raises(ValueError):
        AudioAggregation(silent_score=2)


def test_many_confidently_fake_frames_are_averaged_among_themselves():
    probs = np.array([0.9] * 6 + [0.1] * 10)  # 6/16 > 11/32 confidently fake
    assert FrameAggregation().score(probs, np.ones(16, bool)) == pytest.approx(0.9)


def test_almost_all_confidently_real_frames_give_their_mean():
    probs = np.array([0.1] * 15 + [0.5])
    assert FrameAggregation().score(probs, np.ones(16, bool)) == pytest.approx(0.1)


def test_otherwise_frames_give_the_plain_mean_over_frames_with_faces():
    probs = np.array([0.5, 0.9, 0.3, NO_SCORE] + [0.4] * 12)
    has_face = np.array([True, True, True, False] + [True] * 12)
    assert FrameAggregation().score(probs, has_face) == pytest.approx(probs[has_face].mean())


def test_no_face_in_any_frame_gives_no_frame_score():
    assert FrameAggregation().score(np.full(16, NO_SCORE), np.zeros(16, bool)) is None


def test_video_fusion_renormalizes_over_the_scores_that_exist():
    fusion = VideoFusion(0.4, 0.4, 0.2)
    assert fusion.score(0.2, 0.8, 0.5) == pytest.approx(0.4 * 0.2 + 0.4 * 0.8 + 0.2 * 0.5)
    assert fusion.score(0.2, 0.8, None) == pytest.approx(0.5)
    assert fusion.score(0.3, None, None) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        VideoFusion(temporal_weight=0)


def test_frame_score_is_the_max_over_its_faces_and_minus_one_without_faces():
    has_face = np.zeros(16, bool)
    has_face[[0, 3]] = True
    faces = FrameFaces(
        visual_input=np.zeros((3, 3, 224, 224), np.float32),
        frame_of_face=np.array([0, 0, 3]),
        has_face=has_face,
        face_count=has_face.astype(np.int32),
    )
    scores = frame_scores(np.array([0.2, 0.7, 0.4]), faces)
    assert scores[0] == pytest.approx(0.7) and scores[3] == pytest.approx(0.4)
    assert (scores[~has_face] == NO_SCORE).all() and np.isfinite(scores).all()


def test_batches_respect_a_models_max_batch_size():
    assert [len(b) for b in batches(np.zeros((130, 2)), 64)] == [64, 64, 2]
    assert batches(np.zeros((0, 2)), 64) == []


def test_prepared_audio_has_one_mel_start_and_flag_per_window():
    windows = prepare_audio(media_av.audio_clip("wav", 9.0))
    assert windows.inputs.shape == (4, 1, 80, 251) and windows.inputs.dtype == np.float32
    np.testing.assert_allclose(windows.starts_s, [0, 2, 4, 5])
    assert not windows.silent.any() and windows.duration_s == pytest.approx(9.0, abs=1e-3)
    assert windows_from_samples(np.zeros(16000, np.float32)).silent.tolist() == [True]


def test_audio_limits_keep_one_requests_windows_within_one_batch():
    with pytest.raises(ValueError, match="max_windows"):
        AudioLimits(max_windows=65)


def test_a_face_score_is_the_weighted_mean_of_its_two_detectors():
    fusion = ImageFusion(0.7, 0.3)
    np.testing.assert_allclose(fusion.face_scores(np.array([1.0, 0.0]), np.array([0.0, 1.0])), [0.7, 0.3])
    np.testing.assert_allclose(ImageFusion(2.0, 2.0).face_scores(np.array([0.2]), np.array([0.6])), [0.4])


def test_the_image_score_is_the_most_suspicious_of_different_faces():
    """One manipulated face among real ones makes the image fake: the maximum, not the mean."""
    visual = np.array([0.05, 0.95, 0.10])
    forensic = np.array([0.10, 0.80, 0.20])
    assert ImageFusion().image_score(visual, forensic) == pytest.approx(0.7 * 0.95 + 0.3 * 0.80)
    # The maximum of the fused scores, not of each detector apart.
    assert ImageFusion().image_score(np.array([0.9, 0.6]), np.array([0.0, 0.9])) == pytest.approx(0.7 * 0.6 + 0.3 * 0.9)


@pytest.mark.parametrize("weights", [(-0.1, 1.0), (0.0, 0.0)])
def test_image_fusion_refuses_bad_weights(weights):
    with pytest.raises(ValueError, match="fusion weights"):
        ImageFusion(*weights)


def test_an_image_without_regions_cannot_be_scored():
    with pytest.raises(ValueError, match="at least one region"):
        ImageFusion().image_score(np.empty(0), np.empty(0))

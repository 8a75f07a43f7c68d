"""Which frames detect_video decodes: the spec's 16, the timeline, the segment clips, and the decode-cost fit."""

from __future__ import annotations

import numpy as np
import pytest

from deepfake_serving.video import NUM_FRAMES, VideoIndex, prefer_linear, sample_indices
from deepfake_serving.video_plan import CoverageSettings, fit_plan, plan_video


def index(seconds: float, fps: float, gop: int = 10, width: int = 640, height: int = 360) -> VideoIndex:
    total = max(1, int(round(seconds * fps)))
    pts = list(range(total))
    return VideoIndex(pts, pts[::gop], 1.0 / fps, fps, seconds, width, height)


def test_a_short_clip_is_planned_exactly_as_the_specification_samples() -> None:
    plan = plan_video(index(2, 12), CoverageSettings())
    np.testing.assert_array_equal(plan.timeline, sample_indices(24, NUM_FRAMES))
    np.testing.assert_array_equal(plan.temporal, sample_indices(24, NUM_FRAMES))
    assert plan.segments.shape == (1, NUM_FRAMES)
    assert plan.segment_start_s.tolist() == [0.0] and plan.segment_end_s[0] == pytest.approx(2.0)


def test_the_timeline_runs_at_frame_rate_hz_and_is_capped_by_max_frames() -> None:
    settings = CoverageSettings(frame_rate_hz=2, max_frames=100)
    plan = plan_video(index(30, 10), settings)
    times = plan.timeline / 10
    assert len(plan.timeline) == 60
    assert np.diff(times).max() <= 0.5 + 1e-9
    long = plan_video(index(600, 10), settings)
    assert len(long.timeline) == 100 and long.timeline[0] == 0 and long.timeline[-1] == 5999


def test_segments_tile_the_whole_video_at_the_configured_rate() -> None:
    settings = CoverageSettings(segment_stride_s=4, segment_frame_rate_hz=4, max_segments=16)
    plan = plan_video(index(30, 10), settings)
    assert plan.segment_start_s[0] == 0 and plan.segment_end_s[-1] == pytest.approx(30.0)
    # consecutive clips leave no gap: stride <= clip length
    assert np.all(plan.segment_start_s[1:] <= plan.segment_end_s[:-1] + 1e-6)
    # inside a clip, frames are 1/4 s apart (10 fps -> 2 or 3 frames)
    steps = np.diff(plan.segments, axis=1)
    assert steps.min() >= 2 and steps.max() <= 3
    capped = plan_video(index(600, 10), settings)
    assert len(capped.segments) == 16 and capped.segment_end_s[-1] == pytest.approx(600.0)


def test_a_plan_over_the_decode_limit_is_thinned_not_refused() -> None:
    video = index(600, 30, gop=300, width=1920, height=1080)
    settings = CoverageSettings()

    def work(indices: list[int]) -> int:
        from deepfake_serving.video import frames_to_decode

        targets = [video.pts[i] for i in indices]
        linear = prefer_linear(video.pts, video.key_pts, targets)
        return frames_to_decode(video.pts, video.key_pts, targets, linear) * 1920 * 1080

    full, reduced = fit_plan(video, settings, work, max_decode_pixels=10**15)
    assert not reduced
    thin, reduced = fit_plan(video, settings, work, max_decode_pixels=10_000_000_000)
    assert reduced and work(thin.decode) <= 10_000_000_000
    assert len(thin.timeline) < len(full.timeline) and len(thin.segments) < len(full.segments)
    np.testing.assert_array_equal(thin.temporal, full.temporal)


def test_dense_targets_decode_forward_and_sparse_ones_seek() -> None:
    pts = list(range(3000))
    keys = pts[::250]
    assert prefer_linear(pts, keys, pts[::5])
    assert not prefer_linear(pts, keys, [pts[i] for i in np.linspace(0, 2999, 16, dtype=int)][:-1] + [2750])


@pytest.mark.parametrize(
    "bad",
    [dict(frame_rate_hz=0), dict(max_frames=8), dict(max_segments=0), dict(segment_frame_rate_hz=-1)],
)
def test_bad_settings_fail_the_load(bad: dict) -> None:
    with pytest.raises(ValueError):
        CoverageSettings(**bad)

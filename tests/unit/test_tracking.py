"""Faces linked into tracks and one score per person (deepfake_serving.tracking)."""

from __future__ import annotations

import numpy as np
import pytest

from deepfake_serving.tracking import TrackSettings, link_faces, score_tracks


def box(cx: float, cy: float, side: float = 60) -> list[float]:
    return [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]


def test_two_people_moving_stay_two_tracks_and_a_short_miss_does_not_split_one() -> None:
    times = np.arange(10) * 0.5
    frames, boxes = [], []
    for f in range(10):
        if f != 4:  # person A missed once (one sampled frame)
            frames.append(f)
            boxes.append(box(100 + 8 * f, 100))
        frames.append(f)
        boxes.append(box(400 - 8 * f, 120))
    track = link_faces(times, np.array(frames), np.array(boxes))
    a = track[np.array(boxes)[:, 0] < 250]
    b = track[np.array(boxes)[:, 0] >= 250]
    assert set(a.tolist()) == {0} and set(b.tolist()) == {1}


def test_a_long_absence_or_a_jump_starts_a_new_track() -> None:
    times = np.array([0.0, 0.5, 1.0, 5.0, 5.5])
    frames = np.arange(5)
    boxes = np.array([box(100, 100), box(102, 100), box(104, 100), box(104, 100), box(400, 300)])
    track = link_faces(times, frames, boxes, TrackSettings(max_gap_s=1.5))
    assert track.tolist() == [0, 0, 0, 1, 2]


def test_size_change_beyond_max_area_ratio_is_another_face() -> None:
    boxes = np.array([box(100, 100, 60), box(100, 100, 130)])
    assert link_faces(np.array([0.0, 0.5]), np.arange(2), boxes).tolist() == [0, 1]


def test_track_scores_and_the_video_score_is_the_most_suspicious_judged_track() -> None:
    times = np.arange(6) * 0.5
    track_of = np.array([0, 1, 0, 1, 0, 1, 2])
    face_frame = np.array([0, 0, 1, 1, 2, 2, 5])
    probs = np.array([0.1, 0.9, 0.1, 0.95, 0.15, 0.92, 0.99], np.float32)
    tracks = score_tracks(track_of, face_frame, probs, times, TrackSettings(min_faces=3))
    assert tracks.faces.tolist() == [3, 3, 1]
    assert tracks.judged.tolist() == [True, True, False]
    assert tracks.start_s.tolist() == [0.0, 0.0, 2.5] and tracks.end_s.tolist() == [1.0, 1.0, 2.5]
    # the real person (0.1-0.15) does not dilute the fake one; the one-face track is left out
    assert tracks.video_score() == pytest.approx(np.mean([0.9, 0.95, 0.92]), abs=1e-6)


def test_no_faces_no_tracks() -> None:
    track = link_faces(np.arange(3.0), np.empty(0, np.int64), np.empty((0, 4)))
    tracks = score_tracks(track, np.empty(0, np.int64), np.empty(0, np.float32), np.arange(3.0))
    assert len(tracks.fake_prob) == 0 and tracks.video_score() is None

"""Faces linked across a video's timeline into tracks: one score per person.

Association is the simple one the DFDC pipelines use: a face joins the track
whose last box overlaps it most (IoU at least ``min_iou``) and is of a
similar size (areas within ``max_area_ratio``), greedily, best overlap first,
each track taking at most one face per frame. A track that has not been seen
for more than ``max_gap_s`` is closed, so a short miss (MTCNN losing a face
for a frame, a head turning away) does not split a person in two, while a
person leaving and another entering at the same place after a pause is a new
track. At the 2 Hz default timeline a face moves about a third of its width
between frames at brisk walking motion, which keeps IoU well above 0.3.

A track's score is :class:`~deepfake_serving.fusion.FrameAggregation` (the
confident-frames rule) over its faces. The video's frame score is the most
suspicious track's, because one manipulated person makes the video fake
however many real people surround them. A track with fewer than
``min_faces`` faces (a passer-by, a false detection) is reported but too
short to judge, and left out of that maximum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepfake_serving.fusion import FrameAggregation


@dataclass(frozen=True)
class TrackSettings:
    """The ``detect_video`` config parameters ``track_*``."""

    min_iou: float = 0.3
    max_area_ratio: float = 2.0
    max_gap_s: float = 1.5
    min_faces: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.min_iou <= 1 or self.max_area_ratio < 1 or self.max_gap_s < 0 or self.min_faces < 1:
            raise ValueError("need 0 < min_iou <= 1, max_area_ratio >= 1, max_gap_s >= 0, min_faces >= 1")


DEFAULT_TRACKING = TrackSettings()
_CONFIDENT_FRAMES = FrameAggregation()


@dataclass(frozen=True)
class Tracks:
    """Per-track results, in order of first appearance (track ``i`` is row ``i``)."""

    fake_prob: np.ndarray  # float32[t]
    start_s: np.ndarray  # float32[t]: time of the track's first face
    end_s: np.ndarray  # float32[t]: time of its last face
    faces: np.ndarray  # int32[t]
    judged: np.ndarray  # bool[t]: has at least min_faces faces, so it enters the video's score

    def video_score(self) -> float | None:
        """The most suspicious judged track's score; None when no track is long enough to judge."""
        judged = self.fake_prob[self.judged]
        return float(judged.max()) if judged.size else None


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` [m,4] with every box in ``b`` [n,4] (x1, y1, x2, y2)."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a, area_b = _area(a), _area(b)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def link_faces(
    frame_time_s: np.ndarray, face_frame: np.ndarray, boxes: np.ndarray, settings: TrackSettings = DEFAULT_TRACKING
) -> np.ndarray:
    """``int32[n]``: the track of each face, numbered in order of first appearance.

    Args:
        frame_time_s: float[f], each timeline frame's time (non-decreasing).
        face_frame: int[n], the timeline frame of each face (non-decreasing).
        boxes: float[n, 4], each face's box in the frame's pixels.
    """
    face_frame = np.asarray(face_frame, dtype=np.int64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    track_of = np.full(len(face_frame), -1, dtype=np.int32)
    last_box: list[np.ndarray] = []
    last_time: list[float] = []
    for frame in np.unique(face_frame):
        faces = np.flatnonzero(face_frame == frame)
        now = float(frame_time_s[frame])
        alive = [t for t in range(len(last_box)) if now - last_time[t] <= settings.max_gap_s]
        if alive:
            previous = np.stack([last_box[t] for t in alive])
            overlap = _iou(previous, boxes[faces])
            area_prev, area_now = _area(previous)[:, None], _area(boxes[faces])[None, :]
            ratio = np.maximum(area_prev, area_now) / np.maximum(np.minimum(area_prev, area_now), 1e-9)
            overlap[(overlap < settings.min_iou) | (ratio > settings.max_area_ratio)] = -1.0
            # Greedy, best overlap first: each track and each face matched at most once.
            for flat in np.argsort(-overlap, axis=None, kind="stable"):
                row, column = divmod(int(flat), len(faces))
                if overlap[row, column] < 0:
                    break
                if track_of[faces[column]] >= 0 or alive[row] in track_of[faces]:
                    continue
                track_of[faces[column]] = alive[row]
        for face in faces:
            if track_of[face] < 0:
                track_of[face] = len(last_box)
                last_box.append(boxes[face])
                last_time.append(now)
            else:
                last_box[track_of[face]] = boxes[face]
                last_time[track_of[face]] = now
    return track_of


def score_tracks(
    track_of: np.ndarray,
    face_frame: np.ndarray,
    face_fake_prob: np.ndarray,
    frame_time_s: np.ndarray,
    settings: TrackSettings = DEFAULT_TRACKING,
    rule: FrameAggregation = _CONFIDENT_FRAMES,
) -> Tracks:
    """Each track's score (``rule`` over its faces), time span and face count."""
    count = int(track_of.max()) + 1 if len(track_of) else 0
    probs, starts, ends, faces = [], [], [], []
    for track in range(count):
        mine = track_of == track
        score = rule.score(face_fake_prob[mine], np.ones(int(mine.sum()), bool))
        assert score is not None  # a track has at least one face
        times = frame_time_s[face_frame[mine]]
        probs.append(score)
        starts.append(times.min())
        ends.append(times.max())
        faces.append(int(mine.sum()))
    faces_arr = np.array(faces, dtype=np.int32)
    return Tracks(
        fake_prob=np.array(probs, dtype=np.float32),
        start_s=np.array(starts, dtype=np.float32),
        end_s=np.array(ends, dtype=np.float32),
        faces=faces_arr,
        judged=faces_arr >= settings.min_faces,
    )

"""Typed results that mirror the ensembles' outputs.

Each ``from_outputs`` reads tensors by the names in one mapping at the top of
its class (``OUTPUTS``), taken from :mod:`deepfake_contract`, the definition
the server's configs are checked against. Outputs renamed in this release are
also read under their former names (``FORMER_NAMES``), so this client works
with a server one release older. ``to_dict`` gives plain JSON-ready data.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from deepfake_contract import DETECT_AUDIO, DETECT_IMAGE, DETECT_VIDEO, FORMER_NAMES

__all__ = [
    "Face",
    "ImageResult",
    "AudioWindow",
    "AudioResult",
    "VideoFrame",
    "VideoSegment",
    "VideoFace",
    "VideoTrack",
    "VideoResult",
    "DetectionResult",
]

Outputs = Mapping[str, np.ndarray]


def with_current_names(model: str, outputs: Outputs) -> Outputs:
    """``outputs`` with any output an older server sent under a former name under its current one."""
    renamed = {new: old for new, old in FORMER_NAMES.get(model, {}).items() if new not in outputs and old in outputs}
    if not renamed:
        return outputs
    return {**outputs, **{new: outputs[old] for new, old in renamed.items()}}


def _names(outputs: Outputs, name: str) -> tuple[str, ...]:
    """A comma-separated BYTES output as names; () when absent (an older server) or empty."""
    if name not in outputs:
        return ()
    value = _flat(outputs, name)[0]
    text = value.decode() if isinstance(value, bytes) else str(value)
    return tuple(part for part in text.split(",") if part)


def _flat(outputs: Outputs, name: str) -> np.ndarray:
    return np.asarray(outputs[name]).reshape(-1)


def _scalar(outputs: Outputs, name: str, default: Any = None) -> Any:
    if name not in outputs:
        if default is None:
            raise KeyError(f"the server's answer has no {name!r} output")
        return default
    return _flat(outputs, name)[0].item()


def _threshold(outputs: Outputs, name: str) -> float | None:
    """The server's decision threshold; None from a server too old to send one."""
    return float(_scalar(outputs, name)) if name in outputs else None


class _ResultBase:
    """``to_dict`` and the verdict shared by every result."""

    fake_prob: float
    kind: ClassVar[str]

    def is_fake(self, threshold: float | None = None) -> bool:
        """Whether the fused probability reaches the threshold: ``threshold`` when given, else the server's.

        The server's is the one its operators chose on validation data
        (``THRESHOLD``; 0.5 from a server too old to send one).
        """
        if threshold is None:
            threshold = getattr(self, "threshold", None)
        return self.fake_prob >= (0.5 if threshold is None else threshold)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: the dataclass fields plus ``kind``."""
        data = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {"kind": self.kind, **_plain(data)}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class Face:
    """One face (or, when no face was found, the centered square scored instead).

    Attributes:
        box: (x1, y1, x2, y2) in pixels of the EXIF-oriented image.
        confidence: the face detector's confidence; 0 for the no-face fallback square.
        visual_fake_prob: the visual (CNN) detector's probability that the face is fake.
        forensic_fake_prob: the forensic classifier's probability that the face is fake.
        forensic_features: the 12 hand-crafted forensic features the classifier saw.
    """

    box: tuple[float, float, float, float]
    confidence: float
    visual_fake_prob: float
    forensic_fake_prob: float
    forensic_features: tuple[float, ...] = ()


@dataclass(frozen=True)
class ImageResult(_ResultBase):
    """The ``detect_image`` verdict.

    Attributes:
        fake_prob: the image's probability of being fake (the most suspicious face).
        faces: every face kept, largest first as the server returns them.
        face_found: False when no face was found and the image's center was scored.
        faces_dropped: faces found beyond the server's ``max_faces`` and not scored.
        demo_weights: True when the server runs untrained demo weights: the numbers mean nothing.
        demo_models: which detectors behind this answer have demo weights (empty from an older server).
        source: what was analysed (a path, ``"<bytes>"``, ``"-"``), for reports.
        threshold: the server's decision threshold (``FAKE_PROB >= threshold`` is fake), chosen by its
            operators on validation data; None from an older server. :meth:`is_fake` uses it by default.
    """

    kind: ClassVar[str] = "image"
    OUTPUTS: ClassVar[dict[str, str]] = {
        "boxes": DETECT_IMAGE.FACE_BOXES.name,
        "confidence": DETECT_IMAGE.FACE_CONFIDENCE.name,
        "visual": DETECT_IMAGE.VISUAL_FAKE_PROB.name,
        "forensic": DETECT_IMAGE.FORENSIC_FAKE_PROB.name,
        "features": DETECT_IMAGE.FORENSIC_FEATURES.name,
        "fake_prob": DETECT_IMAGE.FAKE_PROB.name,
        "face_found": DETECT_IMAGE.FACE_FOUND.name,
        "faces_dropped": DETECT_IMAGE.FACES_DROPPED.name,
        "demo_weights": DETECT_IMAGE.DEMO_WEIGHTS.name,
        "demo_models": DETECT_IMAGE.DEMO_MODELS.name,
        "threshold": DETECT_IMAGE.THRESHOLD.name,
    }

    fake_prob: float
    faces: tuple[Face, ...]
    face_found: bool
    faces_dropped: int = 0
    demo_weights: bool = False
    demo_models: tuple[str, ...] = ()
    source: str | None = None
    threshold: float | None = None

    @classmethod
    def from_outputs(cls, outputs: Outputs, *, source: str | None = None) -> ImageResult:
        """Build the result from the ensemble's output tensors."""
        names = cls.OUTPUTS
        outputs = with_current_names(DETECT_IMAGE.name, outputs)
        boxes = np.asarray(outputs[names["boxes"]], dtype=np.float64).reshape(-1, 4)
        confidence = _flat(outputs, names["confidence"])
        visual = _flat(outputs, names["visual"])
        forensic = _flat(outputs, names["forensic"])
        features = (
            np.asarray(outputs[names["features"]], dtype=np.float64).reshape(len(boxes), -1)
            if names["features"] in outputs
            else np.zeros((len(boxes), 0))
        )
        faces = tuple(
            Face(
                box=tuple(float(v) for v in boxes[i]),  # type: ignore[arg-type]
                confidence=float(confidence[i]),
                visual_fake_prob=float(visual[i]),
                forensic_fake_prob=float(forensic[i]),
                forensic_features=tuple(float(v) for v in features[i]),
            )
            for i in range(len(boxes))
        )
        return cls(
            fake_prob=float(_scalar(outputs, names["fake_prob"])),
            faces=faces,
            face_found=bool(_scalar(outputs, names["face_found"], False)),
            faces_dropped=int(_scalar(outputs, names["faces_dropped"], 0)),
            demo_weights=bool(_scalar(outputs, names["demo_weights"], False)),
            demo_models=_names(outputs, names["demo_models"]),
            source=source,
            threshold=_threshold(outputs, names["threshold"]),
        )


@dataclass(frozen=True)
class AudioWindow:
    """One analysis window of the audio track.

    Attributes:
        start_s: where the window starts, in seconds from the start of the file.
        fake_prob: the audio detector's probability that this window is synthetic;
            -1 for a silent window (not scored) in a video's audio timeline.
        silent: the window is near-silence and left out of the verdict.
    """

    start_s: float
    fake_prob: float
    silent: bool = False


def _windows(starts: np.ndarray, probs: np.ndarray, silent: np.ndarray) -> tuple[AudioWindow, ...]:
    return tuple(AudioWindow(float(t), float(p), bool(q)) for t, p, q in zip(starts, probs, silent, strict=True))


@dataclass(frozen=True)
class AudioResult(_ResultBase):
    """The ``detect_audio`` verdict.

    Attributes:
        fake_prob: the recording's probability of being synthetic (fused over windows).
        windows: the per-window probabilities, in time order.
        duration_s: how many seconds of sound the server analysed (``real_seconds`` before 0.2).
        audio_silent: True when the recording held no usable sound, so the verdict
            means nothing (``silent`` before 0.2).
        demo_weights: True when the server runs untrained demo weights.
        demo_models: which detectors behind this answer have demo weights (empty from an older server).
        source: what was analysed.
        threshold: the server's decision threshold (``FAKE_PROB >= threshold`` is fake), chosen by its
            operators on validation data; None from an older server. :meth:`is_fake` uses it by default.
    """

    kind: ClassVar[str] = "audio"
    OUTPUTS: ClassVar[dict[str, str]] = {
        "window_prob": DETECT_AUDIO.WINDOW_FAKE_PROB.name,
        "window_start": DETECT_AUDIO.WINDOW_START_S.name,
        "window_silent": DETECT_AUDIO.WINDOW_SILENT.name,
        "fake_prob": DETECT_AUDIO.FAKE_PROB.name,
        "duration_s": DETECT_AUDIO.DURATION_S.name,
        "audio_silent": DETECT_AUDIO.AUDIO_SILENT.name,
        "demo_weights": DETECT_AUDIO.DEMO_WEIGHTS.name,
        "demo_models": DETECT_AUDIO.DEMO_MODELS.name,
        "threshold": DETECT_AUDIO.THRESHOLD.name,
    }

    fake_prob: float
    windows: tuple[AudioWindow, ...]
    duration_s: float = 0.0
    audio_silent: bool = False
    demo_weights: bool = False
    demo_models: tuple[str, ...] = ()
    source: str | None = None
    threshold: float | None = None

    @property
    def real_seconds(self) -> float:
        """Deprecated name of :attr:`duration_s`; removed in the next release."""
        warnings.warn("AudioResult.real_seconds is now duration_s", DeprecationWarning, stacklevel=2)
        return self.duration_s

    @property
    def silent(self) -> bool:
        """Deprecated name of :attr:`audio_silent`; removed in the next release."""
        warnings.warn("AudioResult.silent is now audio_silent", DeprecationWarning, stacklevel=2)
        return self.audio_silent

    @classmethod
    def from_outputs(cls, outputs: Outputs, *, source: str | None = None) -> AudioResult:
        """Build the result from the ensemble's output tensors."""
        names = cls.OUTPUTS
        outputs = with_current_names(DETECT_AUDIO.name, outputs)
        probs = _flat(outputs, names["window_prob"])
        starts = _flat(outputs, names["window_start"]) if names["window_start"] in outputs else np.zeros(len(probs))
        silent = _flat(outputs, names["window_silent"]) if names["window_silent"] in outputs else np.zeros(len(probs))
        return cls(
            fake_prob=float(_scalar(outputs, names["fake_prob"])),
            windows=_windows(starts, probs, silent),
            duration_s=float(_scalar(outputs, names["duration_s"], 0.0)),
            audio_silent=bool(_scalar(outputs, names["audio_silent"], False)),
            demo_weights=bool(_scalar(outputs, names["demo_weights"], False)),
            demo_models=_names(outputs, names["demo_models"]),
            source=source,
            threshold=_threshold(outputs, names["threshold"]),
        )


@dataclass(frozen=True)
class VideoFrame:
    """One sampled frame of the video timeline.

    Attributes:
        time_s: the frame's timestamp in seconds.
        fake_prob: the frame's probability of being fake (its most suspicious face).
        has_face: whether a face was found in this frame.
    """

    time_s: float
    fake_prob: float
    has_face: bool


@dataclass(frozen=True)
class VideoSegment:
    """One segment clip the temporal analyzer scored.

    Attributes:
        start_s: where the clip starts, in seconds.
        end_s: where it ends.
        fake_prob: the temporal analyzer's probability that this stretch is fake.
    """

    start_s: float
    end_s: float
    fake_prob: float


@dataclass(frozen=True)
class VideoFace:
    """One face found on the frame timeline.

    Attributes:
        frame: its frame, an index into :attr:`VideoResult.frames`.
        track: its person, an index into :attr:`VideoResult.tracks`.
        box: (x1, y1, x2, y2) in pixels of the upright frame.
        fake_prob: the visual detector's probability that the face is fake.
    """

    frame: int
    track: int
    box: tuple[float, float, float, float]
    fake_prob: float


@dataclass(frozen=True)
class VideoTrack:
    """One person: faces linked across the timeline.

    Attributes:
        start_s: when the person is first seen, in seconds.
        end_s: when last seen.
        faces: how many of the timeline's frames show them.
        fake_prob: the person's score (the confident-frames rule over their faces).
        judged: seen in enough frames to judge; only judged tracks enter the verdict.
    """

    start_s: float
    end_s: float
    faces: int
    fake_prob: float
    judged: bool = True


@dataclass(frozen=True)
class VideoResult(_ResultBase):
    """The ``detect_video`` verdict.

    Attributes:
        fake_prob: the video's fused probability of being fake (picture and sound).
        temporal_fake_prob: the temporal model's probability over the specification's 16 frames.
        frames: the timeline's frames, in time order (at the server's frame rate; at least 16).
        has_audio: whether the file had a sound track that was analysed.
        audio_fake_prob: the sound track's probability of being synthetic, None without sound.
        demo_weights: True when the server runs untrained demo weights.
        demo_models: which detectors behind this answer have demo weights (empty from an older server).
        source: what was analysed.
        threshold: the server's decision threshold (``FAKE_PROB >= threshold`` is fake), chosen by its
            operators on validation data; None from an older server. :meth:`is_fake` uses it by default.
        frames_fake_prob: the faces' score as the fusion used it: the most suspicious judged
            person's; None when nobody was seen long enough to judge.
        distinct_frames: how many different frames the temporal model's 16 are; fewer when the
            clip is shorter or its timestamps are broken (all zero), and the same picture was
            scored several times. None from an older server.
        segments: the segment clips across the whole video, in time order (empty from an older server).
        faces: every face on the timeline, in time order.
        tracks: every person, in order of first appearance.
        audio_windows: the sound track's windows, in time order (empty without sound).
        coverage_reduced: the server thinned the timeline and segments to bound its decoding work.
    """

    kind: ClassVar[str] = "video"
    OUTPUTS: ClassVar[dict[str, str]] = {
        "temporal": DETECT_VIDEO.TEMPORAL_FAKE_PROB.name,
        "frame_time": DETECT_VIDEO.FRAME_TIME_S.name,
        "frame_prob": DETECT_VIDEO.FRAME_FAKE_PROB.name,
        "frame_face": DETECT_VIDEO.FRAME_HAS_FACE.name,
        "audio": DETECT_VIDEO.AUDIO_FAKE_PROB.name,
        "frames_score": DETECT_VIDEO.FRAMES_FAKE_PROB.name,
        "has_audio": DETECT_VIDEO.HAS_AUDIO.name,
        "fake_prob": DETECT_VIDEO.FAKE_PROB.name,
        "demo_weights": DETECT_VIDEO.DEMO_WEIGHTS.name,
        "demo_models": DETECT_VIDEO.DEMO_MODELS.name,
        "threshold": DETECT_VIDEO.THRESHOLD.name,
        "distinct_frames": DETECT_VIDEO.DISTINCT_FRAMES.name,
        "segment_start": DETECT_VIDEO.SEGMENT_START_S.name,
        "segment_end": DETECT_VIDEO.SEGMENT_END_S.name,
        "segment_prob": DETECT_VIDEO.SEGMENT_FAKE_PROB.name,
        "face_frame": DETECT_VIDEO.FACE_FRAME.name,
        "face_track": DETECT_VIDEO.FACE_TRACK.name,
        "face_boxes": DETECT_VIDEO.FACE_BOXES.name,
        "face_prob": DETECT_VIDEO.FACE_FAKE_PROB.name,
        "track_prob": DETECT_VIDEO.TRACK_FAKE_PROB.name,
        "track_start": DETECT_VIDEO.TRACK_START_S.name,
        "track_end": DETECT_VIDEO.TRACK_END_S.name,
        "track_faces": DETECT_VIDEO.TRACK_FACES.name,
        "track_judged": DETECT_VIDEO.TRACK_JUDGED.name,
        "window_start": DETECT_VIDEO.AUDIO_WINDOW_START_S.name,
        "window_prob": DETECT_VIDEO.AUDIO_WINDOW_FAKE_PROB.name,
        "window_silent": DETECT_VIDEO.AUDIO_WINDOW_SILENT.name,
        "coverage_reduced": DETECT_VIDEO.COVERAGE_REDUCED.name,
    }

    fake_prob: float
    temporal_fake_prob: float
    frames: tuple[VideoFrame, ...]
    has_audio: bool = False
    audio_fake_prob: float | None = None
    demo_weights: bool = False
    demo_models: tuple[str, ...] = ()
    source: str | None = None
    distinct_frames: int | None = None
    threshold: float | None = None
    frames_fake_prob: float | None = None
    segments: tuple[VideoSegment, ...] = ()
    faces: tuple[VideoFace, ...] = ()
    tracks: tuple[VideoTrack, ...] = ()
    audio_windows: tuple[AudioWindow, ...] = ()
    coverage_reduced: bool = False

    @property
    def people(self) -> int:
        """How many people were seen long enough to judge (judged tracks)."""
        return sum(track.judged for track in self.tracks)

    @property
    def most_suspicious_segment(self) -> VideoSegment | None:
        """The segment with the highest fake probability; None from an older server."""
        return max(self.segments, key=lambda segment: segment.fake_prob, default=None)

    @classmethod
    def from_outputs(cls, outputs: Outputs, *, source: str | None = None) -> VideoResult:
        """Build the result from the ensemble's output tensors."""
        names = cls.OUTPUTS
        outputs = with_current_names(DETECT_VIDEO.name, outputs)
        probs = _flat(outputs, names["frame_prob"])
        times = _flat(outputs, names["frame_time"]) if names["frame_time"] in outputs else np.zeros(len(probs))
        faces = _flat(outputs, names["frame_face"]) if names["frame_face"] in outputs else np.ones(len(probs), bool)
        has_audio = bool(_scalar(outputs, names["has_audio"], False))
        frames_score = float(_scalar(outputs, names["frames_score"], -1.0))

        def column(key: str) -> np.ndarray:
            # Outputs added in 0.4.0: an older server has none of them.
            return _flat(outputs, names[key]) if names[key] in outputs else np.empty(0)

        boxes = np.asarray(outputs[names["face_boxes"]]).reshape(-1, 4) if names["face_boxes"] in outputs else ()
        return cls(
            fake_prob=float(_scalar(outputs, names["fake_prob"])),
            temporal_fake_prob=float(_scalar(outputs, names["temporal"], float("nan"))),
            frames=tuple(VideoFrame(float(t), float(p), bool(f)) for t, p, f in zip(times, probs, faces, strict=True)),
            has_audio=has_audio,
            # The server answers -1 when it has no audio score (no track, or only silence).
            audio_fake_prob=float(_scalar(outputs, names["audio"]))
            if has_audio and names["audio"] in outputs and float(_scalar(outputs, names["audio"])) >= 0
            else None,
            demo_weights=bool(_scalar(outputs, names["demo_weights"], False)),
            demo_models=_names(outputs, names["demo_models"]),
            source=source,
            threshold=_threshold(outputs, names["threshold"]),
            distinct_frames=int(_scalar(outputs, names["distinct_frames"]))
            if names["distinct_frames"] in outputs
            else None,
            frames_fake_prob=frames_score if frames_score >= 0 else None,
            segments=tuple(
                VideoSegment(float(s), float(e), float(p))
                for s, e, p in zip(column("segment_start"), column("segment_end"), column("segment_prob"), strict=True)
            ),
            faces=tuple(
                VideoFace(int(f), int(t), tuple(float(v) for v in b), float(p))  # type: ignore[arg-type]
                for f, t, b, p in zip(
                    column("face_frame"), column("face_track"), boxes, column("face_prob"), strict=True
                )
            ),
            tracks=tuple(
                VideoTrack(float(s), float(e), int(n), float(p), bool(j))
                for s, e, n, p, j in zip(
                    column("track_start"),
                    column("track_end"),
                    column("track_faces"),
                    column("track_prob"),
                    column("track_judged"),
                    strict=True,
                )
            ),
            audio_windows=_windows(column("window_start"), column("window_prob"), column("window_silent")),
            coverage_reduced=bool(_scalar(outputs, names["coverage_reduced"], False)),
        )


DetectionResult = ImageResult | AudioResult | VideoResult

"""Typed results that mirror the ensembles' outputs.

Each ``from_outputs`` reads tensors by the names in one mapping at the top of
its class (``OUTPUTS``), so a renamed server tensor is a one-line change here
and nowhere else. ``to_dict`` gives plain JSON-ready data (lists, floats, bools).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "Face",
    "ImageResult",
    "AudioWindow",
    "AudioResult",
    "VideoFrame",
    "VideoResult",
    "DetectionResult",
]

Outputs = Mapping[str, np.ndarray]


def _flat(outputs: Outputs, name: str) -> np.ndarray:
    return np.asarray(outputs[name]).reshape(-1)


def _scalar(outputs: Outputs, name: str, default: Any = None) -> Any:
    if name not in outputs:
        if default is None:
            raise KeyError(f"the server's answer has no {name!r} output")
        return default
    return _flat(outputs, name)[0].item()


class _ResultBase:
    """``to_dict`` and the verdict shared by every result."""

    fake_prob: float
    kind: ClassVar[str]

    def is_fake(self, threshold: float = 0.5) -> bool:
        """Whether the fused probability is above ``threshold``."""
        return self.fake_prob > threshold

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
        source: what was analysed (a path, ``"<bytes>"``, ``"-"``), for reports.
    """

    kind: ClassVar[str] = "image"
    OUTPUTS: ClassVar[dict[str, str]] = {
        "boxes": "FACE_BOXES",
        "confidence": "FACE_CONFIDENCE",
        "visual": "VISUAL_FAKE_PROB",
        "forensic": "FORENSIC_FAKE_PROB",
        "features": "FORENSIC_FEATURES",
        "fake_prob": "FAKE_PROB",
        "face_found": "FACE_FOUND",
        "faces_dropped": "FACES_DROPPED",
        "demo_weights": "DEMO_WEIGHTS",
    }

    fake_prob: float
    faces: tuple[Face, ...]
    face_found: bool
    faces_dropped: int = 0
    demo_weights: bool = False
    source: str | None = None

    @classmethod
    def from_outputs(cls, outputs: Outputs, *, source: str | None = None) -> ImageResult:
        """Build the result from the ensemble's output tensors."""
        names = cls.OUTPUTS
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
            source=source,
        )


@dataclass(frozen=True)
class AudioWindow:
    """One analysis window of the audio track.

    Attributes:
        start_s: where the window starts, in seconds from the start of the file.
        fake_prob: the audio detector's probability that this window is synthetic.
    """

    start_s: float
    fake_prob: float


@dataclass(frozen=True)
class AudioResult(_ResultBase):
    """The ``detect_audio`` verdict.

    Attributes:
        fake_prob: the recording's probability of being synthetic (fused over windows).
        windows: the per-window probabilities, in time order.
        real_seconds: how many seconds of sound the server analysed.
        silent: True when the recording held no usable sound (the verdict is then meaningless).
        demo_weights: True when the server runs untrained demo weights.
        source: what was analysed.
    """

    kind: ClassVar[str] = "audio"
    OUTPUTS: ClassVar[dict[str, str]] = {
        "window_prob": "WINDOW_FAKE_PROB",
        "window_start": "WINDOW_START_S",
        "fake_prob": "FAKE_PROB",
        "real_seconds": "REAL_SECONDS",
        "silent": "ALL_SILENT",
        "demo_weights": "DEMO_WEIGHTS",
    }

    fake_prob: float
    windows: tuple[AudioWindow, ...]
    real_seconds: float = 0.0
    silent: bool = False
    demo_weights: bool = False
    source: str | None = None

    @classmethod
    def from_outputs(cls, outputs: Outputs, *, source: str | None = None) -> AudioResult:
        """Build the result from the ensemble's output tensors."""
        names = cls.OUTPUTS
        probs = _flat(outputs, names["window_prob"])
        starts = _flat(outputs, names["window_start"]) if names["window_start"] in outputs else np.zeros(len(probs))
        return cls(
            fake_prob=float(_scalar(outputs, names["fake_prob"])),
            windows=tuple(AudioWindow(float(s), float(p)) for s, p in zip(starts, probs, strict=True)),
            real_seconds=float(_scalar(outputs, names["real_seconds"], 0.0)),
            silent=bool(_scalar(outputs, names["silent"], False)),
            demo_weights=bool(_scalar(outputs, names["demo_weights"], False)),
            source=source,
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
class VideoResult(_ResultBase):
    """The ``detect_video`` verdict.

    Attributes:
        fake_prob: the video's fused probability of being fake (picture and sound).
        temporal_fake_prob: the temporal model's probability over the frame sequence.
        frames: the sampled frames, in time order.
        has_audio: whether the file had a sound track that was analysed.
        audio_fake_prob: the sound track's probability of being synthetic, None without sound.
        demo_weights: True when the server runs untrained demo weights.
        source: what was analysed.
        distinct_frames: how many different frames the sampled ones are; fewer than
            ``len(frames)`` when the clip is shorter or its timestamps are broken (all
            zero), and the same picture was scored several times. None from an older server.
    """

    kind: ClassVar[str] = "video"
    OUTPUTS: ClassVar[dict[str, str]] = {
        "temporal": "TEMPORAL_FAKE_PROB",
        "frame_time": "FRAME_TIME_S",
        "frame_prob": "FRAME_FAKE_PROB",
        "frame_face": "FRAME_HAS_FACE",
        "audio": "AUDIO_FAKE_PROB",
        "has_audio": "HAS_AUDIO",
        "fake_prob": "FAKE_PROB",
        "demo_weights": "DEMO_WEIGHTS",
        "distinct_frames": "DISTINCT_FRAMES",
    }

    fake_prob: float
    temporal_fake_prob: float
    frames: tuple[VideoFrame, ...]
    has_audio: bool = False
    audio_fake_prob: float | None = None
    demo_weights: bool = False
    source: str | None = None
    distinct_frames: int | None = None

    @classmethod
    def from_outputs(cls, outputs: Outputs, *, source: str | None = None) -> VideoResult:
        """Build the result from the ensemble's output tensors."""
        names = cls.OUTPUTS
        probs = _flat(outputs, names["frame_prob"])
        times = _flat(outputs, names["frame_time"]) if names["frame_time"] in outputs else np.zeros(len(probs))
        faces = _flat(outputs, names["frame_face"]) if names["frame_face"] in outputs else np.ones(len(probs), bool)
        has_audio = bool(_scalar(outputs, names["has_audio"], False))
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
            source=source,
            distinct_frames=int(_scalar(outputs, names["distinct_frames"]))
            if names["distinct_frames"] in outputs
            else None,
        )


DetectionResult = ImageResult | AudioResult | VideoResult

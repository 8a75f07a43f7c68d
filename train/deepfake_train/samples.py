"""Training samples, made by the serving code itself: no second copy of any preprocessing.

Each detector learns from exactly what the server hands it:

* ``audio``: the file decoded and resampled by :mod:`deepfake_serving.audio`,
  cut into 4 s windows, silent windows left out (the server leaves them out of
  the score), log-mel by :class:`~deepfake_serving.audio_pipeline.AudioInput`;
* ``visual``: faces found and cropped by ``deepfake_serving``'s MTCNN and crop
  (:class:`~deepfake_serving.image_pipeline.FaceDetector`, same margin, size
  and resize; an image without a face gives its center crop, as served), video
  frames sampled by :func:`deepfake_serving.video.sample_video`;
* ``forensic``: :func:`deepfake_serving.forensics.extract_batch` on those crops,
  feature 12 from the detector's native-grid ``blocking`` as ``face_detector`` sends it;
* ``temporal``: the 16 frames :func:`~deepfake_serving.video.sample_video` takes.

What is stored is the last step before normalization (uint8 crops and
frames, log-mel windows, raw features), one ``.npy`` per file and kind in a
cache keyed by the file's SHA-256 and a fingerprint of the serving code, so a
second epoch or a second run never decodes again and a change of the serving
code never reuses stale samples. A file the server would refuse is reported
(with the server's own message), not trained on.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import deepfake_serving
from deepfake_client.datasets import Item
from deepfake_contract.limits import MAX_FACES_PER_FRAME
from deepfake_export.weights import sha256_file
from deepfake_serving import audio as A
from deepfake_serving.audio_pipeline import LOG_MEL, windows_from_samples
from deepfake_serving.errors import RequestError
from deepfake_serving.faces import normalize_for_visual
from deepfake_serving.forensics import extract_batch
from deepfake_serving.image_pipeline import FaceDetector, FaceSettings
from deepfake_serving.video import sample_video

log = logging.getLogger("deepfake_train")

#: Which media each detector learns from.
MEDIA: dict[str, tuple[str, ...]] = {
    "visual": ("image", "video"),
    "forensic": ("image", "video"),
    "audio": ("audio", "video"),
    "temporal": ("video",),
}
#: The serving modules whose code shapes the samples: a change to any of them invalidates the cache.
_SERVING_SOURCES = (
    "audio.py",
    "audio_pipeline.py",
    "containers.py",
    "faces.py",
    "forensics.py",
    "image_pipeline.py",
    "imaging.py",
    "mtcnn.py",
    "video.py",
    "video_pipeline.py",
)


def serving_fingerprint() -> str:
    """A short hash of the serving code that makes samples."""
    digest = hashlib.sha256()
    package = Path(deepfake_serving.__file__).parent
    for name in _SERVING_SOURCES:
        digest.update((package / name).read_bytes())
    return digest.hexdigest()[:12]


class Extractor:
    """Turns one media file into a detector's samples, with the serving code."""

    def __init__(self, detector: str, face_models: Path | None = None) -> None:
        """``face_models`` is the folder with MTCNN's ONNX files (the repository's ``face_detector/1``)."""
        if detector not in MEDIA:
            raise ValueError(f"unknown detector {detector!r}; known: {', '.join(MEDIA)}")
        self.detector = self.kind = detector
        self._faces: FaceDetector | None = None
        if detector in ("visual", "forensic"):
            if face_models is None or not (face_models / "pnet.onnx").is_file():
                raise FileNotFoundError(
                    f"MTCNN's ONNX files are not in {face_models}: run `make export` first (training crops faces"
                    " with the served face detector)"
                )
            self._faces = FaceDetector(face_models, FaceSettings(), threads=2)

    def __call__(self, data: bytes, media: str) -> np.ndarray:
        """The samples of one file: the stored (pre-normalization) arrays, first axis = samples.

        Raises:
            RequestError: the server would refuse this file (the message is the server's).
        """
        if self.kind == "audio":
            samples = A.decode_audio(data) if media == "audio" else _video_audio(data)
            windows = windows_from_samples(samples, audio_input=LOG_MEL)
            return windows.inputs[~windows.silent]
        if self.kind == "temporal":
            return sample_video(data, decode_audio_track=False).frames[np.newaxis]
        crops, blocking = self._crops(data, media)
        return forensic_features(crops, blocking) if self.kind == "forensic" and len(crops) else crops

    def _crops(self, data: bytes, media: str) -> tuple[np.ndarray, np.ndarray]:
        """The face crops and their native-grid blocking scores (``DetectedFaces.blocking``)."""
        assert self._faces is not None
        if media == "image":
            faces = self._faces.detect(data)
            return faces.crops, faces.blocking
        sample = sample_video(data, decode_audio_track=False)
        crops, blocking = [], []
        for index in sorted(set(sample.frame_indices.tolist())):
            slot = int(np.flatnonzero(sample.frame_indices == index)[0])
            faces = self._faces.detect_rgb(sample.frames_full[slot], input_name="VIDEO")
            if faces.face_found:  # detect_video scores faces only, never a frame's center crop
                crops.append(faces.crops[:MAX_FACES_PER_FRAME])
                blocking.append(faces.blocking[:MAX_FACES_PER_FRAME])
        if not crops:
            return np.empty((0, 224, 224, 3), np.uint8), np.empty(0, np.float32)
        return np.concatenate(crops), np.concatenate(blocking)


def _video_audio(data: bytes) -> np.ndarray:
    sample = sample_video(data)
    if sample.audio is None:
        raise RequestError("VIDEO", sample.audio_error or "the video has no audio track")
    return sample.audio


@dataclass(frozen=True)
class SampleSet:
    """One split's samples: memory-mapped arrays per file, and which file each sample is from."""

    arrays: list[np.ndarray]  # per file, [k_i, ...]
    labels: np.ndarray  # int64[n_files]
    groups: list[str]  # per file
    paths: list[Path]

    def __len__(self) -> int:
        """Samples in all files."""
        return int(sum(len(a) for a in self.arrays))

    def index(self) -> np.ndarray:
        """``int64[n, 2]``: (file, sample within file) of every sample, in order."""
        rows = [np.stack([np.full(len(a), i), np.arange(len(a))], 1) for i, a in enumerate(self.arrays) if len(a)]
        return np.concatenate(rows).astype(np.int64) if rows else np.empty((0, 2), np.int64)


@dataclass(frozen=True)
class Refused:
    """A file the server would refuse, and the server's reason."""

    path: Path
    problem: str


def build(
    items: Sequence[Item],
    extractor: Extractor,
    cache: Path,
    progress: Callable[[Sequence[Item]], Sequence[Item]] = lambda x: x,
) -> tuple[SampleSet, list[Refused]]:
    """The samples of ``items`` (decoded once, then read from ``cache``) and the files refused."""
    folder = cache / f"{extractor.kind}-{serving_fingerprint()}"
    folder.mkdir(parents=True, exist_ok=True)
    arrays, labels, groups, paths, refused = [], [], [], [], []
    wanted = MEDIA[extractor.detector]
    for item in progress(items):
        if item.media not in wanted:
            continue
        target = folder / f"{sha256_file(item.path)[:32]}.npy"
        if not target.is_file():
            try:
                samples = extractor(item.path.read_bytes(), item.media)
            except RequestError as error:
                refused.append(Refused(item.path, error.problem))
                continue
            partial = target.with_suffix(".tmp.npy")
            np.save(partial, np.ascontiguousarray(samples))
            partial.replace(target)  # a crash mid-write never leaves a truncated cache entry
        array = np.load(target, mmap_mode="r")
        if not len(array):
            refused.append(Refused(item.path, f"no {_unit(extractor.kind)} to learn from"))
            continue
        arrays.append(array)
        labels.append(item.label)
        groups.append(item.group)
        paths.append(item.path)
    return SampleSet(arrays, np.asarray(labels, np.int64), groups, paths), refused


def _unit(kind: str) -> str:
    return {"visual": "face", "forensic": "face", "audio": "non-silent 4 s window", "temporal": "clip"}[kind]


def forensic_features(crops: np.ndarray, blocking: np.ndarray | None = None) -> np.ndarray:
    """The 12 forensic features of uint8 face crops, computed as ``forensic_features`` serves them.

    ``blocking``: feature 12 per crop as ``face_detector`` measures it (``DetectedFaces.blocking``).
    """
    return extract_batch(np.ascontiguousarray(crops), blocking=blocking).astype(np.float32)


#: stored array -> the detector's input batch, the normalization the server applies last.
TO_INPUT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "visual": lambda crops: normalize_for_visual(np.asarray(crops)),
    "forensic": lambda features: np.asarray(features, np.float32),
    "audio": lambda mel: np.asarray(mel, np.float32),
    "temporal": lambda frames: normalize_for_visual(np.asarray(frames).reshape(-1, 224, 224, 3)).reshape(
        -1, 16, 3, 224, 224
    ),
}

"""Encoded image -> faces -> model inputs: the work of the ``face_detector`` model.

Decode (with limits) -> MTCNN (its three ONNX stages in-process) -> keep the
confident faces, largest first, at most ``max_faces`` -> crop each with a
margin to 224x224 -> normalize for the visual detector. When no face is found
the center crop of the whole image is scored instead, and the result says so.
Each face's JPEG blockiness (forensic feature 12) is measured here too, on its
region before the resize, because only there is the image's 8x8 grid intact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepfake_contract import MTCNN_STAGES
from deepfake_serving.budget import UNLIMITED, WorkBudget
from deepfake_serving.errors import RequestError
from deepfake_serving.faces import CROP_SIZE, center_region, face_region, resize_crop, select_faces
from deepfake_serving.forensics import region_blocking_score
from deepfake_serving.imaging import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_JPEG_SCANS,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_TIFF_CHUNKS,
    decode_image,
)
from deepfake_serving.mtcnn import DEFAULT_MAX_CANDIDATES, MTCNN, TooManyCandidates
from deepfake_serving.onnx_runner import onnx_callable
from deepfake_serving.visual_preprocessing import IMAGENET, VisualPreprocessing

MTCNN_STAGE_NAMES = tuple(stage.name for stage in MTCNN_STAGES)


@dataclass(frozen=True)
class FaceSettings:
    """The ``face_detector`` config parameters (see its config.pbtxt)."""

    min_face_size: int = 40  # pixels: the smallest face MTCNN looks for
    min_confidence: float = 0.9  # a face's O-Net probability must exceed it
    max_faces: int = 16
    margin: float = 0.2
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES
    max_jpeg_scans: int = DEFAULT_MAX_JPEG_SCANS
    max_tiff_chunks: int = DEFAULT_MAX_TIFF_CHUNKS
    max_candidates: tuple[int, int, int] = DEFAULT_MAX_CANDIDATES


@dataclass(frozen=True)
class DetectedFaces:
    """One image's faces, ready for the visual detector and the forensic features.

    When ``face_found`` is false there is exactly one row: the center crop of
    the whole image, its box in ``boxes`` and confidence 0.
    """

    boxes: np.ndarray  # float32[n, 4]: x1, y1, x2, y2 in pixels of the oriented image
    confidence: np.ndarray  # float32[n]
    crops: np.ndarray  # uint8[n, 224, 224, 3] RGB
    visual_input: np.ndarray  # float32[n, 3, 224, 224], ImageNet normalization (docs/models.md, visual detector)
    face_found: bool
    faces_dropped: int
    # float32[n]: forensic feature 12 (blocking_score) of each face's region at the image's own pixel
    # grid, before the resize to 224 (forensics.region_blocking_score); the crop's value for regions under 16x16
    blocking: np.ndarray


def center_box(height: int, width: int) -> np.ndarray:
    """The box :func:`~deepfake_serving.faces.center_crop` takes: the largest centered square."""
    rows, columns = center_region((height, width))
    return np.array([[columns.start, rows.start, columns.stop, rows.stop]], dtype=np.float32)


class FaceDetector:
    """MTCNN over ONNX Runtime plus cropping; one per Triton model instance."""

    def __init__(
        self,
        model_dir: Path | None,
        settings: FaceSettings,
        threads: int = 1,
        nets: Sequence | None = None,
        preprocessing: VisualPreprocessing = IMAGENET,
        workers: int = 1,
    ) -> None:
        """MTCNN's stages from ``model_dir``'s ONNX files, or ``nets`` = (pnet, rnet, onet) callables.

        ``threads`` is each ONNX Runtime session's intra-op thread count;
        ``workers`` the threads the cascade spreads its network calls over
        (:class:`~deepfake_serving.mtcnn.MTCNN`). These networks are small:
        several single-threaded runs at once beat one run on several threads
        (``perf/measure_mtcnn.py``), so serving uses ``threads=1``.

        ``preprocessing`` turns crops into the served visual detector's input
        (:func:`deepfake_serving.visual_preprocessing.served_preprocessing`).
        """
        self.settings = settings
        self.preprocessing = preprocessing
        if nets is None:
            if model_dir is None:
                raise ValueError("either model_dir or nets is required")
            nets = [onnx_callable(model_dir / f"{stage}.onnx", threads) for stage in MTCNN_STAGE_NAMES]
        self.mtcnn = MTCNN(
            *nets, min_face_size=settings.min_face_size, max_candidates=settings.max_candidates, workers=workers
        )

    def detect_rgb(self, image: np.ndarray, budget: WorkBudget = UNLIMITED, input_name: str = "IMAGE") -> DetectedFaces:
        """Faces of an already decoded RGB image (video frames come this way), or its center crop.

        Raises:
            RequestError: MTCNN found more candidates than ``max_candidates`` allows.
        """
        height, width = image.shape[:2]
        try:
            ((boxes, probs),) = self.mtcnn.detect_batch([image], check=budget.check)
        except TooManyCandidates as error:
            raise RequestError(input_name, str(error)) from None
        chosen = select_faces(
            boxes, probs, min_confidence=self.settings.min_confidence, max_faces=self.settings.max_faces
        )
        if len(chosen.boxes):
            regions = [face_region(image.shape, box, margin=self.settings.margin) for box in chosen.boxes]
            boxes, confidence, found = chosen.boxes, chosen.probs, True
        else:
            regions = [center_region(image.shape)]
            boxes, confidence, found = center_box(height, width), np.zeros(1, np.float32), False
        # What faces.crop_face / center_crop return, with each region's pixels kept for the blocking score.
        pixels = [image[region] for region in regions]
        crops = np.stack([resize_crop(region) for region in pixels])
        blocking = np.array([region_blocking_score(r, c) for r, c in zip(pixels, crops, strict=True)], np.float32)
        assert crops.shape[1:] == (CROP_SIZE, CROP_SIZE, 3)
        return DetectedFaces(
            boxes=boxes.astype(np.float32),
            confidence=confidence.astype(np.float32),
            crops=crops,
            visual_input=self.preprocessing.apply(crops),
            face_found=found,
            faces_dropped=chosen.dropped,
            blocking=blocking,
        )

    def warm_up(self) -> None:
        """Take the whole path once on a made-up JPEG (:mod:`deepfake_serving.warmup`), R-Net and O-Net included.

        The picture has no face, so the two later stages are also run on a
        few blank candidates: every ONNX Runtime session has run before the
        first request.
        """
        from deepfake_serving import warmup

        self.detect(warmup.image_bytes())
        for net, side in ((self.mtcnn.rnet, 24), (self.mtcnn.onet, 48)):
            net(np.zeros((8, 3, side, side), np.float32))

    def detect(self, data: bytes, input_name: str = "IMAGE", budget: WorkBudget = UNLIMITED) -> DetectedFaces:
        """Decode an encoded image within the configured limits, then :meth:`detect_rgb` it."""
        image = decode_image(
            data,
            max_pixels=self.settings.max_pixels,
            max_bytes=self.settings.max_bytes,
            input_name=input_name,
            max_jpeg_scans=self.settings.max_jpeg_scans,
            max_tiff_chunks=self.settings.max_tiff_chunks,
        )
        budget.check("image decoding")
        return self.detect_rgb(image, budget, input_name)

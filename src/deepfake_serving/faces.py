"""From MTCNN boxes to the visual detector's input tensor.

The visual detector was trained on ``cv2.resize(image,
(224, 224))`` with OpenCV's default ``INTER_LINEAR``, so every resize here uses
it too, even where ``INTER_AREA`` would alias less: matching training matters
more than prettier crops.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np

CROP_SIZE = 224
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class FaceSelection(NamedTuple):
    """Faces chosen for analysis.

    ``dropped`` counts confident faces left out because of ``max_faces``, so a
    response can say "analysed 8 of 11 faces". Detections at or below the
    confidence threshold (0.9 by default) are not faces and are not counted.
    """

    boxes: np.ndarray  # float32[n, 4], x1, y1, x2, y2
    probs: np.ndarray  # float32[n]
    dropped: int


def select_faces(boxes: np.ndarray, probs: np.ndarray, *, min_confidence: float = 0.9, max_faces: int) -> FaceSelection:
    """Keep faces with ``prob > min_confidence``, largest area first, at most ``max_faces``.

    Largest first because big faces carry the most evidence and are what a
    viewer notices; ties keep the detector's order.
    """
    if max_faces < 0:
        raise ValueError("max_faces must be >= 0")
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    probs = np.asarray(probs, dtype=np.float32).reshape(-1)
    confident = probs > min_confidence
    boxes, probs = boxes[confident], probs[confident]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = np.argsort(-area, kind="stable")
    kept = order[:max_faces]
    return FaceSelection(boxes[kept], probs[kept], int(len(order) - len(kept)))


#: The pixels of a crop, before its resize: ``image[rows, columns]``.
Region = tuple[slice, slice]


def face_region(shape: tuple[int, ...], box: np.ndarray, *, margin: float = 0.2) -> Region:
    """Where :func:`crop_face` takes the face in ``box`` from an image of ``shape`` (height, width, ...).

    ``margin`` is a fraction of the box's width (horizontally) and height
    (vertically) added on every side: 0.2 turns a 100-pixel face into a
    140-pixel crop, because deepfake artefacts sit at the face's boundary.
    The region is clamped to the image (not padded), rounded outwards to whole
    pixels, and always at least one pixel. The one definition of the crop's
    box: the crop itself and the forensic features measured at the image's own
    pixel grid (``image_pipeline``) both read it.
    """
    height, width = shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    left = min(max(math.floor(x1 - dx), 0), width - 1)
    top = min(max(math.floor(y1 - dy), 0), height - 1)
    right = max(min(math.ceil(x2 + dx), width), left + 1)
    bottom = max(min(math.ceil(y2 + dy), height), top + 1)
    return slice(top, bottom), slice(left, right)


def center_region(shape: tuple[int, ...]) -> Region:
    """The largest centred square of an image of ``shape``: the no-face fallback's region."""
    height, width = shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return slice(top, top + side), slice(left, left + side)


def crop_face(image: np.ndarray, box: np.ndarray, *, margin: float = 0.2) -> np.ndarray:
    """The face in ``box`` plus context, as a 224x224x3 uint8 RGB crop.

    The pixels of :func:`face_region` resized without keeping the aspect
    ratio, as the visual detector's training preprocessing does.
    """
    return resize_crop(image[face_region(image.shape, box, margin=margin)])


def center_crop(image: np.ndarray) -> np.ndarray:
    """The largest centred square (:func:`center_region`), resized to 224x224: the no-face fallback."""
    return resize_crop(image[center_region(image.shape)])


def normalize_for_visual(crops: np.ndarray) -> np.ndarray:
    """uint8 ``[N, 224, 224, 3]`` RGB crops -> float32 ``[N, 3, 224, 224]``, ImageNet-normalized.

    The normalization is the visual detector's (docs/models.md, visual detector).
    """
    if crops.ndim != 4 or crops.shape[1:] != (CROP_SIZE, CROP_SIZE, 3):
        raise ValueError(f"expected [N, {CROP_SIZE}, {CROP_SIZE}, 3] crops, got {crops.shape}")
    x = (crops.astype(np.float32) / np.float32(255.0) - MEAN) / STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def resize_crop(region: np.ndarray) -> np.ndarray:
    """A region's pixels as a 224x224 crop (bilinear, aspect ratio not kept)."""
    return np.ascontiguousarray(cv2.resize(region, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR))

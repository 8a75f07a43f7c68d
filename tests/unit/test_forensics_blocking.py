"""Forensic feature 12 (``blocking_score``) measured at the image's own pixel grid.

``face_detector`` resizes every face region to 224x224, which stretches JPEG's
8x8 grid: on the crop the score does not follow the compression. On the region
before the resize it does. These tests run the served MTCNN
(``model_repository/face_detector/1``, written by ``make export``), or, before
an export, the same pretrained nets in torch (facenet-pytorch, the MTCNN tests' oracle).
"""

from __future__ import annotations

import numpy as np
import pytest

from deepfake_serving.faces import center_crop, center_region, crop_face, face_region
from deepfake_serving.forensics import blocking_score, extract_batch, region_blocking_score, to_gray
from deepfake_serving.image_pipeline import DetectedFaces, FaceDetector, FaceSettings
from deepfake_serving.imaging import decode_image
from deepfake_serving.testing import media
from deepfake_serving.testing.forensics_reference import reference
from deepfake_serving.testing.triton import MODEL_REPOSITORY

STAGES = MODEL_REPOSITORY / "face_detector" / "1"

#: Lowest quality (blockiest) first; None is the lossless PNG.
QUALITIES = (30, 60, 90, None)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    if (STAGES / "pnet.onnx").is_file():
        return FaceDetector(STAGES, FaceSettings())
    from deepfake_serving.testing import facenet_oracle

    return FaceDetector(None, FaceSettings(), nets=facenet_oracle.torch_callables())


@pytest.fixture(scope="module")
def astronaut_faces(detector: FaceDetector) -> dict[int | None, DetectedFaces]:
    image = media.astronaut()
    encoded = {q: media.encode(image, "JPEG", quality=q) if q else media.encode(image, "PNG") for q in QUALITIES}
    return {q: detector.detect(data) for q, data in encoded.items()}


def test_the_native_grid_score_ranks_jpeg_qualities_and_the_crops_does_not(astronaut_faces):
    for faces in astronaut_faces.values():
        assert faces.face_found and faces.blocking.shape == (1,) and faces.blocking.dtype == np.float32
    native = [float(astronaut_faces[q].blocking[0]) for q in QUALITIES]
    # q30 > q60 > q90 > PNG in blockiness: strictly ordered by the compression.
    assert native == sorted(native, reverse=True) and len(set(native)) == len(native), native
    assert native[0] > 3.0 and native[-1] < 1.0, native
    # Why: the same score on the 224x224 crop (its grid stretched by the resize) is not ordered.
    on_crop = [blocking_score(to_gray(astronaut_faces[q].crops[0])) for q in QUALITIES]
    assert on_crop != sorted(on_crop, reverse=True), on_crop
    assert max(on_crop) - min(on_crop) < 1.0, on_crop  # about the same whatever the quality


def test_the_score_is_taken_on_the_crops_own_region_before_the_resize(astronaut_faces):
    decoded = decode_image(media.encode(media.astronaut(), "JPEG", quality=60))
    faces = astronaut_faces[60]
    region = decoded[face_region(decoded.shape, faces.boxes[0], margin=FaceSettings().margin)]
    # The crop is that region resized (one definition of the box), and the score is the region's.
    np.testing.assert_array_equal(faces.crops[0], crop_face(decoded, faces.boxes[0], margin=FaceSettings().margin))
    assert faces.blocking[0] == np.float32(blocking_score(to_gray(region)))


def test_the_no_face_fallback_measures_the_center_square_at_native_resolution(detector):
    data = media.encode(media.no_face_photo(), "JPEG", quality=50)  # 400x600
    faces = detector.detect(data)
    assert not faces.face_found
    decoded = decode_image(data)
    square = decoded[center_region(decoded.shape)]
    assert square.shape[:2] == (400, 400)
    np.testing.assert_array_equal(faces.crops[0], center_crop(decoded))
    assert faces.blocking[0] == np.float32(blocking_score(to_gray(square)))


def test_a_region_under_16_pixels_falls_back_to_the_crops_score():
    rng = np.random.default_rng(3)
    sliver = rng.integers(0, 256, (40, 12, 3), dtype=np.uint8)
    crop = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    assert region_blocking_score(sliver, crop) == blocking_score(to_gray(crop))
    square = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert region_blocking_score(square, crop) == blocking_score(to_gray(square))


def test_extract_batch_takes_the_native_grid_score_as_feature_12(astronaut_faces):
    faces = astronaut_faces[30]
    given = extract_batch(faces.crops, blocking=faces.blocking)
    own = extract_batch(faces.crops)
    assert given[0, 11] == faces.blocking[0] and own[0, 11] == blocking_score(to_gray(faces.crops[0]))
    np.testing.assert_array_equal(given[:, :11], own[:, :11])  # nothing else changes
    # The reference computes no blocking score: it returns the value it is given.
    expected = reference(faces.crops[0], blocking_score=float(faces.blocking[0]))
    assert expected["blocking_score"] == given[0, 11]


@pytest.mark.parametrize("bad", [np.zeros(2), np.zeros((1, 1)), np.array([np.nan])])
def test_extract_batch_refuses_a_blocking_that_is_not_one_finite_value_per_crop(bad):
    crops = np.zeros((1, 224, 224, 3), np.uint8)
    with pytest.raises(ValueError, match="blocking"):
        extract_batch(crops, blocking=bad)

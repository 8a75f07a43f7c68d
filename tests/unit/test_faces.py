"""Face selection, cropping and the visual detector's normalisation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deepfake_serving.faces import MEAN, STD, center_crop, crop_face, normalize_for_visual, select_faces


def _boxes(*sides: float) -> np.ndarray:
    return np.array([[10, 10, 10 + s, 10 + s] for s in sides], dtype=np.float32)


def test_only_faces_above_the_confidence_threshold_are_kept() -> None:
    sel = select_faces(_boxes(10, 20, 30), np.array([0.95, 0.9, 0.5]), max_faces=10)
    assert sel.boxes.tolist() == _boxes(10).tolist()
    assert sel.probs.tolist() == pytest.approx([0.95])
    assert sel.dropped == 0  # low-confidence detections are not faces, so not "dropped"


def test_faces_come_largest_first_and_extra_faces_are_counted_as_dropped() -> None:
    sel = select_faces(_boxes(10, 50, 30, 40), np.full(4, 0.99), max_faces=2)
    assert (sel.boxes[:, 2] - sel.boxes[:, 0]).tolist() == [50, 40]
    assert sel.dropped == 2


def test_no_detections_select_nothing() -> None:
    sel = select_faces(np.zeros((0, 4)), np.zeros(0), max_faces=4)
    assert sel.boxes.shape == (0, 4) and sel.probs.shape == (0,) and sel.dropped == 0


def test_the_crop_adds_the_margin_on_every_side() -> None:
    image = np.zeros((400, 400, 3), np.uint8)
    image[80:220, 80:220] = 255  # exactly the 100px box at 100..200 plus 20% on each side
    crop = crop_face(image, np.array([100, 100, 200, 200]), margin=0.2)
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    assert crop.min() == 255


def test_the_crop_is_clamped_to_the_image() -> None:
    y, x = np.mgrid[0:100, 0:100]
    image = np.stack([x, y, np.zeros_like(x)], axis=2).astype(np.uint8)
    crop = crop_face(image, np.array([-30.0, 60.0, 40.0, 130.0]), margin=0.2)
    expected = cv2.resize(image[46:100, 0:54], (224, 224), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(crop, expected)


def test_a_box_outside_the_image_still_gives_a_crop() -> None:
    crop = crop_face(np.zeros((50, 50, 3), np.uint8), np.array([80.0, 80.0, 90.0, 90.0]))
    assert crop.shape == (224, 224, 3)


def test_the_center_crop_is_the_largest_centred_square() -> None:
    image = np.zeros((100, 300, 3), np.uint8)
    image[:, 100:200] = 200
    crop = center_crop(image)
    assert crop.shape == (224, 224, 3)
    assert (crop == 200).all()


def test_normalisation_is_imagenets() -> None:
    crops = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    out = normalize_for_visual(crops)
    assert out.shape == (2, 3, 224, 224) and out.dtype == np.float32 and out.flags.c_contiguous
    expected = np.transpose((crops / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225], (0, 3, 1, 2))
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert MEAN.tolist() == pytest.approx([0.485, 0.456, 0.406]) and STD.tolist() == pytest.approx(
        [0.229, 0.224, 0.225]
    )


def test_normalisation_rejects_wrongly_shaped_crops() -> None:
    with pytest.raises(ValueError, match="224"):
        normalize_for_visual(np.zeros((1, 100, 100, 3), np.uint8))

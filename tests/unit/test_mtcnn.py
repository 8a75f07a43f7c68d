"""The NumPy MTCNN port against facenet-pytorch 2.6.0 as the oracle.

The oracle is facenet-pytorch's own ``detect_face`` and pretrained
``PNet``/``RNet``/``ONet``, loaded by file path by ``facenet_oracle.py``.
torchvision cannot be imported next to the CPU torch build ("operator
torchvision::nms does not exist"), so
while facenet's files are imported, a small pure-torch ``batched_nms`` shim
stands in for ``torchvision.ops.boxes`` (and an empty
``torchvision.transforms.functional``); this affects the oracle only. The
port under test gets the same torch nets as NumPy callables, so the
comparison isolates the cascade: resampling, box arithmetic and NMS.

Test images come from scikit-image's bundled data: the astronaut (one
face), a 2x2 grid of it (four faces), and face-free photos.
"""

from __future__ import annotations

import os
import subprocess
import sys

import facenet_oracle  # noqa: E402
import numpy as np
import pytest
import skimage.data as skimage_data  # noqa: E402
import torch  # noqa: E402

from deepfake_serving.mtcnn import MTCNN, nms_iou, pyramid_scales, resize_area  # noqa: E402


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _grid(image: np.ndarray) -> np.ndarray:
    row = np.concatenate([image, image], axis=1)
    return np.ascontiguousarray(np.concatenate([row, row], axis=0))


@pytest.fixture(scope="module")
def detector() -> MTCNN:
    return MTCNN(*facenet_oracle.torch_callables(), min_face_size=40)


def _largest_first(boxes: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), kind="stable")
    return boxes[order], probs[order]


def _assert_matches_oracle(detector: MTCNN, image: np.ndarray, expected_faces: int) -> None:
    """One-to-one, box for box: the port is exact up to float32 rounding (the claim is < 1e-3 px)."""
    oracle_boxes, oracle_probs = _largest_first(*facenet_oracle.oracle_detect(image, min_face_size=40))
    boxes, probs = detector.detect(image)
    assert len(oracle_boxes) == expected_faces
    assert boxes.shape == (expected_faces, 4) and boxes.dtype == np.float32
    assert probs.shape == (expected_faces,) and probs.dtype == np.float32
    np.testing.assert_allclose(boxes, oracle_boxes, rtol=0, atol=1e-3)
    np.testing.assert_allclose(probs, oracle_probs, rtol=0, atol=1e-5)


def test_the_astronaut_has_the_same_single_face_as_facenet(detector: MTCNN) -> None:
    _assert_matches_oracle(detector, skimage_data.astronaut(), expected_faces=1)


def test_a_two_by_two_astronaut_grid_has_the_same_four_faces_as_facenet(detector: MTCNN) -> None:
    _assert_matches_oracle(detector, _grid(skimage_data.astronaut()), expected_faces=4)


@pytest.mark.parametrize("name", ["coffee", "chelsea"])
def test_photos_without_people_have_no_faces_for_either_implementation(detector: MTCNN, name: str) -> None:
    _assert_matches_oracle(detector, getattr(skimage_data, name)(), expected_faces=0)


def test_random_noise_has_no_faces(detector: MTCNN) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    _assert_matches_oracle(detector, noise, expected_faces=0)


def test_boxes_come_largest_first(detector: MTCNN) -> None:
    astronaut = skimage_data.astronaut()
    small = np.asarray(resize_area(astronaut, (256, 256)).round(), dtype=np.uint8)
    canvas = np.full((512, 800, 3), 255, np.uint8)
    canvas[:, :512] = astronaut
    canvas[:256, 544:] = small
    boxes, _ = detector.detect(canvas)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    assert len(boxes) == 2 and area[0] > area[1]


def test_a_batch_of_mixed_sizes_gives_the_same_faces_as_one_by_one(detector: MTCNN) -> None:
    images = [skimage_data.astronaut(), skimage_data.coffee(), skimage_data.astronaut()[:400, 50:]]
    batched = detector.detect_batch(images)
    for image, (boxes, probs) in zip(images, batched, strict=True):
        single_boxes, single_probs = detector.detect(image)
        np.testing.assert_allclose(boxes, single_boxes, atol=1e-3)
        np.testing.assert_allclose(probs, single_probs, atol=1e-5)


def test_network_calls_never_exceed_the_max_batch_size() -> None:
    pnet, rnet, onet = facenet_oracle.torch_callables()
    seen: list[int] = []

    def counting(net):
        def call(x):
            seen.append(len(x))
            return net(x)

        return call

    small = MTCNN(counting(pnet), counting(rnet), counting(onet), max_batch_size=2)
    results = small.detect_batch([skimage_data.astronaut()] * 3)
    assert [len(boxes) for boxes, _ in results] == [1, 1, 1]
    assert max(seen) == 2


def test_an_image_smaller_than_the_minimum_face_never_calls_the_networks() -> None:
    def fail(x):
        raise AssertionError("no network call expected")

    boxes, probs = MTCNN(fail, fail, fail, min_face_size=40).detect(np.zeros((39, 500, 3), np.uint8))
    assert boxes.shape == (0, 4) and probs.shape == (0,)


def test_the_pyramid_matches_facenets_scales() -> None:
    scales = pyramid_scales(512, 512, 40, 0.709)
    assert scales[0] == pytest.approx(0.3)
    assert len(scales) == 8  # 153.6 * 0.709**k >= 12 for k = 0..7


@pytest.mark.parametrize("size", [(24, 24), (48, 48), (154, 154), (61, 87), (700, 530)])
def test_area_resampling_equals_torch_interpolate_area(size: tuple[int, int]) -> None:
    image = np.random.default_rng(1).integers(0, 256, (333, 250, 3), dtype=np.uint8)
    expected = (
        torch.nn.functional.interpolate(torch.from_numpy(image).permute(2, 0, 1)[None].float(), size=size, mode="area")[
            0
        ]
        .permute(1, 2, 0)
        .numpy()
    )
    np.testing.assert_allclose(resize_area(image, size), expected, atol=1e-3)


def test_iou_nms_matches_torchvision_semantics() -> None:
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 100, (300, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (300, 2)).astype(np.float32)], axis=1)
    scores = rng.uniform(0, 1, 300).astype(np.float32)
    expected = facenet_oracle.batched_nms(
        torch.from_numpy(boxes), torch.from_numpy(scores), torch.zeros(300, dtype=torch.int64), 0.5
    ).numpy()
    np.testing.assert_array_equal(nms_iou(boxes, scores, 0.5), expected)


def test_the_mtcnn_module_does_not_import_torch() -> None:
    code = "import sys, deepfake_serving.mtcnn; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], env=os.environ.copy(), check=False).returncode == 0

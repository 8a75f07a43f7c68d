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

import numpy as np
import pytest
import skimage.data as skimage_data  # noqa: E402
import torch  # noqa: E402

from deepfake_serving.mtcnn import (  # noqa: E402
    MTCNN,
    AreaSampler,
    TooManyCandidates,
    nms_iou,
    pyramid_scales,
    resize_area,
)
from deepfake_serving.testing import facenet_oracle  # noqa: E402


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
    # torch divides the float32 sum by the bin height, then by its width: one more rounding than here.
    np.testing.assert_array_max_ulp(resize_area(image, size), expected, maxulp=1)


def _exact_area_mean(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Adaptive average pooling in float64, one bin at a time, rounded once to float32 (the reference)."""
    h, w = image.shape[:2]
    out = np.empty((*size, image.shape[2]), np.float32)
    for i in range(size[0]):
        rows = slice(i * h // size[0], -(-(i + 1) * h // size[0]))
        for j in range(size[1]):
            cols = slice(j * w // size[1], -(-(j + 1) * w // size[1]))
            out[i, j] = image[rows, cols].astype(np.float64).mean(axis=(0, 1))
    return out


def _previous_resize_area(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The separable pooling served before the integral image (commit 7217dd1), kept as a reference."""

    def pool(x: np.ndarray, n_out: int, axis: int) -> np.ndarray:
        n_in = x.shape[axis]
        i = np.arange(n_out)
        start, end = (i * n_in) // n_out, ((i + 1) * n_in + n_out - 1) // n_out
        shape = [1] * x.ndim
        shape[axis] = n_out
        acc = np.zeros([n_out if a == axis else d for a, d in enumerate(x.shape)], np.float32)
        for d in range(int((end - start).max())):
            taken = np.take(x, np.minimum(start + d, end - 1), axis=axis).astype(np.float32)
            acc += taken * (d < end - start).reshape(shape)
        return acc / (end - start).reshape(shape).astype(np.float32)

    return pool(pool(image, size[0], 0), size[1], 1)


@pytest.mark.parametrize("size", [(24, 24), (48, 48), (61, 87), (154, 154), (700, 530), (5, 3)])
def test_area_resampling_is_the_correctly_rounded_mean_of_each_bin(size: tuple[int, int]) -> None:
    image = np.random.default_rng(3).integers(0, 256, (333, 250, 3), dtype=np.uint8)
    resized = resize_area(image, size)
    np.testing.assert_array_equal(resized, _exact_area_mean(image, size))
    # The previous implementation rounded after each axis (and summed rounded means): a few units apart.
    np.testing.assert_allclose(resized, _previous_resize_area(image, size), rtol=1e-6, atol=0)


def test_a_batch_of_regions_equals_resizing_each_cropped_region() -> None:
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (300, 420, 3), dtype=np.uint8)
    y0, x0 = rng.integers(0, 250, 40), rng.integers(0, 370, 40)
    y1, x1 = y0 + rng.integers(1, 50, 40), x0 + rng.integers(1, 50, 40)
    regions = AreaSampler(image).regions(y0, y1, x0, x1, (24, 24))
    for k in range(40):
        np.testing.assert_array_equal(regions[k], resize_area(image[y0[k] : y1[k], x0[k] : x1[k]], (24, 24)))


def test_images_past_int32_sums_are_resized_exactly_with_float64_prefix_sums() -> None:
    # 255 * 3000 * 3000 > 2**31: the integral image switches to float64 (exact to 2**53).
    image = np.full((3000, 3000, 3), 255, np.uint8)
    image[::7, ::5] = np.random.default_rng(5).integers(0, 256, (429, 600, 3), dtype=np.uint8)
    sampler = AreaSampler(image)
    assert sampler._rows.dtype == np.float64
    np.testing.assert_array_equal(sampler.resize((12, 17)), _exact_area_mean(image, (12, 17)))


def test_iou_nms_matches_torchvision_semantics() -> None:
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 100, (300, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (300, 2)).astype(np.float32)], axis=1)
    scores = rng.uniform(0, 1, 300).astype(np.float32)
    expected = facenet_oracle.batched_nms(
        torch.from_numpy(boxes), torch.from_numpy(scores), torch.zeros(300, dtype=torch.int64), 0.5
    ).numpy()
    np.testing.assert_array_equal(nms_iou(boxes, scores, 0.5), expected)


def _nms_one_row_at_a_time(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """The greedy loop as written before the blocked IoU matrix (the reference)."""
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1) * (y2 - y1)
    order, keep = np.argsort(-scores, kind="stable"), []
    while order.size:
        i, rest = order[0], order[1:]
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        order = rest[~(inter / (area[i] + area[rest] - inter) > threshold)]
        keep.append(i)
    return np.asarray(keep, dtype=np.int64)


@pytest.mark.parametrize("count", [1, 255, 256, 257, 900])
def test_blocked_nms_keeps_what_the_one_row_loop_keeps(count: int) -> None:
    rng = np.random.default_rng(count)
    xy = rng.uniform(0, 300, (count, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.uniform(5, 60, (count, 2)).astype(np.float32)], axis=1)
    scores = rng.integers(0, 50, count).astype(np.float32)  # ties: the order among equals matters too
    for threshold in (0.3, 0.5, 0.7):
        np.testing.assert_array_equal(
            nms_iou(boxes, scores, threshold), _nms_one_row_at_a_time(boxes, scores, threshold)
        )


def _one_at_a_time(net):
    """``net`` run on each input alone: its rounding then does not depend on how inputs are batched."""

    def call(x: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(np.concatenate(parts) for parts in zip(*(net(x[i : i + 1]) for i in range(len(x))), strict=True))

    return call


def test_workers_give_bit_identical_faces() -> None:
    nets = [_one_at_a_time(net) for net in facenet_oracle.torch_callables()]
    images = [skimage_data.astronaut(), _grid(skimage_data.astronaut()), skimage_data.coffee()]
    one = MTCNN(*nets).detect_batch(images)
    several = MTCNN(*nets, workers=3, max_batch_size=7).detect_batch(images)
    for (boxes, probs), (boxes_w, probs_w) in zip(one, several, strict=True):
        np.testing.assert_array_equal(boxes, boxes_w)
        np.testing.assert_array_equal(probs, probs_w)


def test_an_error_in_a_worker_ends_the_detection() -> None:
    detector = MTCNN(*facenet_oracle.torch_callables(), workers=2, max_candidates=(10000, 5, 1000))
    with pytest.raises(TooManyCandidates, match="R-Net candidates exceed the limit of 5"):
        detector.detect(_grid(skimage_data.astronaut()))


def test_the_mtcnn_module_does_not_import_torch() -> None:
    code = "import sys, deepfake_serving.mtcnn; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], env=os.environ.copy(), check=False).returncode == 0

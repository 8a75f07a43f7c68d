"""Forensic features against the reference implementation, and the blocking score.

The reference is :func:`deepfake_serving.testing.forensics_reference.reference`;
the timings quoted in deepfake_serving.forensics come from
``.venv/bin/python -m perf.measure_forensics``.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from deepfake_serving.forensics import (
    FEATURE_NAMES,
    blocking_score,
    extract_batch,
    extract_forensic_features,
    nlm_denoise,
)
from deepfake_serving.testing.forensics_reference import reference


def face_crop() -> np.ndarray:
    """The astronaut's face, resized to 224 as the pipeline's crops are."""
    return cv2.resize(data.astronaut()[0:240, 140:380], (224, 224))


def synthetic() -> np.ndarray:
    """Smooth shading, edges and fine texture, different in each channel."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:224, 0:224] / 224.0
    base = 120 + 60 * np.sin(6 * x) * np.cos(4 * y) + 40 * (x + y > 1.0)
    channels = [base + 15 * np.sin(40 * x * (k + 1)) + rng.normal(0, 4 + 3 * k, base.shape) for k in range(3)]
    return np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)


def images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    gradient = np.linspace(0, 255, 224, dtype=np.float64)
    gray_face = cv2.cvtColor(cv2.cvtColor(face_crop(), cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    return {
        "astronaut_face": face_crop(),
        "coffee": cv2.resize(data.coffee(), (224, 224)),
        "synthetic": synthetic(),
        "gray_face": gray_face,  # R = G = B: the channel-ratio edge case
        "noise": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
        "gradient": np.stack([np.tile(gradient, (224, 1))] * 3, axis=-1).astype(np.uint8),
        "flat": np.full((224, 224, 3), 128, dtype=np.uint8),  # zero noise: ratio 0 / (0 + 1e-10)
    }


IMAGES = images()


@pytest.mark.parametrize("name", list(IMAGES))
def test_features_1_to_11_match_the_reference(name):
    image = IMAGES[name]
    expected = reference(image)
    got = extract_forensic_features(image)
    assert got.dtype == np.float64 and got.shape == (12,)
    # The documented order is the reference's own dict order, not the implementation's name list.
    assert list(FEATURE_NAMES) == list(expected)
    for index, feature in enumerate(list(expected)[:11]):
        assert got[index] == pytest.approx(expected[feature], rel=1e-4, abs=1e-9), feature


@pytest.mark.parametrize("name", ["astronaut_face", "synthetic", "noise", "flat"])
def test_the_split_denoise_is_bit_identical_to_opencvs_call(name):
    image = IMAGES[name]
    expected = cv2.fastNlMeansDenoisingColored(image, None, 10, 10, 7, 21)
    np.testing.assert_array_equal(nlm_denoise(image), expected)
    np.testing.assert_array_equal(nlm_denoise(image, workers=1), expected)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def test_blocking_score_rises_with_jpeg_compression():
    region = data.astronaut()[0:224, 144:368]  # 224x224 without resizing: the 8x8 grid aligns
    scores = [blocking_score(gray(jpeg(region, quality))) for quality in (95, 50, 20)]
    assert scores == sorted(scores), scores
    assert scores[0] < 1.0 and scores[2] > 5.0, scores
    features = extract_forensic_features(jpeg(region, 20))
    assert features[11] == pytest.approx(scores[2])


def test_blocking_score_finds_a_shifted_grid():
    region = data.astronaut()[0:232, 144:376]
    compressed = jpeg(region, 20)[3:227, 5:229]  # the crop starts off the 8x8 grid
    assert blocking_score(gray(compressed)) > 5.0


def test_a_resized_crop_stays_in_range():
    """The stretched grid is not detected (documented): only the range is promised."""
    for quality in (95, 20):
        score = blocking_score(gray(cv2.resize(jpeg(data.astronaut()[0:280, 100:380], quality), (224, 224))))
        assert 0 <= score < 5.0


@pytest.mark.parametrize("name", list(IMAGES))
def test_blocking_score_stays_in_its_documented_range(name):
    assert 0 <= blocking_score(gray(IMAGES[name])) <= 20


def test_extreme_blocks_are_clipped_to_20():
    blocks = np.kron(np.random.default_rng(2).integers(0, 256, (28, 28)), np.ones((8, 8))).astype(np.uint8)
    assert blocking_score(blocks) == 20.0


@pytest.mark.parametrize("name", ["gradient", "flat"])
def test_an_uncompressed_smooth_image_is_not_blocky(name):
    assert blocking_score(gray(IMAGES[name])) < 0.5


def test_batch_extraction_equals_single_extractions():
    crops = np.stack([IMAGES["astronaut_face"], IMAGES["synthetic"], IMAGES["flat"]])
    batch = extract_batch(crops)
    assert batch.shape == (3, 12) and batch.dtype == np.float64
    for row, crop in zip(batch, crops, strict=True):
        np.testing.assert_array_equal(row, extract_forensic_features(crop, workers=1))
    np.testing.assert_array_equal(extract_batch(crops, workers=3), batch)
    assert extract_batch(np.zeros((0, 224, 224, 3), np.uint8)).shape == (0, 12)


def test_non_contiguous_input_is_accepted():
    image = IMAGES["synthetic"]
    flipped = image[:, ::-1]
    np.testing.assert_array_equal(extract_forensic_features(flipped), extract_forensic_features(flipped.copy()))


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((224, 224), np.uint8),
        np.zeros((224, 224, 3), np.float32),
        np.zeros((224, 224, 4), np.uint8),
        np.zeros((112, 112, 3), np.uint8),
        np.zeros((1, 224, 224, 3), np.uint8),
        [[0]],
    ],
)
def test_a_wrong_crop_is_refused_with_a_clear_message(bad):
    with pytest.raises(ValueError, match="expected a 224x224x3 uint8 RGB crop, got"):
        extract_forensic_features(bad)


@pytest.mark.parametrize(
    "bad", [np.zeros((224, 224, 3), np.uint8), np.zeros((2, 224, 224, 3), np.int16), np.zeros((2, 64, 64, 3), np.uint8)]
)
def test_a_wrong_batch_is_refused_with_a_clear_message(bad):
    with pytest.raises(ValueError, match=r"expected N x 224 x 224 x 3 uint8 RGB crops, got .*shape"):
        extract_batch(bad)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_a_wrong_worker_count_is_refused(workers):
    with pytest.raises(ValueError, match="workers"):
        extract_forensic_features(IMAGES["flat"], workers=workers)


@pytest.mark.parametrize("level", [0, 1, 128, 255])
def test_a_constant_crop_has_the_limit_of_the_reference_features(level):
    """The reference divides by the spectrum's total, which is 0 for a black crop
    (ZeroDivisionError in the server before). A constant crop's ratio and entropy
    do not depend on its level; black gets their value, mean and std 0."""
    crop = np.full((224, 224, 3), level, np.uint8)
    got = extract_forensic_features(crop)
    assert np.isfinite(got).all()
    with np.errstate(divide="ignore", invalid="ignore"):  # the reference's 0/0 on black
        expected = reference(crop)
    for index, feature in enumerate(FEATURE_NAMES[4:11], start=4):  # noise and sharpness need no limit
        assert got[index] == pytest.approx(expected[feature], rel=1e-4, abs=1e-9), feature
    grey = reference(np.full((224, 224, 3), 128, np.uint8))
    assert got[0] == pytest.approx(grey["high_freq_ratio"], abs=1e-12) and got[0] == 0.0
    assert got[1] == pytest.approx(grey["spectral_entropy"], rel=1e-9)
    assert got[2] == pytest.approx(level, rel=1e-9)  # the DC term (level * 224 * 224) over 224 * 224 bins
    assert got[3] == pytest.approx(expected["magnitude_std"], abs=1e-6)
    assert got[11] == 0.0  # no blocks

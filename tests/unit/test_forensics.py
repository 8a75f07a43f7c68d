"""Forensic features against the spec's reference code, and the blocking score."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy import fftpack
from scipy.stats import entropy
from skimage import data

from deepfake_serving.forensics import FEATURE_NAMES, blocking_score, extract_batch, extract_forensic_features


def reference(image):
    """Spec section 4's extract_forensic_features, verbatim (the oracle)."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)

    # FFT features
    f_transform = fftpack.fft2(gray)
    f_shift = fftpack.fftshift(f_transform)
    magnitude = np.abs(f_shift)

    h, w = magnitude.shape
    center = magnitude[h//4:3*h//4, w//4:3*w//4]
    high_freq_ratio = 1 - np.sum(center) / np.sum(magnitude)

    mag_norm = magnitude.flatten() / np.sum(magnitude)
    spectral_ent = entropy(mag_norm + 1e-10)

    # Noise features
    denoised = cv2.fastNlMeansDenoisingColored(image, None, 10, 10, 7, 21)
    noise = image.astype(float) - denoised.astype(float)

    # Quality features
    sharpness = cv2.Laplacian(gray, cv2.CV_64F).var()

    return {
        'high_freq_ratio': high_freq_ratio,
        'spectral_entropy': spectral_ent,
        'magnitude_mean': np.mean(magnitude),
        'magnitude_std': np.std(magnitude),
        'noise_variance': np.var(noise),
        'noise_mean': np.mean(np.abs(noise)),
        'noise_var_r': np.var(noise[:,:,0]),
        'noise_var_g': np.var(noise[:,:,1]),
        'noise_var_b': np.var(noise[:,:,2]),
        'noise_var_ratio': max(np.var(noise[:,:,i]) for i in range(3)) /
                          (min(np.var(noise[:,:,i]) for i in range(3)) + 1e-10),
        'sharpness': sharpness,
        'blocking_score': 0  # Compute if needed
    }


def face_crop() -> np.ndarray:
    return cv2.resize(data.astronaut()[0:240, 140:380], (224, 224))


def images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    gradient = np.linspace(0, 255, 224, dtype=np.float64)
    return {
        "astronaut_face": face_crop(),
        "coffee": cv2.resize(data.coffee(), (224, 224)),
        "noise": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
        "gradient": np.stack([np.tile(gradient, (224, 1))] * 3, axis=-1).astype(np.uint8),
        "flat": np.full((224, 224, 3), 128, dtype=np.uint8),
    }


@pytest.mark.parametrize("name", list(images()))
def test_features_1_to_11_match_the_reference(name):
    image = images()[name]
    expected = reference(image)
    got = extract_forensic_features(image)
    for index, feature in enumerate(FEATURE_NAMES[:11]):
        want = expected[feature]
        assert got[index] == pytest.approx(want, rel=1e-4, abs=1e-9), feature


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def test_blocking_score_rises_with_jpeg_compression():
    region = data.astronaut()[0:224, 150:374]  # 224x224 without resizing: the grid aligns
    gray = lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)  # noqa: E731
    q95, q20 = blocking_score(gray(jpeg(region, 95))), blocking_score(gray(jpeg(region, 20)))
    assert 0 <= q95 < q20 <= 20
    assert q20 - q95 > 1.0, (q95, q20)


def test_blocking_score_finds_a_shifted_grid():
    region = data.astronaut()[0:232, 150:382]
    compressed = jpeg(region, 20)[3:227, 5:229]  # the crop starts off the 8x8 grid
    assert blocking_score(cv2.cvtColor(compressed, cv2.COLOR_RGB2GRAY)) > 1.0


@pytest.mark.parametrize("name", list(images()))
def test_blocking_score_stays_in_its_documented_range(name):
    assert 0 <= extract_forensic_features(images()[name])[11] <= 20


def test_an_uncompressed_smooth_image_is_not_blocky():
    assert blocking_score(cv2.cvtColor(images()["gradient"], cv2.COLOR_RGB2GRAY)) < 0.5


def test_batch_extraction_stacks_single_extractions():
    crops = np.stack([face_crop(), images()["coffee"]])
    batch = extract_batch(crops)
    assert batch.shape == (2, 12)
    np.testing.assert_array_equal(batch[1], extract_forensic_features(crops[1]))
    assert extract_batch(np.zeros((0, 224, 224, 3), np.uint8)).shape == (0, 12)


@pytest.mark.parametrize(
    "bad", [np.zeros((224, 224), np.uint8), np.zeros((224, 224, 3), np.float32), np.zeros((4, 4, 3), np.uint8)]
)
def test_wrong_inputs_are_refused_with_a_clear_message(bad):
    with pytest.raises(ValueError, match="expected an HxWx3 uint8|too small"):
        extract_forensic_features(bad)

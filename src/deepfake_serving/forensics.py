"""The 12 forensic features of spec section 4, on 224x224 RGB face crops.

Features 1-11 are the spec's reference code, value for value (the unit test
keeps the reference verbatim as the oracle). Two changes that do not change
the values: ``np.fft.fft2`` instead of ``scipy.fftpack.fft2`` (both pocketfft,
equal to ~1e-12) and the entropy written out instead of ``scipy.stats.entropy``
(which normalizes ``p + 1e-10`` by its sum, as done here).

Feature 12, ``blocking_score``, is left at 0 by the spec. Here it measures
JPEG's 8x8 block artefacts: the mean absolute luminance step across columns
(rows) that sit on an 8-pixel grid, divided by the mean step everywhere else;
the grid offset with the largest ratio is taken (the crop need not start on
the JPEG grid), horizontal and vertical ratios are averaged, and
``score = clip(10 * (ratio - 1), 0, 20)``. An image without block structure
has a ratio near 1 (score near 0); heavy compression puts visible steps on the
grid (score rises). Crops are resized from the detected box, which stretches
the grid by ``224 / crop size``; the score is therefore strongest where the
crop was taken near its native size, and it is a relative measure, not a
calibrated quality estimate.

Cost: the non-local-means denoise of the reference (``fastNlMeansDenoisingColored``,
h=10, template 7, search 21) is about 95% of the time per crop; it cannot be
replaced without changing features 5-10, so it is kept and everything else is
computed once per crop from shared intermediates. Measured figures are in
``perf/RESULTS.md``.
"""

from __future__ import annotations

import cv2
import numpy as np

FEATURE_NAMES: tuple[str, ...] = (
    "high_freq_ratio",
    "spectral_entropy",
    "magnitude_mean",
    "magnitude_std",
    "noise_variance",
    "noise_mean",
    "noise_var_r",
    "noise_var_g",
    "noise_var_b",
    "noise_var_ratio",
    "sharpness",
    "blocking_score",
)
BLOCK = 8
BLOCKING_RANGE = (0.0, 20.0)


def _check(image: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.dtype} array of shape {image.shape}")
    if min(image.shape[:2]) < 2 * BLOCK:
        raise ValueError(f"image of shape {image.shape} is too small (at least {2 * BLOCK}x{2 * BLOCK})")


def _grid_ratio(steps: np.ndarray) -> float:
    """Largest (on-grid step / off-grid step) over the 8 grid offsets."""
    positions = np.arange(len(steps))
    best = 0.0
    for offset in range(BLOCK):
        on = (positions % BLOCK) == offset
        inside = steps[~on].mean()
        best = max(best, float(steps[on].mean() / (inside + 1e-6)))
    return best


def blocking_score(gray: np.ndarray) -> float:
    """JPEG 8x8 blockiness of a grayscale image, in [0, 20]; see the module docstring."""
    y = gray.astype(np.float64)
    horizontal = np.abs(np.diff(y, axis=1)).mean(axis=0)  # one value per column boundary
    vertical = np.abs(np.diff(y, axis=0)).mean(axis=1)  # one value per row boundary
    ratio = (_grid_ratio(horizontal) + _grid_ratio(vertical)) / 2
    return float(np.clip(10.0 * (ratio - 1.0), *BLOCKING_RANGE))


def extract_forensic_features(image: np.ndarray) -> np.ndarray:
    """The 12 features of one RGB uint8 image, float64, in :data:`FEATURE_NAMES` order."""
    _check(image)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)

    magnitude = np.abs(np.fft.fftshift(np.fft.fft2(gray)))
    h, w = magnitude.shape
    total = magnitude.sum()
    high_freq_ratio = 1 - magnitude[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].sum() / total
    p = magnitude.ravel() / total + 1e-10
    p /= p.sum()
    spectral_entropy = -np.sum(p * np.log(p))

    denoised = cv2.fastNlMeansDenoisingColored(image, None, 10, 10, 7, 21)
    noise = image.astype(np.float64) - denoised.astype(np.float64)
    channel_var = noise.reshape(-1, 3).var(axis=0)

    return np.array(
        [
            high_freq_ratio,
            spectral_entropy,
            magnitude.mean(),
            magnitude.std(),
            noise.var(),
            np.abs(noise).mean(),
            channel_var[0],
            channel_var[1],
            channel_var[2],
            channel_var.max() / (channel_var.min() + 1e-10),
            cv2.Laplacian(gray, cv2.CV_64F).var(),
            blocking_score(gray),
        ],
        dtype=np.float64,
    )


def extract_batch(crops: np.ndarray) -> np.ndarray:
    """Features of ``crops`` (N x H x W x 3 uint8 RGB) as float64[N, 12]."""
    if crops.ndim != 4:
        raise ValueError(f"expected N x H x W x 3 uint8 crops, got shape {crops.shape}")
    if len(crops) == 0:
        return np.zeros((0, len(FEATURE_NAMES)))
    return np.stack([extract_forensic_features(np.ascontiguousarray(crop)) for crop in crops])

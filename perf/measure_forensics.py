"""Cost of the forensic features per 224x224 face crop: the reference implementation against ours.

Run from the repository root: ``.venv/bin/python -m perf.measure_forensics``
(the reference implementation is the unit test's oracle,
:mod:`deepfake_serving.testing.forensics_reference`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np
from scipy import fftpack
from scipy.stats import entropy
from skimage import data

from deepfake_serving.forensics import extract_batch, extract_forensic_features, nlm_denoise
from deepfake_serving.testing.forensics_reference import reference


def _best_ms_per_crop(rows: dict[str, Callable[[], object]], crops: int, rounds: int) -> dict[str, float]:
    """Minimum over rounds; rounds are interleaved so that a burst of other load hits every row alike."""
    best = {name: float("inf") for name in rows}
    for function in rows.values():
        function()
    for _ in range(rounds):
        for name, function in rows.items():
            started = time.perf_counter()
            function()
            best[name] = min(best[name], (time.perf_counter() - started) / crops * 1e3)
    return best


def main() -> None:
    """Timings per crop, reference against this module (the minimum of 5 interleaved runs of 20 crops)."""
    boxes = [(0, 140), (50, 50), (100, 200), (200, 100), (10, 10)] * 4
    crops = np.stack([cv2.resize(data.astronaut()[y : y + 240, x : x + 240], (224, 224)) for y, x in boxes])
    n = len(crops)

    def reference_without_denoise(image: np.ndarray) -> None:
        g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        magnitude = np.abs(fftpack.fftshift(fftpack.fft2(g)))
        h, w = magnitude.shape
        1 - np.sum(magnitude[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]) / np.sum(magnitude)
        entropy(magnitude.flatten() / np.sum(magnitude) + 1e-10)
        np.mean(magnitude), np.std(magnitude)
        noise = image.astype(float) - image.astype(float)
        np.var(noise), np.mean(np.abs(noise)), [np.var(noise[:, :, i]) for i in range(3)]
        cv2.Laplacian(g, cv2.CV_64F).var()

    rows = {
        "reference, whole function": lambda: [reference(c) for c in crops],
        "reference, fastNlMeansDenoisingColored": lambda: [
            cv2.fastNlMeansDenoisingColored(c, None, 10, 10, 7, 21) for c in crops
        ],
        "reference, everything else": lambda: [reference_without_denoise(c) for c in crops],
        "extract_forensic_features, one crop at a time": lambda: [extract_forensic_features(c) for c in crops],
        "nlm_denoise, one crop at a time": lambda: [nlm_denoise(c) for c in crops],
        f"extract_batch of {n}": lambda: extract_batch(crops),
        f"extract_batch of {n}, workers=1": lambda: extract_batch(crops, workers=1),
    }
    print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} OpenCV threads")
    print("| per 224x224 crop | ms |\n|---|---:|")
    for name, ms in _best_ms_per_crop(rows, n, rounds=5).items():
        print(f"| {name} | {ms:.1f} |")


if __name__ == "__main__":
    main()

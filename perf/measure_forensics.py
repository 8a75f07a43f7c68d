"""Cost of the forensic features per 224x224 face crop, split into its parts.

Run: ``.venv/bin/python perf/measure_forensics.py``. The non-local-means
denoise is the spec's own call and cannot change without changing the
features' values; the rest is measured to show it is not worth optimizing.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
from skimage import data

from deepfake_serving.forensics import blocking_score, extract_forensic_features


def per_call_ms(function, repeat: int) -> float:
    function()
    started = time.perf_counter()
    for _ in range(repeat):
        function()
    return (time.perf_counter() - started) / repeat * 1e3


def main() -> None:
    crop = cv2.resize(data.astronaut()[0:240, 140:380], (224, 224))
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    print(f"OpenCV threads: {cv2.getNumThreads()}")
    rows = {
        "all 12 features": lambda: extract_forensic_features(crop),
        "fastNlMeansDenoisingColored (h=10, 7, 21)": lambda: cv2.fastNlMeansDenoisingColored(crop, None, 10, 10, 7, 21),
        "FFT features (np.fft)": lambda: np.abs(np.fft.fftshift(np.fft.fft2(gray))),
        "blocking_score": lambda: blocking_score(gray),
        "Laplacian variance": lambda: cv2.Laplacian(gray, cv2.CV_64F).var(),
    }
    print("| part | ms per crop |\n|---|---:|")
    for name, function in rows.items():
        print(f"| {name} | {per_call_ms(function, 10):.1f} |")
    cv2.setNumThreads(1)
    print(f"| all 12 features, 1 OpenCV thread | {per_call_ms(lambda: extract_forensic_features(crop), 10):.1f} |")


if __name__ == "__main__":
    main()

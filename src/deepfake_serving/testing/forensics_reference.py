"""The reference implementation of the forensic features, verbatim: the oracle of :mod:`deepfake_serving.forensics`.

tests/unit/test_forensics.py checks the implementation against it and
``python -m perf.measure_forensics`` times the two side by side.

The one change: the reference's feature 12 is a constant 0 placeholder, so
``blocking_score`` is an argument (default 0, the original's value) and is
returned as given. The reference computes no blocking score of its own: an
oracle gives it the value measured where it carries signal, on the face
region at the image's own pixel grid (``DetectedFaces.blocking``).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import fftpack
from scipy.stats import entropy


# fmt: off
def reference(image, blocking_score=0):
    """The reference ``extract_forensic_features``, verbatim (the oracle), feature 12 as given."""
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
        'blocking_score': blocking_score  # Compute if needed: given by the caller
    }
# fmt: on

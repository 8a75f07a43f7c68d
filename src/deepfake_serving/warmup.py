"""Made-up media that take a Python model through its request path once, at load.

The first request after ``/v2/health/ready`` otherwise pays one-off costs
that the next requests do not: the forensic features' denoise thread pool and
OpenCV's first calls, ONNX Runtime's first runs of the MTCNN stages at each
pyramid shape, the image and audio decoders' first use
(``perf/measure_warmup.py`` names the step; figures in ``perf/RESULTS.md``).
Triton's ``model_warmup`` covers the ONNX detectors but not ensembles
(server#6326), and a Python model would need its sample inputs as files in
the repository; so the Python models call their own pipeline on these inputs
in ``initialize`` instead, before the model reports ready.

The inputs are generated, not shipped: smooth shapes plus noise, so that
every step has real work (MTCNN's P-Net finds candidates, the denoise has
texture to average), but no face is needed: R-Net and O-Net are run directly.
"""

from __future__ import annotations

import io
import wave

import numpy as np

#: The warm-up image's side: about what a photo upload is after the first pyramid scale.
IMAGE_SIDE = 512
AUDIO_SECONDS = 4.0
AUDIO_RATE = 16_000


def image(side: int = IMAGE_SIDE, seed: int = 0) -> np.ndarray:
    """An RGB uint8 picture: a lit disc on a gradient, with sensor-like noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
    disc = ((x - 0.5) ** 2 + (y - 0.45) ** 2 < 0.08).astype(np.float32)
    base = np.stack([90 + 100 * x, 80 + 60 * y + 70 * disc, 120 - 50 * x + 40 * disc], axis=-1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def image_bytes(side: int = IMAGE_SIDE) -> bytes:
    """:func:`image` as a JPEG (quality 90), the commonest upload."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image(side)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def audio_bytes(seconds: float = AUDIO_SECONDS, rate: int = AUDIO_RATE) -> bytes:
    """A 16-bit mono WAV: a voiced-like harmonic tone with noise, above the silence threshold."""
    t = np.arange(int(seconds * rate), dtype=np.float64) / rate
    pitch = 140 + 20 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    signal = sum(np.sin(k * phase) / k for k in range(1, 6)) * 0.2
    signal += np.random.default_rng(0).normal(0, 0.01, t.shape)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(signal, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()

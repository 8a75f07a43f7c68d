"""Test and benchmark media made during the run: nothing large is committed."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def astronaut() -> np.ndarray:
    """scikit-image's astronaut photo (512x512 RGB, one face), bundled with the wheel."""
    from skimage import data

    return data.astronaut()


def no_face_photo() -> np.ndarray:
    """A photo with no human face (scikit-image's coffee cup)."""
    from skimage import data

    return data.coffee()


def grid_2x2(image: np.ndarray) -> np.ndarray:
    """Four copies of ``image`` in a 2x2 grid: one picture with four faces."""
    return np.concatenate([np.concatenate([image, image], axis=1)] * 2, axis=0)


def encode(image: np.ndarray | Image.Image, fmt: str = "JPEG", **options) -> bytes:
    """``image`` encoded in memory with Pillow as ``fmt``, with Pillow's save ``options``."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buffer = io.BytesIO()
    pil.save(buffer, format=fmt, **options)
    return buffer.getvalue()

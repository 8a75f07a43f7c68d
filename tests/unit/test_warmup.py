"""The made-up warm-up media take the real request paths (deepfake_serving.warmup)."""

from __future__ import annotations

import numpy as np

from deepfake_serving import warmup
from deepfake_serving.audio_pipeline import prepare_audio
from deepfake_serving.forensics import extract_batch
from deepfake_serving.imaging import decode_image


def test_the_warm_up_image_decodes_as_an_upload_would() -> None:
    image = decode_image(warmup.image_bytes())
    assert image.shape == (warmup.IMAGE_SIDE, warmup.IMAGE_SIDE, 3) and image.dtype == np.uint8
    assert image.std() > 10  # texture for MTCNN's P-Net and the denoise to work on


def test_the_warm_up_recording_is_windowed_and_not_silent() -> None:
    windows = prepare_audio(warmup.audio_bytes())
    assert len(windows.inputs) >= 1
    assert not windows.silent.any()  # silent windows would skip part of the path
    assert windows.duration_s == warmup.AUDIO_SECONDS


def test_the_warm_up_crop_has_finite_features() -> None:
    features = extract_batch(warmup.image(224)[None], workers=2)
    assert features.shape == (1, 12) and np.isfinite(features).all()

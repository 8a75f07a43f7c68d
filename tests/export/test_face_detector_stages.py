"""FaceDetector on the exported MTCNN stages: from the ONNX files, or injected (how the BLS variant is built)."""

from __future__ import annotations

import numpy as np
import pytest

from deepfake_serving.image_pipeline import FaceDetector, FaceSettings
from deepfake_serving.onnx_runner import onnx_callable
from deepfake_serving.testing import media
from deepfake_serving.testing.triton import MODEL_REPOSITORY

STAGE_DIR = MODEL_REPOSITORY / "face_detector" / "1"


def test_injected_stages_give_the_same_faces_as_the_onnx_files():
    calls: list[str] = []

    def traced(stage: str):
        run = onnx_callable(STAGE_DIR / f"{stage}.onnx")

        def call(x: np.ndarray):
            calls.append(stage)
            return run(x)

        return call

    data = media.encode(media.astronaut(), "JPEG")
    injected = FaceDetector(None, FaceSettings(), nets=[traced(s) for s in ("pnet", "rnet", "onet")]).detect(data)
    default = FaceDetector(STAGE_DIR, FaceSettings()).detect(data)
    np.testing.assert_array_equal(injected.boxes, default.boxes)
    assert {"pnet", "rnet", "onet"} <= set(calls)


def test_a_detector_needs_files_or_stages():
    with pytest.raises(ValueError, match="model_dir or nets"):
        FaceDetector(None, FaceSettings())

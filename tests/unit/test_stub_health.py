"""What the stub check expects from a repository, and how it reads a command line."""

from __future__ import annotations

from pathlib import Path

from deepfake_serving import stub_health
from deepfake_serving.repository_api import flag_values
from deepfake_serving.testing.triton import MODEL_REPOSITORY

PYTHON_MODELS = {
    "face_detector_0_0", "face_detector_0_1", "forensic_features_0_0", "forensic_features_0_1",
    "image_fusion_0_0", "audio_preprocess_0_0", "audio_preprocess_0_1", "audio_fusion_0_0",
    "detect_video_0_0", "detect_video_0_1",
}  # fmt: skip
# visual_detector runs as two single-threaded instances on CPU (deepfake_serving.model_configs.BATCHING).
DETECTORS = {
    "visual_detector_0_0", "visual_detector_0_1", "forensic_classifier_0_0", "audio_detector_0_0",
    "temporal_analyzer_0_0",
}  # fmt: skip


def test_python_models_always_run_in_stubs(tmp_path: Path):
    """With the native ONNX Runtime backend (a GPU node) only the Python models have stubs."""
    (tmp_path / "onnxruntime").mkdir()
    (tmp_path / "onnxruntime" / "libtriton_onnxruntime.so").touch()
    assert stub_health.expected_instances([MODEL_REPOSITORY], tmp_path) == PYTHON_MODELS


def test_a_python_based_backend_puts_its_models_in_stubs_too(tmp_path: Path):
    """This machine's onnxruntime backend is a model.py: the detectors run in stubs."""
    (tmp_path / "onnxruntime").mkdir()
    (tmp_path / "onnxruntime" / "model.py").touch()
    assert stub_health.expected_instances([MODEL_REPOSITORY], tmp_path) == PYTHON_MODELS | DETECTORS


def test_flags_are_read_in_both_spellings():
    args = ["tritonserver", "--model-repository=/a", "--model-repository", "/b", "--strict-readiness=true"]
    assert flag_values(args, "--model-repository") == ["/a", "/b"]
    assert flag_values(args, "--backend-directory") == []


def test_a_process_that_is_not_a_running_tritonserver_is_exit_status_2():
    import os

    assert stub_health.argv(999_999_999) == []
    assert stub_health.main(["--pid", "999999999"]) == 2
    assert stub_health.main(["--pid", str(os.getpid())]) == 2  # pytest, not tritonserver

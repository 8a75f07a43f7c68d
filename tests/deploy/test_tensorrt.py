"""TensorRT plan building without a GPU: profiles, trtexec commands, plan configs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deepfake_contract import DETECTORS, VISUAL_DETECTOR, ModelSpec, TensorSpec
from deepfake_export import tensorrt
from deepfake_serving.model_configs import BATCHING, to_message
from deepfake_serving.testing.triton import MODEL_REPOSITORY


@pytest.mark.parametrize("spec", DETECTORS, ids=lambda s: s.name)
def test_every_detector_gets_a_profile_from_batch_1_to_its_max_batch_size(spec):
    profile = tensorrt.optimization_profile(spec)
    dims = spec.inputs[0].dims
    assert profile.input_name == spec.inputs[0].name
    assert profile.min_shape == (1, *dims) and profile.max_shape == (spec.max_batch_size, *dims)
    assert 1 <= profile.opt_shape[0] <= spec.max_batch_size
    assert profile.opt_shape[0] == min(max(BATCHING[spec.name].gpu_preferred_batch_sizes), spec.max_batch_size)


def test_a_network_without_a_batch_axis_or_with_dynamic_dims_is_refused():
    no_batch = ModelSpec("x", (TensorSpec("input", (3,)),), (), 0, "")
    with pytest.raises(ValueError, match="batch"):
        tensorrt.optimization_profile(no_batch)
    dynamic = ModelSpec("pnet", (TensorSpec("input", (3, -1, -1)),), (), 8, "")
    with pytest.raises(ValueError, match="dynamic"):
        tensorrt.optimization_profile(dynamic)


def test_the_trtexec_command_builds_fp16_with_one_profile():
    profile = tensorrt.optimization_profile(VISUAL_DETECTOR)
    command = tensorrt.trtexec_command("trtexec", Path("m/1/model.onnx"), Path("m/1/model.plan"), profile)
    assert command == [
        "trtexec",
        "--onnx=m/1/model.onnx",
        "--saveEngine=m/1/model.plan",
        "--minShapes=input:1x3x224x224",
        "--optShapes=input:32x3x224x224",
        "--maxShapes=input:64x3x224x224",
        "--memPoolSize=workspace:2048M",
        "--fp16",
        "--skipInference",
    ]
    fp32 = tensorrt.trtexec_command("trtexec", Path("a"), Path("b"), profile, fp16=False, time_inference=True)
    assert "--fp16" not in fp32 and "--skipInference" not in fp32


@pytest.mark.parametrize("spec", DETECTORS, ids=lambda s: s.name)
def test_the_plan_config_parses_and_differs_from_the_gpu_overlay_only_in_the_runtime(spec):
    from deepfake_serving.model_configs import detector_config, gpu_overlay

    plan = to_message(tensorrt.plan_config(spec))
    onnx = to_message(gpu_overlay(detector_config(spec)))
    assert plan.platform == "tensorrt_plan" and plan.backend == "" and plan.default_model_filename == "model.plan"
    assert not plan.optimization.execution_accelerators.gpu_execution_accelerator
    for field in ("name", "max_batch_size", "input", "output", "instance_group", "dynamic_batching", "model_warmup"):
        assert getattr(plan, field) == getattr(onnx, field), field
    preparation = {k for k in onnx.parameters if k.startswith(("preprocess_", "audio_"))}
    assert set(plan.parameters) == {"weights", "weights_sha256"} | preparation
    assert bool(preparation) == (spec.name in ("visual_detector", "audio_detector"))


def test_the_plan_of_a_waveform_audio_detector_takes_the_waveform():
    from deepfake_contract import audio_detector

    served = {
        "weights": "pretrained",
        "weights_sha256": "ab" * 32,
        "audio_input": "waveform",
        "audio_normalize": "true",
    }
    plan = to_message(tensorrt.plan_config(audio_detector("waveform"), served))
    assert list(plan.input[0].dims) == [64_000]
    assert plan.parameters["audio_input"].string_value == "waveform"
    assert tensorrt.optimization_profile(audio_detector("waveform")).max_shape == (64, 64_000)


def test_the_plan_config_keeps_the_served_models_provenance_and_preprocessing():
    served = {
        "weights": "pretrained",
        "weights_sha256": "ab" * 32,
        "weights_source": "owner/vit",
        "weights_revision": "c" * 40,
        "labels": "Real,Fake",
        "preprocess_mean": "0.5,0.5,0.5",
        "intra_op_thread_count": "2",
    }
    plan = to_message(tensorrt.plan_config(VISUAL_DETECTOR, served))
    kept = {k: v.string_value for k, v in plan.parameters.items()}
    assert {k: kept[k] for k in served if k != "intra_op_thread_count"} == {
        k: v for k, v in served.items() if k != "intra_op_thread_count"
    }
    assert "intra_op_thread_count" not in kept


def test_without_tensorrt_the_build_says_so_and_if_available_exits_cleanly(tmp_path, monkeypatch):
    monkeypatch.setattr(tensorrt, "find_trtexec", lambda: None)
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", None)  # import tensorrt -> ImportError
    onnx = tmp_path / "visual_detector" / "1" / "model.onnx"
    onnx.parent.mkdir(parents=True)
    onnx.write_bytes(b"not used")
    shutil.copyfile(MODEL_REPOSITORY / "visual_detector" / "config.pbtxt", onnx.parents[1] / "config.pbtxt")
    profile = tensorrt.optimization_profile(VISUAL_DETECTOR)
    with pytest.raises(tensorrt.TensorRTUnavailable):
        tensorrt.build_plan(onnx, onnx.with_name("model.plan"), profile)
    args = ["--repository", str(tmp_path), "--only", "visual_detector", "--timings", str(tmp_path / "t.json")]
    assert tensorrt.main([*args, "--if-available"]) == 0
    assert tensorrt.main(args) == 3
    assert not onnx.with_name("model.plan").exists()


def test_trtexec_is_called_with_the_command_when_the_python_api_is_missing(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", None)
    monkeypatch.setattr(tensorrt, "find_trtexec", lambda: "/usr/src/tensorrt/bin/trtexec")

    def fake_run(command, check):
        calls.append(command)
        Path(command[2].split("=", 1)[1]).write_bytes(b"plan")

    monkeypatch.setattr(tensorrt.subprocess, "run", fake_run)
    plan = tmp_path / "model.plan"
    used = tensorrt.build_plan(tmp_path / "model.onnx", plan, tensorrt.optimization_profile(VISUAL_DETECTOR))
    assert used == "trtexec" and plan.read_bytes() == b"plan"
    assert calls[0][0] == "/usr/src/tensorrt/bin/trtexec" and "--fp16" in calls[0]

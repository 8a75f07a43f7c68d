"""Every config.pbtxt parses with Triton's own protobuf, and they agree with each other."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import json_format

from deepfake_contract import DETECTORS
from deepfake_serving.model_configs import detector_config, gpu_overlay, parse_pbtxt, to_message, to_pbtxt

REPOSITORY = Path(__file__).resolve().parents[2] / "model_repository"
CONFIGS = sorted(REPOSITORY.glob("*/config.pbtxt"))
DETECTOR_NAMES = [spec.name for spec in DETECTORS]


def test_the_repository_has_every_detector():
    assert {p.parent.name for p in CONFIGS} >= set(DETECTOR_NAMES)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name)
def test_config_parses_and_is_named_after_its_folder(path):
    config = parse_pbtxt(path)
    assert config.name == path.parent.name


def test_a_mistyped_field_fails_to_parse(tmp_path):
    bad = tmp_path / "config.pbtxt"
    bad.write_text((REPOSITORY / "visual_detector" / "config.pbtxt").read_text().replace("max_batch_size", "max_batch"))
    with pytest.raises(Exception, match="max_batch"):
        parse_pbtxt(bad)


@pytest.mark.parametrize("spec", DETECTORS, ids=DETECTOR_NAMES)
def test_committed_detector_config_is_the_generated_one(spec):
    """The files in git are exactly what the generator writes for demo weights."""
    assert (REPOSITORY / spec.name / "config.pbtxt").read_text() == to_pbtxt(detector_config(spec))


@pytest.mark.parametrize("spec", DETECTORS, ids=DETECTOR_NAMES)
def test_detector_config_batches_and_warms_up(spec):
    config = to_message(detector_config(spec))
    assert config.backend == "onnxruntime"
    assert config.max_batch_size == spec.max_batch_size > 0
    # Zero is deliberate on CPU (no waiting, merging only what already queued).
    assert config.HasField("dynamic_batching")
    assert config.dynamic_batching.max_queue_delay_microseconds >= 0
    assert all(0 < size <= spec.max_batch_size for size in config.dynamic_batching.preferred_batch_size)
    assert config.model_warmup and config.model_warmup[0].inputs["input"].zero_data
    assert [i.name for i in config.input] == ["input"] and [o.name for o in config.output] == ["output", "logits"]


@pytest.mark.parametrize("spec", DETECTORS, ids=DETECTOR_NAMES)
def test_gpu_overlay_changes_only_instances_batching_and_acceleration(spec):
    cpu = detector_config(spec)
    gpu = gpu_overlay(cpu)
    message = to_message(gpu)  # parses with Triton's protobuf
    assert message.instance_group[0].kind == message.instance_group[0].KIND_GPU
    accelerator = message.optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP16"
    changed = {key for key in set(cpu) | set(gpu) if cpu.get(key) != gpu.get(key)}
    assert changed == {"instance_group", "dynamic_batching", "optimization"}


def test_ensemble_steps_match_their_models():
    """Every ensemble step maps onto real inputs/outputs of a model in the repository."""
    configs = {p.parent.name: parse_pbtxt(p) for p in CONFIGS}
    for name, config in configs.items():
        if config.platform != "ensemble":
            continue
        produced = {i.name for i in config.input}
        for step in config.ensemble_scheduling.step:
            model = configs[step.model_name]
            model_inputs = {i.name for i in model.input}
            model_outputs = {o.name for o in model.output}
            assert set(step.input_map) <= model_inputs, (
                f"{name}: {step.model_name} has no input {set(step.input_map) - model_inputs}"
            )
            assert set(step.input_map.values()) <= produced, (
                f"{name}: {step.model_name} reads a tensor nothing produced"
            )
            assert set(step.output_map) <= model_outputs, (
                f"{name}: {step.model_name} has no output {set(step.output_map) - model_outputs}"
            )
            produced |= set(step.output_map.values())
        assert {o.name for o in config.output} <= produced, f"{name}: an ensemble output is never produced"
        json_format.MessageToDict(config)  # round-trips


def test_the_gpu_engine_cache_is_per_weights_file():
    """ONNX Runtime's TensorRT cache may be keyed on the graph: new weights get their own folder."""
    from deepfake_contract import VISUAL_DETECTOR

    def cache_path(config):
        (accelerator,) = gpu_overlay(config)["optimization"]["execution_accelerators"]["gpu_execution_accelerator"]
        return accelerator["parameters"]["trt_engine_cache_path"]

    demo = cache_path(detector_config(VISUAL_DETECTOR))
    trained = cache_path(detector_config(VISUAL_DETECTOR, weights="trained", weights_sha256="ab" * 32))
    retrained = cache_path(detector_config(VISUAL_DETECTOR, weights="trained", weights_sha256="cd" * 32))
    assert demo == "/models/visual_detector/trt_cache/demo"
    assert trained == "/models/visual_detector/trt_cache/" + "ab" * 8 and retrained != trained

"""Every ``config.pbtxt`` agrees with :mod:`deepfake_contract`, tensor for tensor and limit for limit.

The configs are parsed with Triton's own protobuf (``model_config_pb2``), so
what is compared is what Triton reads, not a regex over the text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from deepfake_contract import (
    AUDIO_DETECTOR,
    AUDIO_PREPROCESS,
    DETECTORS,
    ENTRY_MODELS,
    MODELS,
    ModelSpec,
    TensorSpec,
    audio_detector,
    audio_preprocess,
)
from deepfake_serving.audio_pipeline import served_audio_input
from deepfake_serving.model_configs import with_audio_input_dims

REPOSITORY = Path(__file__).resolve().parents[2] / "model_repository"
HAND_WRITTEN = sorted(p.parent.name for p in REPOSITORY.glob("*/config.pbtxt"))


def _config(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def _tensors(entries: list) -> list[tuple[str, str, list[int], bool]]:
    return [
        # ModelOutput has no ``optional``.
        (
            t.name,
            model_config_pb2.DataType.Name(t.data_type).removeprefix("TYPE_"),
            list(t.dims),
            getattr(t, "optional", False),
        )
        for t in entries
    ]


def _expected(tensors: tuple[TensorSpec, ...]) -> list[tuple[str, str, list[int], bool]]:
    return [(t.name, t.dtype, list(t.dims), t.optional) for t in tensors]


def _configs() -> list[str]:
    """The checked-in configs plus the detectors' generated ones and GPU overlays (``make export`` writes them)."""
    names = [f"{name}/config.pbtxt" for name in HAND_WRITTEN]
    for spec in DETECTORS:
        names += [f"{spec.name}/config.pbtxt", f"{spec.name}/configs/gpu.pbtxt"]
    return sorted(set(names))


ENSEMBLES = [m for m in ENTRY_MODELS if _config(REPOSITORY / m.name / "config.pbtxt").platform == "ensemble"]


def test_every_model_in_the_repository_has_a_contract_and_every_contract_a_model() -> None:
    served = set(HAND_WRITTEN) | {spec.name for spec in DETECTORS}
    assert served == set(MODELS), (
        f"only in the repository: {served - set(MODELS)}; only in the contract: {set(MODELS) - served}"
    )


def _served_spec(name: str) -> ModelSpec:
    """The contract of ``name`` as served: the audio pair follows what audio_detector's config says it takes."""
    if name in (AUDIO_DETECTOR.name, AUDIO_PREPROCESS.name):
        kind = served_audio_input(REPOSITORY).kind
        return audio_detector(kind) if name == AUDIO_DETECTOR.name else audio_preprocess(kind)
    return MODELS[name]


@pytest.mark.parametrize("relative", _configs())
def test_config_matches_the_contract(relative: str) -> None:
    path = REPOSITORY / relative
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make export`")
    config = _config(path)
    spec = _served_spec(config.name)
    assert _tensors(config.input) == _expected(spec.inputs), f"{config.name} inputs"
    assert _tensors(config.output) == _expected(spec.outputs), f"{config.name} outputs"
    assert config.max_batch_size == spec.max_batch_size
    shipped = {key: value.string_value for key, value in config.parameters.items()}
    for name, value in spec.limits.items():
        assert shipped.get(name) == str(value), (
            f"{config.name}: parameter {name} is {shipped.get(name)!r}, the contract says {value!r}"
        )


@pytest.mark.parametrize("entry", ENSEMBLES, ids=lambda m: m.name)
def test_ensemble_steps_use_only_their_models_contract_names(entry: ModelSpec) -> None:
    config = _config(REPOSITORY / entry.name / "config.pbtxt")
    available = set(entry.input_names)
    produced: set[str] = set()
    for step in config.ensemble_scheduling.step:
        model = MODELS[step.model_name]
        assert set(step.input_map) <= set(model.input_names), (
            f"{step.model_name} has no input {set(step.input_map) - set(model.input_names)}"
        )
        required = {t.name for t in model.inputs if not t.optional}
        assert required <= set(step.input_map), (
            f"{entry.name} does not feed {step.model_name}'s {required - set(step.input_map)}"
        )
        assert set(step.output_map) <= set(model.output_names), (
            f"{step.model_name} has no output {set(step.output_map) - set(model.output_names)}"
        )
        unknown = set(step.input_map.values()) - available
        assert not unknown, f"{step.model_name} reads {unknown}, which no earlier step produces"
        for key, value in step.output_map.items():
            if value in entry.output_names:
                # An ensemble output is the step's tensor of the same name, never a rename.
                assert key == value, f"{entry.name}.{value} comes from {step.model_name}.{key}"
            available.add(value)
            produced.add(value)
    assert set(entry.output_names) <= produced, f"{entry.name} never produces {set(entry.output_names) - produced}"
    consumed = {value for step in config.ensemble_scheduling.step for value in step.input_map.values()}
    # Triton 2.51 fails requests that leave out an ensemble output another step consumes.
    assert not consumed & set(entry.output_names), (
        f"{entry.name} outputs tensors a step consumes: {consumed & set(entry.output_names)}"
    )


def test_a_misspelt_tensor_name_fails_where_it_is_written() -> None:
    spec = MODELS["detect_audio"]
    assert spec.FAKE_PROB.name == "FAKE_PROB"
    with pytest.raises(AttributeError, match="detect_audio has no tensor 'FAKE_PORB'; it has AUDIO, "):
        spec.FAKE_PORB  # noqa: B018


def test_limits_the_steps_hand_on_fit_the_detectors_batches() -> None:
    assert MODELS["face_detector"].limit("max_faces") <= MODELS["visual_detector"].max_batch_size
    assert MODELS["forensic_features"].limit("max_crops") == MODELS["face_detector"].limit("max_faces")
    assert MODELS["audio_preprocess"].limit("max_windows") <= MODELS["audio_detector"].max_batch_size


def test_a_python_models_answer_that_breaks_its_contract_is_refused_naming_the_tensor() -> None:
    import numpy as np

    from deepfake_serving.triton_python import check_outputs

    spec = MODELS["audio_fusion"]
    good = {
        "WINDOW_FAKE_PROB": np.zeros(2, np.float32),
        "WINDOW_SILENT": np.zeros(2, bool),
        "FAKE_PROB": np.zeros(1, np.float32),
        "AUDIO_SILENT": np.zeros(1, bool),
        "DEMO_WEIGHTS": np.ones(1, bool),
        "DEMO_MODELS": np.array([b"audio_detector"], dtype=object),
        "THRESHOLD": np.full(1, 0.5, np.float32),
    }
    check_outputs(spec, good)
    with pytest.raises(RuntimeError, match=r"missing \['AUDIO_SILENT'\], extra \['ALL_SILENT'\]"):
        check_outputs(
            spec, {**{k: v for k, v in good.items() if k != "AUDIO_SILENT"}, "ALL_SILENT": good["AUDIO_SILENT"]}
        )
    with pytest.raises(RuntimeError, match=r"audio_fusion.FAKE_PROB is float64\[1\], the contract says float32\[1\]"):
        check_outputs(spec, {**good, "FAKE_PROB": np.zeros(1)})
    with pytest.raises(RuntimeError, match=r"WINDOW_SILENT is bool\[2, 1\]"):
        check_outputs(spec, {**good, "WINDOW_SILENT": np.zeros((2, 1), bool)})


def test_settings_are_filled_from_the_parameters_named_like_their_fields() -> None:
    from deepfake_serving.fusion import AudioAggregation, FrameAggregation
    from deepfake_serving.image_pipeline import FaceSettings
    from deepfake_serving.triton_python import settings_from

    audio = settings_from(AudioAggregation, {"audio_top_fraction": "0.5"}, prefix="audio_", defaulted=("silent_score",))
    assert audio.top_fraction == 0.5
    four = (
        "confident_fake_threshold",
        "confident_fake_fraction",
        "confident_real_threshold",
        "confident_real_fraction",
    )
    frames = settings_from(FrameAggregation, {**dict.fromkeys(four, "0.7"), "unrelated": "x"})
    assert frames.confident_fake_threshold == 0.7 and frames.confident_real_fraction == 0.7
    # A renamed field or a misspelt parameter fails the load instead of falling back to a default.
    with pytest.raises(ValueError, match="FrameAggregation.confident_real_fraction needs the config parameter"):
        settings_from(FrameAggregation, dict.fromkeys(four[:3], "0.7"))
    every = tuple(FaceSettings.__dataclass_fields__)
    assert settings_from(FaceSettings, {"max_candidates": "1,2,3"}, defaulted=every).max_candidates == (1, 2, 3)
    with pytest.raises(ValueError, match="config parameter max_faces='many' is not a valid"):
        settings_from(FaceSettings, {"max_faces": "many"}, defaulted=every)


@pytest.mark.parametrize("kind", ["log_mel", "waveform"])
def test_audio_preprocess_emits_what_each_audio_detector_variant_takes(kind: str) -> None:
    detector, preprocess = audio_detector(kind), audio_preprocess(kind)
    assert preprocess.AUDIO_INPUT.dims == (-1, *detector.input.dims)
    text = with_audio_input_dims(
        (REPOSITORY / "audio_preprocess" / "config.pbtxt").read_text(), list(detector.input.dims)
    )
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert _tensors(config.output) == _expected(preprocess.outputs)
    assert text.startswith("# Encoded audio"), "the hand-written comments are kept"
    with pytest.raises(KeyError, match="unknown audio_input 'mfcc'; known: log_mel, waveform"):
        audio_detector("mfcc")

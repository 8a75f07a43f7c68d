"""A pretrained Hugging Face waveform classifier as the served audio detector, end to end, offline.

Tiny wav2vec2, HuBERT and WavLM classifiers are saved as hub checkouts
(tests/export/hf_models.py), exported by the real ``python -m deepfake_export
--audio-model``, served by the real Triton, and compared with ``transformers``'
own feature extractor and model on the windows the server cut.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import tritonclient.grpc as grpcclient

from deepfake_contract import AUDIO_DETECTOR, AUDIO_PREPROCESS, DETECT_AUDIO, DETECT_VIDEO, MODELS
from deepfake_export.pretrained import SourceError, audio_input_of, fake_class
from deepfake_serving import audio as A
from deepfake_serving.audio_pipeline import AudioInput, served_audio_input
from deepfake_serving.model_configs import parse_pbtxt
from deepfake_serving.testing import media, media_av
from deepfake_serving.testing.triton import MODEL_REPOSITORY, ROOT, running_triton
from deepfake_serving.video import sample_video
from tests.export.hf_models import AUDIO_BUILDERS, BUILDERS

LABELS = {
    "wav2vec2": {0: "bonafide", 1: "spoof"},
    "hubert": {0: "spoof", 1: "bonafide"},  # the fake class first: the export must reorder
    "wavlm": {0: "real", 1: "fake"},
}
NORMALIZED = {"wav2vec2": True, "hubert": True, "wavlm": False}
#: The two configs the export writes for an audio model; every other model is linked.
WRITTEN = (AUDIO_DETECTOR.name, AUDIO_PREPROCESS.name)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf_audio")
    return {family: build(root / family, LABELS[family]) for family, build in AUDIO_BUILDERS.items()}


def _repository(root: Path) -> Path:
    """The whole served repository, linked, with real copies of the two folders the export writes into."""
    repository = root / "repository"
    repository.mkdir(parents=True)
    for name in MODELS:
        if name in WRITTEN:
            shutil.copytree(MODEL_REPOSITORY / name, repository / name, symlinks=False)
        else:
            (repository / name).symlink_to(MODEL_REPOSITORY / name, target_is_directory=True)
    return repository


def _export(repository: Path, source: str, *extra: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "deepfake_export",
            "--repository",
            str(repository),
            "--manifest",
            str(repository.parent / "manifest.json"),
            "--only",
            AUDIO_DETECTOR.name,
            "--audio-model",
            source,
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def _parameters(repository: Path, model: str = AUDIO_DETECTOR.name) -> dict[str, str]:
    config = parse_pbtxt(repository / model / "config.pbtxt")
    return {key: value.string_value for key, value in config.parameters.items()}


def _windows(seconds: float = 9.0) -> np.ndarray:
    """Speech-like 16 kHz audio cut as audio_preprocess cuts it (4 s windows, 2 s hop)."""
    windows, _, _ = A.window_audio(media_av.speechlike(A.SAMPLE_RATE, seconds), max_windows=64)
    return windows


def _transformers_fake_probs(folder: Path, windows: np.ndarray, fake: int) -> tuple[np.ndarray, np.ndarray]:
    """``(input_values, fake probabilities)`` from transformers' own extractor and model."""
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    extractor = AutoFeatureExtractor.from_pretrained(folder)
    model = AutoModelForAudioClassification.from_pretrained(folder).eval()
    values = extractor(list(windows), sampling_rate=16000, return_tensors="np")["input_values"].astype(np.float32)
    with torch.no_grad():
        probs = torch.softmax(model(input_values=torch.from_numpy(values)).logits, dim=1).numpy()
    return values, probs[:, fake]


# -- the windows follow the model's feature extractor -------------------------------


@pytest.mark.parametrize("family", list(AUDIO_BUILDERS))
def test_windows_are_prepared_exactly_as_the_models_feature_extractor_does(saved, family) -> None:
    from transformers import AutoFeatureExtractor

    extractor = AutoFeatureExtractor.from_pretrained(saved[family])
    steps = audio_input_of(extractor)
    assert steps == AudioInput(kind="waveform", normalize=NORMALIZED[family])
    windows = _windows()
    expected = extractor(list(windows), sampling_rate=16000, return_tensors="np")["input_values"]
    got = steps.apply(windows)
    assert got.shape == expected.shape == (len(windows), 64_000)
    assert float(np.max(np.abs(got - expected))) <= 1e-5
    assert AudioInput.from_parameters(steps.to_parameters()) == steps


def test_a_feature_extractor_that_cannot_be_honoured_is_refused_by_name() -> None:
    from transformers import ASTFeatureExtractor, Wav2Vec2FeatureExtractor

    with pytest.raises(SourceError, match="sampling_rate 8000; audio_preprocess prepares 16000 Hz windows"):
        audio_input_of(Wav2Vec2FeatureExtractor(sampling_rate=8000))
    with pytest.raises(SourceError, match=r"ASTFeatureExtractor: its input_values have shape \[3, 1024, 128\]"):
        audio_input_of(ASTFeatureExtractor())


# -- export: parity, label order, provenance, the variant configs ----------------------


@pytest.mark.parametrize("family", list(AUDIO_BUILDERS))
def test_a_saved_model_is_exported_checked_and_marked_pretrained(saved, family, tmp_path) -> None:
    repository = _repository(tmp_path)
    run = _export(repository, str(saved[family]))
    assert run.returncode == 0, run.stderr
    parameters = _parameters(repository)
    weights = saved[family] / "model.safetensors"
    assert parameters["weights"] == "pretrained"
    assert parameters["weights_source"] == str(saved[family]) and parameters["weights_revision"] == "local"
    assert parameters["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    real, fake = fake_class(LABELS[family])
    assert parameters["labels"] == f"{LABELS[family][real]},{LABELS[family][fake]}"
    assert served_audio_input(repository) == AudioInput("waveform", NORMALIZED[family])
    # Both configs declare the waveform window, the GPU overlay too; the hand-written one keeps its comments.
    for path in ("audio_detector/config.pbtxt", "audio_detector/configs/gpu.pbtxt"):
        assert list(parse_pbtxt(repository / path).input[0].dims) == [64_000], path
    preprocess = repository / AUDIO_PREPROCESS.name / "config.pbtxt"
    (declared,) = [o for o in parse_pbtxt(preprocess).output if o.name == "AUDIO_INPUT"]
    assert list(declared.dims) == [-1, 64_000]
    assert preprocess.read_text().startswith("# Encoded audio")

    # ONNX Runtime on raw windows against transformers' extractor + model, at batch 1 and 8.
    session = ort.InferenceSession(str(repository / AUDIO_DETECTOR.name / "1" / "model.onnx"))
    steps = AudioInput("waveform", NORMALIZED[family])
    for batch in (1, 8):
        windows = np.random.default_rng(batch).uniform(-0.3, 0.3, (batch, 64_000)).astype(np.float32)
        _, expected = _transformers_fake_probs(saved[family], windows, fake)
        (probs,) = session.run(["output"], {"input": steps.apply(windows)})
        assert float(np.max(np.abs(probs[:, 1] - expected))) <= 1e-4


def test_going_back_to_the_projects_detector_restores_the_log_mel_configs(saved, tmp_path) -> None:
    repository = _repository(tmp_path)
    original = (repository / AUDIO_PREPROCESS.name / "config.pbtxt").read_text()
    assert _export(repository, str(saved["wav2vec2"])).returncode == 0
    run = subprocess.run(
        [sys.executable, "-m", "deepfake_export", "--repository", str(repository), "--manifest"]
        + [str(repository.parent / "manifest.json"), "--only", AUDIO_DETECTOR.name],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert _parameters(repository)["weights"] == "demo"
    assert served_audio_input(repository) == AudioInput()
    assert (repository / AUDIO_PREPROCESS.name / "config.pbtxt").read_text() == original


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("./no/such/folder", "--audio-model ./no/such/folder: no such folder"),
        ("{image}", "--audio-model {image}: cannot load an audio classifier"),
        ("{labels}", "none of the labels (0='cat', 1='dog') name the fake class"),
    ],
    ids=["missing_folder", "not_an_audio_classifier", "no_fake_label"],
)
def test_a_bad_source_stops_the_export_and_leaves_the_served_models(saved, tmp_path, source, expected) -> None:
    image = BUILDERS["vit"](tmp_path / "image", {0: "real", 1: "fake"})
    labels = AUDIO_BUILDERS["wavlm"](tmp_path / "labels", {0: "cat", 1: "dog"})
    repository = _repository(tmp_path / "served")
    before = {name: (repository / name / "config.pbtxt").read_text() for name in WRITTEN}
    onnx = (repository / AUDIO_DETECTOR.name / "1" / "model.onnx").read_bytes()
    run = _export(repository, source.format(image=image, labels=labels))
    assert run.returncode == 2
    errors = [line for line in run.stderr.splitlines() if line.startswith("deepfake_export:")]
    assert len(errors) == 1 and expected.format(image=image) in errors[0], run.stderr
    assert "Traceback" not in run.stderr
    assert {name: (repository / name / "config.pbtxt").read_text() for name in WRITTEN} == before
    assert (repository / AUDIO_DETECTOR.name / "1" / "model.onnx").read_bytes() == onnx


def test_the_fake_label_can_be_chosen_for_an_audio_model(tmp_path) -> None:
    folder = AUDIO_BUILDERS["wavlm"](tmp_path / "labels", {0: "LABEL_0", 1: "LABEL_1"})
    repository = _repository(tmp_path / "served")
    run = _export(repository, str(folder), "--audio-fake-label", "LABEL_0")
    assert run.returncode == 0, run.stderr
    assert _parameters(repository)["labels"] == "LABEL_1,LABEL_0"


# -- served: the answer is transformers' on the windows the server cut -----------------


@pytest.mark.server
def test_detect_audio_and_detect_video_score_windows_as_transformers_does(saved, tmp_path) -> None:
    repository = _repository(tmp_path)
    run = _export(repository, str(saved["hubert"]))
    assert run.returncode == 0, run.stderr
    real, fake = fake_class(LABELS["hubert"])
    clip = media_av.audio_clip("wav", 9.0)
    video = media_av.encode_video(
        media_av.moving_frames(media.astronaut(), 24, 256, 256), 12, "mp4_h264_aac", audio=media_av.speechlike
    )

    with running_triton(tmp_path / "triton", repository=repository) as triton:
        client = grpcclient.InferenceServerClient(triton.grpc_url)
        audio = grpcclient.InferInput("AUDIO", [1], "BYTES")
        audio.set_data_from_numpy(np.array([clip], dtype=object))
        prepared = client.infer(AUDIO_PREPROCESS.name, [audio])
        answer = client.infer(DETECT_AUDIO.name, [audio])
        tensor = grpcclient.InferInput("VIDEO", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([video], dtype=object))
        scored = client.infer(DETECT_VIDEO.name, [tensor])
        log = triton.log_path.read_text(errors="replace")

    sha = hashlib.sha256((saved["hubert"] / "model.safetensors").read_bytes()).hexdigest()
    assert f"audio_fusion: serves audio_detector: pretrained {saved['hubert']}@local, sha256 {sha[:12]}" in log
    assert "audio_preprocess: windows prepared as AudioInput(kind='waveform', normalize=True)" in log

    windows, _, _ = A.window_audio(A.decode_audio(clip), max_windows=64)
    values, expected = _transformers_fake_probs(saved["hubert"], windows, fake)
    assert float(np.max(np.abs(prepared.as_numpy("AUDIO_INPUT") - values))) <= 1e-5
    np.testing.assert_allclose(answer.as_numpy("WINDOW_FAKE_PROB"), expected, atol=1e-3)
    assert answer.as_numpy("DEMO_WEIGHTS").tolist() == [False]
    assert answer.as_numpy("DEMO_MODELS").tolist() == [b""]

    # detect_video's audio step reads the same detector the same way (2 s of audio: one window).
    track, _, _ = A.window_audio(sample_video(video).audio, max_windows=64)
    _, video_expected = _transformers_fake_probs(saved["hubert"], track, fake)
    assert float(scored.as_numpy("AUDIO_FAKE_PROB")[0]) == pytest.approx(float(video_expected.max()), abs=1e-3)
    # The audio detector is real now; the temporal and visual detectors are still demo.
    assert scored.as_numpy("DEMO_MODELS")[0].decode().split(",") == ["temporal_analyzer", "visual_detector"]

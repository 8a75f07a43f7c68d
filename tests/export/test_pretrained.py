"""A pretrained Hugging Face classifier as the served visual detector, end to end, offline.

Tiny models of the three processor families are saved as hub checkouts
(tests/export/hf_models.py), exported by the real ``python -m deepfake_export
--visual-model``, served by the real Triton, and compared with ``transformers``'
own processor and model.
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

from deepfake_contract import DETECT_IMAGE, FACE_DETECTOR, VISUAL_DETECTOR
from deepfake_export.pretrained import SourceError, fake_class, preprocessing_of
from deepfake_serving.model_configs import parse_pbtxt
from deepfake_serving.testing import media
from deepfake_serving.testing.triton import IMAGE_MODELS, MODEL_REPOSITORY, ROOT, running_triton
from tests.export.hf_models import BUILDERS

LABELS = {
    "vit": {0: "Real", 1: "Fake"},
    "siglip": {0: "fake", 1: "real"},  # the fake class first: the export must reorder
    "resnet": {0: "authentic", 1: "Deepfake"},
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf")
    return {family: build(root / family, LABELS[family]) for family, build in BUILDERS.items()}


def _face_crops(count: int = 3) -> np.ndarray:
    """Real face-like crops: the astronaut's face region and two shifted ones, 224x224 RGB."""
    image = media.astronaut()
    return np.stack([np.ascontiguousarray(image[20 + 30 * i : 244 + 30 * i, 150:374]) for i in range(count)])


def _repository(root: Path) -> Path:
    """The image models, linked, with a real copy of visual_detector for the export to write into."""
    repository = root / "repository"
    repository.mkdir(parents=True)
    for name in IMAGE_MODELS:
        if name == VISUAL_DETECTOR.name:
            shutil.copytree(MODEL_REPOSITORY / name, repository / name, symlinks=False)
        else:
            (repository / name).symlink_to(MODEL_REPOSITORY / name, target_is_directory=True)
    return repository


def _export(repository: Path, source: str, *extra: str, env: dict[str, str] | None = None, only: tuple[str, ...] = ()):
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
            VISUAL_DETECTOR.name,
            *only,
            "--visual-model",
            source,
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def _parameters(repository: Path) -> dict[str, str]:
    config = parse_pbtxt(repository / VISUAL_DETECTOR.name / "config.pbtxt")
    return {key: value.string_value for key, value in config.parameters.items()}


# -- the fake class ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "override", "expected"),
    [
        ({0: "Real", 1: "Fake"}, None, (0, 1)),
        ({0: "fake", 1: "real"}, None, (1, 0)),
        ({0: "authentic", 1: "Deepfake"}, None, (0, 1)),
        ({0: "bona-fide", 1: "spoof"}, None, (0, 1)),
        ({0: "AI-generated", 1: "human"}, None, (1, 0)),
        ({0: "manipulated", 1: "pristine"}, None, (1, 0)),
        ({0: "LABEL_0", 1: "LABEL_1"}, "label_0", (1, 0)),
    ],
)
def test_the_fake_class_is_found_from_the_labels(labels, override, expected) -> None:
    assert fake_class(labels, override) == expected


@pytest.mark.parametrize(
    ("labels", "override", "message"),
    [
        (
            {0: "cat", 1: "dog"},
            None,
            "none of the labels (0='cat', 1='dog') name the fake class; choose it with --fake-label",
        ),
        ({0: "fake", 1: "deepfake"}, None, "both of the labels (0='fake', 1='deepfake')"),
        # A negated label is not read as fake: "non-fake" would have inverted every score.
        ({0: "non-fake", 1: "forged"}, None, "none of the labels (0='non-fake', 1='forged')"),
        ({0: "real", 1: "fake", 2: "cartoon"}, None, "the model has 3 classes (0='real', 1='fake', 2='cartoon')"),
        ({0: "a", 1: "b"}, "c", "--fake-label 'c' is not exactly one of the model's labels (0='a', 1='b')"),
    ],
)
def test_an_ambiguous_fake_class_is_refused_with_the_labels_listed(labels, override, message) -> None:
    with pytest.raises(SourceError) as refused:
        fake_class(labels, override)
    assert message in str(refused.value)


# -- preprocessing follows the model -----------------------------------------------


@pytest.mark.parametrize("family", list(BUILDERS))
def test_the_crop_is_normalized_exactly_as_the_models_processor_does(saved, family) -> None:
    from transformers import AutoImageProcessor

    processor = AutoImageProcessor.from_pretrained(saved[family])
    crops = _face_crops()
    expected = processor(images=list(crops), return_tensors="np")["pixel_values"]
    got = preprocessing_of(processor).apply(crops)
    assert got.shape == expected.shape == (3, 3, 224, 224)
    assert float(np.max(np.abs(got - expected))) <= 1e-5


def test_a_processor_option_that_cannot_be_honoured_is_refused_by_name() -> None:
    from transformers import ViTImageProcessorPil

    with pytest.raises(SourceError, match=r"ends at 192x192; visual_detector takes \(224, 224\)"):
        preprocessing_of(ViTImageProcessorPil(size={"height": 192, "width": 192}))

    class Padding(ViTImageProcessorPil):
        def to_dict(self):
            return {**super().to_dict(), "do_pad": True, "do_reduce_labels": True}

    with pytest.raises(SourceError, match="option\\(s\\) do_pad, do_reduce_labels cannot be reproduced"):
        preprocessing_of(Padding())


# -- export: parity, label order, provenance -----------------------------------------


@pytest.mark.parametrize("family", list(BUILDERS))
def test_a_saved_model_is_exported_checked_and_marked_pretrained(saved, family, tmp_path) -> None:
    from transformers import AutoImageProcessor, AutoModelForImageClassification

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

    # ONNX Runtime against transformers' own model on its own processor's output, at batch 1 and 8.
    model = AutoModelForImageClassification.from_pretrained(saved[family]).eval()
    processor = AutoImageProcessor.from_pretrained(saved[family])
    session = ort.InferenceSession(str(repository / VISUAL_DETECTOR.name / "1" / "model.onnx"))
    for batch in (1, 8):
        crops = np.random.default_rng(batch).integers(0, 256, (batch, 224, 224, 3), dtype=np.uint8)
        pixels = processor(images=list(crops), return_tensors="np")["pixel_values"].astype(np.float32)
        with torch.no_grad():
            logits = model(pixel_values=torch.from_numpy(pixels)).logits
        expected = torch.softmax(logits, dim=1).numpy()[:, [real, fake]]
        probs, onnx_logits = session.run(["output", "logits"], {"input": pixels})
        assert float(np.max(np.abs(probs - expected))) <= 1e-4
        np.testing.assert_allclose(onnx_logits, logits.numpy()[:, [real, fake]], atol=1e-4)


def _fingerprint(repository: Path) -> tuple[str, str]:
    folder = repository / VISUAL_DETECTOR.name
    return (
        hashlib.sha256((folder / "1" / "model.onnx").read_bytes()).hexdigest(),
        (folder / "config.pbtxt").read_text(),
    )


@pytest.mark.parametrize(
    ("source", "env", "expected"),
    [
        ("./no/such/folder", {}, "--visual-model ./no/such/folder: no such folder"),
        ("no/such/folder", {}, "--visual-model no/such/folder: no such folder"),
        ("{audio}", {}, "cannot load an image classifier"),
        ("{no_processor}", {}, "no preprocessor_config.json"),
        (
            "nobody/no-such-detector@main",
            {"HF_HUB_OFFLINE": "1"},
            "cannot load an image classifier (the hub is unreachable and there is no cached copy?)",
        ),
        ("checkpoints/typo", {"HF_HUB_OFFLINE": "1"}, "nor is it a folder here"),
    ],
    ids=[
        "missing_folder",
        "missing_relative_folder",
        "not_an_image_classifier",
        "no_processor",
        "unreachable_hub",
        "neither_hub_id_nor_folder",
    ],
)
def test_a_bad_source_stops_the_export_and_leaves_the_served_model(saved, tmp_path, source, env, expected) -> None:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    audio = tmp_path / "audio"
    Wav2Vec2ForSequenceClassification(
        Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, num_labels=2)
    ).save_pretrained(audio)
    Wav2Vec2FeatureExtractor().save_pretrained(audio)
    no_processor = tmp_path / "no_processor"
    shutil.copytree(saved["vit"], no_processor)
    (no_processor / "preprocessor_config.json").unlink()

    repository = _repository(tmp_path / "served")
    before = _fingerprint(repository)
    run = _export(repository, source.format(audio=audio, no_processor=no_processor), env=env)
    assert run.returncode == 2
    errors = [line for line in run.stderr.splitlines() if line.startswith("deepfake_export:")]
    assert len(errors) == 1 and expected in errors[0], run.stderr
    assert "Traceback" not in run.stderr
    assert _fingerprint(repository) == before


def _fake_hub_cache(root: Path, repo: str, folder: Path, commits: list[str]) -> Path:
    """A Hugging Face cache holding ``repo`` at ``commits`` (files of ``folder``), ``main`` at the last."""
    cache = root / "hub"
    base = cache / f"models--{repo.replace('/', '--')}"
    for commit in commits:
        shutil.copytree(folder, base / "snapshots" / commit)
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commits[-1])
    return cache


def test_a_hub_source_records_the_commit_whose_files_it_loaded(saved, tmp_path) -> None:
    """Offline, from the cache a networked export would have filled; a pinned commit wins over main."""
    pinned, newer = "a" * 40, "b" * 40
    cache = _fake_hub_cache(tmp_path, "owner/tiny-vit", saved["vit"], [pinned, newer])
    # main holds other weights: recording them for the pinned export would be a lie.
    retrained = BUILDERS["vit"](tmp_path / "retrained", LABELS["vit"], seed=1) / "model.safetensors"
    shutil.copyfile(retrained, cache / "models--owner--tiny-vit" / "snapshots" / newer / "model.safetensors")
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    for source, commit, weights in (
        (f"owner/tiny-vit@{pinned}", pinned, saved["vit"] / "model.safetensors"),
        ("owner/tiny-vit", newer, retrained),
    ):
        repository = _repository(tmp_path / commit[:4])
        run = _export(repository, source, env=env)
        assert run.returncode == 0, run.stderr
        parameters = _parameters(repository)
        assert parameters["weights_source"] == source and parameters["weights_revision"] == commit
        assert parameters["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


def test_main_moving_on_is_seen_as_a_new_revision(saved, tmp_path) -> None:
    first, second = "c" * 40, "d" * 40
    cache = _fake_hub_cache(tmp_path, "owner/tiny-vit", saved["vit"], [first])
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    repository = _repository(tmp_path / "served")
    assert _export(repository, "owner/tiny-vit", env=env).returncode == 0
    assert _parameters(repository)["weights_revision"] == first
    shutil.copytree(saved["vit"], cache / "models--owner--tiny-vit" / "snapshots" / second)
    (cache / "models--owner--tiny-vit" / "refs" / "main").write_text(second)
    assert _export(repository, "owner/tiny-vit", env=env).returncode == 0
    assert _parameters(repository)["weights_revision"] == second


def test_a_failure_later_in_the_export_leaves_each_served_model_with_its_own_config(saved, tmp_path) -> None:
    """visual_detector is published first; the forensic checkpoint then does not fit (exit 2)."""
    from safetensors.torch import save_file

    repository = _repository(tmp_path)
    (repository / "forensic_classifier").unlink()
    shutil.copytree(MODEL_REPOSITORY / "forensic_classifier", repository / "forensic_classifier")
    broken = tmp_path / "checkpoints"
    broken.mkdir()
    save_file({"not.a.parameter": torch.zeros(1)}, broken / "forensic_classifier.safetensors")
    run = _export(repository, str(saved["vit"]), "--checkpoints", str(broken), only=("forensic_classifier",))
    assert run.returncode == 2, run.stderr
    parameters = _parameters(repository)
    # The new ViT file is served with the ViT's config, not the B4's it replaced.
    assert parameters["weights"] == "pretrained" and parameters["preprocess_mean"] == "0.5,0.5,0.5"
    assert parse_pbtxt(repository / "forensic_classifier" / "config.pbtxt").parameters["weights"].string_value == "demo"


# -- served: the answer is transformers' on the crop the server used --------------


@pytest.mark.server
def test_detect_image_scores_faces_as_transformers_does_on_the_servers_crops(saved, tmp_path) -> None:
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    repository = _repository(tmp_path)
    run = _export(repository, str(saved["siglip"]))
    assert run.returncode == 0, run.stderr
    model = AutoModelForImageClassification.from_pretrained(saved["siglip"]).eval()
    processor = AutoImageProcessor.from_pretrained(saved["siglip"])
    real, fake = fake_class(LABELS["siglip"])
    image = media.encode(media.astronaut(), "JPEG", quality=92)

    with running_triton(tmp_path / "triton", repository=repository) as triton:
        client = grpcclient.InferenceServerClient(triton.grpc_url)
        tensor = grpcclient.InferInput("IMAGE", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([image], dtype=object))
        faces = client.infer(FACE_DETECTOR.name, [tensor])
        answer = client.infer(DETECT_IMAGE.name, [tensor])
        log = triton.log_path.read_text(errors="replace")

    sha = hashlib.sha256((saved["siglip"] / "model.safetensors").read_bytes()).hexdigest()
    assert f"image_fusion: serves visual_detector: pretrained {saved['siglip']}@local, sha256 {sha[:12]}" in log
    assert "face_detector: visual_detector input prepared as VisualPreprocessing(resize=(224, 224), resample=3" in log

    crops = faces.as_numpy("FACE_CROPS")
    pixels = processor(images=list(crops), return_tensors="np")["pixel_values"]
    assert float(np.max(np.abs(faces.as_numpy("VISUAL_INPUT") - pixels))) <= 1e-5
    with torch.no_grad():
        probs = torch.softmax(model(pixel_values=torch.from_numpy(pixels)).logits, dim=1).numpy()
    np.testing.assert_allclose(answer.as_numpy("VISUAL_FAKE_PROB"), probs[:, fake], atol=1e-3)
    # The forensic classifier is still demo: the verdict rests on the pretrained detector alone.
    assert answer.as_numpy("DEMO_WEIGHTS").tolist() == [False]
    assert answer.as_numpy("DEMO_MODELS").tolist() == [b""]
    assert float(answer.as_numpy("FAKE_PROB")[0]) == pytest.approx(float(probs[:, fake].max()), abs=1e-3)

"""``--backbone hf:SOURCE``: a hub image classifier fine-tuned on face crops, then served by the pretrained path.

The hub is not reachable here, so SOURCE is a tiny ViT saved with
``save_pretrained`` (tests/export/hf_models.py), as a hub checkout is laid out.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import torch
from deepfake_train import face_set

from deepfake_export.pretrained import preprocessing_of
from deepfake_serving.model_configs import parse_pbtxt
from deepfake_serving.testing.triton import MODEL_REPOSITORY, ROOT
from tests.export.hf_models import save_vit


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=900)


def test_a_hub_backbone_is_fine_tuned_with_a_real_fake_head_and_served_through_the_pretrained_path(tmp_path) -> None:
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    data = tmp_path / "faces"
    face_set.build_images(data, n=6, n_val=3)
    source = save_vit(tmp_path / "vit", {i: f"imagenet_{i}" for i in range(5)})  # a 5-class head to be replaced
    out = tmp_path / "checkpoints"
    train = _run(
        "-m", "deepfake_train", "visual", "--data", str(data), "--out", str(out), "--backbone", f"hf:{source}",
        "--epochs", "2", "--lr", "1e-3", "--batch-size", "4", "--no-progress",
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-3000:]
    folder = out / "visual_detector-hf"
    tuned = AutoModelForImageClassification.from_pretrained(folder)
    assert tuned.config.id2label == {0: "real", 1: "fake"}
    processor = AutoImageProcessor.from_pretrained(folder)
    assert preprocessing_of(processor) == preprocessing_of(AutoImageProcessor.from_pretrained(source))
    original = AutoModelForImageClassification.from_pretrained(source)
    name = "vit.layers.0.attention.q_proj.weight"
    assert not torch.equal(tuned.state_dict()[name], original.state_dict()[name]), "the backbone was trained"
    summary = json.loads((out / "visual_detector.train.json").read_text())
    assert summary["config"]["backbone"] == f"hf:{source}" and summary["best_epoch"] in (1, 2)
    assert not (out / "visual_detector.safetensors").exists(), "a hub model is saved as a hub model only"

    repository = tmp_path / "repository"
    shutil.copytree(MODEL_REPOSITORY / "visual_detector", repository / "visual_detector")
    export = _run(
        "-m", "deepfake_export", "--repository", str(repository), "--manifest", str(tmp_path / "manifest.json"),
        "--only", "visual_detector", "--visual-model", str(folder),
    )  # fmt: skip
    assert export.returncode == 0, export.stderr
    parameters = {
        k: v.string_value for k, v in parse_pbtxt(repository / "visual_detector" / "config.pbtxt").parameters.items()
    }
    assert parameters["weights"] == "pretrained" and parameters["labels"] == "real,fake"
    assert parameters["preprocess_mean"] == "0.5,0.5,0.5"  # the ViT processor's, not ImageNet's


def test_a_hub_backbone_for_another_detector_or_a_missing_source_is_refused_in_one_line(tmp_path) -> None:
    run = _run(
        "-m", "deepfake_train", "audio", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--backbone", "hf:x"
    )
    assert run.returncode == 2 and "only the visual detector can be a hub classifier" in run.stderr
    data = tmp_path / "faces"
    face_set.build_images(data, n=2, n_val=2)
    missing = tmp_path / "no-such-model"
    run = _run(
        "-m",
        "deepfake_train",
        "visual",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "o"),
        "--backbone",
        f"hf:{missing}",
    )
    assert run.returncode == 2 and f"--backbone hf: {missing}: no such folder" in run.stderr
    assert "Traceback" not in run.stderr

"""The forensic, visual and temporal training paths, end to end, on faces made in the test.

The data is :mod:`deepfake_train.face_set`: a real photo with one face, varied
per sample, and each sample again with a synthetic face manipulation (images:
a blurred, colour-shifted, recompressed face blended in; videos: that face on
every other frame). Each detector is trained by the real command on the CPU,
its samples made by the serving code (MTCNN's crops, the forensic features, the
sampled frames), and its checkpoint loaded into the exporter's module.

Sized for CI (2 cores): a few dozen images, a few clips, a few epochs. Each
detector must beat chance on the validation split. The visual detector
(EfficientNet-B4 from random weights, ``--backbone-weights none``: no download
here) learns in so few steps only because training re-estimates BatchNorm's
statistics before validating (``--precise-bn-batches``): its running averages
(momentum 0.01) would otherwise still be about their initial values, the
backbone's features collapse in evaluation mode and every crop gets the same
score (AUC exactly 0.5, as it was before that re-estimation).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from deepfake_train import face_set
from deepfake_train import samples as S
from deepfake_train.loop import DETECTORS

from deepfake_client.datasets import load_dataset
from deepfake_export.models import BUILDERS
from deepfake_export.weights import read_state_dict
from deepfake_serving.image_pipeline import FaceDetector, FaceSettings
from deepfake_serving.testing.triton import MODEL_REPOSITORY, ROOT
from deepfake_serving.video import sample_video

FACE_MODELS = MODEL_REPOSITORY / "face_detector" / "1"
#: Per detector: the set's size and the training flags (CI's budget, measured on the 2-core machine).
#: Forensic: a small MLP on 12 features, cheap per epoch; the cost is the features (~0.15 s an image).
FORENSIC = ["--epochs", "8", "--lr", "1e-3", "--batch-size", "8"]
#: Visual: EfficientNet-B4 trains at ~2-3 crops/s on 2 cores: 8 crops, 2 epochs.
VISUAL = ["--epochs", "2", "--lr", "1e-3", "--batch-size", "4", "--backbone-weights", "none"]
#: Temporal: the 3D CNN trains at ~1 clip/s. At lr 1e-3 its BatchNorm statistics trail the weights so
#: far after 18 steps that evaluation saturates (every clip "real"); 3e-4 learns and evaluates sanely.
TEMPORAL = ["--epochs", "3", "--lr", "3e-4", "--batch-size", "2"]
CHANCE_LOSS = math.log(2)


def _train(detector: str, data: Path, out: Path, *flags: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "deepfake_train", detector, "--data", str(data), "--out", str(out)]
    return subprocess.run([*command, *flags, "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=600)


def _needs_face_models() -> None:
    if not (FACE_MODELS / "pnet.onnx").is_file():
        pytest.skip(f"MTCNN's ONNX files are not in {FACE_MODELS}: make export")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faces")
    assert face_set.build_images(root, n=12, n_val=6) == {
        "train": {"real": 12, "fake": 12},
        "val": {"real": 6, "fake": 6},
    }
    return root


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    assert face_set.build_videos(root, n=6, n_val=4) == {"train": {"real": 6, "fake": 6}, "val": {"real": 4, "fake": 4}}
    return root


def _trained(out: Path, detector: str, counts: dict, epochs: int) -> tuple[dict, list[dict], dict]:
    """What every run must leave: a checkpoint in the exporter's names, its metrics, its record."""
    name = DETECTORS[detector]
    state = read_state_dict(out / f"{name}.safetensors")
    BUILDERS[name]().load_state_dict(state, strict=True)  # the exporter's names, nothing more or less
    rows = list(csv.DictReader((out / f"{name}.metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == list(range(1, epochs + 1))
    for row in rows:
        assert math.isfinite(float(row["train_loss"])) and math.isfinite(float(row["val_loss"])), row
        assert float(row["samples_per_s"]) > 0, row
    summary = json.loads((out / f"{name}.train.json").read_text())
    assert summary["dataset"] == counts
    assert summary["refused"] == []
    assert summary["best"]["val_file_auc"] == max(float(r["val_file_auc"]) for r in rows)
    return state, rows, summary


def test_the_sets_are_deterministic_and_the_served_detector_finds_their_faces(tmp_path: Path) -> None:
    def digest(root: Path) -> dict[str, str]:
        return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.*")}

    for build in (face_set.build_images, face_set.build_videos):
        a, b, c = tmp_path / f"{build.__name__}-a", tmp_path / f"{build.__name__}-b", tmp_path / f"{build.__name__}-c"
        build(a, n=2, n_val=2)
        build(b, n=2, n_val=2)
        build(c, n=2, n_val=2, seed=1)
        assert digest(a) == digest(b) and len(digest(a)) == 8
        assert digest(a) != digest(c)
    _needs_face_models()
    faces = FaceDetector(FACE_MODELS, FaceSettings(), threads=2)
    root = tmp_path / "some"
    face_set.build_images(root / "images", n=8, n_val=2)
    face_set.build_videos(root / "videos", n=4, n_val=2)
    pictures = sorted((root / "images").rglob("*.*"))
    found = [faces.detect(p.read_bytes()).face_found for p in pictures]
    clips = sorted((root / "videos").rglob("*.mp4"))
    frames = [sample_video(p.read_bytes(), decode_audio_track=False).frames_full for p in clips]
    found_in_frames = [faces.detect_rgb(f[k], input_name="VIDEO").face_found for f in frames for k in (0, 1)]
    # Real and fake alike: a detector must not be able to tell them apart by whether a face was found.
    assert sum(found) >= 0.9 * len(found) and sum(found_in_frames) >= 0.9 * len(found_in_frames)
    # The fakes differ from their real twins on every other frame only (the flicker), and in the face.
    real = sample_video((root / "videos/train/real/astronaut-000.mp4").read_bytes(), decode_audio_track=False)
    fake = sample_video((root / "videos/train/fake/astronaut-000-flicker.mp4").read_bytes(), decode_audio_track=False)
    change = np.abs(real.frames.astype(np.int16) - fake.frames).mean(axis=(1, 2, 3))
    assert change[1::2].min() > 4 * change[0::2].max(), change


def test_the_forensic_classifier_learns_the_manipulation_with_its_training_features_scaler(images, tmp_path) -> None:
    _needs_face_models()
    out = tmp_path / "forensic"
    run = _train("forensic", images, out, *FORENSIC)
    assert run.returncode == 0, run.stderr[-3000:]
    counts = {"train": {"real": 12, "fake": 12}, "val": {"real": 6, "fake": 6}}
    state, rows, summary = _trained(out, "forensic", counts, 8)
    assert summary["best"]["val_file_auc"] > 0.5, "training must beat chance on the validation split"
    assert float(rows[-1]["val_loss"]) < CHANCE_LOSS, rows[-1]
    # The scaler is the training features' mean and (population) standard deviation, recomputed
    # here from the training files through the serving code, without the run's cache.
    extractor = S.Extractor("forensic", FACE_MODELS)
    train = [item for item in load_dataset(images, "folder") if item.split == "train"]
    features = np.concatenate([extractor(item.path.read_bytes(), item.media) for item in train]).astype(np.float64)
    assert len(features) == summary["samples"]["train"] == 24  # one face per image
    std = features.std(axis=0)
    np.testing.assert_allclose(state["scaler.mean"].numpy(), features.mean(axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(state["scaler.scale"].numpy(), np.where(std > 0, std, 1.0), rtol=1e-5, atol=1e-7)


def test_the_visual_detector_trains_on_the_served_crops(tmp_path: Path) -> None:
    _needs_face_models()
    # A handful of the same images (a sample depends on its seed, split and index only: these are
    # the first of the forensic test's): EfficientNet-B4 is the expensive one on a CPU.
    data, out = tmp_path / "faces", tmp_path / "visual"
    counts = face_set.build_images(data, n=4, n_val=2)
    run = _train("visual", data, out, *VISUAL)
    assert run.returncode == 0, run.stderr[-3000:]
    state, rows, summary = _trained(out, "visual", counts, 2)
    assert summary["samples"] == {"train": 8, "val": 4}  # one MTCNN crop per image
    assert summary["config"]["backbone_weights"] == "none"
    # The BatchNorm statistics describe these crops, not their initial values.
    assert not torch.equal(state["backbone._bn0.running_mean"], torch.zeros_like(state["backbone._bn0.running_mean"]))
    assert summary["best"]["val_file_auc"] > 0.5, "training must beat chance on the validation split"


def test_the_temporal_analyzer_learns_the_flicker(videos: Path, tmp_path: Path) -> None:
    out = tmp_path / "temporal"
    run = _train("temporal", videos, out, *TEMPORAL)
    assert run.returncode == 0, run.stderr[-3000:]
    counts = {"train": {"real": 6, "fake": 6}, "val": {"real": 4, "fake": 4}}
    _, rows, summary = _trained(out, "temporal", counts, 3)
    assert summary["samples"] == {"train": 12, "val": 8}  # one 16-frame clip per video
    assert summary["best"]["val_file_auc"] > 0.5, "training must beat chance on the validation split"
    assert float(rows[-1]["val_loss"]) < CHANCE_LOSS, rows[-1]

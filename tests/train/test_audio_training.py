"""Train -> export -> serve -> evaluate, for real, on real recordings against a real synthesizer.

The dataset is Debian's read speech (pocketsphinx-testdata, alsa-utils) and
espeak-ng's synthetic speech (``deepfake_train.speech_set``, installed by
``make speech-set-deps``). The audio detector is trained by the real command
on the CPU, exported by the real exporter from the folder training wrote,
served by the real Triton, and judged by ``deepfake-eval`` through the server
on the held-out test split.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import tritonclient.grpc as grpcclient
from deepfake_train import speech_set

from deepfake_client import DeepfakeClient
from deepfake_client.metrics import summarize, threshold_for
from deepfake_contract import AUDIO_PREPROCESS, DETECT_AUDIO
from deepfake_export.models import AudioDetector
from deepfake_export.weights import read_state_dict
from deepfake_serving.model_configs import parse_pbtxt
from deepfake_serving.testing.triton import MODEL_REPOSITORY, ROOT, running_triton

#: A few epochs at a higher rate than the 50-epoch recipe: enough for this set, inside CI's budget.
RECIPE = ["--lr", "1e-3", "--batch-size", "8", "--no-progress"]
QUICK = ["--epochs", "4", *RECIPE]
AUDIO_MODELS = ("audio_preprocess", "audio_detector", "audio_fusion", "detect_audio")


def _run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def _train(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return _run(sys.executable, "-m", "deepfake_train", "audio", "--data", str(data), "--out", str(out), *extra)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = speech_set.missing_tools()
    if missing:
        pytest.skip(f"needs the Debian packages {missing}: make speech-set-deps")
    root = tmp_path_factory.mktemp("speech")
    counts = speech_set.build(root)
    assert counts == {
        "test": {"real": 6, "fake": 6},
        "val": {"real": 4, "fake": 4},
        "train": {"real": 12, "fake": 12},
    }
    return root


@pytest.fixture(scope="module")
def trained(speech: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("checkpoints")
    run = _train(speech, out, *QUICK)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def test_training_writes_what_the_exporter_reads_and_records_how(trained: Path) -> None:
    state = read_state_dict(trained / "audio_detector.safetensors")
    AudioDetector().load_state_dict(state, strict=True)  # the exporter's names, nothing more or less
    rows = list(csv.DictReader((trained / "audio_detector.metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert {"train_loss", "val_loss", "val_auc", "val_file_auc", "val_accuracy", "lr", "samples_per_s"} <= set(rows[0])
    assert (trained / "audio_detector.metrics.png").stat().st_size > 1000
    summary = json.loads((trained / "audio_detector.train.json").read_text())
    # The configuration used is saved beside the checkpoint: the recipe's values, with the overrides given.
    assert summary["config"]["lr"] == 1e-3 and summary["config"]["weight_decay"] == 0.01
    assert summary["config"]["label_smoothing"] == 0.1 and summary["config"]["scheduler"] == "cosine"
    assert summary["dataset"]["train"] == {"real": 12, "fake": 12}
    assert summary["best"]["val_file_auc"] == max(float(r["val_file_auc"]) for r in rows)
    assert summary["best"]["val_file_auc"] > 0.5, "training must beat chance on the validation split"


def test_resuming_continues_exactly_as_an_uninterrupted_run(speech: Path, trained: Path, tmp_path: Path) -> None:
    cache = ["--cache", str(trained / "cache")]  # same samples, not decoded again
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert _train(speech, whole, "--epochs", "3", *RECIPE, *cache).returncode == 0
    assert _train(speech, split, "--epochs", "3", "--stop-after", "2", *RECIPE, *cache).returncode == 0
    resumed = _train(speech, split, "--epochs", "3", *RECIPE, *cache, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed after epoch 2" in resumed.stderr
    a = torch.load(whole / "audio_detector.last.pt", weights_only=True)["model"]
    b = torch.load(split / "audio_detector.last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_processes_under_torchrun_train_one_model_with_ddp(speech: Path, trained: Path, tmp_path: Path) -> None:
    """PyTorch DDP on the CPU (gloo): what several GPUs run, with one process per device."""
    torchrun = str(Path(sys.executable).parent / "torchrun")
    out = tmp_path / "ddp"
    run = _run(
        torchrun,
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "deepfake_train",
        "audio",
        "--data",
        str(speech),
        "--out",
        str(out),
        "--epochs",
        "1",
        *RECIPE,
        "--cache",
        str(trained / "cache"),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((out / "audio_detector.train.json").read_text())
    assert summary["world_size"] == 2 and summary["device"] == "cpu"
    AudioDetector().load_state_dict(read_state_dict(out / "audio_detector.safetensors"), strict=True)
    assert len(list(csv.DictReader((out / "audio_detector.metrics.csv").open()))) == 1


def test_a_resume_with_other_settings_or_a_dataset_off_its_layout_is_refused(speech, trained, tmp_path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(trained, copy, ignore=shutil.ignore_patterns("cache"))
    run = _train(speech, copy, *QUICK, "--lr", "1e-2", "--resume", "--cache", str(trained / "cache"))
    assert run.returncode == 2
    assert "--resume:" in run.stderr and "lr 0.001 (now 0.01)" in run.stderr and "Traceback" not in run.stderr
    (tmp_path / "empty").mkdir()
    run = _train(tmp_path / "empty", tmp_path / "out", *QUICK)
    assert run.returncode == 2 and "expected DIR/real and DIR/fake" in run.stderr and "Traceback" not in run.stderr


def _eval(url: str, speech: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    command = str(Path(sys.executable).parent / "deepfake-eval")
    return _run(command, str(speech), "--url", url, "--out", str(out), "--no-progress", *extra)


def _records(report: Path) -> list[dict]:
    return [json.loads(line) for line in (report / "scores.jsonl").read_text().splitlines()]


@pytest.mark.server
def test_the_served_model_is_the_trained_one_and_detects_held_out_speech(speech, trained, tmp_path) -> None:
    repository = tmp_path / "repository"
    repository.mkdir()
    for name in AUDIO_MODELS:
        if name == "detect_audio":
            (repository / name).symlink_to(MODEL_REPOSITORY / name, target_is_directory=True)
        else:  # the export writes two of them, the calibration a third
            shutil.copytree(MODEL_REPOSITORY / name, repository / name)
    export = _run(
        sys.executable,
        "-m",
        "deepfake_export",
        "--repository",
        str(repository),
        "--manifest",
        str(tmp_path / "manifest.json"),
        "--checkpoints",
        str(trained),
        "--only",
        "audio_detector",
    )
    assert export.returncode == 0, export.stderr

    model = AudioDetector().eval()
    model.load_state_dict(read_state_dict(trained / "audio_detector.safetensors"))
    clip = sorted((speech / "test" / "real").iterdir())[0].read_bytes()
    validation = tmp_path / "validation"
    with running_triton(tmp_path / "triton", repository=repository) as triton:
        client = grpcclient.InferenceServerClient(triton.grpc_url)
        audio = grpcclient.InferInput("AUDIO", [1], "BYTES")
        audio.set_data_from_numpy(np.array([clip], dtype=object))
        windows = client.infer(AUDIO_PREPROCESS.name, [audio]).as_numpy("AUDIO_INPUT")
        answer = client.infer(DETECT_AUDIO.name, [audio])
        calibration = _eval(
            triton.grpc_url, speech, validation, "--split", "val", "--calibrate", "eer", "--repository", str(repository)
        )

    # Round trip: the served probabilities are PyTorch's on the same windows.
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(np.array(windows))), 1)[:, 1].numpy()
    np.testing.assert_allclose(answer.as_numpy("WINDOW_FAKE_PROB"), expected, atol=1e-4)
    assert answer.as_numpy("DEMO_WEIGHTS").tolist() == [False]
    assert answer.as_numpy("THRESHOLD").tolist() == [0.5], "not calibrated yet"

    # The threshold chosen on the validation split, recomputed here, is what the config now says.
    assert calibration.returncode == 0, calibration.stderr
    val = _records(validation)
    chosen = threshold_for([r["label"] for r in val], [r["scores"]["fused"] for r in val], "eer")
    assert json.loads((validation / "calibration.json").read_text())["threshold"] == chosen
    parameters = parse_pbtxt(repository / "audio_fusion" / "config.pbtxt").parameters
    assert float(parameters["threshold"].string_value) == chosen
    assert parameters["threshold_source"].string_value.startswith(f"eer on {speech} (val: 4 real, 4 fake; AUC")

    report = tmp_path / "report"
    with running_triton(tmp_path / "triton-calibrated", repository=repository) as triton:
        evaluation = _eval(triton.grpc_url, speech, report)
        with DeepfakeClient(triton.grpc_url) as client:
            result = client.detect_audio(clip)
    served = float(np.float32(chosen))
    assert result.threshold == served and result.is_fake() == (result.fake_prob >= served)

    assert evaluation.returncode == 0, evaluation.stderr
    headline = json.loads(evaluation.stdout.strip().splitlines()[-1])
    assert headline["n_real"] == 6 and headline["n_fake"] == 6
    assert headline["auc"] >= 0.9, headline
    assert headline["threshold"] == served, "accuracy is reported at the server's threshold"
    # The report's figures, recomputed here from the per-file scores it wrote.
    records = _records(report)
    assert len(records) == 12 and all(r["status"] == "ok" and r["split"] == "test" for r in records)
    figures = summarize([r["label"] for r in records], [r["scores"]["fused"] for r in records], served).as_dict()
    written = json.loads((report / "report.json").read_text())["file_level"]["fused"]
    assert {k: written[k] for k in figures} == pytest.approx(figures)
    assert written["accuracy_at_0.5"] == pytest.approx(
        summarize([r["label"] for r in records], [r["scores"]["fused"] for r in records], 0.5).accuracy
    )
    assert headline == pytest.approx({k: figures[k] for k in headline})
    for name in ("report.md", "roc.png", "histogram.png"):
        assert (report / name).stat().st_size > 100, name

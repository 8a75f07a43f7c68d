"""Loading trained checkpoints: formats, strictness and the demo marking."""

from __future__ import annotations

import logging
import pickle

import pytest
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from deepfake_export.__main__ import main as export_main  # noqa: E402
from deepfake_export.models import ForensicClassifier  # noqa: E402
from deepfake_export.weights import CheckpointError, load_weights  # noqa: E402
from deepfake_serving.model_configs import parse_pbtxt  # noqa: E402


def trained_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    module = ForensicClassifier()
    module.scaler.mean.fill_(3.0)
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_a_safetensors_checkpoint_is_loaded_and_recorded_as_trained(tmp_path):
    save_file(trained_state(), tmp_path / "forensic_classifier.safetensors")
    module = ForensicClassifier()
    source = load_weights(module, "forensic_classifier", tmp_path)
    assert source.kind == "trained" and not source.is_demo
    assert torch.equal(module.scaler.mean, torch.full((12,), 3.0))


def test_a_pt_checkpoint_is_loaded_with_weights_only(tmp_path):
    torch.save(trained_state(), tmp_path / "forensic_classifier.pt")
    source = load_weights(ForensicClassifier(), "forensic_classifier", tmp_path)
    assert source.kind == "trained"


class _Payload:
    def __reduce__(self):
        return (print, ("unpickled code ran",))


def test_a_pickle_with_code_is_refused(tmp_path):
    with (tmp_path / "forensic_classifier.pt").open("wb") as handle:
        pickle.dump({"mlp.0.weight": _Payload()}, handle)
    with pytest.raises(pickle.UnpicklingError):
        load_weights(ForensicClassifier(), "forensic_classifier", tmp_path)


def test_missing_and_mismatched_keys_are_named(tmp_path):
    state = trained_state()
    del state["mlp.0.bias"]
    state["mlp.8.weight"] = torch.zeros(3, 32)
    state["extra.weight"] = torch.zeros(1)
    save_file(state, tmp_path / "forensic_classifier.safetensors")
    with pytest.raises(CheckpointError) as caught:
        load_weights(ForensicClassifier(), "forensic_classifier", tmp_path)
    message = str(caught.value)
    assert "missing keys: mlp.0.bias" in message
    assert "unexpected keys: extra.weight" in message
    assert "mlp.8.weight (checkpoint (3, 32), model (2, 32))" in message


def test_a_missing_checkpoint_file_is_named(tmp_path):
    with pytest.raises(
        CheckpointError, match=r"no checkpoint for forensic_classifier in .*forensic_classifier.safetensors"
    ):
        load_weights(ForensicClassifier(), "forensic_classifier", tmp_path)


def test_export_with_checkpoints_marks_the_config_trained(tmp_path):
    checkpoints = tmp_path / "ckpt"
    checkpoints.mkdir()
    save_file(trained_state(), checkpoints / "forensic_classifier.safetensors")
    repository = tmp_path / "repo"
    code = export_main(
        [
            "--repository",
            str(repository),
            "--checkpoints",
            str(checkpoints),
            "--manifest",
            str(tmp_path / "manifest.json"),
            "--only",
            "forensic_classifier",
        ]
    )
    assert code == 0
    config = parse_pbtxt(repository / "forensic_classifier" / "config.pbtxt")
    assert config.parameters["weights"].string_value == "trained"
    assert len(config.parameters["weights_sha256"].string_value) == 64
    # The other detectors were not exported here: --only leaves them as they were (here: absent).
    assert not (repository / "visual_detector").exists()


def test_a_folder_without_any_detector_checkpoint_is_refused_naming_the_files(tmp_path, caplog):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "visual.safetensors").write_bytes(b"not named after a model")
    code = export_main(
        [
            "--repository",
            str(tmp_path / "repo"),
            "--checkpoints",
            str(tmp_path / "ckpt"),
            "--manifest",
            str(tmp_path / "manifest.json"),
            "--only",
            "audio_detector",
        ]
    )
    assert code == 2
    assert "no detector checkpoint in" in caplog.text and "audio_detector.safetensors" in caplog.text
    assert not (tmp_path / "repo" / "audio_detector").exists()


def test_a_folder_of_some_detectors_leaves_the_others_as_they_are_served(tmp_path, caplog):
    """One modality trained at a time: the forensic checkpoint is served, the audio detector keeps its file."""
    caplog.set_level(logging.INFO, logger="deepfake_export")
    repository = tmp_path / "repo"
    common = ["--repository", str(repository), "--manifest", str(tmp_path / "manifest.json")]
    assert export_main([*common, "--only", "audio_detector", "forensic_classifier"]) == 0
    audio = (repository / "audio_detector" / "1" / "model.onnx").read_bytes()
    checkpoints = tmp_path / "ckpt"
    checkpoints.mkdir()
    save_file(trained_state(), checkpoints / "forensic_classifier.safetensors")
    code = export_main([*common, "--checkpoints", str(checkpoints), "--only", "audio_detector", "forensic_classifier"])
    assert code == 0
    assert f"audio_detector: no checkpoint in {checkpoints}; keeps the weights it serves" in caplog.text
    assert (repository / "audio_detector" / "1" / "model.onnx").read_bytes() == audio
    weights = {
        name: parse_pbtxt(repository / name / "config.pbtxt").parameters["weights"].string_value
        for name in ("audio_detector", "forensic_classifier")
    }
    assert weights == {"audio_detector": "demo", "forensic_classifier": "trained"}


def test_an_export_that_fails_its_parity_check_leaves_the_served_model_alone(tmp_path, caplog, monkeypatch):
    from deepfake_export import onnx_export

    repository = tmp_path / "repo"
    common = ["--repository", str(repository), "--manifest", str(tmp_path / "manifest.json")]
    assert export_main([*common, "--only", "forensic_classifier"]) == 0
    served = repository / "forensic_classifier" / "1" / "model.onnx"
    before = served.read_bytes()
    checkpoints = tmp_path / "ckpt"
    checkpoints.mkdir()
    save_file(trained_state(), checkpoints / "forensic_classifier.safetensors")
    monkeypatch.setattr(onnx_export, "TOLERANCE", -1.0)  # every export now fails its check
    code = export_main([*common, "--checkpoints", str(checkpoints), "--force", "--only", "forensic_classifier"])
    assert code == 2
    assert "forensic_classifier: ONNX Runtime differs from PyTorch" in caplog.text
    assert "the served model was left as it was" in caplog.text
    assert served.read_bytes() == before
    assert not served.with_suffix(".onnx.tmp").exists()
    config = parse_pbtxt(repository / "forensic_classifier" / "config.pbtxt")
    assert config.parameters["weights"].string_value == "demo"  # the failed trained export is not claimed


def test_check_accepts_the_export_and_names_what_went_stale_and_how_to_rebuild_it(tmp_path, caplog, monkeypatch):
    """``--check`` (what ``make serve`` runs on an existing export) exports nothing: it passes on
    the export as written and fails, naming the network and the sources, once the code, the
    file or the export itself is not what the manifest records."""
    from deepfake_export import __main__ as exporter

    checkpoints = tmp_path / "ckpt"
    checkpoints.mkdir()
    save_file(trained_state(), checkpoints / "forensic_classifier.safetensors")
    repository = tmp_path / "repo"
    common = ["--repository", str(repository), "--manifest", str(tmp_path / "manifest.json")]
    check = [*common, "--check", "--only", "forensic_classifier"]
    assert export_main([*common, "--checkpoints", str(checkpoints), "--only", "forensic_classifier"]) == 0
    served = repository / "forensic_classifier" / "1" / "model.onnx"
    before = served.read_bytes()
    assert export_main(check) == 0

    monkeypatch.setattr(exporter, "code_fingerprint", lambda: "other code")
    caplog.clear()
    assert export_main(check) == 2
    assert "forensic_classifier: exported by other code" in caplog.text
    assert f"re-export with the sources of the last export: make export CHECKPOINTS={checkpoints}" in caplog.text
    assert served.read_bytes() == before  # nothing exported
    monkeypatch.undo()

    served.write_bytes(before + b"\0")
    caplog.clear()
    assert export_main(check) == 2 and f"forensic_classifier: {served} is not the file the export wrote" in caplog.text
    served.unlink()
    caplog.clear()
    assert export_main(check) == 2 and "forensic_classifier: not exported" in caplog.text
    with pytest.raises(SystemExit):
        export_main([*check, "--checkpoints", str(checkpoints)])  # --check takes no sources

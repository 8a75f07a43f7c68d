"""DEMO_WEIGHTS comes from the configs' ``weights`` parameter: only evidence of training clears it."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepfake_serving.provenance import any_demo, weights_kind


def _config(repository: Path, model: str, text: str) -> None:
    (repository / model).mkdir(parents=True)
    (repository / model / "config.pbtxt").write_text(text)


def _weights(kind: str) -> str:
    return f'name: "m"\nparameters [ {{ key: "weights", value: {{ string_value: "{kind}" }} }} ]\n'


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    _config(tmp_path, "trained_a", _weights("trained"))
    _config(tmp_path, "trained_b", _weights("trained"))
    _config(tmp_path, "demo", _weights("demo"))
    _config(tmp_path, "silent", 'name: "silent"\n')
    _config(tmp_path, "broken", "name: {{{ not a config")
    return tmp_path


def test_the_kind_is_read_from_the_config(repository: Path):
    assert weights_kind(repository, "trained_a") == "trained"
    assert weights_kind(repository, "demo") == "demo"


@pytest.mark.parametrize("model", ["silent", "broken", "missing"])
def test_a_config_without_evidence_counts_as_unknown(repository: Path, model: str):
    assert weights_kind(repository, model) == "unknown"


def test_demo_is_false_only_when_every_model_is_trained(repository: Path):
    assert any_demo(repository, ["trained_a", "trained_b"]) is False
    for other in ("demo", "silent", "broken", "missing"):
        assert any_demo(repository, ["trained_a", other, "trained_b"]) is True, other

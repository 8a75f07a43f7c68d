"""What ``make serve`` and ``make train`` run before they start: the export only when nothing is
exported yet or a source is named, else the exporter's ``--check`` of what is served (so a
trained, pretrained or INT8 export is not silently replaced by demo weights)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")


def dry_run(*arguments: str) -> str:
    """The commands ``make`` would run (``-n``), one per line."""
    run = subprocess.run(["make", "-n", "-C", str(ROOT), *arguments], capture_output=True, text=True, check=True)
    return run.stdout


def checks(commands: str) -> bool:
    """Whether the commands run the exporter's ``--check`` (not ``--checkpoints``)."""
    return re.search(r"--check$", commands, re.MULTILINE) is not None


@pytest.fixture
def manifest(tmp_path) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text("{}\n")
    return path


def test_serve_exports_first_when_nothing_is_exported(tmp_path):
    commands = dry_run("serve", f"MANIFEST={tmp_path / 'missing.json'}")
    assert "-m deepfake_export" in commands and not checks(commands)
    assert commands.index("-m deepfake_export") < commands.index("-m deepfake_serving.server")


def test_serve_checks_an_existing_export_instead_of_replacing_it(manifest):
    commands = dry_run("serve", f"MANIFEST={manifest}")
    assert f"-m deepfake_export --repository model_repository --manifest {manifest} --check" in commands
    assert commands.count("-m deepfake_export") == 1
    assert checks(commands) and commands.index("--check") < commands.index("-m deepfake_serving.server")


@pytest.mark.parametrize(
    ("variable", "flag"),
    [
        ("CHECKPOINTS=ckpt", "--checkpoints ckpt"),
        ("VISUAL_MODEL=owner/model", "--visual-model owner/model"),
        ("AUDIO_MODEL=/models/wavlm", "--audio-model /models/wavlm"),
        ("QUANTIZE=int8", "--quantize int8"),
    ],
)
def test_a_source_named_to_serve_is_exported_first(manifest, variable, flag):
    commands = dry_run("serve", variable, f"MANIFEST={manifest}")
    assert flag in commands and not checks(commands)


def test_train_checks_an_existing_export_too(manifest):
    commands = dry_run("train", "DETECTOR=audio", "DATA=/data", f"MANIFEST={manifest}")
    assert checks(commands) and "-m deepfake_train audio --data /data" in commands

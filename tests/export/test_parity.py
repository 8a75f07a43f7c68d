"""Every exported network against PyTorch, from the files ``make export`` wrote.

The PyTorch side is rebuilt from what the export manifest says the ONNX file
was made of (seeded demo weights, a checkpoint, or facenet-pytorch's
weights), so this checks the artifacts that Triton serves, not a fresh export.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch  # noqa: E402

from deepfake_contract import by_name  # noqa: E402
from deepfake_export.__main__ import onnx_path  # noqa: E402
from deepfake_export.models import BUILDERS  # noqa: E402
from deepfake_export.onnx_export import PARITY_BATCHES, TOLERANCE, exportable, parity, sample_inputs  # noqa: E402
from deepfake_export.weights import load_weights  # noqa: E402
from deepfake_serving.testing.triton import MODEL_REPOSITORY, ROOT  # noqa: E402

MANIFEST = ROOT / "build" / "export" / "manifest.json"


def rebuild(name: str) -> torch.nn.Module:
    entry = json.loads(MANIFEST.read_text())[name]
    module = BUILDERS[name]().eval()
    checkpoints = Path(entry["weights_path"]).parent if entry["weights"] == "trained" else None
    source = load_weights(module, name, checkpoints)
    assert source.sha256 == entry["weights_sha256"], f"{name}: weights changed since the export"
    return module


@pytest.mark.parametrize("name", list(BUILDERS))
def test_onnx_matches_pytorch_at_batch_1_and_8(name):
    module = rebuild(name)
    path = onnx_path(MODEL_REPOSITORY, name)
    assert parity(module, by_name(name), path) <= TOLERANCE
    assert PARITY_BATCHES == (1, 8)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_the_parity_inputs_give_distinct_outputs(name):
    """A network whose output ignores its input would pass any parity check."""
    spec = by_name(name)
    net = exportable(rebuild(name), spec)
    with torch.no_grad():
        out = net(torch.from_numpy(sample_inputs(spec, 8, seed=8)))[0].numpy()
    assert np.ptp(out.reshape(len(out), -1), axis=0).max() > 1e-4


def test_exported_detectors_carry_their_weights_provenance():
    import onnx

    for name in ("visual_detector", "forensic_classifier", "audio_detector", "temporal_analyzer"):
        model = onnx.load(onnx_path(MODEL_REPOSITORY, name), load_external_data=False)
        meta = {p.key: p.value for p in model.metadata_props}
        assert meta["deepfake.network"] == name
        assert meta["deepfake.weights"] in {"demo", "trained"}

"""Export one network to ONNX and check it against PyTorch.

The check is part of every export, not an afterthought: a graph whose
probabilities differ from PyTorch's by more than :data:`TOLERANCE` at batch 1
or 8 is not written.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from deepfake_contract import ModelSpec
from deepfake_export.models import WithProbabilities
from deepfake_export.weights import WeightsSource

OPSET = 17
TOLERANCE = 1e-4
PARITY_BATCHES = (1, 8)
# P-Net is fully convolutional; the check feeds it one pyramid-sized image.
PNET_CHECK_HW = (96, 128)


class ParityError(AssertionError):
    """ONNX Runtime and PyTorch disagree on an exported network."""


def exportable(module: nn.Module, spec: ModelSpec) -> nn.Module:
    """The module as exported: detectors get a softmax, MTCNN is as is."""
    if spec.outputs[0].name == "output":
        return WithProbabilities(module)
    return module


def sample_inputs(spec: ModelSpec, batch: int, seed: int = 0) -> np.ndarray:
    """Random inputs of the network's shape (standard normal, a fixed seed)."""
    dims = tuple(PNET_CHECK_HW[i - 1] if d == -1 else d for i, d in enumerate(spec.inputs[0].dims))
    return np.random.default_rng(seed).standard_normal((batch, *dims), dtype=np.float32)


def export_onnx(module: nn.Module, spec: ModelSpec, path: Path, source: WeightsSource) -> Path:
    """Write ``module`` (already in eval mode with its weights) next to ``path``, as ``<name>.onnx.tmp``.

    Returns the temporary file. :func:`publish` moves it onto ``path`` once it has
    passed :func:`check_parity`, so a model that fails the check is never served.
    """
    net = exportable(module, spec).eval()
    example = torch.from_numpy(sample_inputs(spec, 2))
    dynamic_axes: dict[str, dict[int, str]] = {}
    for tensor in spec.inputs + spec.outputs:
        axes = {0: "batch"}
        axes.update({i + 1: f"{tensor.name}_dim{i + 1}" for i, d in enumerate(tensor.dims) if d == -1})
        dynamic_axes[tensor.name] = axes
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo, whose
        # graphs for these models are larger and slower to build on CPU.
        warnings.simplefilter("ignore", DeprecationWarning)
        # transformers' attention code branches on shapes; the branch taken holds for every batch size.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            net,
            (example,),
            buffer,
            input_names=[t.name for t in spec.inputs],
            output_names=[t.name for t in spec.outputs],
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    model.doc_string = spec.description
    metadata = {
        "deepfake.network": spec.name,
        "deepfake.weights": source.kind,
        "deepfake.weights_sha256": source.sha256,
    }
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".onnx.tmp")
    onnx.save(model, tmp)
    return tmp


def publish(tmp: Path, path: Path) -> None:
    """Replace the served ``path`` with the checked ``tmp`` (atomic: a half-written model is never served)."""
    tmp.replace(path)


def parity(module: nn.Module, spec: ModelSpec, path: Path) -> float:
    """Largest absolute difference between PyTorch and ONNX Runtime outputs
    (probabilities for detectors, every output for MTCNN) at batch 1 and 8."""
    net = exportable(module, spec).eval()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    # Probabilities for detectors (what the pipelines read); every output for
    # MTCNN, whose regressions and scores are all used by the cascade.
    compared = [0] if spec.outputs[0].name == "output" else list(range(len(spec.outputs)))
    worst = 0.0
    for batch in PARITY_BATCHES:
        x = sample_inputs(spec, batch, seed=batch)
        with torch.no_grad():
            expected = net(torch.from_numpy(x))
        got = session.run(None, {spec.inputs[0].name: x})
        for index in compared:
            worst = max(worst, float(np.max(np.abs(expected[index].numpy() - got[index]))))
    return worst


def check_parity(module: nn.Module, spec: ModelSpec, path: Path) -> float:
    """Return :func:`parity`'s worst difference, or raise :class:`ParityError` above ``TOLERANCE``."""
    worst = parity(module, spec, path)
    if not worst <= TOLERANCE:
        raise ParityError(f"{spec.name}: ONNX Runtime differs from PyTorch by {worst:.3g} (> {TOLERANCE})")
    return worst

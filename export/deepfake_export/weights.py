"""Where each network's weights come from: a checkpoint, facenet-pytorch, or a seed.

Checkpoints are plain state dicts, read without executing code: ``.safetensors``,
or ``.pt`` through ``torch.load(weights_only=True)``. Demo weights are built
from a fixed seed so every export of the same code gives the same network,
and they are marked as such in every artifact the export writes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import deepfake_contract as contract
from deepfake_export.models import FeatureScaler

MTCNN_STAGES = tuple(stage.name for stage in contract.MTCNN_STAGES)
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth")

# The forensic features' nominal ranges (docs/models.md), as (low, high). The demo scaler
# centers each feature on its range so the demo MLP sees inputs of unit scale.
FORENSIC_RANGES = (
    (0, 1),
    (0, 10),
    (0, 1000),
    (0, 500),
    (0, 100),
    (0, 50),
    (0, 100),
    (0, 100),
    (0, 100),
    (1, 10),
    (0, 5000),
    (0, 20),
)


class CheckpointError(RuntimeError):
    """A checkpoint is missing or does not fit the architecture in ``models.py``."""


@dataclass(frozen=True)
class WeightsSource:
    """What the exported network was built from; written into every artifact."""

    kind: str  # "trained" (a user checkpoint), "pretrained" (facenet-pytorch) or "demo"
    path: str  # the file the weights came from, or "seed:<n>" for demo weights
    sha256: str

    @property
    def is_demo(self) -> bool:
        """Whether these are seeded random weights, whose scores mean nothing."""
        return self.kind == "demo"


def demo_seed(name: str) -> int:
    """A fixed per-network seed, so demo exports are reproducible."""
    return zlib.crc32(name.encode())


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict without unpickling arbitrary objects."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors (name -> tensor)")
    return state


def load_into(module: nn.Module, state: dict[str, torch.Tensor], origin: str) -> None:
    """Load ``state`` strictly, with a message that names every bad key."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{key} (checkpoint {tuple(state[key].shape)}, model {tuple(expected[key].shape)})"
        for key in set(expected) & set(state)
        if tuple(state[key].shape) != tuple(expected[key].shape)
    )
    problems = []
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    if mismatched:
        problems.append(f"mismatched shapes: {', '.join(mismatched)}")
    if problems:
        raise CheckpointError(f"{origin} does not fit {type(module).__name__}: " + "; ".join(problems))
    module.load_state_dict(state, strict=True)


def find_checkpoint(directory: Path, name: str) -> Path:
    """The checkpoint file for ``name`` in ``directory`` (``<name>.safetensors`` first)."""
    for suffix in CHECKPOINT_SUFFIXES:
        candidate = directory / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    tried = ", ".join(f"{name}{s}" for s in CHECKPOINT_SUFFIXES)
    raise CheckpointError(f"no checkpoint for {name} in {directory} (looked for {tried})")


def facenet_weights_path(stage: str) -> Path:
    """facenet-pytorch's pretrained MTCNN state dict, located without importing
    the package (its ``__init__`` imports torchvision, which does not load here)."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or spec.origin is None:
        raise CheckpointError("facenet-pytorch is not installed: it ships MTCNN's pretrained weights")
    path = Path(spec.origin).parent / "data" / f"{stage}.pt"
    if not path.is_file():
        raise CheckpointError(f"facenet-pytorch has no {path.name} at {path}")
    return path


def _calibrate_batchnorm(module: nn.Module, name: str, seed: int) -> None:
    """Set BatchNorm running statistics from random standardized inputs.

    With PyTorch's default init and untouched running statistics (mean 0,
    variance 1), activations shrink layer by layer in a 30-block
    EfficientNet until the output no longer depends on the input: a demo
    model that gives every image the same score would hide wiring bugs. One
    pass in training mode normalizes every layer, so demo scores vary with
    the input as a trained model's would.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    dims = contract.by_name(name).inputs[0].dims
    generator = torch.Generator().manual_seed(seed)
    batch = torch.randn((4, *dims), generator=generator)
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the calibration batch
    # Only the norms train: dropout and EfficientNet's stochastic depth stay
    # off, so calibration is a deterministic function of the seeded weights.
    module.eval()
    for norm in norms:
        norm.train()
    with torch.no_grad():
        module(batch)
    module.eval()
    for norm in norms:
        norm.momentum = 0.1


def init_demo(module: nn.Module, name: str) -> WeightsSource:
    """Deterministic demo weights: PyTorch's default init under a fixed seed."""
    seed = demo_seed(name)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for sub in module.modules():
            if hasattr(sub, "reset_parameters") and sub is not module:
                sub.reset_parameters()
    finally:
        torch.random.set_rng_state(generator_state)
    # The digest identifies the seeded parameters; BatchNorm calibration below
    # is derived from them, up to float rounding that depends on thread count.
    digest = hashlib.sha256(str(seed).encode())
    for key, value in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().contiguous().numpy().tobytes())
    _calibrate_batchnorm(module, name, seed)
    for sub in module.modules():
        if isinstance(sub, FeatureScaler):
            low = torch.tensor([r[0] for r in FORENSIC_RANGES], dtype=torch.float32)
            high = torch.tensor([r[1] for r in FORENSIC_RANGES], dtype=torch.float32)
            sub.mean.copy_((low + high) / 2)
            sub.scale.copy_((high - low) / 4)
    return WeightsSource(kind="demo", path=f"seed:{seed}", sha256=digest.hexdigest())


def has_checkpoint(directory: Path, name: str) -> bool:
    """Whether ``directory`` holds a checkpoint file for ``name``."""
    return any((directory / f"{name}{suffix}").is_file() for suffix in CHECKPOINT_SUFFIXES)


def check_checkpoint_folder(directory: Path) -> list[str]:
    """The detectors ``directory`` holds checkpoints for.

    People train one modality at a time, so a folder may hold only some
    detectors; one that holds none of them is a mistake (a wrong path, or
    files not named after the models) and is refused.

    Raises:
        CheckpointError: naming the file names looked for.
    """
    found = [spec.name for spec in contract.DETECTORS if has_checkpoint(directory, spec.name)]
    if not found:
        names = ", ".join(f"{spec.name}{CHECKPOINT_SUFFIXES[0]}" for spec in contract.DETECTORS)
        raise CheckpointError(f"no detector checkpoint in {directory} (looked for {names}, or .pt/.pth)")
    return found


def load_weights(module: nn.Module, name: str, checkpoints: Path | None) -> WeightsSource:
    """Fill ``module`` with its weights and say where they came from.

    An MTCNN stage uses its ``pnet``/``rnet``/``onet`` file from the
    checkpoint directory when there is one and facenet-pytorch's pretrained
    weights otherwise; a detector uses its file from the checkpoint directory
    (the caller leaves a detector without one as it is served) and demo
    weights without a directory.
    """
    if checkpoints is not None:
        try:
            path = find_checkpoint(checkpoints, name)
        except CheckpointError:
            if name not in MTCNN_STAGES:
                raise
        else:
            load_into(module, read_state_dict(path), str(path))
            return WeightsSource(kind="trained", path=str(path), sha256=sha256_file(path))
    if name in MTCNN_STAGES:
        path = facenet_weights_path(name)
        load_into(module, read_state_dict(path), str(path))
        return WeightsSource(kind="pretrained", path=str(path), sha256=sha256_file(path))
    return init_demo(module, name)

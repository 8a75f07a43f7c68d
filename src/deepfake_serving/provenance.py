"""Which served networks run on demo weights, read from their configs.

The export stamps ``parameters { key: "weights" }`` into each detector's
``config.pbtxt``; pipelines read it at load time so every response can carry
``DEMO_WEIGHTS``. A config that cannot be read counts as demo: claiming real
weights without evidence is the one mistake this flag must never make.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2


def config_parameters(repository: Path, model: str) -> dict[str, str]:
    """The string parameters of ``model``'s ``config.pbtxt``, read the way Triton reads the file.

    Raises:
        OSError, text_format.ParseError: the config is missing or not valid.
    """
    config = text_format.Parse((repository / model / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    return {key: value.string_value for key, value in config.parameters.items()}


def _parameters(repository: Path, model: str) -> dict[str, str] | None:
    try:
        return config_parameters(repository, model)
    except (OSError, text_format.ParseError):
        return None


def weights_kind(repository: Path, model: str) -> str:
    """The ``weights`` parameter of ``model``'s config (``demo``, ``trained``), or ``unknown`` if unreadable."""
    parameters = _parameters(repository, model)
    return "unknown" if parameters is None else parameters.get("weights", "unknown")


def describe(repository: Path, model: str) -> str:
    """One line for the server log: what ``model`` serves and where its weights came from."""
    p = _parameters(repository, model)
    if p is None:
        return f"{model}: config unreadable (counted as demo)"
    kind, sha = p.get("weights", "unknown"), p.get("weights_sha256", "")
    origin = f" {p['weights_source']}@{p.get('weights_revision', '?')}" if p.get("weights_source") else ""
    return f"{model}: {kind}{origin}" + (f", sha256 {sha[:12]}" if sha else "")


#: Weights whose scores mean something: a user's checkpoint or a published pretrained model.
REAL_KINDS = ("trained", "pretrained")


def any_demo(repository: Path, models: Iterable[str]) -> bool:
    """True unless every model's config says its weights are trained or pretrained."""
    return bool(demo_models(repository, models))


def demo_models(repository: Path, models: Iterable[str]) -> list[str]:
    """The models whose config does not say trained or pretrained, in the order given."""
    return [model for model in models if weights_kind(repository, model) not in REAL_KINDS]


def demo_models_tensor(models: Iterable[str]) -> np.ndarray:
    """The ``DEMO_MODELS`` output: the names comma-separated, one BYTES element."""
    return np.array([",".join(models).encode()], dtype=object)

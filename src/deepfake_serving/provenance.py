"""Which served networks run on demo weights, read from their configs.

The export stamps ``parameters { key: "weights" }`` into each detector's
``config.pbtxt``; pipelines read it at load time so every response can carry
``DEMO_WEIGHTS``. A config that cannot be read counts as demo: claiming real
weights without evidence is the one mistake this flag must never make.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2


def weights_kind(repository: Path, model: str) -> str:
    """The ``weights`` parameter of ``model``'s config (``demo``, ``trained``), or ``unknown`` if unreadable."""
    try:
        config = text_format.Parse((repository / model / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    except (OSError, text_format.ParseError):
        return "unknown"
    parameter = config.parameters.get("weights")
    return parameter.string_value if parameter is not None else "unknown"


#: Weights whose scores mean something: a user's checkpoint or a published pretrained model.
REAL_KINDS = ("trained", "pretrained")


def any_demo(repository: Path, models: Iterable[str]) -> bool:
    """True unless every model's config says its weights are trained or pretrained."""
    return any(weights_kind(repository, model) not in REAL_KINDS for model in models)

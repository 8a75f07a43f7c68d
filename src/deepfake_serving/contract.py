"""The tensor contract of every network the deployment serves.

One definition feeds the ONNX export (input/output names, dynamic axes), the
generated ``config.pbtxt`` files and the tests, so a name or a shape cannot
drift between them. Names follow spec section 8 (``input`` / ``output``);
``output`` carries the probabilities of spec section 1 (``[real_prob,
fake_prob]``) and ``logits`` the architecture's raw output (spec sections 3-6).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a network, without the batch dimension."""

    name: str
    dims: tuple[int, ...]
    dtype: str = "FP32"  # Triton's spelling; NumPy's is derived where needed.


@dataclass(frozen=True)
class NetworkSpec:
    """A network exported to ONNX with a dynamic batch axis."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int
    description: str


_PROBS = (TensorSpec("output", (2,)), TensorSpec("logits", (2,)))

VISUAL_DETECTOR = NetworkSpec(
    name="visual_detector",
    inputs=(TensorSpec("input", (3, 224, 224)),),
    outputs=_PROBS,
    max_batch_size=64,
    description="EfficientNet-B4 face classifier: [real_prob, fake_prob] per 224x224 face crop",
)
FORENSIC_CLASSIFIER = NetworkSpec(
    name="forensic_classifier",
    inputs=(TensorSpec("input", (12,)),),
    outputs=_PROBS,
    max_batch_size=256,
    description="MLP on the 12 raw forensic features (the scaler is folded into the graph)",
)
AUDIO_DETECTOR = NetworkSpec(
    name="audio_detector",
    inputs=(TensorSpec("input", (1, 80, 251)),),
    outputs=_PROBS,
    max_batch_size=64,
    description="ResNet18 on a 4-second log-mel spectrogram: [real_prob, synthetic_prob]",
)
TEMPORAL_ANALYZER = NetworkSpec(
    name="temporal_analyzer",
    inputs=(TensorSpec("input", (16, 3, 224, 224)),),
    outputs=_PROBS,
    max_batch_size=8,
    description="3D CNN over 16 frames: [consistent_prob, inconsistent_prob]",
)

#: The four detectors Triton serves as ONNX models, in the order of the spec.
DETECTORS: tuple[NetworkSpec, ...] = (
    VISUAL_DETECTOR,
    FORENSIC_CLASSIFIER,
    AUDIO_DETECTOR,
    TEMPORAL_ANALYZER,
)

# MTCNN's three stages run inside the ``face_detector`` Python model, so their
# tensor names are internal; they still get a contract so export and the
# cascade agree. P-Net is fully convolutional: height and width are dynamic.
PNET = NetworkSpec(
    name="pnet",
    inputs=(TensorSpec("input", (3, -1, -1)),),
    outputs=(TensorSpec("reg", (4, -1, -1)), TensorSpec("prob", (2, -1, -1))),
    max_batch_size=0,
    description="MTCNN proposal network",
)
RNET = NetworkSpec(
    name="rnet",
    inputs=(TensorSpec("input", (3, 24, 24)),),
    outputs=(TensorSpec("reg", (4,)), TensorSpec("prob", (2,))),
    max_batch_size=0,
    description="MTCNN refinement network",
)
ONET = NetworkSpec(
    name="onet",
    inputs=(TensorSpec("input", (3, 48, 48)),),
    outputs=(TensorSpec("reg", (4,)), TensorSpec("landmarks", (10,)), TensorSpec("prob", (2,))),
    max_batch_size=0,
    description="MTCNN output network",
)
MTCNN_STAGES: tuple[NetworkSpec, ...] = (PNET, RNET, ONET)

#: Every network ``export`` builds and checks against PyTorch.
ALL_NETWORKS: tuple[NetworkSpec, ...] = DETECTORS + MTCNN_STAGES

NUMPY_DTYPES = {"FP32": "float32", "FP16": "float16", "INT64": "int64", "BOOL": "bool"}


def by_name(name: str) -> NetworkSpec:
    """Look a network up by its served name."""
    for spec in ALL_NETWORKS:
        if spec.name == name:
            return spec
    known = ", ".join(s.name for s in ALL_NETWORKS)
    raise KeyError(f"unknown network {name!r}; known: {known}")

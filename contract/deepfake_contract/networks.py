"""The networks exported to ONNX: four detectors Triton serves and MTCNN's three stages.

One definition feeds the ONNX export (input/output names, dynamic axes), the
generated ``config.pbtxt`` files and the tests. Every detector has one input
``input`` and two outputs: ``output``, the probabilities ``[real_prob,
fake_prob]`` (softmax of the logits), and ``logits``, the architecture's raw
output. docs/models.md describes each architecture.
"""

from __future__ import annotations

from dataclasses import replace

from deepfake_contract.tensors import ModelSpec, TensorSpec

_PROBS = (
    TensorSpec("output", (2,), meaning="[real_prob, fake_prob]: softmax of the logits"),
    TensorSpec("logits", (2,), meaning="the architecture's raw two-class output"),
)

VISUAL_DETECTOR = ModelSpec(
    name="visual_detector",
    inputs=(TensorSpec("input", (3, 224, 224), meaning="a face crop, RGB, normalized as face_detector does"),),
    outputs=_PROBS,
    max_batch_size=64,
    description="EfficientNet-B4 face classifier: [real_prob, fake_prob] per 224x224 face crop",
)
FORENSIC_CLASSIFIER = ModelSpec(
    name="forensic_classifier",
    inputs=(TensorSpec("input", (12,), meaning="the 12 forensic features of one face crop"),),
    outputs=_PROBS,
    max_batch_size=256,
    description="MLP on the 12 raw forensic features (the scaler is folded into the graph)",
)
AUDIO_DETECTOR = ModelSpec(
    name="audio_detector",
    inputs=(TensorSpec("input", (1, 80, 251), meaning="log-mel spectrogram of one 4 s window at 16 kHz"),),
    outputs=_PROBS,
    max_batch_size=64,
    description="ResNet18 on a 4-second log-mel spectrogram: [real_prob, synthetic_prob]",
)
#: What ``audio_detector`` takes per 4 s window, named by the ``audio_input``
#: parameter of its config: the project's ResNet18 reads a log-mel spectrogram;
#: a pretrained wav2vec2-family classifier (``--audio-model``) reads the 64,000
#: samples themselves, normalized as its feature extractor does.
AUDIO_INPUTS: dict[str, TensorSpec] = {
    "log_mel": AUDIO_DETECTOR.inputs[0],
    "waveform": TensorSpec(
        "input", (64_000,), meaning="one 4 s window of 16 kHz mono samples, normalized as the model's feature extractor"
    ),
}


def audio_detector(audio_input: str) -> ModelSpec:
    """``audio_detector``'s contract when it takes ``audio_input`` (a key of :data:`AUDIO_INPUTS`)."""
    if audio_input not in AUDIO_INPUTS:
        raise KeyError(f"unknown audio_input {audio_input!r}; known: {', '.join(AUDIO_INPUTS)}")
    if audio_input == "log_mel":
        return AUDIO_DETECTOR
    return replace(
        AUDIO_DETECTOR,
        inputs=(AUDIO_INPUTS[audio_input],),
        description="a pretrained waveform classifier on one 4 s window: [real_prob, synthetic_prob]",
    )


TEMPORAL_ANALYZER = ModelSpec(
    name="temporal_analyzer",
    inputs=(TensorSpec("input", (16, 3, 224, 224), meaning="16 frames, RGB, ImageNet-normalized"),),
    outputs=_PROBS,
    max_batch_size=8,
    description="3D CNN over 16 frames: [consistent_prob, inconsistent_prob]",
)

#: The four detectors Triton serves as ONNX models.
DETECTORS: tuple[ModelSpec, ...] = (
    VISUAL_DETECTOR,
    FORENSIC_CLASSIFIER,
    AUDIO_DETECTOR,
    TEMPORAL_ANALYZER,
)

# MTCNN's three stages run inside the ``face_detector`` Python model, so their
# tensor names are internal; they still get a contract so export and the
# cascade agree. P-Net is fully convolutional: height and width are dynamic.
PNET = ModelSpec(
    name="pnet",
    inputs=(TensorSpec("input", (3, -1, -1)),),
    outputs=(TensorSpec("reg", (4, -1, -1)), TensorSpec("prob", (2, -1, -1))),
    max_batch_size=0,
    description="MTCNN proposal network",
)
RNET = ModelSpec(
    name="rnet",
    inputs=(TensorSpec("input", (3, 24, 24)),),
    outputs=(TensorSpec("reg", (4,)), TensorSpec("prob", (2,))),
    max_batch_size=0,
    description="MTCNN refinement network",
)
ONET = ModelSpec(
    name="onet",
    inputs=(TensorSpec("input", (3, 48, 48)),),
    outputs=(TensorSpec("reg", (4,)), TensorSpec("landmarks", (10,)), TensorSpec("prob", (2,))),
    max_batch_size=0,
    description="MTCNN output network",
)
MTCNN_STAGES: tuple[ModelSpec, ...] = (PNET, RNET, ONET)

#: Every network ``export`` builds and checks against PyTorch.
ALL_NETWORKS: tuple[ModelSpec, ...] = DETECTORS + MTCNN_STAGES


def by_name(name: str) -> ModelSpec:
    """Look a network up by its served name."""
    for spec in ALL_NETWORKS:
        if spec.name == name:
            return spec
    known = ", ".join(s.name for s in ALL_NETWORKS)
    raise KeyError(f"unknown network {name!r}; known: {known}")

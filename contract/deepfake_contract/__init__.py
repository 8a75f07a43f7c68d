"""The deepfake detector's public contract, defined once.

Every tensor a client, the exporter, a ``config.pbtxt`` or a test names, and
every limit on what a request may send, is defined here and read from here:

* :mod:`~deepfake_contract.tensors`: the types (:class:`TensorSpec`, :class:`ModelSpec`);
* :mod:`~deepfake_contract.networks`: the ONNX detectors and MTCNN's stages;
* :mod:`~deepfake_contract.pipelines`: the Python-backend steps and the entry models;
* :mod:`~deepfake_contract.limits`: sizes, formats and the media each entry model takes.

The package is pure Python with no dependencies, so the thin client, the
Triton stubs and the exporter can all import it. docs/models.md says what
each tensor means.
"""

from deepfake_contract.limits import AUDIO, IMAGE, MAX_REQUEST_BYTES, MEDIA, VIDEO, Media
from deepfake_contract.networks import (
    ALL_NETWORKS,
    AUDIO_DETECTOR,
    AUDIO_INPUTS,
    DETECTORS,
    FORENSIC_CLASSIFIER,
    MTCNN_STAGES,
    ONET,
    PNET,
    RNET,
    TEMPORAL_ANALYZER,
    VISUAL_DETECTOR,
    audio_detector,
    by_name,
)
from deepfake_contract.pipelines import (
    AUDIO_FUSION,
    AUDIO_PREPROCESS,
    DETECT_AUDIO,
    DETECT_IMAGE,
    DETECT_VIDEO,
    ENTRY_MODELS,
    FACE_DETECTOR,
    FORENSIC_FEATURES,
    FORMER_NAMES,
    IMAGE_FUSION,
    PYTHON_MODELS,
    audio_preprocess,
)
from deepfake_contract.tensors import NUMPY_DTYPES, ModelSpec, TensorSpec

#: Every model in the repository, by name.
MODELS: dict[str, ModelSpec] = {m.name: m for m in (*DETECTORS, *PYTHON_MODELS, DETECT_IMAGE, DETECT_AUDIO)}

__all__ = [
    "ALL_NETWORKS",
    "AUDIO",
    "AUDIO_DETECTOR",
    "AUDIO_FUSION",
    "AUDIO_INPUTS",
    "AUDIO_PREPROCESS",
    "DETECT_AUDIO",
    "DETECT_IMAGE",
    "DETECT_VIDEO",
    "DETECTORS",
    "ENTRY_MODELS",
    "FACE_DETECTOR",
    "FORENSIC_CLASSIFIER",
    "FORENSIC_FEATURES",
    "FORMER_NAMES",
    "IMAGE",
    "IMAGE_FUSION",
    "MAX_REQUEST_BYTES",
    "MEDIA",
    "MODELS",
    "MTCNN_STAGES",
    "Media",
    "ModelSpec",
    "NUMPY_DTYPES",
    "ONET",
    "PNET",
    "PYTHON_MODELS",
    "RNET",
    "TEMPORAL_ANALYZER",
    "TensorSpec",
    "VIDEO",
    "VISUAL_DETECTOR",
    "audio_detector",
    "audio_preprocess",
    "by_name",
]

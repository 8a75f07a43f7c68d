"""Client library for the deepfake detector served by Triton.

``DeepfakeClient`` (blocking) and ``AsyncDeepfakeClient`` (asyncio) send
encoded media files to the ``detect_image``/``detect_audio``/``detect_video``
ensembles and return typed results; see ``client/README.md``.
"""

from deepfake_client._aio import AsyncDeepfakeClient
from deepfake_client._client import DeepfakeClient
from deepfake_client._common import ModelNames, RetryPolicy, TlsOptions
from deepfake_client._errors import (
    DeadlineExceededError,
    DeepfakeClientError,
    InvalidInputError,
    ModelNotFoundError,
    PayloadTooLargeError,
    ServerError,
    UnavailableError,
    UnsupportedMediaError,
)
from deepfake_client._results import (
    AudioResult,
    AudioWindow,
    DetectionResult,
    Face,
    ImageResult,
    VideoFace,
    VideoFrame,
    VideoResult,
    VideoSegment,
    VideoTrack,
)
from deepfake_client._sniff import MediaKind, Sniffed, sniff

__all__ = [
    "AsyncDeepfakeClient",
    "AudioResult",
    "AudioWindow",
    "DeadlineExceededError",
    "DeepfakeClient",
    "DeepfakeClientError",
    "DetectionResult",
    "Face",
    "ImageResult",
    "InvalidInputError",
    "MediaKind",
    "ModelNames",
    "ModelNotFoundError",
    "PayloadTooLargeError",
    "RetryPolicy",
    "ServerError",
    "Sniffed",
    "TlsOptions",
    "UnavailableError",
    "UnsupportedMediaError",
    "VideoFace",
    "VideoFrame",
    "VideoResult",
    "VideoSegment",
    "VideoTrack",
    "sniff",
]

__version__ = "0.1.0"

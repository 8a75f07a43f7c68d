"""The bad-input catalog: every input of every model in the repository, sent wrong.

Each :class:`Case` is one model input and one way to get it wrong: empty,
random bytes, text, truncated, an unsupported codec, a header declaring absurd
dimensions or duration, the wrong dtype or shape, too many elements, NaN or Inf.
The server must answer each with ``INVALID_ARGUMENT`` and a message that names
the input and the problem, and nothing else may change: the last test checks
that the server is healthy and gives the answers it gave before the catalog.

The composing models (``face_detector``, ``image_fusion``...) are in the catalog
too: Triton has no private models, so a client can call them directly.
``test_the_catalog_covers_every_input_of_every_model`` keeps it complete when
a model or an input is added.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from deepfake_contract import DETECTORS, ModelSpec
from deepfake_serving.model_configs import parse_pbtxt
from deepfake_serving.testing import media, media_av
from deepfake_serving.testing.triton import MODEL_REPOSITORY
from tests import bad_media
from tests.server.helpers import Tensor, infer

pytestmark = pytest.mark.server


@dataclass(frozen=True)
class Case:
    model: str
    input: str
    problem: str
    tensors: Callable[[], list[Tensor]]
    #: Lower-case fragments the error message must contain, besides the input's name.
    expect: tuple[str, ...]
    #: False for request-level problems (the batch size), which Triton reports by model.
    names_input: bool = True

    @property
    def id(self) -> str:
        return f"{self.model}.{self.input}.{self.problem}"


def encoded(name: str, make: Callable[[], bytes]) -> Callable[[], list[Tensor]]:
    return lambda: [(name, np.array([make()], dtype=object), "BYTES")]


def floats(name: str, shape: tuple[int, ...], fill: float = 0.0, at: float | None = None) -> np.ndarray:
    """``shape`` filled with ``fill``; the first element set to ``at`` when given."""
    array = np.full(shape, fill, dtype=np.float32)
    if at is not None:
        array.reshape(-1)[0] = at
    return array


def detector_cases(spec: ModelSpec) -> list[Case]:
    dims, name, limit = spec.inputs[0].dims, spec.name, spec.max_batch_size
    good = (1, *dims)
    return [
        Case(name, "input", "nan", lambda: [("input", floats(name, good, at=np.nan), "FP32")], ("nan or inf",)),
        Case(name, "input", "inf", lambda: [("input", floats(name, good, at=np.inf), "FP32")], ("nan or inf",)),
        Case(
            name,
            "input",
            "fp64",
            lambda: [("input", np.zeros(good, np.float64), "FP64")],
            ("data-type is 'fp64'", "expects 'fp32'"),
        ),
        Case(
            name,
            "input",
            "wrong_shape",
            lambda: [("input", floats(name, (*good[:-1], good[-1] + 1)), "FP32")],
            ("unexpected shape", f"expected [-1,{','.join(map(str, dims))}]"),
        ),
        Case(
            name,
            "input",
            "batch_over_max",
            lambda: [("input", floats(name, (limit + 1, *dims)), "FP32")],
            (f"batch-size must be <= {limit} for '{name}'",),
            names_input=False,
        ),
        Case(
            name,
            "input",
            "unknown_input_name",
            lambda: [("input", floats(name, good), "FP32"), ("INPUT_X", floats(name, good), "FP32")],
            ("expected 1 inputs but got 2", "'input_x'"),
        ),
    ]


def bytes_input_cases(model: str, name: str) -> list[Case]:
    """Shape and dtype mistakes every ``TYPE_STRING`` [1] input shares."""
    return [
        Case(
            model,
            name,
            "two_files",
            lambda: [(name, np.array([b"a", b"b"], dtype=object), "BYTES")],
            ("unexpected shape", "expected [1], got [2]"),
        ),
        Case(
            model,
            name,
            "fp32_instead_of_bytes",
            lambda: [(name, np.zeros(1, np.float32), "FP32")],
            ("data-type is 'fp32'", "expects 'bytes'"),
        ),
    ]


def image_cases(model: str) -> list[Case]:
    accepted = "accepted formats: jpeg, png"
    return [
        Case(model, "IMAGE", "empty", encoded("IMAGE", lambda: b""), ("empty", accepted.split(": ")[1])),
        Case(model, "IMAGE", "text", encoded("IMAGE", lambda: bad_media.TEXT), ("not a recognised image", accepted)),
        Case(model, "IMAGE", "random_bytes", encoded("IMAGE", lambda: bad_media.random_bytes(20000)), (accepted,)),
        Case(model, "IMAGE", "truncated_jpeg", encoded("IMAGE", bad_media.truncated_jpeg), ("truncated",)),
        Case(model, "IMAGE", "unsupported_ico", encoded("IMAGE", bad_media.ico_image), (accepted,)),
        Case(model, "IMAGE", "png_bomb", encoded("IMAGE", bad_media.png_bomb), ("exceeds the limit of 40000000",)),
        Case(model, "IMAGE", "jpeg_bomb", encoded("IMAGE", bad_media.jpeg_bomb), ("exceeds the limit of 40000000",)),
        *bytes_input_cases(model, "IMAGE"),
    ]


def audio_cases(model: str) -> list[Case]:
    return [
        Case(model, "AUDIO", "empty", encoded("AUDIO", lambda: b""), ("empty input",)),
        Case(model, "AUDIO", "text", encoded("AUDIO", lambda: bad_media.TEXT), ("not a readable media file",)),
        Case(
            model,
            "AUDIO",
            "random_bytes",
            encoded("AUDIO", lambda: bad_media.random_bytes(20000)),
            ("not a readable media file",),
        ),
        Case(model, "AUDIO", "truncated_flac", encoded("AUDIO", bad_media.truncated_flac), ("truncated",)),
        Case(
            model,
            "AUDIO",
            "unsupported_codec",
            encoded("AUDIO", bad_media.unsupported_codec_wav),
            ("cannot be decoded", "accepted: wav, flac"),
        ),
        Case(model, "AUDIO", "too_long", encoded("AUDIO", bad_media.too_long_audio), ("exceeds the limit of 120 s",)),
        *bytes_input_cases(model, "AUDIO"),
    ]


def video_cases(model: str) -> list[Case]:
    return [
        Case(model, "VIDEO", "empty", encoded("VIDEO", lambda: b""), ("empty input",)),
        Case(model, "VIDEO", "text", encoded("VIDEO", lambda: bad_media.TEXT), ("not a readable media file",)),
        Case(
            model,
            "VIDEO",
            "random_bytes",
            encoded("VIDEO", lambda: bad_media.random_bytes(50000)),
            ("not a readable media file",),
        ),
        Case(
            model, "VIDEO", "truncated_mp4", encoded("VIDEO", bad_media.truncated_mp4), ("not a readable media file",)
        ),
        Case(
            model,
            "VIDEO",
            "unsupported_codec",
            encoded("VIDEO", bad_media.unsupported_codec_avi),
            ("cannot be decoded",),
        ),
        Case(
            model,
            "VIDEO",
            "audio_only",
            encoded("VIDEO", lambda: media_av.audio_clip("wav", 0.5)),
            ("no video stream",),
        ),
        Case(
            model,
            "VIDEO",
            "huge_resolution",
            encoded("VIDEO", bad_media.huge_resolution_video),
            ("exceeds the limit of 8294400 pixels",),
        ),
        Case(model, "VIDEO", "hour_long", encoded("VIDEO", bad_media.hour_long_video), ("exceeds the limit of 600 s",)),
        *bytes_input_cases(model, "VIDEO"),
    ]


def probs(rows: int, fake: float = 0.3) -> np.ndarray:
    return np.tile(np.array([[1 - fake, fake]], np.float32), (rows, 1))


def image_fusion_inputs(visual: np.ndarray, forensic: np.ndarray, features: np.ndarray) -> list[Tensor]:
    return [
        ("VISUAL_PROBS", visual, "FP32"),
        ("FORENSIC_PROBS", forensic, "FP32"),
        ("FORENSIC_FEATURES", features, "FP32"),
    ]


def audio_fusion_inputs(window_probs: np.ndarray, silent: np.ndarray) -> list[Tensor]:
    return [("WINDOW_PROBS", window_probs, "FP32"), ("WINDOW_SILENT", silent, "BOOL")]


ONE_FACE = np.zeros((1, 12), np.float32)
SILENT_2 = np.array([False, False])

COMPOSING_CASES = [
    Case(
        "forensic_features",
        "FACE_CROPS",
        "too_many_crops",
        lambda: [("FACE_CROPS", np.zeros((17, 224, 224, 3), np.uint8), "UINT8")],
        ("17 crops exceeds the limit of 16",),
    ),
    Case(
        "forensic_features",
        "FACE_CROPS",
        "wrong_crop_size",
        lambda: [("FACE_CROPS", np.zeros((1, 112, 112, 3), np.uint8), "UINT8")],
        ("unexpected shape", "expected [-1,224,224,3]"),
    ),
    Case(
        "forensic_features",
        "FACE_CROPS",
        "float_pixels",
        lambda: [("FACE_CROPS", np.zeros((1, 224, 224, 3), np.float32), "FP32")],
        ("data-type is 'fp32'", "expects 'uint8'"),
    ),
    Case(
        "forensic_features",
        "ORDER_AFTER",
        "float64_order",
        lambda: [
            ("FACE_CROPS", np.zeros((1, 224, 224, 3), np.uint8), "UINT8"),
            ("ORDER_AFTER", np.zeros((1, 2), np.float64), "FP64"),
        ],
        ("data-type is 'fp64'", "expects 'fp32'"),
    ),
    Case(
        "forensic_features",
        "FACE_BLOCKING",
        "row_count_mismatch",
        lambda: [
            ("FACE_CROPS", np.zeros((1, 224, 224, 3), np.uint8), "UINT8"),
            ("FACE_BLOCKING", np.zeros(2, np.float32), "FP32"),
        ],
        ("same number of rows", "face_blocking has 2", "face_crops has 1"),
    ),
    Case(
        "forensic_features",
        "FACE_BLOCKING",
        "nan",
        lambda: [
            ("FACE_CROPS", np.zeros((1, 224, 224, 3), np.uint8), "UINT8"),
            ("FACE_BLOCKING", np.full(1, np.nan, np.float32), "FP32"),
        ],
        ("nan or inf",),
    ),
    Case(
        "image_fusion",
        "VISUAL_PROBS",
        "nan",
        lambda: image_fusion_inputs(np.full((1, 2), np.nan, np.float32), probs(1), ONE_FACE),
        ("nan or inf",),
    ),
    Case(
        "image_fusion",
        "VISUAL_PROBS",
        "no_faces",
        lambda: image_fusion_inputs(probs(0), probs(0), np.zeros((0, 12), np.float32)),
        ("at least 1 row",),
    ),
    Case(
        "image_fusion",
        "FORENSIC_PROBS",
        "not_probabilities",
        lambda: image_fusion_inputs(probs(1), np.array([[3.0, -2.0]], np.float32), ONE_FACE),
        ("must be in [0, 1]",),
    ),
    Case(
        "image_fusion",
        "FORENSIC_FEATURES",
        "row_count_mismatch",
        lambda: image_fusion_inputs(probs(1), probs(1), np.zeros((3, 12), np.float32)),
        ("same number of rows", "forensic_features has 3"),
    ),
    Case(
        "image_fusion",
        "FORENSIC_FEATURES",
        "inf",
        lambda: image_fusion_inputs(probs(1), probs(1), np.full((1, 12), np.inf, np.float32)),
        ("nan or inf",),
    ),
    Case(
        "audio_fusion",
        "WINDOW_PROBS",
        "row_count_mismatch",
        lambda: audio_fusion_inputs(probs(3), SILENT_2),
        ("same number of rows", "window_probs has 3", "window_silent has 2"),
    ),
    Case(
        "audio_fusion",
        "WINDOW_PROBS",
        "nan",
        lambda: audio_fusion_inputs(np.array([[0.5, 0.5], [np.nan, 0.5]], np.float32), SILENT_2),
        ("nan or inf",),
    ),
    Case(
        "audio_fusion",
        "WINDOW_SILENT",
        "float_instead_of_bool",
        lambda: [audio_fusion_inputs(probs(2), SILENT_2)[0], ("WINDOW_SILENT", np.zeros(2, np.float32), "FP32")],
        ("data-type is 'fp32'", "expects 'bool'"),
    ),
]

CATALOG: list[Case] = [
    *(case for spec in DETECTORS for case in detector_cases(spec)),
    *image_cases("detect_image"),
    *image_cases("face_detector"),
    Case(
        "detect_image",
        "IMAGE",
        "over_byte_limit",
        encoded("IMAGE", bad_media.oversized_image),
        ("bytes exceeds the limit of 33554432",),
    ),
    *audio_cases("detect_audio"),
    *audio_cases("audio_preprocess"),
    *video_cases("detect_video"),
    *COMPOSING_CASES,
]


# Good requests whose answers must not change across the catalog.
def _good_requests() -> dict[str, tuple[str, list[Tensor], list[str]]]:
    clip = media_av.encode_video(media_av.gradient_frames(8, 64, 64), 8, "avi_mjpeg")
    return {
        "detect_image": (
            "detect_image",
            encoded("IMAGE", lambda: media.encode(media.astronaut(), "JPEG"))(),
            ["FAKE_PROB", "FACE_BOXES"],
        ),
        "detect_audio": (
            "detect_audio",
            encoded("AUDIO", lambda: media_av.audio_clip("flac", 5.0))(),
            ["FAKE_PROB", "WINDOW_FAKE_PROB"],
        ),
        "detect_video": ("detect_video", encoded("VIDEO", lambda: clip)(), ["FAKE_PROB", "TEMPORAL_FAKE_PROB"]),
        "forensic_classifier": (
            "forensic_classifier",
            [("input", np.linspace(0, 1, 12, dtype=np.float32)[None], "FP32")],
            ["output"],
        ),
    }


def _answers(client: grpcclient.InferenceServerClient) -> dict[str, dict[str, np.ndarray]]:
    answers = {}
    for key, (model, tensors, outputs) in _good_requests().items():
        result = infer(client, model, tensors)
        answers[key] = {name: result.as_numpy(name) for name in outputs}
    return answers


@pytest.fixture(scope="module")
def answers_before(grpc_client) -> dict[str, dict[str, np.ndarray]]:
    return _answers(grpc_client)


def test_the_catalog_covers_every_input_of_every_model():
    expected = set()
    for path in sorted(MODEL_REPOSITORY.glob("*/config.pbtxt")):
        config = parse_pbtxt(path)
        expected |= {(config.name, tensor.name) for tensor in config.input}
    assert expected - {(case.model, case.input) for case in CATALOG} == set()


def test_answers_are_recorded_before_the_catalog(answers_before):
    assert set(answers_before) == set(_good_requests())


@pytest.mark.parametrize("case", CATALOG, ids=[case.id for case in CATALOG])
def test_bad_input_gets_a_clear_error(grpc_client, case: Case):
    with pytest.raises(InferenceServerException) as caught:
        infer(grpc_client, case.model, case.tensors())
    message = caught.value.message()
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT", message
    if case.names_input:
        assert case.input.lower() in message.lower(), f"the error does not name {case.input}: {message}"
    for fragment in case.expect:
        assert fragment in message.lower(), f"{fragment!r} not in {message!r}"
    assert "traceback" not in message.lower()


def test_after_the_catalog_the_server_is_healthy_and_answers_as_before(grpc_client, answers_before):
    assert grpc_client.is_server_live() and grpc_client.is_server_ready()
    for path in MODEL_REPOSITORY.glob("*/config.pbtxt"):
        assert grpc_client.is_model_ready(path.parent.name), path.parent.name
    after = _answers(grpc_client)
    for key, outputs in answers_before.items():
        for name, before in outputs.items():
            np.testing.assert_allclose(after[key][name], before, rtol=0, atol=1e-6, err_msg=f"{key} {name}")

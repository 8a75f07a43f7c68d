"""The client refuses what the server would refuse, with the server's numbers and formats.

Limits and formats come from ``deepfake_contract``; tests/unit/test_contract.py
shows the server's configs carry the same values, and these tests show the
client applies them per kind of media and names the same formats the server's
errors name.
"""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from deepfake_client import DeepfakeClient, PayloadTooLargeError, UnavailableError, UnsupportedMediaError
from deepfake_contract import AUDIO, IMAGE, MEDIA, VIDEO
from deepfake_serving.model_configs import parse_pbtxt
from deepfake_serving.testing.triton import MODEL_REPOSITORY

# Nothing listens on port 9: a request that is sent fails as unavailable, not as too large.
NOWHERE = "127.0.0.1:9"

#: The config whose ``max_bytes`` parameter bounds each entry model's input.
LIMITING_MODEL = {"image": "face_detector", "audio": "audio_preprocess", "video": "detect_video"}


def _padded(header: bytes, size: int) -> bytes:
    """A file the client sniffs as ``header``'s kind, ``size`` bytes long."""
    return header + bytes(size - len(header))


JPEG = b"\xff\xd8\xff\xe0"
WAV = b"RIFF\x00\x00\x00\x00WAVEfmt "
AVI = b"RIFF\x00\x00\x00\x00AVI LIST"


@pytest.mark.parametrize("kind", [m.kind for m in MEDIA])
def test_the_clients_limit_for_each_kind_is_the_servers(kind: str) -> None:
    config = parse_pbtxt(MODEL_REPOSITORY / LIMITING_MODEL[kind] / "config.pbtxt")
    media = next(m for m in MEDIA if m.kind == kind)
    assert int(config.parameters["max_bytes"].string_value) == media.max_bytes


@pytest.mark.parametrize(
    ("header", "media"), [(JPEG, IMAGE), (WAV, AUDIO), (AVI, VIDEO)], ids=["image", "audio", "video"]
)
def test_a_file_just_over_its_kinds_limit_is_refused_before_sending(header: bytes, media) -> None:
    with DeepfakeClient(NOWHERE, timeout=5) as client:
        with pytest.raises(PayloadTooLargeError) as refused:
            client.detect(_padded(header, media.max_bytes + 1))
    assert f"over the {media.max_bytes / 2**20:.1f} MiB limit ({media.model} accepts)" in refused.value.message


def test_a_video_over_the_image_limit_is_still_sent() -> None:
    """The old client refused everything over 128 MiB; detect_video takes 256 MiB."""
    with DeepfakeClient(NOWHERE, timeout=5) as client:
        with pytest.raises(UnavailableError):
            client.detect(_padded(AVI, 200 * 2**20))
        with pytest.raises(PayloadTooLargeError):
            client.detect(_padded(JPEG, IMAGE.max_bytes + 1))


def test_an_explicit_max_bytes_applies_to_every_kind() -> None:
    with DeepfakeClient(NOWHERE, timeout=5, max_bytes=2**20) as client:
        with pytest.raises(PayloadTooLargeError, match=r"over the 1\.0 MiB limit \(max_bytes\)"):
            client.detect(_padded(AVI, 2 * 2**20))


@pytest.mark.server
def test_the_client_names_the_formats_the_server_names(grpc_client: grpcclient.InferenceServerClient) -> None:
    with DeepfakeClient(NOWHERE) as client:
        with pytest.raises(UnsupportedMediaError) as client_error:
            client.detect(b"plain text, not media")
    for media in MEDIA:
        tensor = grpcclient.InferInput(media.input, [1], "BYTES")
        tensor.set_data_from_numpy(np.array([b"plain text, not media"], dtype=object))
        with pytest.raises(InferenceServerException) as server_error:
            grpc_client.infer(media.model, [tensor])
        assert media.formats in server_error.value.message(), media.model
        assert media.formats in client_error.value.message, media.kind


def test_outputs_under_their_former_names_from_an_older_server_are_still_read() -> None:
    """One release of grace for the outputs renamed in 0.2 (README, "Changelog")."""
    from deepfake_client import AudioResult

    older = {
        "WINDOW_FAKE_PROB": np.array([0.25, 0.75], np.float32),
        "WINDOW_START_S": np.array([0.0, 2.0], np.float32),
        "FAKE_PROB": np.array([0.75], np.float32),
        "REAL_SECONDS": np.array([6.0], np.float32),
        "ALL_SILENT": np.array([True]),
        "DEMO_WEIGHTS": np.array([False]),
    }
    result = AudioResult.from_outputs(older)
    assert result.duration_s == 6.0 and result.audio_silent is True
    current = {**older, "DURATION_S": np.array([7.0], np.float32), "AUDIO_SILENT": np.array([False])}
    assert AudioResult.from_outputs(current).duration_s == 7.0, "a current name wins over a former one"
    with pytest.warns(DeprecationWarning, match="duration_s"):
        assert result.real_seconds == 6.0
    with pytest.warns(DeprecationWarning, match="audio_silent"):
        assert result.silent is True


def test_the_verdict_uses_the_servers_threshold_unless_the_caller_sets_one() -> None:
    from deepfake_client import AudioResult

    outputs = {
        "WINDOW_FAKE_PROB": np.array([0.3], np.float32),
        "WINDOW_START_S": np.array([0.0], np.float32),
        "FAKE_PROB": np.array([0.3], np.float32),
        "DURATION_S": np.array([4.0], np.float32),
        "AUDIO_SILENT": np.array([False]),
        "DEMO_WEIGHTS": np.array([False]),
        "THRESHOLD": np.array([0.25], np.float32),
    }
    calibrated = AudioResult.from_outputs(outputs)
    assert calibrated.threshold == 0.25 and calibrated.is_fake() is True
    assert calibrated.is_fake(0.5) is False, "the caller's threshold wins"
    assert calibrated.is_fake(0.3) is True, "a score at the threshold is fake (>=), as the calibration counts it"
    older = AudioResult.from_outputs({k: v for k, v in outputs.items() if k != "THRESHOLD"})
    assert older.threshold is None and older.is_fake() is False, "an older server: 0.5"

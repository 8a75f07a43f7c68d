"""Every client method against the real server, sync and asyncio, gRPC and HTTP."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from deepfake_client import (
    AsyncDeepfakeClient,
    DeepfakeClient,
    ImageResult,
    InvalidInputError,
    ModelNames,
    ModelNotFoundError,
    PayloadTooLargeError,
    RetryPolicy,
    UnsupportedMediaError,
)
from deepfake_serving.testing.triton import TritonProcess

PROTOCOLS = ["grpc", "http"]


def url_for(triton: TritonProcess, protocol: str) -> str:
    return triton.grpc_url if protocol == "grpc" else triton.http_url


def check_astronaut(result: ImageResult, source: str | None) -> None:
    assert isinstance(result, ImageResult)
    assert result.face_found and len(result.faces) == 1
    face = result.faces[0]
    x1, y1, x2, y2 = face.box
    assert 0 <= x1 < x2 <= 256 and 0 <= y1 < y2 <= 256
    assert face.confidence > 0.9 and len(face.forensic_features) == 12
    # The fused verdict lies between the per-model probabilities of some face, whatever the weights.
    low = min(min(f.visual_fake_prob, f.forensic_fake_prob) for f in result.faces)
    high = max(max(f.visual_fake_prob, f.forensic_fake_prob) for f in result.faces)
    assert 0 <= result.fake_prob <= 1 and low - 1e-5 <= result.fake_prob <= high + 1e-5
    assert result.source == source
    data = result.to_dict()
    assert json.loads(json.dumps(data)) == data and data["kind"] == "image" and len(data["faces"][0]["box"]) == 4


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_sync_client_scores_an_image_given_as_path_bytes_or_file(
    triton: TritonProcess, protocol: str, image_file: Path, small_jpeg: bytes
) -> None:
    with DeepfakeClient(url_for(triton, protocol), protocol=protocol) as client:
        assert client.is_live() and client.is_ready() and client.is_ready("detect_image")
        client.wait_until_ready(5, models=["detect_image"])
        metadata = client.model_metadata()
        assert [tensor["name"] for tensor in metadata["inputs"]] == ["IMAGE"]
        by_path = client.detect_image(image_file)
        check_astronaut(by_path, str(image_file))
        by_bytes = client.detect(small_jpeg)  # dispatch by content
        check_astronaut(by_bytes, "<bytes>")
        assert by_bytes.fake_prob == pytest.approx(by_path.fake_prob, abs=1e-6)
        if protocol == "grpc":
            with image_file.open("rb") as handle:
                check_astronaut(client.detect_image(handle), str(image_file))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_detect_many_yields_every_result_with_requests_in_flight(
    triton: TritonProcess, protocol: str, small_jpeg: bytes, image_file: Path
) -> None:
    with DeepfakeClient(url_for(triton, protocol), protocol=protocol) as client:
        items = [image_file, small_jpeg, b"not media at all"]
        outcomes = list(client.detect_many(items, concurrency=2, return_exceptions=True))
    assert len(outcomes) == 3
    errors = [o for o in outcomes if isinstance(o, UnsupportedMediaError)]
    assert len(errors) == 1 and errors[0].source == "<bytes>"
    assert sorted(o.source for o in outcomes if isinstance(o, ImageResult)) == sorted([str(image_file), "<bytes>"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_asyncio_client_has_the_same_methods_and_results(
    triton: TritonProcess, protocol: str, small_jpeg: bytes, image_file: Path
) -> None:
    async def scenario() -> None:
        async with AsyncDeepfakeClient(url_for(triton, protocol), protocol=protocol) as client:
            assert await client.is_live() and await client.is_ready("detect_image")
            await client.wait_until_ready(5)
            assert (await client.model_metadata("detect_image"))["name"] == "detect_image"
            check_astronaut(await client.detect_image(small_jpeg), "<bytes>")
            results = [r async for r in client.detect_many([image_file, io.BytesIO(small_jpeg)], concurrency=2)]
            assert len(results) == 2 and all(isinstance(r, ImageResult) for r in results)
            with pytest.raises(InvalidInputError) as refused:
                await client.detect(small_jpeg[:300])
            assert "IMAGE:" in refused.value.message and refused.value.attempts == 1

    asyncio.run(scenario())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_media_the_server_refuses_raises_invalid_input_with_its_message_and_no_retry(
    triton: TritonProcess, protocol: str, small_jpeg: bytes
) -> None:
    with DeepfakeClient(url_for(triton, protocol), protocol=protocol, retry=RetryPolicy(attempts=5)) as client:
        with pytest.raises(InvalidInputError) as refused:
            client.detect_image(small_jpeg[:300])  # a JPEG header, then nothing
    error = refused.value
    assert type(error) is InvalidInputError
    assert "IMAGE:" in error.message and "detect_image" in error.message
    assert error.attempts == 1 and error.url == url_for(triton, protocol)
    assert error.__cause__ is not None and type(error.__cause__).__name__ == "InferenceServerException"


def test_calling_a_model_the_server_does_not_have_raises_model_not_found(
    triton: TritonProcess, small_jpeg: bytes
) -> None:
    # An ensemble missing from the repository: the image bytes sent to a model name that does not exist.
    with DeepfakeClient(triton.grpc_url, models=ModelNames(image="no_such_model")) as client:
        with pytest.raises(ModelNotFoundError) as missing:
            client.detect_image(small_jpeg)
    assert missing.value.attempts == 1 and "no_such_model" in missing.value.message


def test_media_over_the_size_limit_is_refused_before_sending(tmp_path: Path, small_jpeg: bytes) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(small_jpeg)
    # Nothing listens on port 9: any request would fail as unavailable, not as too large.
    with DeepfakeClient("127.0.0.1:9", max_bytes=1000) as client:
        for media in (path, small_jpeg, io.BytesIO(small_jpeg)):
            with pytest.raises(PayloadTooLargeError, match="over the 0.0 MiB limit"):
                client.detect(media)
        with pytest.raises(UnsupportedMediaError, match="accepted: images"):
            client.detect(b"plain text, not media")


@pytest.fixture(scope="module")
def media_clips() -> dict[str, bytes]:
    from skimage import data

    from deepfake_serving.testing import media_av

    frames = media_av.moving_frames(data.astronaut(), 12, 128, 128)
    return {
        "audio": media_av.audio_clip("flac", 5.0),
        "video": media_av.encode_video(frames, 12, "mp4_h264_aac", audio=media_av.speechlike),
    }


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_audio_and_video_are_scored_and_sniffed(triton: TritonProcess, protocol: str, media_clips) -> None:
    with DeepfakeClient(url_for(triton, protocol), protocol=protocol) as client:
        audio = client.detect(media_clips["audio"])
        assert audio.kind == "audio" and audio.duration_s == pytest.approx(5.0, abs=0.1)
        assert [w.start_s for w in audio.windows] == [0.0, 1.0] and 0 <= audio.fake_prob <= 1
        assert audio.demo_weights and not audio.audio_silent
        video = client.detect_video(media_clips["video"])
        assert video.kind == "video" and len(video.frames) == 16 and video.has_audio
        assert video.audio_fake_prob is not None and 0 <= video.fake_prob <= 1
        assert json.loads(json.dumps(video.to_dict())) == video.to_dict()


def test_the_asyncio_client_scores_audio(triton: TritonProcess, media_clips) -> None:
    async def run():
        async with AsyncDeepfakeClient(triton.grpc_url) as client:
            return await client.detect_audio(media_clips["audio"])

    assert asyncio.run(run()).kind == "audio"


def _raw(url: str, model: str, name: str, data: bytes) -> dict:
    """Every output of one request sent with plain tritonclient, by name."""
    import numpy as np
    import tritonclient.grpc as grpcclient

    with grpcclient.InferenceServerClient(url) as raw:
        tensor = grpcclient.InferInput(name, [1], "BYTES")
        tensor.set_data_from_numpy(np.array([data], dtype=object))
        result = raw.infer(model, [tensor])
        return {output.name: result.as_numpy(output.name) for output in result.get_response().outputs}


def test_image_result_fields_are_the_servers_tensors_field_by_field(triton: TritonProcess) -> None:
    """Four different faces: a field read from the wrong tensor, or faces zipped out of order, fails."""
    from deepfake_serving.testing import media

    data = media.encode(media.grid_2x2(media.astronaut()), "JPEG")
    raw = _raw(triton.grpc_url, "detect_image", "IMAGE", data)
    with DeepfakeClient(triton.grpc_url) as client:
        result = client.detect_image(data)
    assert len(result.faces) == len(raw["FACE_BOXES"]) == 4
    for k, face in enumerate(result.faces):
        assert face.box == pytest.approx(tuple(raw["FACE_BOXES"][k].tolist()))
        assert face.confidence == pytest.approx(float(raw["FACE_CONFIDENCE"][k]))
        assert face.visual_fake_prob == pytest.approx(float(raw["VISUAL_FAKE_PROB"][k]))
        assert face.forensic_fake_prob == pytest.approx(float(raw["FORENSIC_FAKE_PROB"][k]))
        assert face.forensic_features == pytest.approx(tuple(raw["FORENSIC_FEATURES"][k].tolist()))
    assert result.fake_prob == pytest.approx(float(raw["FAKE_PROB"][0]))
    assert result.face_found is bool(raw["FACE_FOUND"][0]) and result.faces_dropped == int(raw["FACES_DROPPED"][0])
    assert result.demo_weights is bool(raw["DEMO_WEIGHTS"][0])
    assert result.threshold == float(raw["THRESHOLD"][0]) == 0.5  # the shipped, uncalibrated threshold


def test_audio_result_fields_are_the_servers_tensors_field_by_field(triton: TritonProcess) -> None:
    from deepfake_serving.testing import media_av

    data = media_av.audio_clip("wav", 9.0)
    raw = _raw(triton.grpc_url, "detect_audio", "AUDIO", data)
    with DeepfakeClient(triton.grpc_url) as client:
        result = client.detect_audio(data)
    assert [w.start_s for w in result.windows] == pytest.approx(raw["WINDOW_START_S"].tolist())
    assert [w.fake_prob for w in result.windows] == pytest.approx(raw["WINDOW_FAKE_PROB"].tolist())
    assert result.fake_prob == pytest.approx(float(raw["FAKE_PROB"][0]))
    assert result.duration_s == pytest.approx(float(raw["DURATION_S"][0]))
    assert result.audio_silent is bool(raw["AUDIO_SILENT"][0])

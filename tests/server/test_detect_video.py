"""detect_video end to end: encoded video in, temporal, per-frame, audio and fused scores out, on the real server."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from deepfake_contract import DETECT_VIDEO
from deepfake_serving import video_pipeline as V
from deepfake_serving.fusion import FrameAggregation, VideoFusion
from deepfake_serving.image_pipeline import FaceDetector, FaceSettings
from deepfake_serving.onnx_runner import OnnxRunner, SessionSettings
from deepfake_serving.testing import media, media_av
from deepfake_serving.testing.triton import MODEL_REPOSITORY
from deepfake_serving.video import sample_video

pytestmark = pytest.mark.server

OUTPUTS = list(DETECT_VIDEO.output_names)


def detect(client: grpcclient.InferenceServerClient, data: bytes) -> dict[str, np.ndarray]:
    tensor = grpcclient.InferInput("VIDEO", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([data], dtype=object))
    result = client.infer("detect_video", [tensor], outputs=[grpcclient.InferRequestedOutput(n) for n in OUTPUTS])
    return {name: result.as_numpy(name) for name in OUTPUTS}


def assert_well_formed(out: dict[str, np.ndarray]) -> None:
    for name in ("FRAME_TIME_S", "FRAME_FAKE_PROB", "FRAME_HAS_FACE", "FRAME_FACE_COUNT"):
        assert out[name].shape == (16,), name
    for name in ("TEMPORAL_FAKE_PROB", "FRAMES_FAKE_PROB", "AUDIO_FAKE_PROB", "HAS_AUDIO", "FAKE_PROB", "DEMO_WEIGHTS"):
        assert out[name].shape == (1,), name
    for name in ("TEMPORAL_FAKE_PROB", "FAKE_PROB"):
        assert 0 <= out[name][0] <= 1, name
    frames, has_face = out["FRAME_FAKE_PROB"], out["FRAME_HAS_FACE"]
    assert np.all(frames[~has_face] == -1) and np.all((frames[has_face] >= 0) & (frames[has_face] <= 1))
    assert np.all(np.diff(out["FRAME_TIME_S"]) >= 0)
    assert out["DEMO_WEIGHTS"].tolist() == [True]
    for value in out.values():
        assert not np.issubdtype(value.dtype, np.floating) or np.isfinite(value).all()


@pytest.fixture(scope="module")
def face_frames() -> list[np.ndarray]:
    return media_av.moving_frames(media.astronaut(), 24, 256, 256)


@pytest.mark.parametrize("name", list(media_av.VIDEO_FORMATS))
def test_every_container_is_scored_with_faces_and_audio(grpc_client, face_frames, name):
    out = detect(grpc_client, media_av.encode_video(face_frames, 12, name, audio=media_av.speechlike))
    assert_well_formed(out)
    assert out["FRAME_HAS_FACE"].all() and (out["FRAME_FACE_COUNT"] == 1).all()
    assert out["HAS_AUDIO"].tolist() == [True] and out["AUDIO_SILENT"].tolist() == [False]
    assert 0 <= out["AUDIO_FAKE_PROB"][0] <= 1
    expected_times = np.linspace(0, 23, 16, dtype=int) / 12
    np.testing.assert_allclose(out["FRAME_TIME_S"], expected_times, atol=1e-3)


def test_scores_equal_the_in_process_pipeline(grpc_client, face_frames):
    """Same frames, same MTCNN, same ONNX models, same rules as the library computes."""
    data = media_av.encode_video(face_frames, 12, "mp4_h264_aac", audio=media_av.speechlike)
    out = detect(grpc_client, data)
    sample = sample_video(data)
    models = MODEL_REPOSITORY

    def fake(model: str, batch: np.ndarray) -> np.ndarray:
        runner = OnnxRunner(models / model / "1" / "model.onnx", SessionSettings(2))
        return runner.run_batch([{"input": batch}], ["output"])[0]["output"][:, 1]

    temporal = float(fake("temporal_analyzer", V.temporal_input(sample))[0])
    assert out["TEMPORAL_FAKE_PROB"][0] == pytest.approx(temporal, abs=1e-5)
    faces = V.detect_frame_faces(FaceDetector(models / "face_detector" / "1", FaceSettings(max_faces=4)), sample)
    frames = V.frame_scores(fake("visual_detector", faces.visual_input), faces)
    np.testing.assert_allclose(out["FRAME_FAKE_PROB"], frames, atol=1e-5)
    frames_score = FrameAggregation().score(frames, faces.has_face)
    assert out["FRAMES_FAKE_PROB"][0] == pytest.approx(frames_score, abs=1e-5)
    windows = V.audio_track(sample)
    audio = float(np.sort(fake("audio_detector", windows.inputs))[-1])  # 2 s of audio: one window
    assert out["AUDIO_FAKE_PROB"][0] == pytest.approx(audio, abs=1e-5)
    fused = VideoFusion().score(temporal, frames_score, audio)
    assert out["FAKE_PROB"][0] == pytest.approx(fused, abs=1e-5)


def test_video_without_audio_says_so_and_fuses_without_it(grpc_client, face_frames):
    out = detect(grpc_client, media_av.encode_video(face_frames[:8], 8, "mp4_h264_aac"))
    assert_well_formed(out)
    assert out["HAS_AUDIO"].tolist() == [False] and out["AUDIO_FAKE_PROB"].tolist() == [-1.0]
    # 8 frames: the last is repeated to make 16, as the training sampling does.
    assert out["FRAME_TIME_S"][7:].tolist() == [out["FRAME_TIME_S"][7]] * 9
    expected = VideoFusion().score(float(out["TEMPORAL_FAKE_PROB"][0]), float(out["FRAMES_FAKE_PROB"][0]), None)
    assert out["FAKE_PROB"][0] == pytest.approx(expected, abs=1e-6)


def test_faceless_video_marks_every_frame_and_uses_the_temporal_score(grpc_client):
    silence = lambda sr, seconds: np.zeros(int(sr * seconds), np.float32)  # noqa: E731
    out = detect(
        grpc_client, media_av.encode_video(media_av.gradient_frames(20, 96, 64), 10, "webm_vp9_opus", audio=silence)
    )
    assert_well_formed(out)
    assert not out["FRAME_HAS_FACE"].any() and (out["FRAME_FAKE_PROB"] == -1).all()
    assert out["FRAMES_FAKE_PROB"].tolist() == [-1.0]
    assert out["HAS_AUDIO"].tolist() == [True] and out["AUDIO_SILENT"].tolist() == [True]
    assert out["AUDIO_FAKE_PROB"].tolist() == [-1.0]
    assert out["FAKE_PROB"][0] == pytest.approx(out["TEMPORAL_FAKE_PROB"][0], abs=1e-6)

"""detect_video over the whole file: segments, a frame timeline, one track per person, the audio timeline.

The scene is built here: 30 s, one person for the first 10 s, an empty room
for the next 10, two people walking towards each other for the last 10.
"""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from deepfake_contract import DETECT_VIDEO
from deepfake_serving import video_pipeline as V
from deepfake_serving.image_pipeline import FaceDetector, FaceSettings
from deepfake_serving.onnx_runner import OnnxRunner, SessionSettings
from deepfake_serving.testing import media_av
from deepfake_serving.testing.triton import MODEL_REPOSITORY
from deepfake_serving.video import VideoReader

pytestmark = pytest.mark.server

OUTPUTS = list(DETECT_VIDEO.output_names)
FPS, SECONDS = 10, 30
STEP_S = 0.5  # the timeline's sampling step at the shipped frame_rate_hz (2)


def layout(t: float) -> list[tuple[float, float]]:
    if t < 10:
        return [(0.5, 0.5)]
    if t < 20:
        return []
    walked = 0.012 * (t - 20)
    return [(0.25 + walked, 0.5), (0.75 - walked, 0.45)]


@pytest.fixture(scope="module")
def scene() -> bytes:
    frames = media_av.people_frames(layout, SECONDS, FPS)
    return media_av.encode_video(frames, FPS, "mp4_h264_aac", audio=media_av.speechlike)


@pytest.fixture(scope="module")
def answer(grpc_client: grpcclient.InferenceServerClient, scene: bytes) -> dict[str, np.ndarray]:
    return detect(grpc_client, scene)


def detect(client: grpcclient.InferenceServerClient, data: bytes) -> dict[str, np.ndarray]:
    tensor = grpcclient.InferInput("VIDEO", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([data], dtype=object))
    result = client.infer("detect_video", [tensor], outputs=[grpcclient.InferRequestedOutput(n) for n in OUTPUTS])
    return {name: result.as_numpy(name) for name in OUTPUTS}


def test_segments_cover_the_whole_video(answer: dict[str, np.ndarray]) -> None:
    start, end, prob = answer["SEGMENT_START_S"], answer["SEGMENT_END_S"], answer["SEGMENT_FAKE_PROB"]
    assert len(start) == len(end) == len(prob) > 1
    assert np.all(np.diff(start) > 0) and np.all(end > start)
    covered = np.zeros(SECONDS * 100, bool)  # centiseconds covered by some segment
    for s, e in zip(start, end, strict=True):
        covered[int(s * 100) : int(e * 100)] = True
    assert covered.sum() / 100 >= 27
    assert np.all((prob >= 0) & (prob <= 1))


def test_the_timeline_runs_at_the_frame_rate_over_the_whole_video(answer: dict[str, np.ndarray]) -> None:
    times = answer["FRAME_TIME_S"]
    assert len(times) == SECONDS / STEP_S
    assert times[0] == 0 and times[-1] >= SECONDS - STEP_S - 1 / FPS
    assert np.diff(times).max() <= STEP_S + 1e-3


def test_one_person_then_nobody_then_two_people(answer: dict[str, np.ndarray]) -> None:
    times, counts = answer["FRAME_TIME_S"], answer["FRAME_FACE_COUNT"]
    middle = (times >= 10) & (times < 20)
    assert (counts[middle] == 0).all()
    assert (answer["FRAME_FAKE_PROB"][middle] == -1).all() and not answer["FRAME_HAS_FACE"][middle].any()
    face_times = times[answer["FACE_FRAME"]]
    assert not ((face_times >= 10) & (face_times < 20)).any()

    starts, ends, judged = answer["TRACK_START_S"], answer["TRACK_END_S"], answer["TRACK_JUDGED"]
    first = judged & (ends < 10 + STEP_S)
    last = judged & (starts >= 20 - STEP_S)
    assert first.sum() == 1 and last.sum() == 2, (starts, ends, judged)
    tolerance = STEP_S + 1 / FPS
    assert abs(starts[first][0] - 0) <= tolerance and abs(ends[first][0] - 10) <= tolerance
    assert np.all(np.abs(starts[last] - 20) <= tolerance) and np.all(np.abs(ends[last] - 30) <= tolerance)
    # Every judged track is one of these three people.
    assert judged.sum() == 3


def test_faces_tracks_and_frames_agree(answer: dict[str, np.ndarray]) -> None:
    n = len(answer["FACE_FRAME"])
    assert answer["FACE_TRACK"].shape == (n,) and answer["FACE_BOXES"].shape == (n, 4)
    assert answer["FACE_FAKE_PROB"].shape == (n,)
    assert np.bincount(answer["FACE_FRAME"], minlength=len(answer["FRAME_TIME_S"])).tolist() == (
        answer["FRAME_FACE_COUNT"].tolist()
    )
    assert np.bincount(answer["FACE_TRACK"]).tolist() == answer["TRACK_FACES"].tolist()
    for frame in np.unique(answer["FACE_FRAME"]):
        mine = answer["FACE_FRAME"] == frame
        assert answer["FRAME_FAKE_PROB"][frame] == pytest.approx(answer["FACE_FAKE_PROB"][mine].max(), abs=1e-6)
    judged = answer["TRACK_JUDGED"]
    # One manipulated person makes the video fake: the frames' score is the worst judged track's.
    assert answer["FRAMES_FAKE_PROB"][0] == pytest.approx(answer["TRACK_FAKE_PROB"][judged].max(), abs=1e-6)
    assert answer["COVERAGE_REDUCED"].tolist() == [False]


def test_the_audio_timeline_is_returned(answer: dict[str, np.ndarray]) -> None:
    starts, probs, silent = (
        answer["AUDIO_WINDOW_START_S"],
        answer["AUDIO_WINDOW_FAKE_PROB"],
        answer["AUDIO_WINDOW_SILENT"],
    )
    assert len(starts) == len(probs) == len(silent) >= 7  # 30 s in 4 s windows
    assert starts[0] == 0 and np.all(np.diff(starts) >= 0)
    assert np.all(probs[silent] == -1) and np.all((probs[~silent] >= 0) & (probs[~silent] <= 1))


def test_the_server_computes_what_the_library_computes(answer: dict[str, np.ndarray], scene: bytes) -> None:
    def fake(model: str):
        runner = OnnxRunner(MODEL_REPOSITORY / model / "1" / "model.onnx", SessionSettings(2))
        return lambda batch: runner.run_batch([{"input": batch}], ["output"])[0]["output"][:, 1]

    detectors = V.Detectors(fake("visual_detector"), fake("temporal_analyzer"), fake("audio_detector"))
    faces = FaceDetector(MODEL_REPOSITORY / "face_detector" / "1", FaceSettings(max_faces=4))
    with VideoReader(scene) as reader:
        mine = V.analyze_video(reader, faces, detectors, data=scene)
    np.testing.assert_allclose(answer["SEGMENT_FAKE_PROB"], mine.segment_fake_prob, atol=1e-5)
    assert answer["TEMPORAL_FAKE_PROB"][0] == pytest.approx(mine.temporal_fake_prob, abs=1e-5)
    np.testing.assert_allclose(answer["FACE_FAKE_PROB"], mine.face_fake_prob, atol=1e-5)
    np.testing.assert_array_equal(answer["FACE_TRACK"], mine.face_track)
    np.testing.assert_allclose(answer["TRACK_FAKE_PROB"], mine.tracks.fake_prob, atol=1e-5)
    np.testing.assert_allclose(answer["AUDIO_WINDOW_FAKE_PROB"], mine.audio_fake_prob, atol=1e-5)


def test_a_video_whose_every_frame_fails_to_decode_is_refused_clearly(grpc_client) -> None:
    good = media_av.encode_video(media_av.gradient_frames(20, 96, 64), 10, "mp4_h264_aac")
    with pytest.raises(Exception) as error:
        detect(grpc_client, media_av.garbled_video(good))
    message = str(error.value)
    assert "VIDEO" in message and ("corrupt" in message or "no video frame could be decoded" in message), message
    assert "INVALID_ARG" in message or "StatusCode.INVALID_ARGUMENT" in message, message

"""Impatient clients: gRPC requests abandoned at their deadline, on every entry model.

Two concurrent ``detect_image`` requests whose deadline expired while
``face_detector`` was still working crashed Triton 2.51 with SIGSEGV (4 of 4
tries) while ``detect_image`` ran ``visual_detector`` and ``forensic_features``
in parallel: an ensemble whose parallel branch is cancelled while the other is
in flight answers the client twice (``FinishEnsemble`` in 2.51's
``ensemble_scheduler.cc``; fixed upstream by core#466). The ensembles now run one
step at a time. This test repeats rounds of concurrent abandoned requests with
deadlines swept across each pipeline's work, then asks for a good answer and
compares it with the one given before.

It fails on the defect: with ``forensic_features``' ``ORDER_AFTER`` input
unmapped in ``detect_image/config.pbtxt`` the server dies in the first rounds.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from deepfake_serving.testing import media, media_av
from deepfake_serving.testing.triton import running_triton
from tests.server.helpers import infer

pytestmark = pytest.mark.server

ROUNDS = 6
CONCURRENT = 3
DEADLINES_S = (0.05, 0.15, 0.3, 0.5, 0.8, 1.2)


def _noise_jpeg(side: int) -> bytes:
    # Noise has no face and compresses badly: MTCNN's pyramid works on every pixel.
    rng = np.random.default_rng(0)
    return media.encode((rng.random((side, side, 3)) * 255).astype(np.uint8), "JPEG", quality=80)


def _video() -> bytes:
    frames = media_av.moving_frames(media.astronaut(), 40, 640, 360)
    return media_av.encode_frames(frames, 10, "mp4", "libx264", "yuv420p", {"preset": "ultrafast", "g": "40"})


ENTRY_INPUTS = {
    "detect_image": ("IMAGE", lambda: _noise_jpeg(2500)),
    "detect_audio": ("AUDIO", lambda: media_av.audio_clip("wav", 100.0)),
    "detect_video": ("VIDEO", _video),
}


def _request(url: str, model: str, name: str, data: bytes, timeout_s: float) -> grpcclient.InferResult:
    """One request on its own connection (each abandoning client is a separate client)."""
    client = grpcclient.InferenceServerClient(url)
    try:
        return infer(client, model, [(name, np.array([data], dtype=object), "BYTES")], timeout_s=timeout_s)
    finally:
        client.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_triton(tmp_path_factory.mktemp("abandoned")) as server:
        yield server


@pytest.mark.parametrize("model", sorted(ENTRY_INPUTS))
def test_abandoned_requests_do_not_crash_the_server(server, model):
    name, make = ENTRY_INPUTS[model]
    data = make()
    started = time.monotonic()
    before = _request(server.grpc_url, model, name, data, 120).as_numpy("FAKE_PROB")
    work_s = time.monotonic() - started
    outcomes: list[str] = []

    def abandon(timeout_s: float) -> None:
        try:
            _request(server.grpc_url, model, name, data, timeout_s)
            outcomes.append("answered")
        except InferenceServerException as error:
            outcomes.append(error.status() or "?")

    for round_ in range(ROUNDS):
        threads = [threading.Thread(target=abandon, args=(DEADLINES_S[round_ % len(DEADLINES_S)],))]
        threads += [
            threading.Thread(target=abandon, args=(DEADLINES_S[(round_ + k) % 3],)) for k in range(1, CONCURRENT)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        # Let the abandoned work finish inside the server before the next round.
        time.sleep(min(CONCURRENT * work_s, 8))
        assert server.process.poll() is None, f"tritonserver died in round {round_}:\n{server.log_tail()}"

    assert "StatusCode.DEADLINE_EXCEEDED" in outcomes, f"no request was abandoned ({outcomes}); the test tests nothing"
    assert server.is_ready()
    after = _request(server.grpc_url, model, name, data, 120).as_numpy("FAKE_PROB")
    np.testing.assert_array_equal(after, before)


def _compute_stats(url: str, model: str) -> tuple[int, int]:
    """(count, ns) of ``model``'s compute_infer: a request answered with an error counts there too."""
    client = grpcclient.InferenceServerClient(url)
    try:
        stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]["inference_stats"]
        infer = stats.get("compute_infer", {})
        return int(infer.get("count", 0)), int(infer.get("ns", 0))
    finally:
        client.close()


def test_a_cancelled_request_stops_its_work_early(server):
    """A client that gives up on ``face_detector`` (a direct call, so Triton marks the request
    cancelled) frees the instance at the next budget check instead of after the whole MTCNN.
    Measured: a 0.9 s job cancelled at 0.2 s ended after 0.42 s (the first pyramid scale)."""
    data = _noise_jpeg(3500)
    count0, ns0 = _compute_stats(server.grpc_url, "face_detector")
    _request(server.grpc_url, "face_detector", "IMAGE", data, 120)
    # Triton updates the statistics just after it sends the response: wait for them.
    settle = time.monotonic() + 10
    while (stats := _compute_stats(server.grpc_url, "face_detector"))[0] == count0:
        assert time.monotonic() < settle, "the served request never reached the statistics"
        time.sleep(0.05)
    count1, ns1 = stats
    assert count1 == count0 + 1
    full_s = (ns1 - ns0) / 1e9
    with pytest.raises(InferenceServerException, match="Deadline"):
        _request(server.grpc_url, "face_detector", "IMAGE", data, 0.2)
    deadline = time.monotonic() + full_s + 10
    while (stats := _compute_stats(server.grpc_url, "face_detector"))[0] == count1:
        assert time.monotonic() < deadline, "the cancelled request never ended"
        time.sleep(0.05)
    cancelled_s = (stats[1] - ns1) / 1e9
    assert cancelled_s < 0.7 * full_s, f"the cancelled request computed {cancelled_s:.2f} s of a {full_s:.2f} s job"

"""SIGTERM during traffic against the real server.

Measured behaviour of Triton 2.51 (recorded in RELIABILITY.md): once SIGTERM
arrives, every scheduler refuses new work, so a ``detect_image`` request that
is between two ensemble steps cannot finish. It fails with UNAVAILABLE
("Server is stopping"), or it gets no answer at all and only the client's
deadline ends it. New requests are refused at once with UNAVAILABLE, and the
process exits within ``--exit-timeout-secs``. Hence the production setup: a
preStop sleep so the pod leaves the Service before SIGTERM, client deadlines,
and client retries for UNAVAILABLE and DEADLINE_EXCEEDED (inference is
idempotent). What must never happen is a wrong answer or an unbounded wait.
"""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tests import media
from tests.triton_process import MODEL_REPOSITORY, start_triton

pytestmark = pytest.mark.server
IMAGE_MODELS = ("face_detector", "visual_detector", "forensic_features", "forensic_classifier", "image_fusion", "detect_image")
DEADLINE_S = 15
RETRYABLE = {"StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED"}


def detect(url: str, data: bytes) -> float:
    client = grpcclient.InferenceServerClient(url)
    try:
        tensor = grpcclient.InferInput("IMAGE", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([data], dtype=object))
        result = client.infer("detect_image", [tensor], client_timeout=DEADLINE_S)
        return float(result.as_numpy("FAKE_PROB")[0])
    finally:
        client.close()


def test_sigterm_refuses_new_work_and_ends_every_request_within_its_deadline(tmp_path):
    repository = tmp_path / "repository"
    repository.mkdir()
    for name in IMAGE_MODELS:
        (repository / name).symlink_to(MODEL_REPOSITORY / name)
    server = start_triton(tmp_path, repository=repository)
    data = media.encode(media.grid_2x2(media.astronaut()), "JPEG")
    try:
        expected = detect(server.grpc_url, data)
        outcomes: list[tuple[str, float | None]] = []

        def call() -> None:
            try:
                outcomes.append(("ok", detect(server.grpc_url, data)))
            except InferenceServerException as error:
                outcomes.append((str(error.status()), None))

        threads = [threading.Thread(target=call) for _ in range(6)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)  # all six in flight: a four-face image takes seconds on 2 cores
        stopped_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.2)

        with pytest.raises(InferenceServerException) as refused:
            detect(server.grpc_url, data)
        assert str(refused.value.status()) == "StatusCode.UNAVAILABLE"
        assert "Server is stopping" in refused.value.message()

        server.process.wait(server.options.exit_timeout_s + 10)
        assert time.monotonic() - stopped_at < server.options.exit_timeout_s + 10
        for thread in threads:
            thread.join(DEADLINE_S + 5)
        assert not any(thread.is_alive() for thread in threads), "a request outlived its deadline"
        assert len(outcomes) == 6
        for status, value in outcomes:
            assert status == "ok" and value == expected or status in RETRYABLE, (status, value)
    finally:
        server.stop()

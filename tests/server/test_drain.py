"""The preStop drain: it returns only once the edge has nothing in flight.

Triton 2.51 cuts in-flight ensemble requests at SIGTERM, so in Kubernetes
Triton's ``preStop`` runs ``python -m deepfake_serving.drain`` against the edge's
``caddy_http_requests_in_flight``. Here the real edge runs in front of the real
server while four ``detect_video`` requests (about a second and a half of CPU
each, on two cores) are in flight: the drain must not return before every one
of them has been answered.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from deepfake_serving import drain
from tests import media, media_av
from tests.server.edge import run_edge

pytestmark = pytest.mark.server


def test_metrics_parsing_sums_proxied_requests_and_skips_the_scrape():
    text = (
        "# HELP caddy_http_requests_in_flight Number of requests currently handled by this server.\n"
        'caddy_http_requests_in_flight{handler="metrics",server="srv0"} 1\n'
        'caddy_http_requests_in_flight{handler="reverse_proxy",server="srv1"} 2\n'
        'caddy_http_requests_in_flight{handler="reverse_proxy",server="srv2"} 1\n'
        'caddy_http_requests_total{handler="reverse_proxy",server="srv1"} 40\n'
    )
    assert drain.requests_in_flight(text) == 3
    assert drain.requests_in_flight("") == 0


def test_the_drain_waits_for_every_in_flight_request(triton, tmp_path):
    clip = media_av.encode_video(media_av.moving_frames(media.astronaut(), 50, 320, 240), 25, "mp4_h264_aac")
    finished: list[float] = []
    failures: list[str] = []

    with run_edge(triton, tmp_path) as ports:
        metrics_url = f"http://127.0.0.1:{ports['metrics']}/metrics"
        assert drain.read_in_flight(metrics_url) == 0

        def call() -> None:
            client = grpcclient.InferenceServerClient(f"127.0.0.1:{ports['grpc']}")
            try:
                tensor = grpcclient.InferInput("VIDEO", [1], "BYTES")
                tensor.set_data_from_numpy(np.array([clip], dtype=object))
                client.infer("detect_video", [tensor], client_timeout=120)
                finished.append(time.monotonic())
            except Exception as error:  # noqa: BLE001 - recorded and asserted below
                failures.append(repr(error))
            finally:
                client.close()

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while drain.read_in_flight(metrics_url) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert drain.read_in_flight(metrics_url) > 0, "the requests never reached the edge"

        done_file = tmp_path / "drain" / "done"
        status = drain.main(
            ["--edge-metrics", metrics_url, "--settle", "0", "--timeout", "110", "--poll", "0.2",
             "--done-file", str(done_file)]
        )  # fmt: skip
        drained_at = time.monotonic()
        for thread in threads:
            thread.join(120)

    assert status == 0 and done_file.exists()
    assert not failures, failures
    assert len(finished) == 4
    assert max(finished) <= drained_at, "the drain returned while a request was still in flight"


def test_an_unreachable_edge_ends_the_drain_at_once_and_still_signals_done(tmp_path: Path):
    done_file = tmp_path / "done"
    started = time.monotonic()
    assert drain.main(["--edge-metrics", "http://127.0.0.1:9/metrics", "--settle", "0", "--done-file", str(done_file)]) == 1
    assert done_file.exists() and time.monotonic() - started < 5

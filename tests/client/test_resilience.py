"""Retries, deadlines and several endpoints, against real servers."""

from __future__ import annotations

import time

import pytest

from deepfake_client import DeadlineExceededError, DeepfakeClient, ImageResult, RetryPolicy, UnavailableError
from deepfake_serving.testing.triton import TritonProcess, free_port
from tests.client.conftest import LateServer

FAST_RETRY = RetryPolicy(attempts=3, initial_backoff_s=0.05, max_backoff_s=0.1)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_server_that_is_down_is_retried_then_reported_unavailable(protocol: str, small_jpeg: bytes) -> None:
    url = f"127.0.0.1:{free_port()}"
    with DeepfakeClient(url, protocol=protocol, retry=FAST_RETRY, timeout=5) as client:
        assert not client.is_ready()
        with pytest.raises(UnavailableError) as down:
            client.detect_image(small_jpeg)
        with pytest.raises(UnavailableError, match="not ready after"):
            client.wait_until_ready(0.2)
    assert down.value.attempts == 3 and down.value.url == url and down.value.__cause__ is not None


def test_a_server_that_comes_up_late_is_reached_by_retrying(late_server: LateServer, small_jpeg: bytes) -> None:
    patient = RetryPolicy(attempts=200, initial_backoff_s=0.2, max_backoff_s=1.0)
    started = time.monotonic()
    with DeepfakeClient(late_server.grpc_url, retry=patient, timeout=30) as client:
        result = client.detect_image(small_jpeg)
    assert isinstance(result, ImageResult) and result.face_found
    assert late_server.future.done(), "the server was up before the call returned"
    assert time.monotonic() - started > 2


def detect_image_count(url: str) -> int:
    import tritonclient.grpc as grpcclient

    with grpcclient.InferenceServerClient(url) as stats:
        answer = stats.get_inference_statistics("detect_image", as_json=True)
    return int(answer["model_stats"][0].get("inference_count", 0))


def test_requests_are_spread_round_robin_over_two_servers(
    triton: TritonProcess, late_server: LateServer, small_jpeg: bytes
) -> None:
    late_server.wait()
    urls = [triton.grpc_url, late_server.grpc_url]
    before = [detect_image_count(url) for url in urls]
    with DeepfakeClient(urls) as client:
        assert client.urls == urls
        results = list(client.detect_many([small_jpeg] * 6, concurrency=2))
    assert len(results) == 6
    # Triton counts an inference after its response is sent: poll briefly.
    deadline = time.monotonic() + 10
    while True:
        served = [detect_image_count(url) - count for url, count in zip(urls, before, strict=True)]
        if sum(served) >= 6 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert served == [3, 3]


def test_a_dns_target_expands_to_every_address_behind_the_name() -> None:
    from deepfake_client._common import Endpoints

    endpoints = Endpoints("dns:///localhost:8123", protocol="grpc")
    assert "127.0.0.1:8123" in endpoints.urls
    assert {endpoints.next() for _ in endpoints.urls} == set(endpoints.urls)


def test_a_closed_port_first_in_the_list_is_failed_over_to_the_live_server(
    triton: TritonProcess, small_jpeg: bytes
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    before = detect_image_count(triton.grpc_url)
    with DeepfakeClient([dead, triton.grpc_url], retry=FAST_RETRY, timeout=30) as client:
        results = [client.detect_image(small_jpeg) for _ in range(4)]
    assert all(isinstance(r, ImageResult) and r.face_found for r in results)
    deadline = time.monotonic() + 10
    while detect_image_count(triton.grpc_url) - before < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert detect_image_count(triton.grpc_url) - before == 4  # every call reached the live one


def test_a_draining_endpoint_is_failed_over_to_the_live_server(
    tmp_path, triton: TritonProcess, small_jpeg: bytes
) -> None:
    """A server whose entry model was unloaded (what the supervisor's drain does) answers
    NOT_FOUND "has no available versions": the client must go on to the next endpoint."""
    from deepfake_serving.repository_api import RepositoryApi
    from deepfake_serving.server_flags import ADMIN_HEADER, local_flags
    from deepfake_serving.testing.triton import start_triton, subset_repository

    draining = start_triton(tmp_path, subset_repository(tmp_path), extra=local_flags("drain-key"))
    try:
        api = RepositoryApi(f"http://{draining.http_url}", {ADMIN_HEADER: "drain-key"})
        api.unload("detect_image")
        deadline = time.monotonic() + 30
        while api.states().get("detect_image") == "READY" and time.monotonic() < deadline:
            time.sleep(0.1)
        with DeepfakeClient([draining.grpc_url, triton.grpc_url], retry=FAST_RETRY, timeout=30) as client:
            result = client.detect_image(small_jpeg)
        assert isinstance(result, ImageResult) and result.face_found
        with DeepfakeClient(draining.grpc_url, retry=FAST_RETRY, timeout=30) as alone:
            with pytest.raises(UnavailableError, match="no available versions") as refused:
                alone.detect_image(small_jpeg)
        assert refused.value.attempts == FAST_RETRY.attempts  # retried, as UNAVAILABLE is
    finally:
        draining.stop()


@pytest.mark.parametrize("retry_deadline", [False, True])
def test_a_request_past_its_deadline_is_reported_and_retried_only_when_asked(
    triton: TritonProcess, retry_deadline: bool
) -> None:
    import numpy as np

    from deepfake_serving.testing import media

    rng = np.random.default_rng(0)
    slow = media.encode((rng.random((2500, 2500, 3)) * 255).astype(np.uint8), "JPEG", quality=80)  # ~1 s of MTCNN
    policy = RetryPolicy(attempts=3, initial_backoff_s=0.05, max_backoff_s=0.1, retry_deadline_exceeded=retry_deadline)
    with DeepfakeClient(triton.grpc_url, retry=policy, timeout=0.2) as client:
        with pytest.raises(DeadlineExceededError) as late:
            client.detect_image(slow)
    assert late.value.attempts == (3 if retry_deadline else 1)

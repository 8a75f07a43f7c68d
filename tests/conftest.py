"""Shared fixtures: one real Triton server per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.triton_process import TritonProcess, start_triton


@pytest.fixture(scope="session")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonProcess]:
    """The project's model repository served by the real tritonserver."""
    server = start_triton(tmp_path_factory.mktemp("triton"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def grpc_client(triton: TritonProcess):
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(triton.grpc_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def http_client(triton: TritonProcess):
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(triton.http_url, concurrency=4)
    yield client
    client.close()

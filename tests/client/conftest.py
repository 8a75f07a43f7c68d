"""Fixtures for the client tests: small media and a second server that starts late."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepfake_serving.testing.media import astronaut, encode
from deepfake_serving.testing.triton import TritonProcess, free_port, start_triton, subset_repository

LATE_START_DELAY_S = 2.0


@pytest.fixture(scope="session")
def small_jpeg() -> bytes:
    """The astronaut at 256x256: one face, and cheap to score on two shared cores."""
    return encode(np.asarray(Image.fromarray(astronaut()).resize((256, 256))), "JPEG", quality=90)


@pytest.fixture(scope="session")
def image_file(tmp_path_factory: pytest.TempPathFactory, small_jpeg: bytes) -> Path:
    """The small astronaut under a misleading name, so dispatch must go by content."""
    path = tmp_path_factory.mktemp("media") / "astronaut.bin"
    path.write_bytes(small_jpeg)
    return path


@dataclass
class LateServer:
    """A second Triton serving only the image models, started ``LATE_START_DELAY_S`` after the fixture.

    Its gRPC port is chosen up front, so a client can be pointed at it before
    anything listens there.
    """

    grpc_url: str
    future: concurrent.futures.Future[TritonProcess]

    def wait(self, timeout_s: float = 300) -> TritonProcess:
        return self.future.result(timeout_s)


@pytest.fixture(scope="session")
def late_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LateServer]:
    workdir = tmp_path_factory.mktemp("late-triton")
    repository = subset_repository(workdir)
    grpc_port = free_port()

    def start() -> TritonProcess:
        time.sleep(LATE_START_DELAY_S)
        return start_triton(workdir, repository=repository, grpc_port=grpc_port)

    pool = concurrent.futures.ThreadPoolExecutor(1)
    late = LateServer(f"127.0.0.1:{grpc_port}", pool.submit(start))
    try:
        yield late
    finally:
        try:
            late.wait().stop()
        finally:
            pool.shutdown()

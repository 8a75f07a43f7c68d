"""Shared fixtures: one real Triton server per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from deepfake_serving.testing.triton import TritonProcess, start_triton


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


#: Fixtures that start a real server: a test using one is a ``server`` test wherever it lives.
SERVER_FIXTURES = frozenset({"triton", "grpc_client", "http_client", "late_server"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI (``CI`` set, as ``.ci/run`` is run) a skipped test fails the run: every tool
    the suite needs is installed by the project's own files, so a skip means one is missing
    and whatever it guards went untested."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if os.environ.get("CI") and skipped and exitstatus == 0:
        for report in skipped:
            reporter.write_line(f"CI: skipped, which fails the run: {report.nodeid} ({report.longrepr})")
        session.exitstatus = 1

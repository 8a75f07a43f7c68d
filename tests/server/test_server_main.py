"""What ``make serve`` runs, ``python -m deepfake_serving.server``, run as it is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from deepfake_serving.testing.triton import free_ports, subset_repository, wait_http_ok

pytestmark = pytest.mark.server


def _listening(port: int) -> set[str]:
    """The local addresses a socket listens on ``port`` (IPv4 and IPv6), from /proc."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


#: 127.0.0.1 as /proc writes it, and as an IPv4-mapped IPv6 address (gRPC's listener).
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F"}


def test_make_serve_listens_on_loopback_only_and_stops_on_ctrl_c(tmp_path):
    http, grpc, metrics = free_ports(3)
    repository = subset_repository(tmp_path, ["image_fusion"])
    command = [sys.executable, "-m", "deepfake_serving.server", "--model-repository", str(repository),
               "--backend-directory", str(tmp_path / "backends"), "--http-port", str(http),
               "--grpc-port", str(grpc), "--metrics-port", str(metrics)]  # fmt: skip
    env = {**os.environ, "TRITON_ADMIN_KEY": "main-test"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        assert wait_http_ok(f"http://127.0.0.1:{http}/v2/health/ready", process, 120), "never ready"
        for port in (http, grpc, metrics):
            addresses = _listening(port)
            assert addresses and addresses <= LOOPBACK, f"port {port} listens on {addresses}, not 127.0.0.1 alone"
        os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
        output = process.communicate(timeout=60)[0].decode(errors="replace")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    assert process.returncode == 0, output[-3000:]
    assert "admin APIs need the header triton-admin-key: main-test" in output
    assert "SIGINT: draining" in output and "tritonserver exited with 0" in output

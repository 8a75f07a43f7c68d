"""Run the real ``tritonserver`` as a child process, for the tests and the benchmarks.

Free ports and a private backend directory per server, so test sessions can
run next to ``make serve`` and next to each other; the whole process group
(Triton and its Python stubs) is torn down, even when a test fails.

``ROOT`` is the checkout this module lives in (an editable install, as
``make venv`` makes); ``DEEPFAKE_MODEL_REPOSITORY`` points
``MODEL_REPOSITORY`` elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import deepfake_contract as contract
from deepfake_serving.server import ServerOptions, TritonInstall, assemble_backends, server_env
from deepfake_serving.supervise import remove_shm_regions

#: The repository root: this file is src/deepfake_serving/testing/triton.py.
ROOT = Path(__file__).resolve().parents[3]
# Overridable so work in progress can be served from a scratch repository.
MODEL_REPOSITORY = Path(os.environ.get("DEEPFAKE_MODEL_REPOSITORY", ROOT / "model_repository")).resolve()


#: The models ``detect_image`` needs: a server with only these starts in a few seconds.
IMAGE_MODELS = tuple(
    model.name
    for model in (
        contract.FACE_DETECTOR,
        contract.VISUAL_DETECTOR,
        contract.FORENSIC_FEATURES,
        contract.FORENSIC_CLASSIFIER,
        contract.IMAGE_FUSION,
        contract.DETECT_IMAGE,
    )
)


def subset_repository(root: Path, models: Iterable[str] = IMAGE_MODELS) -> Path:
    """``root/repository``, holding links to ``models`` of the served repository."""
    repository = root / "repository"
    repository.mkdir(parents=True)
    for name in models:
        (repository / name).symlink_to(MODEL_REPOSITORY / name, target_is_directory=True)
    return repository


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: every socket stays bound until all are chosen,
    so the OS cannot hand the same port out twice (it did: HTTP and gRPC on one port)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def free_port() -> int:
    """A TCP port that was free on loopback a moment ago."""
    return free_ports(1)[0]


def wait_http_ok(url: str, process: subprocess.Popen, timeout_s: float) -> bool:
    """Until GET ``url`` answers 2xx (True), ``process`` exits or ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            time.sleep(0.5)
    return False


@dataclass
class TritonProcess:
    """A started server; ``http_url``/``grpc_url`` are host:port strings."""

    process: subprocess.Popen
    options: ServerOptions
    log_path: Path
    #: Process groups besides ``process``'s own: the supervised tritonserver's.
    groups: tuple[int, ...] = ()

    @property
    def http_url(self) -> str:
        """HTTP ``host:port`` (tritonclient's form, no scheme)."""
        return f"127.0.0.1:{self.options.http_port}"

    @property
    def grpc_url(self) -> str:
        """gRPC ``host:port``."""
        return f"127.0.0.1:{self.options.grpc_port}"

    @property
    def metrics_url(self) -> str:
        """The Prometheus metrics URL, scheme included."""
        return f"http://127.0.0.1:{self.options.metrics_port}/metrics"

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` of the server log, for error messages."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def is_ready(self) -> bool:
        """Whether ``/v2/health/ready`` answers 200 now."""
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def wait_ready(self, timeout_s: float) -> None:
        """Wait until the server is ready; raise with the log tail if it exits or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tritonserver exited with {self.process.returncode}:\n{self.log_tail()}")
            if self.is_ready():
                return
            time.sleep(0.5)
        raise TimeoutError(f"tritonserver not ready after {timeout_s:.0f}s:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 60) -> None:
        """SIGTERM the server (SIGKILL after ``timeout_s``), kill leftover stubs and remove their shared memory."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                pass
        # Stubs outlive a killed server; clean the whole group either way.
        for group in (self.process.pid, *self.groups):
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(10)
        # Killed stubs leave their shared-memory regions; this server's prefixes are its own.
        remove_shm_regions(list(self.options.shm_prefixes.values()))

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the server process alone (the supervisor, when there is one)."""
        self.process.send_signal(signum)


def _child(pid: int, timeout_s: float = 10) -> int:
    """The first child of ``pid`` (Linux ``/proc/<pid>/task/<pid>/children``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise TimeoutError(f"process {pid} started no child within {timeout_s:.0f}s")


def start_triton(
    workdir: Path,
    repository: Path = MODEL_REPOSITORY,
    extra: list[str] | None = None,
    ready_timeout_s: float = 300,
    supervised: bool = False,
    exit_timeout_s: int = 10,
    grpc_port: int | None = None,
) -> TritonProcess:
    """Start Triton on free ports and wait until every model is ready.

    ``grpc_port`` fixes the gRPC port (for a client started before the server).
    ``supervised`` runs it as production does, under ``deepfake_serving.supervise``
    (which needs ``--model-control-mode=explicit`` and the repository key in ``extra``).
    """
    install = TritonInstall.find()
    workdir.mkdir(parents=True, exist_ok=True)
    # Three distinct ports, none of them a gRPC port chosen by the caller.
    ports = [port for port in free_ports(4) if port != grpc_port][:3]
    if grpc_port is not None:
        ports[1] = grpc_port
    options = ServerOptions(
        model_repository=repository,
        backend_directory=assemble_backends(install, workdir / "backends"),
        http_port=ports[0],
        grpc_port=ports[1],
        metrics_port=ports[2],
        exit_timeout_s=exit_timeout_s,
        extra=list(extra or []),
    )
    log_path = workdir / "tritonserver.log"
    command = options.command(install)
    if supervised:
        command = [sys.executable, "-m", "deepfake_serving.supervise", "--", *command]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            env=server_env(install),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = TritonProcess(process, options, log_path)
    try:
        if supervised:
            server.groups = (_child(process.pid),)  # tritonserver leads its own group
        server.wait_ready(ready_timeout_s)
    except BaseException:
        server.stop()
        raise
    print(f"tritonserver ready: http {server.http_url}, grpc {server.grpc_url}, log {log_path}", file=sys.stderr)
    return server


@contextlib.contextmanager
def running_triton(workdir: Path, **options) -> Iterator[TritonProcess]:
    """:func:`start_triton` for a ``with`` block: the server is stopped however the block ends."""
    server = start_triton(workdir, **options)
    try:
        yield server
    finally:
        server.stop()

"""Start the real ``tritonserver`` from the ``nvidia-pytriton`` wheel on a CPU machine.

The wheel carries a complete Triton 2.51 (binary, Python backend, stubs and
shared libraries, under ``pytriton/tritonserver`` and ``nvidia_pytriton.libs``;
the ``pytriton`` Python package itself is not used). This module assembles the
backend directory Triton needs (the Python backend plus the project's
Python-based ``onnxruntime`` backend), builds the command line and runs it:
under :mod:`deepfake_serving.supervise` for ``make serve``, as a child process
for the tests.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import deepfake_serving
from deepfake_serving.server_flags import (
    ADMIN_HEADER,
    ADMIN_KEY_ENV,
    GRPC_ADMIN_METADATA,
    SHM_PREFIX_SETTING,
    local_flags,
)
from deepfake_serving.supervise import supervise

BACKENDS_SOURCE = Path(deepfake_serving.__file__).parent / "triton_backends"


@dataclass(frozen=True)
class TritonInstall:
    """Where the pieces of the wheel's Triton live."""

    root: Path  # .../site-packages/pytriton/tritonserver
    libs: Path  # .../site-packages/nvidia_pytriton.libs

    @classmethod
    def find(cls) -> TritonInstall:
        """Locate the server inside the installed ``nvidia-pytriton`` wheel, without importing it."""
        # find_spec does not import pytriton (its Python deps are not installed).
        spec = importlib.util.find_spec("pytriton")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("nvidia-pytriton is not installed; run `make venv`")
        package = Path(next(iter(spec.submodule_search_locations)))
        return cls(root=package / "tritonserver", libs=package.parent / "nvidia_pytriton.libs")

    @property
    def binary(self) -> Path:
        """The ``tritonserver`` executable."""
        return self.root / "bin" / "tritonserver"


def assemble_backends(install: TritonInstall, target: Path) -> Path:
    """Lay out ``target/python`` and ``target/onnxruntime`` for ``--backend-directory``.

    Files are copied, not linked: Triton refuses a backend library whose real
    path lies outside the backend directory. Unchanged files are left alone.
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    python_backend, stubs = install.root / "backends" / "python", install.root / "python_backend_stubs" / version
    files = {
        target / "python" / "libtriton_python.so": python_backend / "libtriton_python.so",
        target / "python" / "triton_python_backend_utils.py": python_backend / "triton_python_backend_utils.py",
        target / "python" / "triton_python_backend_stub": stubs / "triton_python_backend_stub",
        target / "onnxruntime" / "model.py": BACKENDS_SOURCE / "onnxruntime" / "model.py",
    }
    for copy, source in files.items():
        if not source.exists():
            raise RuntimeError(f"{source} is missing from the Triton install")
        if copy.is_file() and not copy.is_symlink() and copy.read_bytes() == source.read_bytes():
            continue
        copy.parent.mkdir(parents=True, exist_ok=True)
        if copy.is_symlink():
            copy.unlink()
        shutil.copy2(source, copy)
    return target


@dataclass
class ServerOptions:
    """The local server's settings. Every listener is bound to loopback: the
    2.51 build is for development only, as it predates fixes for NVIDIA's 2025
    security bulletins (HTTP parsing, Python backend); production runs the NGC
    image (``Dockerfile``)."""

    model_repository: Path
    backend_directory: Path
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    address: str = "127.0.0.1"
    exit_timeout_s: int = 30
    log_verbose: int = 0
    extra: list[str] = field(default_factory=list)

    @property
    def shm_prefixes(self) -> dict[str, str]:
        """The shared-memory region prefix of each Python-based backend, unique per HTTP port."""
        return {backend: f"deepfake_{self.http_port}_{backend}_" for backend in ("python", "onnxruntime")}

    def command(self, install: TritonInstall) -> list[str]:
        """The ``tritonserver`` command line for these settings, ``extra`` flags last."""
        return [
            str(install.binary),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={self.backend_directory}",
            f"--http-port={self.http_port}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-port={self.metrics_port}",
            f"--http-address={self.address}",
            f"--grpc-address={self.address}",
            f"--metrics-address={self.address}",
            "--disable-auto-complete-config",
            "--strict-readiness=true",
            f"--exit-timeout-secs={self.exit_timeout_s}",
            f"--log-verbose={self.log_verbose}",
            # Prefixes of this server's own: the supervisor removes a crashed
            # server's regions by prefix, and must not touch another server's.
            *(
                f"--backend-config={backend},{SHM_PREFIX_SETTING}{prefix}"
                for backend, prefix in self.shm_prefixes.items()
            ),
            *self.extra,
        ]


def server_env(install: TritonInstall) -> dict[str, str]:
    """The environment Triton and its Python stubs need.

    The stubs import packages from the virtual environment whose ``bin`` is
    first on PATH, so this interpreter's ``bin`` goes first.
    """
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(install.libs), env.get("LD_LIBRARY_PATH")]))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # One BLAS/OpenMP thread per stub: parallelism comes from Triton instances
    # and the ONNX Runtime thread counts in the configs, not from oversubscription.
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def main(argv: list[str] | None = None) -> int:
    """Run the local server in the foreground (``make serve``) until interrupted; return its exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m deepfake_serving.server", description="Run Triton on this machine."
    )
    parser.add_argument("--model-repository", type=Path, default=Path("model_repository"))
    parser.add_argument("--backend-directory", type=Path, default=Path("build/backends"))
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--log-verbose", type=int, default=0)
    parser.add_argument("extra", nargs="*", help="further tritonserver flags (after --)")
    args = parser.parse_args(argv)
    install = TritonInstall.find()
    # Admin APIs (repository, config, shared memory, logging, trace) need a
    # header secret, as in production; without one set, a fresh random key.
    admin_key = os.environ.get(ADMIN_KEY_ENV) or secrets.token_urlsafe(18)
    options = ServerOptions(
        model_repository=args.model_repository.resolve(),
        backend_directory=assemble_backends(install, args.backend_directory.resolve()),
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        log_verbose=args.log_verbose,
        extra=[*local_flags(admin_key), *args.extra],
    )
    command = options.command(install)
    print(
        f"Triton {install.binary}\n"
        f"  HTTP    http://{options.address}:{options.http_port}  (health: /v2/health/ready)\n"
        f"  gRPC    {options.address}:{options.grpc_port}\n"
        f"  metrics http://{options.address}:{options.metrics_port}/metrics\n"
        f"  admin APIs need the header {ADMIN_HEADER}: {admin_key}"
        f" (gRPC metadata {GRPC_ADMIN_METADATA}; set {ADMIN_KEY_ENV} to choose it)",
        flush=True,
    )
    if shutil.which(command[0]) is None and not Path(command[0]).exists():
        raise RuntimeError(f"{command[0]} not found")
    # Ctrl-C drains the pipelines first (deepfake_serving.supervise); a second one
    # skips the drain, a third kills Triton.
    return supervise(command, server_env(install))


if __name__ == "__main__":
    sys.exit(main())

"""``python -m deepfake_serving.stub_health``: is every Python-backend instance alive?

Triton 2.51 neither restarts a Python-backend stub that dies nor reports it:
the server and the model stay READY while the dead instance fails its share of
requests (``RELIABILITY.md``; triton-inference-server/server#8604). This check
closes that gap for a liveness probe. It reads everything from ``/proc``:

- the ``tritonserver`` process and its ``--model-repository``,
  ``--backend-directory`` and ``--model-config-name`` flags;
- which models run in stubs: ``backend: "python"``, and any backend whose
  directory holds a ``model.py`` (a Python-based backend, such as this
  project's ``onnxruntime`` on CPU machines);
- the instance names those models must have (``<model>_<group>_<index>``, as
  Triton names them) against the stubs that are running, whose ``argv`` carries
  the server's PID (5th argument) and the instance name (8th).

Only models the server's repository index shows READY are expected to have
stubs (so a drain that unloads models is not a failure); with ``--url`` the
server must also answer ``/v2/health/live``, or with ``--ready`` its
``/v2/health/ready`` (the readiness probe, so a pod with a dead stub leaves the
Services before the liveness probe restarts it). Exit status 0 when every
expected stub runs, 1 naming what is missing, 2 when no single
``tritonserver`` process is found.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from deepfake_serving.model_configs import parse_pbtxt
from deepfake_serving.repository_api import RepositoryApi, flag_values

STUB = "triton_python_backend_stub"
DEFAULT_BACKEND_DIRECTORY = "/opt/tritonserver/backends"


def argv(pid: int, proc: Path = Path("/proc")) -> list[str]:
    """The command line of ``pid``; empty when it has gone."""
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _pids(proc: Path) -> list[int]:
    return [int(entry.name) for entry in proc.iterdir() if entry.name.isdigit()]


def find_servers(proc: Path = Path("/proc")) -> list[int]:
    """PIDs of the running ``tritonserver`` processes."""
    return [pid for pid in _pids(proc) if (args := argv(pid, proc)) and Path(args[0]).name == "tritonserver"]


def running_instances(server_pid: int, proc: Path = Path("/proc")) -> set[str]:
    """Instance names of the live stubs of ``server_pid``."""
    names = set()
    for pid in _pids(proc):
        args = argv(pid, proc)
        if len(args) > 8 and Path(args[0]).name == STUB and args[5] == str(server_pid):
            names.add(args[8])
    return names


def _config(model_dir: Path, config_name: str | None):
    if config_name and (model_dir / "configs" / f"{config_name}.pbtxt").is_file():
        return parse_pbtxt(model_dir / "configs" / f"{config_name}.pbtxt")
    return parse_pbtxt(model_dir / "config.pbtxt")


def expected_instances(
    repositories: list[Path],
    backend_directory: Path,
    config_name: str | None = None,
    loaded: Callable[[str], bool] = lambda _model: True,
) -> set[str]:
    """Instance names Triton gives the stub-hosted models of ``repositories`` that are ``loaded``."""
    names = set()
    for repository in repositories:
        for config_path in sorted(repository.glob("*/config.pbtxt")):
            config = _config(config_path.parent, config_name)
            backend = config.backend
            if backend != "python" and not (backend_directory / backend / "model.py").is_file():
                continue
            name = config.name or config_path.parent.name
            if not loaded(name):
                continue
            for group_index, group in enumerate(config.instance_group or [None]):
                count = group.count if group is not None and group.count > 0 else 1
                names |= {f"{name}_{group_index}_{i}" for i in range(count)}
    return names


def missing_stubs(
    server_pid: int, proc: Path = Path("/proc"), loaded: Callable[[str], bool] = lambda _model: True
) -> set[str]:
    """Instances of ``server_pid``'s ``loaded`` models that should run in stubs and do not."""
    args = argv(server_pid, proc)
    try:  # relative flags are relative to the server's working directory
        cwd = Path(os.readlink(proc / str(server_pid) / "cwd"))
    except OSError:
        cwd = Path("/")
    repositories = [cwd / value for value in flag_values(args, "--model-repository")]
    backend_directory = cwd / (flag_values(args, "--backend-directory") or [DEFAULT_BACKEND_DIRECTORY])[-1]
    config_name = (flag_values(args, "--model-config-name") or [None])[-1]
    expected = expected_instances(repositories, backend_directory, config_name, loaded)
    return expected - running_instances(server_pid, proc)


def loaded_models(server_argv: list[str], timeout_s: float = 2.0) -> Callable[[str], bool]:
    """Which models the server's repository index shows READY, read with the
    address and key in its own flags. The supervisor unloads the entry models to
    drain them at shutdown, and their stubs go with them: those are not missing.
    A model whose stub crashed stays READY in the index (its lifecycle state;
    newer Tritons turn only ``/v2/models/<m>/ready`` false, server#8552), so it
    is still checked. When the index cannot be read, every model counts as
    loaded: the check errs towards reporting a missing stub."""
    try:
        states = RepositoryApi.from_command(server_argv).states(timeout_s)
    except Exception:  # noqa: BLE001 - any failure: expect every stub
        return lambda _model: True
    return lambda model: states.get(model, "READY") == "READY"


def main(argv_: list[str] | None = None) -> int:
    """Probe entry point: 0 healthy, 1 a stub is dead or the health URL fails, 2 no single server."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pid", type=int, help="the tritonserver process (default: the only one running)")
    parser.add_argument("--url", help="also require GET <url>/v2/health/live to answer 200, e.g. http://127.0.0.1:8000")
    parser.add_argument(
        "--ready", action="store_true", help="with --url: require /v2/health/ready instead (a readiness probe)"
    )
    args = parser.parse_args(argv_)
    servers = [args.pid] if args.pid else find_servers()
    if len(servers) != 1:
        print(f"stub_health: expected one tritonserver process, found {len(servers)}", file=sys.stderr)
        return 2
    server_argv = argv(servers[0])
    if not server_argv or Path(server_argv[0]).name != "tritonserver":
        print(f"stub_health: process {servers[0]} is not a running tritonserver", file=sys.stderr)
        return 2
    missing = missing_stubs(servers[0], loaded=loaded_models(server_argv))
    if missing:
        print(f"stub_health: Python-backend instances not running: {', '.join(sorted(missing))}", file=sys.stderr)
        return 1
    if args.url:
        health = f"{args.url}/v2/health/{'ready' if args.ready else 'live'}"
        try:
            # At most 2 s for the index + 2 s here + the imports: inside the probes' 8 s timeout.
            with urllib.request.urlopen(health, timeout=2) as response:
                if response.status != 200:
                    raise OSError(f"HTTP {response.status}")
        except OSError as error:
            print(f"stub_health: {health}: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

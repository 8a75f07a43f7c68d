"""The production ``tritonserver`` command line, defined once.

``docker-compose.yml`` and the Kubernetes manifests under ``deploy/k8s`` carry
these flags literally (an operator reads them there, and neither format can
import Python); ``deploy/render_flags.py`` prints them in each file's syntax
and ``tests/deploy/test_flags.py`` fails when a file drifts from this module.

The admin-API header secret is never in the flags themselves: they carry a
placeholder that the runtime expands from the environment (``$(VAR)`` in a
Kubernetes container's args, ``${VAR}`` in compose), filled from a Kubernetes
Secret or the operator's environment.

Two servers take these flags, and a flag is written for the one it holds for:

* production: NGC Triton :data:`PRODUCTION_RELEASE` (the Dockerfile's base image);
* local: the pip-installed Triton :data:`LOCAL_VERSION` (``make serve``, the
  tests), which lacks flags added later; :func:`local_flags` leaves those out.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepfake_contract import MAX_REQUEST_BYTES

#: The NGC release the production image is built on (Dockerfile, ``TRITON_IMAGE``).
PRODUCTION_RELEASE = "26.07"
#: The Triton version of the ``nvidia-pytriton`` wheel behind ``make serve`` and the tests.
LOCAL_VERSION = "2.51"

#: Triton's default ports; every manifest names them ``http``, ``grpc``, ``metrics``.
PORTS: dict[str, int] = {"http": 8000, "grpc": 8001, "metrics": 8002}

#: Where the model repository is mounted in the container.
MODEL_REPOSITORY = "/models"

#: Seconds Triton waits for in-flight requests after SIGTERM. The supervisor's
#: drain (deepfake_serving.supervise) waits at most as long before it.
EXIT_TIMEOUT_S = 30

#: Seconds the preStop hooks sleep so endpoints controllers and client-side
#: balancers drop the pod before the containers get SIGTERM.
PRESTOP_SLEEP_S = 10

#: terminationGracePeriodSeconds: preStop + the supervisor's drain + Triton's
#: exit timeout + a margin for the stubs to exit.
TERMINATION_GRACE_S = PRESTOP_SLEEP_S + 2 * EXIT_TIMEOUT_S + 20

#: The HTTP header (and gRPC metadata key) that unlocks the admin APIs.
ADMIN_HEADER = "triton-admin-key"

#: gRPC clients send it as this metadata key: Triton prefixes the configured key
#: with "triton-grpc-protocol-" (verified on 2.51: tests/deploy/test_flags.py).
GRPC_ADMIN_METADATA = f"triton-grpc-protocol-{ADMIN_HEADER}"

#: The environment variable that holds its value (from the Secret).
ADMIN_KEY_ENV = "TRITON_ADMIN_KEY"

#: APIs an inference client never needs: repository control, config and
#: shared-memory registration, log and trace settings. Health, metadata,
#: inference and statistics stay open. The names are the same for HTTP and gRPC
#: (checked against Triton 2.51's binary and by tests/deploy/test_flags.py).
RESTRICTED_APIS: tuple[str, ...] = ("model-repository", "model-config", "shared-memory", "logging", "trace")

#: Selects ``configs/gpu.pbtxt`` (GPU instances, TensorRT accelerator); models
#: without that file fall back to ``config.pbtxt``.
GPU_CONFIG_NAME = "gpu"


#: Largest HTTP request body Triton reads (``--http-max-input-size``, from 25.06 /
#: Triton 2.59, default 64 MB): the largest file an entry model accepts
#: (detect_video, 256 MiB) plus the request's header, from the contract. Without
#: it 26.07 would refuse a 100 MB video with its own error before detect_video
#: could judge it. Triton 2.51 has no such flag and reads any size.
HTTP_MAX_INPUT_BYTES = MAX_REQUEST_BYTES
#: Flags the local 2.51 server does not know.
NEWER_THAN_LOCAL = ("--http-max-input-size=",)

#: The Python backend's shared-memory region prefix in production (its default);
#: a local server sets one of its own (deepfake_serving.server.ServerOptions).
PYTHON_SHM_PREFIX = "triton_python_backend_shm_region_"
SHM_PREFIX_SETTING = "shm-region-prefix-name="


@dataclass(frozen=True)
class FlagOptions:
    """What differs between the places the flags are used."""

    gpu: bool
    #: How the admin key reaches the command line: "$(TRITON_ADMIN_KEY)" for
    #: Kubernetes, "${TRITON_ADMIN_KEY}" for compose, the key itself in tests.
    admin_key: str
    model_repository: str = MODEL_REPOSITORY


def restricted(apis: tuple[str, ...], admin_key: str) -> str:
    """Triton's ``<api>,<api>:<header>=<value>`` syntax."""
    return f"{','.join(apis)}:{ADMIN_HEADER}={admin_key}"


def production_flags(options: FlagOptions) -> list[str]:
    """Every flag of the production server, in a stable order."""
    flags = [
        f"--model-repository={options.model_repository}",
        # Every model loads at start. Explicit control only so that the
        # supervisor (deepfake_serving.supervise) can unload the entry models
        # to drain them before SIGTERM; the edge refuses repository calls from
        # outside the pod, and the admin key guards them inside.
        "--model-control-mode=explicit",
        "--load-model=*",
        # Ready only when every model is; a model that fails to load stops the server.
        "--strict-readiness=true",
        "--exit-on-error=true",
        # Configs are complete and generated; Triton must not guess anything.
        "--disable-auto-complete-config",
        f"--exit-timeout-secs={EXIT_TIMEOUT_S}",
        f"--http-port={PORTS['http']}",
        f"--grpc-port={PORTS['grpc']}",
        f"--metrics-port={PORTS['metrics']}",
        f"--http-max-input-size={HTTP_MAX_INPUT_BYTES}",
        # Endpoints this deployment does not use stay off.
        "--allow-sagemaker=false",
        "--allow-vertex-ai=false",
        f"--http-restricted-api={restricted(RESTRICTED_APIS, options.admin_key)}",
        f"--grpc-restricted-protocol={restricted(RESTRICTED_APIS, options.admin_key)}",
        "--log-format=ISO8601",
        # Triton's default prefix, made explicit: the supervisor removes the
        # regions a crashed server leaves in /dev/shm by this prefix.
        f"--backend-config=python,{SHM_PREFIX_SETTING}{PYTHON_SHM_PREFIX}",
    ]
    if options.gpu:
        flags += [f"--model-config-name={GPU_CONFIG_NAME}", "--allow-gpu-metrics=true"]
    return flags


def local_flags(admin_key: str) -> list[str]:
    """The production flags the local 2.51 server (``make serve``) can take.

    Left out: what :class:`deepfake_serving.server.ServerOptions` sets itself
    (repository, ports, addresses, readiness, exit timeout, shm prefix) and the
    flags 2.51 does not know (:data:`NEWER_THAN_LOCAL`).
    """
    owned = (
        "--model-repository=",
        "--http-port=",
        "--grpc-port=",
        "--metrics-port=",
        "--exit-timeout-secs=",
        "--strict-readiness=",
        "--disable-auto-complete-config",
        f"--backend-config=python,{SHM_PREFIX_SETTING}",
        *NEWER_THAN_LOCAL,
    )
    return [f for f in production_flags(FlagOptions(gpu=False, admin_key=admin_key)) if not f.startswith(owned)]


K8S_ADMIN_KEY = f"$({ADMIN_KEY_ENV})"
COMPOSE_ADMIN_KEY = f"${{{ADMIN_KEY_ENV}:?set {ADMIN_KEY_ENV} (see deploy/README.md)}}"

"""Triton's HTTP repository API, found from a ``tritonserver`` command line.

The supervisor (``deepfake_serving.supervise``) unloads models through it to
drain them before SIGTERM; the stub check (``deepfake_serving.stub_health``)
reads which models are loaded. Both take the address, port and admin key from
the server's own flags, so nothing has to be configured twice.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field

#: The longest single call to Triton's repository API.
API_TIMEOUT_S = 10.0


def flag_values(args: list[str], name: str) -> list[str]:
    """Every value of ``--name=value`` or ``--name value`` in ``args``."""
    values = []
    for i, arg in enumerate(args):
        if arg.startswith(f"{name}="):
            values.append(arg.split("=", 1)[1])
        elif arg == name and i + 1 < len(args):
            values.append(args[i + 1])
    return values


@dataclass(frozen=True)
class RepositoryApi:
    """Triton's HTTP repository API on one server, with the header that unlocks it."""

    url: str  # http://127.0.0.1:8000
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_command(cls, command: Sequence[str]) -> RepositoryApi:
        """Where the server in ``command`` listens for HTTP, and the header that unlocks ``model-repository``."""
        args = list(command)
        port = (flag_values(args, "--http-port") or ["8000"])[-1]
        address = (flag_values(args, "--http-address") or ["0.0.0.0"])[-1]
        if address in ("0.0.0.0", "::", "[::]", ""):
            address = "127.0.0.1"
        elif ":" in address and not address.startswith("["):
            address = f"[{address}]"  # an IPv6 literal in a URL
        headers: dict[str, str] = {}
        for value in flag_values(args, "--http-restricted-api"):
            apis, _, secret = value.partition(":")
            header, _, key = secret.partition("=")
            if "model-repository" in apis.split(",") and header:
                headers = {header: key}
        return cls(url=f"http://{address}:{port}", headers=headers)

    def _post(self, path: str, body: dict, timeout_s: float) -> bytes:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **self.headers},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.read()

    def unload(self, model: str, timeout_s: float = API_TIMEOUT_S) -> None:
        """Ask Triton to unload ``model`` alone (not the models it composes); returns at once."""
        self._post(f"/v2/repository/models/{model}/unload", {"parameters": {"unload_dependents": False}}, timeout_s)

    def states(self, timeout_s: float = API_TIMEOUT_S) -> dict[str, str]:
        """Each model's state in the repository index (``READY``, ``UNLOADING``, ``UNAVAILABLE``...)."""
        index = json.loads(self._post("/v2/repository/index", {}, timeout_s))
        return {entry["name"]: entry.get("state", "") for entry in index}

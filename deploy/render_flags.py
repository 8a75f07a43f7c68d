"""Print the production tritonserver flags in compose and Kubernetes syntax, or check them.

    python deploy/render_flags.py            # print both, for pasting
    python deploy/render_flags.py --check    # exit 1 when a file drifts

The flags are defined in src/deepfake_serving/server_flags.py; the files carry
them literally so an operator can read them there.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

from deepfake_serving.server_flags import COMPOSE_ADMIN_KEY, K8S_ADMIN_KEY, FlagOptions, production_flags

ROOT = Path(__file__).resolve().parents[1]


def expected() -> dict[str, list[str]]:
    """The flags each file should carry, from :mod:`deepfake_serving.server_flags`."""
    return {
        "compose": production_flags(FlagOptions(gpu=True, admin_key=COMPOSE_ADMIN_KEY)),
        "k8s/gpu": production_flags(FlagOptions(gpu=True, admin_key=K8S_ADMIN_KEY)),
        "k8s/cpu": production_flags(FlagOptions(gpu=False, admin_key=K8S_ADMIN_KEY)),
    }


def kustomize(path: Path, kubectl: str = "kubectl") -> list[dict]:
    """The manifests ``kubectl kustomize`` renders from the kustomization at ``path``."""
    out = subprocess.run([kubectl, "kustomize", str(path)], check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def actual(kubectl: str = "kubectl") -> dict[str, list[str]]:
    """The flags the files carry now: compose's ``triton`` command and each overlay's Deployment args."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    found = {"compose": compose["services"]["triton"]["command"]}
    for overlay in ("gpu", "cpu"):
        docs = kustomize(ROOT / "deploy/k8s/overlays" / overlay, kubectl)
        (deployment,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "triton"]
        found[f"k8s/{overlay}"] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return found


def main(argv: list[str] | None = None) -> int:
    """Print the flags, or with ``--check`` return 1 (listing each drift) when a file differs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--kubectl", default=str(Path(sys.executable).parent / "kubectl"))
    args = parser.parse_args(argv)
    want = expected()
    if not args.check:
        for where, flags in want.items():
            print(f"# {where}\n" + "\n".join(f"- {f}" for f in flags) + "\n")
        return 0
    have = actual(args.kubectl)
    drift = {k: (want[k], have[k]) for k in want if want[k] != have[k]}
    for where, (w, h) in drift.items():
        print(f"{where}: expected {w}\n{' ' * len(where)}  found    {h}", file=sys.stderr)
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())

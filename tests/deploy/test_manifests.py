"""Every kustomization renders with kubectl's built-in kustomize and validates
against the Kubernetes 1.37 schemas (kubernetes-validate, strict: unknown fields fail)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from deepfake_serving import server_flags
from tests.deploy.conftest import K8S, KUSTOMIZATIONS, ROOT, edge_grace_period_s

kubernetes_validate = pytest.importorskip("kubernetes_validate")
K8S_VERSION = "1.37.0"


def pod_container(pod: dict, name: str) -> dict:
    """The container called ``name`` of a pod spec."""
    (found,) = [c for c in pod["containers"] if c["name"] == name]
    return found


def render(kubectl: str, path: Path) -> list[dict]:
    import subprocess

    out = subprocess.run([kubectl, "kustomize", str(path)], check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module")
def rendered(kubectl: str) -> dict[str, list[dict]]:
    return {str(p.relative_to(K8S)): render(kubectl, p) for p in KUSTOMIZATIONS}


def kinds(docs: list[dict]) -> dict[str, dict]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


def validate_crd(doc: dict) -> None:
    """No schema is bundled for CRDs: check the fields the Prometheus Operator needs."""
    assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "ServiceMonitor"
    spec = doc["spec"]
    assert spec["selector"]["matchLabels"]
    for endpoint in spec["endpoints"]:
        assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"


def test_every_kustomization_renders_and_validates_against_the_kubernetes_schemas(rendered):
    for name, docs in rendered.items():
        assert docs, name
        for doc in docs:
            try:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                validate_crd(doc)


def test_the_admin_secret_example_validates_and_is_not_applied(rendered):
    example = yaml.safe_load((K8S / "base" / "admin-secret.example.yaml").read_text())
    kubernetes_validate.validate(example, K8S_VERSION, strict=True)
    for docs in rendered.values():
        assert not [d for d in docs if d["kind"] == "Secret"]


def test_the_s3_component_renders_and_validates(kubectl, tmp_path):
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    shutil.copytree(K8S, tmp_path / "k8s")
    (tmp_path / "k8s" / "overlays" / "s3").mkdir()
    (tmp_path / "k8s" / "overlays" / "s3" / "kustomization.yaml").write_text(
        "resources: [../gpu]\ncomponents: [../../components/s3-models]\n"
    )
    docs = render(kubectl, tmp_path / "k8s" / "overlays" / "s3")
    for doc in docs:
        if doc["kind"] != "ServiceMonitor":
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    found = kinds(docs)
    assert "PersistentVolumeClaim/deepfake-models" not in found
    pod = found["Deployment/triton"]["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["image"].startswith("amazon/aws-cli:")
    assert "model-source" not in {v["name"] for v in pod["volumes"]}


def test_the_image_runs_triton_under_the_supervisor():
    dockerfile = (ROOT / "Dockerfile").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.+)$", dockerfile, re.MULTILINE).group(1))
    assert entrypoint == ["python3", "-m", "deepfake_serving.supervise", "--", "tritonserver"]


@pytest.mark.parametrize("overlay", ["overlays/gpu", "overlays/cpu"])
def test_the_pod_is_hardened_and_drains_before_it_is_killed(rendered, overlay):
    pod = kinds(rendered[overlay])["Deployment/triton"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for container in pod["containers"] + pod["initContainers"]:
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["requests"] and container["resources"]["limits"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
    triton = pod_container(pod, "triton")
    assert {c["name"] for c in pod["containers"]} == {"triton", "edge"}
    mounts = {m["mountPath"]: m["name"] for m in triton["volumeMounts"]}
    assert mounts["/dev/shm"] == "dshm" and mounts["/tmp"] == "tmp"
    assert "emptyDir" in volumes[mounts["/tmp"]]
    # Stop sequence (RELIABILITY.md, "Shutdown"): both containers sleep while the
    # endpoints drop the pod; then the image's entrypoint (no command override)
    # drains Triton's pipelines while Caddy finishes what it proxies.
    edge = pod_container(pod, "edge")
    for container in (triton, edge):
        assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": server_flags.PRESTOP_SLEEP_S}}
    assert "command" not in triton, "a command override would bypass the supervisor"
    assert pod["terminationGracePeriodSeconds"] == server_flags.TERMINATION_GRACE_S
    assert edge_grace_period_s() > server_flags.EXIT_TIMEOUT_S  # the supervisor's drain, at most
    env = {e["name"]: e for e in triton["env"]}
    assert env[server_flags.ADMIN_KEY_ENV]["valueFrom"]["secretKeyRef"]["name"] == "triton-admin-key"


def test_the_gpu_overlay_asks_for_a_gpu_node_and_the_cpu_overlay_does_not(rendered):
    gpu = kinds(rendered["overlays/gpu"])
    pod = gpu["Deployment/triton"]["spec"]["template"]["spec"]
    assert pod_container(pod, "triton")["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {t["key"] for t in pod["tolerations"]} == {"nvidia.com/gpu"}
    assert (
        gpu["Job/export-models"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
        == 1
    )
    cpu = kinds(rendered["overlays/cpu"])
    assert "nvidia.com/gpu" not in str(cpu)


def test_the_startup_budget_covers_model_load_with_a_wide_margin(rendered):
    # Measured local load: ~5 s (deploy/README.md); GPU adds TensorRT engine builds.
    for overlay, at_least_s in (("overlays/cpu", 120), ("overlays/gpu", 600)):
        probe = pod_container(kinds(rendered[overlay])["Deployment/triton"]["spec"]["template"]["spec"], "triton")[
            "startupProbe"
        ]
        assert probe["periodSeconds"] * probe["failureThreshold"] >= at_least_s, overlay


def test_services_hpa_pdb_and_network_policy_fit_together(rendered):
    found = kinds(rendered["overlays/gpu"])
    http, grpc = found["Service/triton"], found["Service/triton-grpc"]
    assert http["spec"]["type"] == "ClusterIP" and grpc["spec"]["clusterIP"] == "None"
    assert {p["name"] for p in http["spec"]["ports"]} == {"http", "metrics"}
    assert {p["name"] for p in grpc["spec"]["ports"]} == {"grpc"}
    labels = found["Deployment/triton"]["spec"]["template"]["metadata"]["labels"]
    for doc in (found["PodDisruptionBudget/triton"], found["NetworkPolicy/triton"]):
        selector = doc["spec"]["selector" if doc["kind"] == "PodDisruptionBudget" else "podSelector"]["matchLabels"]
        assert selector.items() <= labels.items()
    hpa = found["HorizontalPodAutoscaler/triton"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "triton"
    metric = hpa["metrics"][0]["pods"]["metric"]["name"]
    rules = kinds(rendered["monitoring"])["ConfigMap/deepfake-adapter-rules"]["data"]["config.yaml"]
    assert yaml.safe_load(rules)["rules"][0]["name"]["as"] == metric
    assert (
        found["ServiceMonitor/triton"]["spec"]["selector"]["matchLabels"].items() <= http["metadata"]["labels"].items()
    )


def test_every_image_is_pinned(rendered):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    images = [s["image"] for s in compose["services"].values()]
    for docs in rendered.values():
        for doc in docs:
            pod = doc.get("spec", {}).get("template", {}).get("spec", {})
            images += [c["image"] for c in pod.get("containers", []) + pod.get("initContainers", [])]
    for dockerfile in ("Dockerfile", "Dockerfile.export", "perf/Dockerfile.locust"):
        for line in (ROOT / dockerfile).read_text().splitlines():
            if line.startswith("ARG ") and "_IMAGE=" in line:
                images.append(line.split("=", 1)[1])
    for image in images:
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert tag and tag != "latest", image


@pytest.mark.parametrize("overlay", ["overlays/gpu", "overlays/cpu"])
def test_clients_reach_triton_only_through_the_size_limiting_edge(rendered, overlay):
    found = kinds(rendered[overlay])
    pod = found["Deployment/triton"]["spec"]["template"]["spec"]
    edge = pod_container(pod, "edge")
    edge_ports = {p["name"]: p["containerPort"] for p in edge["ports"]}
    env = {e["name"]: e["value"] for e in edge["env"]}
    assert edge_ports == {"edge-http": int(env["EDGE_HTTP_PORT"]), "edge-grpc": int(env["EDGE_GRPC_PORT"])}
    triton_ports = {p["name"]: p["containerPort"] for p in pod_container(pod, "triton")["ports"]}
    assert (int(env["TRITON_HTTP_PORT"]), int(env["TRITON_GRPC_PORT"])) == (triton_ports["http"], triton_ports["grpc"])
    # The limit must admit the largest file a decoder accepts (video: 256 MiB).
    from deepfake_serving.video import DEFAULT_MAX_BYTES as VIDEO_MAX_BYTES

    assert env["EDGE_MAX_BODY"].endswith("MB") and int(env["EDGE_MAX_BODY"][:-2]) * 10**6 > VIDEO_MAX_BYTES
    # The Caddyfile the sidecar mounts is the one tests/server/test_edge_limits.py runs.
    (config_map,) = [d for name, d in found.items() if name.startswith("ConfigMap/edge-caddyfile")]
    assert config_map["data"]["Caddyfile"] == (K8S / "components" / "edge" / "Caddyfile").read_text()
    assert found["Service/triton"]["spec"]["ports"][0]["targetPort"] == "edge-http"
    grpc_port = found["Service/triton-grpc"]["spec"]["ports"][0]
    # Headless: clients dial pod IPs on the Service's port, so it must be the edge's own.
    assert found["Service/triton-grpc"]["spec"]["clusterIP"] == "None"
    assert grpc_port["targetPort"] == "edge-grpc" and grpc_port["port"] == edge_ports["edge-grpc"]
    client_ports = found["NetworkPolicy/triton"]["spec"]["ingress"][0]["ports"]
    assert {p["port"] for p in client_ports} == {"edge-http", "edge-grpc"}

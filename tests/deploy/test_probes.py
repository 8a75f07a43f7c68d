"""Probe paths and port names in the manifests, checked against a running server.

The local server listens on free ports, so paths are checked there and the
manifests' port numbers against Triton's defaults (server_flags.PORTS)."""

from __future__ import annotations

import urllib.request

import pytest
import yaml

from deepfake_serving import server_flags, stub_health
from tests.deploy.conftest import K8S, ROOT
from tests.deploy.test_manifests import kinds, pod_container, render

pytestmark = pytest.mark.server


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def local_port(triton, name: str) -> int:
    return {"http": triton.options.http_port, "grpc": triton.options.grpc_port, "metrics": triton.options.metrics_port}[
        name
    ]


@pytest.mark.parametrize("overlay", ["gpu", "cpu"])
def test_every_probe_path_answers_200_on_the_port_it_names(triton, kubectl, overlay):
    deployment = kinds(render(kubectl, K8S / "overlays" / overlay))["Deployment/triton"]
    container = pod_container(deployment["spec"]["template"]["spec"], "triton")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == server_flags.PORTS
    probe = container["startupProbe"]["httpGet"]
    assert probe["path"] == "/v2/health/ready"
    assert probe["port"] in ports  # a named port, not a number
    status, _ = get(f"http://127.0.0.1:{local_port(triton, probe['port'])}{probe['path']}")
    assert status == 200


@pytest.mark.parametrize("overlay", ["gpu", "cpu"])
@pytest.mark.parametrize("probe, extra", [("livenessProbe", []), ("readinessProbe", ["--ready"])])
def test_liveness_and_readiness_run_the_stub_check_against_the_http_port(triton, kubectl, overlay, probe, extra):
    deployment = kinds(render(kubectl, K8S / "overlays" / overlay))["Deployment/triton"]
    container = pod_container(deployment["spec"]["template"]["spec"], "triton")
    command = container[probe]["exec"]["command"]
    assert command[:3] == ["python3", "-m", "deepfake_serving.stub_health"]
    assert command[3:] == ["--url", f"http://127.0.0.1:{server_flags.PORTS['http']}", *extra]
    assert container[probe]["timeoutSeconds"] >= 8  # python3 start + the check's 2 s + 2 s
    # The same check against the running server (its own port and PID): healthy.
    assert stub_health.main(["--pid", str(triton.process.pid), "--url", f"http://{triton.http_url}", *extra]) == 0


def test_the_image_healthcheck_and_compose_use_the_same_ports_and_path(triton):
    dockerfile = (ROOT / "Dockerfile").read_text()
    health = f'"deepfake_serving.stub_health", "--url", "http://127.0.0.1:{server_flags.PORTS["http"]}", "--ready"'
    assert health in dockerfile
    status, _ = get(f"http://{triton.http_url}/v2/health/ready")
    assert status == 200
    assert f"triton:{server_flags.PORTS['metrics']}" in (ROOT / "deploy" / "prometheus.yml").read_text()


def test_the_metrics_the_dashboard_and_the_hpa_use_exist(triton):
    _, text = get(triton.metrics_url)
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    # nv_gpu_utilization only exists on GPU nodes.
    for metric in (
        "nv_inference_count",
        "nv_inference_exec_count",
        "nv_inference_queue_duration_us",
        "nv_inference_compute_infer_duration_us",
        "nv_inference_request_success",
        "nv_inference_request_failure",
    ):
        assert metric in names, metric
    rules = yaml.safe_load(
        yaml.safe_load((K8S / "monitoring" / "prometheus-adapter-rules.yaml").read_text())["data"]["config.yaml"]
    )
    assert rules["rules"][0]["seriesQuery"].startswith("nv_inference_queue_duration_us")

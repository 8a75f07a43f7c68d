"""docker-compose.yml against the compose-spec schema (check-jsonschema's vendored copy)
and its wiring (export before Triton, GPU reservation, monitoring, load test).
`docker compose config` is not available here
(the docker CLI is installed without the compose plugin)."""

from __future__ import annotations

import json
import subprocess

import yaml

from deepfake_serving import server_flags
from tests.deploy.conftest import ROOT, _tool, edge_grace_period_s

COMPOSE = ROOT / "docker-compose.yml"


def load() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_the_compose_file_validates_against_the_compose_spec():
    tool = _tool("check-jsonschema")
    result = subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_triton_waits_for_the_export_and_reserves_a_gpu():
    services = load()["services"]
    triton = services["triton"]
    assert triton["depends_on"]["export"]["condition"] == "service_completed_successfully"
    for name in ("triton", "export"):
        (device,) = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["capabilities"] == ["gpu"]
    assert "models:/models" in services["export"]["volumes"] and "models:/models" in triton["volumes"]
    assert triton["shm_size"] and triton["read_only"] is True and triton["cap_drop"] == ["ALL"]
    # The host's 8000/8001 lead to the edge, which proxies to Triton's own ports.
    published = {p["name"]: (int(p["published"]), p["target"]) for p in triton["ports"]}
    edge = services["edge"]
    env = edge["environment"]
    assert published == {
        "http": (server_flags.PORTS["http"], int(env["EDGE_HTTP_PORT"])),
        "grpc": (server_flags.PORTS["grpc"], int(env["EDGE_GRPC_PORT"])),
    }
    assert (int(env["TRITON_HTTP_PORT"]), int(env["TRITON_GRPC_PORT"])) == (
        server_flags.PORTS["http"],
        server_flags.PORTS["grpc"],
    )
    assert edge["network_mode"] == "service:triton"
    assert "./deploy/k8s/components/edge/Caddyfile:/etc/caddy/Caddyfile:ro" in edge["volumes"]
    # Compose stops the edge first (it depends on Triton): Caddy's grace period
    # must fit in its stop_grace_period; Triton's must hold the supervisor's drain
    # and Triton's own exit timeout, each at most EXIT_TIMEOUT_S.
    assert int(edge["stop_grace_period"].rstrip("s")) > edge_grace_period_s()
    assert int(triton["stop_grace_period"].rstrip("s")) > 2 * server_flags.EXIT_TIMEOUT_S


def test_prometheus_scrapes_triton_and_grafana_is_provisioned():
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = [t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    assert f"triton:{server_flags.PORTS['metrics']}" in targets
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "triton.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in (
        "nv_inference_count",
        "nv_inference_queue_duration_us",
        "nv_inference_compute_infer_duration_us",
        "nv_gpu_utilization",
    ):
        assert metric in exprs
    assert (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").is_file()


def test_the_loadtest_profile_runs_a_locust_master_and_workers():
    services = load()["services"]
    master, worker = services["locust-master"], services["locust-worker"]
    assert master["profiles"] == worker["profiles"] == ["loadtest"]
    assert "--master" in master["command"] and "--worker" in worker["command"]
    assert "/mnt/perf/locustfile.py" in master["command"] and "./perf:/mnt/perf:ro" in master["volumes"]


def test_the_locust_image_installs_what_the_locustfile_imports():
    """The stock locustio/locust image lacks tritonclient, NumPy and PyAV; both services build
    perf/Dockerfile.locust, which installs perf/.venv's pinned requirements (the ones the perf
    tests run Locust from) and loads the locustfile at build time."""
    services = load()["services"]
    for name in ("locust-master", "locust-worker"):
        assert services[name]["build"] == {"context": "./perf", "dockerfile": "Dockerfile.locust"}, name
    dockerfile = (ROOT / "perf" / "Dockerfile.locust").read_text()
    assert "-c /opt/perf/constraints.txt -r /opt/perf/requirements.txt" in dockerfile
    assert "locust -f /opt/perf/locustfile.py --list" in dockerfile
    requirements = (ROOT / "perf" / "requirements.txt").read_text()
    for distribution in ("locust==", "tritonclient[grpc]==", "numpy==", "av=="):
        assert distribution in requirements, distribution

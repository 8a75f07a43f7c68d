"""The production flags agree across server_flags.py, compose and both overlays,
and the local Triton 2.51 accepts the ones it supports, restricting what they say."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from deepfake_contract import MAX_REQUEST_BYTES, MEDIA
from deepfake_serving import server_flags
from deepfake_serving.server_flags import FlagOptions, production_flags
from deepfake_serving.testing.triton import start_triton


def test_compose_and_every_overlay_carry_exactly_the_production_flags(render_flags, kubectl):
    assert render_flags.actual(kubectl) == render_flags.expected()


def test_gpu_flags_add_only_the_gpu_config_and_metrics():
    cpu = production_flags(FlagOptions(gpu=False, admin_key="k"))
    gpu = production_flags(FlagOptions(gpu=True, admin_key="k"))
    assert gpu[: len(cpu)] == cpu
    assert gpu[len(cpu) :] == ["--model-config-name=gpu", "--allow-gpu-metrics=true"]


def test_the_restricted_api_flag_uses_tritons_syntax():
    flag = server_flags.restricted(("logging", "trace"), "s3cret")
    assert flag == "logging,trace:triton-admin-key=s3cret"


def test_the_production_http_body_limit_admits_the_largest_accepted_file():
    """26.07 refuses HTTP bodies over 64 MB by default; detect_video accepts 256 MiB files."""
    flags = production_flags(FlagOptions(gpu=False, admin_key="k"))
    (limit,) = [int(f.split("=", 1)[1]) for f in flags if f.startswith("--http-max-input-size=")]
    assert limit == MAX_REQUEST_BYTES and limit > max(m.max_bytes for m in MEDIA)
    # 2.51 (the local server) does not know the flag and would refuse to start with it.
    assert not any(f.startswith("--http-max-input-size") for f in server_flags.local_flags("k"))


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.export"])
def test_the_flags_are_written_for_the_release_the_images_are_built_on(dockerfile):
    text = (Path(__file__).resolve().parents[2] / dockerfile).read_text()
    tags = set(re.findall(r"nvcr\.io/nvidia/[a-z]+:(\d+\.\d+)-py3", text))
    assert tags == {server_flags.PRODUCTION_RELEASE}, f"{dockerfile} builds on {tags}"


@pytest.fixture(scope="module")
def production_server(tmp_path_factory):
    server = start_triton(
        tmp_path_factory.mktemp("triton-prod"), extra=server_flags.local_flags("test-key"), ready_timeout_s=120
    )
    yield server
    server.stop()


def status(url: str, headers: dict[str, str] | None = None, data: bytes | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.server
def test_the_local_server_accepts_the_flags_and_restricts_the_admin_apis(production_server):
    base = f"http://{production_server.http_url}"
    key = {server_flags.ADMIN_HEADER: "test-key"}
    assert status(f"{base}/v2/health/ready") == 200
    assert status(f"{base}/v2/models/visual_detector") == 200  # metadata stays open
    assert status(f"{base}/v2/models/visual_detector/stats") == 200  # statistics too
    for path, data in (
        ("/v2/repository/index", b"{}"),
        ("/v2/models/visual_detector/config", None),
        ("/v2/logging", None),
        # The ones that matter most: model control (a load can bring in code), shared memory, trace.
        ("/v2/repository/models/image_fusion/load", b"{}"),
        ("/v2/systemsharedmemory/status", None),
        ("/v2/cudasharedmemory/status", None),
        ("/v2/trace/setting", None),
    ):
        assert status(base + path, data=data) == 403, path
        assert status(base + path, key, data) == 200, path
    assert status(f"{base}/v2/repository/index", {server_flags.ADMIN_HEADER: "wrong"}, b"{}") == 403


@pytest.mark.server
def test_grpc_restricts_the_same_protocols(production_server):
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(production_server.grpc_url)
    try:
        assert client.is_server_ready()
        key = {server_flags.GRPC_ADMIN_METADATA: "test-key"}
        calls = {
            "repository index": lambda **kw: client.get_model_repository_index(**kw),
            "load": lambda **kw: client.load_model("image_fusion", **kw),
            "model config": lambda **kw: client.get_model_config("visual_detector", **kw),
            "system shared memory": lambda **kw: client.get_system_shared_memory_status(**kw),
            "trace settings": lambda **kw: client.get_trace_settings(**kw),
            "log settings": lambda **kw: client.get_log_settings(**kw),
        }
        for what, call in calls.items():
            with pytest.raises(InferenceServerException, match="restricted"):
                call()
            assert call(headers=key) is not None or what == "load", what  # the key unlocks it
        with pytest.raises(InferenceServerException, match="restricted"):
            client.unload_model("image_fusion", headers={server_flags.GRPC_ADMIN_METADATA: "wrong"})
    finally:
        client.close()

"""The supervisor's parts that need no Triton: flags, states, signals to a plain child.

The drain itself runs against the real server in tests/server/test_shutdown.py.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from deepfake_serving import server_flags, supervise
from deepfake_serving.model_configs import parse_pbtxt
from tests.triton_process import MODEL_REPOSITORY


def test_the_repository_api_is_found_in_the_production_flags():
    flags = ["tritonserver", *server_flags.production_flags(server_flags.FlagOptions(gpu=False, admin_key="s3cret"))]
    api = supervise.RepositoryApi.from_command(flags)
    assert api.url == f"http://127.0.0.1:{server_flags.PORTS['http']}"  # 0.0.0.0 is reached on loopback
    assert api.headers == {server_flags.ADMIN_HEADER: "s3cret"}
    assert "--model-control-mode=explicit" in flags  # unload is refused in any other mode


def test_the_key_comes_only_from_a_restriction_that_covers_the_repository():
    command = ["tritonserver", "--http-port", "9000", "--http-address=10.0.0.5", "--http-restricted-api=logging:k=v"]
    api = supervise.RepositoryApi.from_command(command)
    assert api.url == "http://10.0.0.5:9000"
    assert api.headers == {}


def test_a_model_is_busy_until_its_unload_has_finished():
    states = {"detect_image": "UNLOADING", "detect_audio": "UNAVAILABLE", "visual_detector": "READY"}
    assert supervise.busy_models(states, ["detect_image", "detect_audio", "detect_video"]) == ["detect_image"]
    assert supervise.busy_models({"detect_video": "READY"}, ["detect_video"]) == ["detect_video"]


def test_exit_status_follows_the_shell_convention():
    assert supervise.exit_status(0) == 0
    assert supervise.exit_status(3) == 3
    assert supervise.exit_status(-signal.SIGKILL) == 128 + signal.SIGKILL


def test_every_model_that_calls_others_is_drained_first():
    """A new pipeline (an ensemble or a BLS model) must join ENTRY_MODELS, or a
    shutdown would cut its in-flight requests."""
    callers = set()
    for config_path in MODEL_REPOSITORY.glob("*/config.pbtxt"):
        model = config_path.parent
        if parse_pbtxt(config_path).platform == "ensemble":
            callers.add(model.name)
        if any("InferenceRequest" in source.read_text() for source in model.glob("*/model.py")):
            callers.add(model.name)
    assert callers == set(supervise.ENTRY_MODELS)


CHILD = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (print("child: SIGTERM", flush=True), sys.exit(7)))
print("child: up", flush=True)
time.sleep(60)
"""


def run_supervised(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "deepfake_serving.supervise", *args, "--", sys.executable, "-c", CHILD,
         "--http-port=9", "--exit-timeout-secs=5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def wait_for_line(process: subprocess.Popen, text: str) -> None:
    for line in process.stdout:
        if text in line:
            return
    raise AssertionError(f"{text!r} never printed")


def test_without_a_repository_api_the_signal_is_forwarded_at_once():
    process = run_supervised()
    try:
        wait_for_line(process, "child: up")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=20)[0]
    finally:
        process.kill()
    assert process.returncode == 7  # the child's status, passed through
    assert "cannot unload detect_image" in output and "child: SIGTERM" in output
    assert time.monotonic() - started < 10


def test_a_child_that_exits_by_itself_ends_the_supervisor_with_its_status():
    process = subprocess.run(
        [sys.executable, "-m", "deepfake_serving.supervise", "--", sys.executable, "-c", "raise SystemExit(4)"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert process.returncode == 4
    assert "exited by itself with 4" in process.stderr

"""The supervisor's parts that need no Triton: flags, states, signals to a plain child.

The drain itself runs against the real server in tests/server/test_shutdown.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepfake_serving import server_flags, supervise
from deepfake_serving.model_configs import parse_pbtxt
from deepfake_serving.repository_api import RepositoryApi
from tests.triton_process import MODEL_REPOSITORY


def test_the_repository_api_is_found_in_the_production_flags():
    flags = ["tritonserver", *server_flags.production_flags(server_flags.FlagOptions(gpu=False, admin_key="s3cret"))]
    api = RepositoryApi.from_command(flags)
    assert api.url == f"http://127.0.0.1:{server_flags.PORTS['http']}"  # 0.0.0.0 is reached on loopback
    assert api.headers == {server_flags.ADMIN_HEADER: "s3cret"}
    assert "--model-control-mode=explicit" in flags  # unload is refused in any other mode


def test_the_key_comes_only_from_a_restriction_that_covers_the_repository():
    command = ["tritonserver", "--http-port", "9000", "--http-address=10.0.0.5", "--http-restricted-api=logging:k=v"]
    api = RepositoryApi.from_command(command)
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


def kill_everything(process: subprocess.Popen) -> None:
    """The supervisor and, in its own process group, its child: nothing outlives a failed test."""
    try:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(child), signal.SIGKILL)
    process.kill()
    process.wait(10)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_without_a_repository_api_the_signal_is_forwarded_at_once(signum: int):
    process = run_supervised()
    try:
        wait_for_line(process, "child: up")
        started = time.monotonic()
        process.send_signal(signum)
        output = process.communicate(timeout=20)[0]
        elapsed = time.monotonic() - started
    finally:
        kill_everything(process)
    assert process.returncode == 7  # the child's status, passed through
    assert "cannot unload detect_image" in output and "child: SIGTERM" in output
    assert elapsed < 10


def test_a_killed_supervisor_takes_triton_down_with_it():
    """Triton runs in its own process group; PR_SET_PDEATHSIG still ends it."""
    process = run_supervised()
    try:
        wait_for_line(process, "child: up")
        child = int(Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()[0])
        process.kill()
        process.wait(10)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child}").exists() and "zombie" not in _state(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{child}").exists() or "zombie" in _state(child)
    finally:
        kill_everything(process)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].splitlines()[0]
    except (OSError, IndexError):
        return "gone"


def test_a_child_that_exits_by_itself_ends_the_supervisor_with_its_status():
    process = subprocess.run(
        [sys.executable, "-m", "deepfake_serving.supervise", "--", sys.executable, "-c", "raise SystemExit(4)"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert process.returncode == 4
    assert "exited by itself with 4" in process.stderr

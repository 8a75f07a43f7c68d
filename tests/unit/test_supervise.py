"""The supervisor's parts that need no Triton: flags, states, signals to a plain child.

The drain itself runs against the real server in tests/server/test_shutdown.py.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from deepfake_serving import server_flags, supervise
from deepfake_serving.model_configs import parse_pbtxt
from deepfake_serving.repository_api import RepositoryApi
from deepfake_serving.testing.triton import MODEL_REPOSITORY


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


def wait_for_line(process: subprocess.Popen, text: str) -> str:
    """The output up to and including the first line holding ``text``."""
    seen = []
    for line in process.stdout:
        seen.append(line)
        if text in line:
            return "".join(seen)
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


def test_with_no_restart_a_child_that_exits_by_itself_ends_the_supervisor_with_its_status():
    process = subprocess.run(
        [sys.executable, "-m", "deepfake_serving.supervise", "--no-restart", "--",
         sys.executable, "-c", "raise SystemExit(4)"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert process.returncode == 4
    assert "exited by itself with 4" in process.stderr
    assert "restarting" not in process.stderr


CRASHING_CHILD = """
import os, signal, sys, time
from pathlib import Path
starts = Path(sys.argv[1])
starts.write_text(starts.read_text() + "x" if starts.exists() else "x")
region = Path("/dev/shm") / (sys.argv[2] + "region-" + str(len(starts.read_text())))
region.write_bytes(b"left behind by a crash")
signal.signal(signal.SIGTERM, lambda *_: (print("child: SIGTERM", flush=True), sys.exit(7)))
if len(starts.read_text()) < 3:
    os.kill(os.getpid(), signal.SIGSEGV)
print("child: up", flush=True)
time.sleep(60)
"""


def test_a_crashed_server_is_restarted_with_backoff_after_its_shared_memory_is_removed(tmp_path):
    prefix = f"deepfake_test_{os.getpid()}_"
    starts = tmp_path / "starts"
    process = subprocess.Popen(
        [sys.executable, "-m", "deepfake_serving.supervise", "--", sys.executable, "-c", CRASHING_CHILD,
         str(starts), prefix, f"--backend-config=python,shm-region-prefix-name={prefix}",
         "--http-port=9", "--exit-timeout-secs=5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        output = wait_for_line(process, "child: up")
        # The two crashed runs' regions are gone; the running one's is its own.
        assert sorted(p.name for p in Path("/dev/shm").glob(prefix + "*")) == [prefix + "region-3"]
        process.send_signal(signal.SIGTERM)
        output += process.communicate(timeout=20)[0]
    finally:
        kill_everything(process)
        for leftover in Path("/dev/shm").glob(prefix + "*"):
            leftover.unlink()
    assert starts.read_text() == "xxx"
    assert output.count("exited by itself with -11 (SIGSEGV)") == 2
    assert "restarting tritonserver in 1 s" in output and "restarting tritonserver in 2 s" in output
    assert output.count("removed 1 shared-memory region(s) of the dead server") == 2
    assert process.returncode == 7


def test_the_restart_backoff_doubles_to_its_cap_and_resets_after_a_stable_run():
    assert supervise.restart_backoff(None, 0) == supervise.RESTART_BACKOFF_S
    assert supervise.restart_backoff(1, 5) == 2
    assert supervise.restart_backoff(16, 5) == supervise.MAX_RESTART_BACKOFF_S == 30
    assert supervise.restart_backoff(30, supervise.STABLE_S) == supervise.RESTART_BACKOFF_S


def test_only_the_regions_named_by_the_command_are_removed(tmp_path):
    command = ["tritonserver", "--backend-config=python,shm-region-prefix-name=ours_py_",
               "--backend-config", "onnxruntime,shm-region-prefix-name=ours_ort_", "--backend-config=python,x=1"]  # fmt: skip
    assert supervise.shm_region_prefixes(command) == ["ours_py_", "ours_ort_"]
    for name in ("ours_py_a", "ours_ort_b", "triton_python_backend_shm_region_c"):
        (tmp_path / name).write_bytes(b"")
    removed = supervise.remove_shm_regions(supervise.shm_region_prefixes(command), str(tmp_path))
    assert sorted(Path(p).name for p in removed) == ["ours_ort_b", "ours_py_a"]
    assert [p.name for p in tmp_path.iterdir()] == ["triton_python_backend_shm_region_c"]


STUBBORN_CHILD = """
import signal, sys, time
def on_term(*_):
    print("child: SIGTERM" + (" ignored" if IGNORE else ""), flush=True)
    if not IGNORE:
        sys.exit(7)
IGNORE = sys.argv[1] == "ignore"
signal.signal(signal.SIGTERM, on_term)
print("child: up", flush=True)
time.sleep(120)
"""


class _StuckRepository(http.server.BaseHTTPRequestHandler):
    """Triton's repository API, with every entry model stuck in UNLOADING."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b"{}"
        if self.path == "/v2/repository/index":
            body = json.dumps([{"name": m, "state": "UNLOADING"} for m in supervise.ENTRY_MODELS]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture
def stuck_api():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StuckRepository)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def run_draining(port: int, child_mode: str, *args: str, exit_timeout_s: int = 5) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "deepfake_serving.supervise", "--no-restart", *args, "--",
         sys.executable, "-c", STUBBORN_CHILD, child_mode, f"--http-port={port}", "--http-address=127.0.0.1",
         f"--exit-timeout-secs={exit_timeout_s}", "--http-restricted-api=model-repository:triton-admin-key=k"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_the_drain_ends_at_its_timeout_when_a_model_stays_unloading(stuck_api):
    process = run_draining(stuck_api, "obey", "--drain-timeout", "1.5")
    try:
        output = wait_for_line(process, "child: up")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        output += process.communicate(timeout=30)[0]
        elapsed = time.monotonic() - started
    finally:
        kill_everything(process)
    assert "drain timed out; still busy: detect_image, detect_audio, detect_video" in output
    assert 1.5 <= elapsed < 6 and process.returncode == 7


def test_a_second_signal_skips_the_drain(stuck_api):
    process = run_draining(stuck_api, "obey", "--drain-timeout", "60")
    try:
        output = wait_for_line(process, "child: up")
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        output += wait_for_line(process, "draining")
        time.sleep(1.0)  # past the unload calls: the signal must cut the waiting itself
        process.send_signal(signal.SIGINT)
        output += process.communicate(timeout=30)[0]
        elapsed = time.monotonic() - started
    finally:
        kill_everything(process)
    assert "drain cut short by a second signal" in output and process.returncode == 7
    assert elapsed < 10  # not the 60 s drain


def test_a_third_signal_kills_a_triton_that_ignores_sigterm(stuck_api):
    process = run_draining(stuck_api, "ignore", "--drain-timeout", "60", exit_timeout_s=60)
    try:
        wait_for_line(process, "child: up")
        process.send_signal(signal.SIGTERM)
        wait_for_line(process, "draining")
        process.send_signal(signal.SIGTERM)  # skips the drain: SIGTERM to the child, which ignores it
        wait_for_line(process, "child: SIGTERM ignored")
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    finally:
        kill_everything(process)
    assert "killing tritonserver" in output
    assert process.returncode == 128 + signal.SIGKILL


def test_a_triton_outliving_its_exit_timeout_is_killed_after_the_margin(stuck_api):
    process = run_draining(stuck_api, "ignore", "--drain-timeout", "0.5", exit_timeout_s=1)
    try:
        wait_for_line(process, "child: up")
        process.send_signal(signal.SIGHUP)  # a closed terminal starts the same stop
        wait_for_line(process, "child: SIGTERM ignored")
        started = time.monotonic()
        output = process.communicate(timeout=60)[0]
        elapsed = time.monotonic() - started
    finally:
        kill_everything(process)
    assert "killing tritonserver" in output and process.returncode == 128 + signal.SIGKILL
    assert 1 + supervise.KILL_MARGIN_S - 1 <= elapsed < 1 + supervise.KILL_MARGIN_S + 5

"""Stopping the server during traffic, against the real server.

Bare Triton 2.51 cuts in-flight *ensemble* requests at SIGTERM: every scheduler
refuses new work, so a ``detect_image`` request between two steps fails with
UNAVAILABLE or waits for its deadline. The first test records that behaviour
(the supervisor cannot drain without explicit model control and passes SIGTERM on),
which is why production runs Triton under ``deepfake_serving.supervise``: on
SIGTERM (Kubernetes, compose) or SIGINT (Ctrl-C in ``make serve``) it unloads
the entry models, waits for their in-flight requests, and only then passes
SIGTERM on. The other tests hold it to the guarantee: every in-flight request
is answered correctly, new ones are refused at once with an error a client can
retry elsewhere, and the process exits within the drain and exit timeouts.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from deepfake_serving import server_flags
from deepfake_serving.repository_api import RepositoryApi
from deepfake_serving.testing import media, media_av
from deepfake_serving.testing.triton import TritonProcess, start_triton, subset_repository
from tests.server.edge import run_edge

pytestmark = pytest.mark.server
DEADLINE_S = 60
RETRYABLE = {"StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED"}
KEY = "shutdown-test-key"


@dataclass(frozen=True)
class Media:
    model: str
    input: str
    data: bytes
    output: str = "FAKE_PROB"


IMAGE = Media("detect_image", "IMAGE", media.encode(media.grid_2x2(media.astronaut()), "JPEG"))
VIDEO = Media(
    "detect_video", "VIDEO",
    media_av.encode_video(media_av.moving_frames(media.astronaut(), 50, 320, 240), 25, "mp4_h264_aac"),
)  # fmt: skip


def detect(url: str, item: Media, deadline_s: float = DEADLINE_S) -> float:
    client = grpcclient.InferenceServerClient(url)
    try:
        tensor = grpcclient.InferInput(item.input, [1], "BYTES")
        tensor.set_data_from_numpy(np.array([item.data], dtype=object))
        result = client.infer(item.model, [tensor], client_timeout=deadline_s)
        return float(result.as_numpy(item.output).reshape(-1)[0])
    finally:
        client.close()


@dataclass
class Traffic:
    """Requests sent on threads; each outcome is (media, "ok", score) or (media, status, message)."""

    url: str
    deadline_s: float = DEADLINE_S
    outcomes: list[tuple[Media, str, float | str]] = field(default_factory=list)
    answered_at: list[float] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def send(self, item: Media, count: int) -> None:
        for _ in range(count):
            thread = threading.Thread(target=self._call, args=(item,))
            thread.start()
            self.threads.append(thread)

    def _call(self, item: Media) -> None:
        try:
            self.outcomes.append((item, "ok", detect(self.url, item, self.deadline_s)))
        except InferenceServerException as error:
            self.outcomes.append((item, str(error.status()), error.message()))
        self.answered_at.append(time.monotonic())

    def in_flight(self) -> None:
        """Give every request time to reach the server (the work takes seconds on 2 cores)."""
        time.sleep(1.0)
        assert len(self.outcomes) < len(self.threads) // 2, "the requests finished before the stop"

    def assert_all_answered(self, expected: dict[str, float], after: float) -> None:
        """Every request answered with its lone-request score, at least 4 of them after ``after``."""
        self.join(DEADLINE_S + 5)
        assert [(item.model, status, value) for item, status, value in self.outcomes if status != "ok"] == []
        for item, _, value in self.outcomes:
            assert value == expected[item.model], item.model
        late = sum(answered > after for answered in self.answered_at)
        assert late >= 4, "too few requests were in flight at the stop to prove anything"

    def join(self, timeout_s: float) -> None:
        for thread in self.threads:
            thread.join(timeout_s)
        assert not any(thread.is_alive() for thread in self.threads), "a request outlived its deadline"
        assert len(self.outcomes) == len(self.threads)


def wait_for_log(server: TritonProcess, text: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in server.log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{server.log_tail()}"
        time.sleep(0.02)


def wait_until_draining(server: TritonProcess, timeout_s: float = 10) -> None:
    """Until ``detect_image`` is no longer READY (or the server no longer answers)."""
    api = RepositoryApi.from_command(server.process.args)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if api.states(timeout_s=2).get("detect_image") != "READY":
                return
        except OSError:
            return
        time.sleep(0.02)
    raise AssertionError("detect_image was still READY after the stop signal")


def wait_until_refused(port: int, timeout_s: float = 10) -> None:
    """Until nothing accepts connections on ``port`` (the edge has stopped listening)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.02)
    raise AssertionError(f"port {port} still accepted connections after SIGTERM")


def assert_refused_at_once(url: str) -> None:
    """A new request after the stop signal: refused fast, with a status a client retries elsewhere."""
    started = time.monotonic()
    try:
        detect(url, IMAGE, deadline_s=10)
    except InferenceServerException as error:
        status, message = str(error.status()), error.message()
    else:
        raise AssertionError("a request sent after the stop signal was served")
    assert time.monotonic() - started < 5, "the refusal was not immediate"
    # During the drain the entry model is unloading; after it Triton is stopping
    # or gone. deepfake_client retries all three on another endpoint.
    assert (
        status == "StatusCode.NOT_FOUND" and "has no available versions" in message
        or status == "StatusCode.UNAVAILABLE"
    ), (status, message)  # fmt: skip


def test_without_model_control_sigterm_goes_straight_on_and_triton_cuts_in_flight_ensembles(tmp_path):
    """The 2.51 behaviour the supervisor exists for, seen through it: without
    explicit model control it cannot unload anything, says so, and passes SIGTERM
    on at once. Never a wrong answer, never an unbounded wait."""
    repository = subset_repository(tmp_path)
    server = start_triton(tmp_path, repository=repository, supervised=True)  # --model-control-mode=none
    try:
        expected = detect(server.grpc_url, IMAGE)
        # Short deadlines: a stranded request holds up even Triton's exit until its client gives up.
        traffic = Traffic(server.grpc_url, deadline_s=15)
        traffic.send(IMAGE, 6)
        traffic.in_flight()
        stopped_at = time.monotonic()
        server.signal(signal.SIGTERM)
        wait_for_log(server, "SIGTERM to tritonserver")
        assert time.monotonic() - stopped_at < 2, "the supervisor waited for a drain it could not do"
        assert "cannot unload detect_image" in server.log_path.read_text(errors="replace")
        wait_for_log(server, '"Timeout ')  # Triton is stopping: it counts down its exit timeout

        with pytest.raises(InferenceServerException) as refused:
            detect(server.grpc_url, IMAGE, deadline_s=15)
        assert str(refused.value.status()) == "StatusCode.UNAVAILABLE"
        assert "Server is stopping" in refused.value.message()

        server.process.wait(server.options.exit_timeout_s + 10)
        assert time.monotonic() - stopped_at < server.options.exit_timeout_s + 10
        traffic.join(traffic.deadline_s + 5)
        for _item, status, value in traffic.outcomes:
            assert status == "ok" and value == expected or status in RETRYABLE, (status, value)
        # The reason the supervisor exists (RELIABILITY.md, "Shutdown"): bare 2.51 cuts in-flight
        # ensembles at SIGTERM. If every request was answered, that changed: update the document.
        cut = [status for _item, status, _value in traffic.outcomes if status != "ok"]
        assert cut, "every in-flight ensemble request was answered after SIGTERM: Triton's behaviour changed"
    finally:
        server.stop()


@pytest.fixture
def supervised(tmp_path):
    """The whole repository under the supervisor, with production's flags.
    20 s to drain: twice what the traffic below needs on a 2-core machine."""
    server = start_triton(tmp_path, extra=server_flags.local_flags(KEY), supervised=True, exit_timeout_s=20)
    try:
        yield server
    finally:
        server.stop()


def test_ctrl_c_under_the_supervisor_answers_every_in_flight_request(supervised: TritonProcess):
    server = supervised
    expected = {item.model: detect(server.grpc_url, item) for item in (IMAGE, VIDEO)}
    traffic = Traffic(server.grpc_url)
    traffic.send(IMAGE, 4)
    traffic.send(VIDEO, 2)
    traffic.in_flight()

    stopped_at = time.monotonic()
    server.signal(signal.SIGINT)  # what a terminal's Ctrl-C sends to `make serve`
    wait_until_draining(server)
    assert_refused_at_once(server.grpc_url)

    budget = server.options.exit_timeout_s * 2 + 15  # drain + Triton's exit timeout + stubs
    assert server.process.wait(budget) == 0
    assert time.monotonic() - stopped_at < budget
    traffic.assert_all_answered(expected, after=stopped_at)
    log = server.log_path.read_text(errors="replace")
    assert "drained: no entry model has a request in flight" in log, server.log_tail()


def test_kubelet_stop_sequence_behind_the_edge_loses_nothing(supervised: TritonProcess, tmp_path):
    """After the preStop sleeps the kubelet sends SIGTERM to both containers at once:
    the edge stops accepting and keeps proxying what it has, the supervisor drains."""
    server = supervised
    with run_edge(server, tmp_path / "edge") as edge:
        url = f"127.0.0.1:{edge.ports['grpc']}"
        expected = {item.model: detect(url, item) for item in (IMAGE, VIDEO)}
        traffic = Traffic(url)
        traffic.send(VIDEO, 3)
        traffic.send(IMAGE, 2)
        traffic.in_flight()

        stopped_at = time.monotonic()
        edge.process.send_signal(signal.SIGTERM)
        server.signal(signal.SIGTERM)
        wait_until_refused(edge.ports["grpc"])
        assert_refused_at_once(url)

        budget = server.options.exit_timeout_s * 2 + 15
        assert server.process.wait(budget) == 0
        assert edge.process.wait(budget) == 0
        assert time.monotonic() - stopped_at < budget
    traffic.assert_all_answered(expected, after=stopped_at)

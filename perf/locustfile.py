"""Locust load test of the deployment: gRPC and HTTP users, image/audio/video mix.

gRPC users call Triton through ``tritonclient.grpc`` and report each call to
Locust's request events; HTTP users post Triton's binary-tensor HTTP requests
with Locust's own fast client. Models not served (e.g. an image-only
deployment) are dropped from the mix at start, with a warning.

    perf/.venv/bin/locust -f perf/locustfile.py --headless -u 16 -r 4 -t 60s \\
        --host http://127.0.0.1:8000 --grpc-url 127.0.0.1:8001 \\
        --mix detect_image:6,detect_audio:3,detect_video:1 --max-fail-ratio 0.01 \\
        --csv perf/results/locust

The run exits non-zero when the failure ratio exceeds ``--max-fail-ratio``.

Locust loads this file by its path, in its own venv (perf/.venv) or image,
with this file's folder first on the import path while it does (Locust's
``load_locustfile``): that is how ``sample_media`` next to it imports.
"""

from __future__ import annotations

import logging
import random
import time

# grpcio must cooperate with gevent, which Locust monkey-patches in.
import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()

import numpy as np  # noqa: E402
import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402
from locust import FastHttpUser, User, events, task  # noqa: E402
from sample_media import SAMPLES  # noqa: E402  (perf/sample_media.py, imported as Locust's sibling)

log = logging.getLogger("deepfake.locust")
MEDIA: dict[str, tuple[str, bytes]] = {}
MIX: list[tuple[str, int]] = []


@events.init_command_line_parser.add_listener
def _arguments(parser) -> None:
    parser.add_argument("--grpc-url", default="127.0.0.1:8001", help="Triton gRPC host:port")
    parser.add_argument("--mix", default="detect_image:6,detect_audio:3,detect_video:1", help="model:weight,...")
    parser.add_argument("--max-fail-ratio", type=float, default=0.01, help="fail the run above this ratio")


@events.test_start.add_listener
def _prepare(environment, **_kwargs) -> None:
    options = environment.parsed_options
    client = grpcclient.InferenceServerClient(options.grpc_url)
    MIX.clear()
    for item in options.mix.split(","):
        model, weight = item.split(":")
        if model not in SAMPLES:
            raise SystemExit(f"--mix: unknown model {model!r}; known: {', '.join(SAMPLES)}")
        if not client.is_model_ready(model):
            log.warning("%s is not served: dropped from the mix", model)
            continue
        name, make = SAMPLES[model]
        MEDIA[model] = (name, make())
        MIX.append((model, int(weight)))
    client.close()
    if not MIX:
        raise SystemExit("none of the --mix models is served")


@events.quitting.add_listener
def _fail_on_errors(environment, **_kwargs) -> None:
    ratio = environment.stats.total.fail_ratio
    if ratio > environment.parsed_options.max_fail_ratio:
        log.error("failure ratio %.3f exceeds --max-fail-ratio %.3f", ratio, environment.parsed_options.max_fail_ratio)
        environment.process_exit_code = 1


def _pick() -> str:
    models, weights = zip(*MIX, strict=True)
    return random.choices(models, weights)[0]


class GrpcUser(User):
    """A client using tritonclient over gRPC, one channel per user."""

    weight = 1

    def on_start(self) -> None:
        """Open this user's own gRPC channel."""
        self.client = grpcclient.InferenceServerClient(self.environment.parsed_options.grpc_url)

    def on_stop(self) -> None:
        """Close the channel when Locust stops the user."""
        self.client.close()

    @task
    def detect(self) -> None:
        """Send one file of the mix and report its latency (and any error) to Locust."""
        model = _pick()
        name, payload = MEDIA[model]
        tensor = grpcclient.InferInput(name, [1], "BYTES")
        tensor.set_data_from_numpy(np.array([payload], dtype=object))
        started = time.perf_counter()
        error = None
        try:
            result = self.client.infer(model, [tensor], outputs=[grpcclient.InferRequestedOutput("FAKE_PROB")])
            if not np.isfinite(result.as_numpy("FAKE_PROB")).all():
                error = ValueError("non-finite FAKE_PROB")
        except Exception as caught:  # noqa: BLE001 - every failure is reported to Locust
            error = caught
        events.request.fire(
            request_type="grpc",
            name=model,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=len(payload),
            exception=error,
            context={},
        )


class HttpUser(FastHttpUser):
    """A client posting Triton's binary-tensor HTTP/REST requests."""

    weight = 1

    @task
    def detect(self) -> None:
        """Post one file of the mix; a non-200 answer or a non-finite FAKE_PROB is a failure."""
        model = _pick()
        name, payload = MEDIA[model]
        tensor = httpclient.InferInput(name, [1], "BYTES")
        tensor.set_data_from_numpy(np.array([payload], dtype=object), binary_data=True)
        output = httpclient.InferRequestedOutput("FAKE_PROB", binary_data=False)
        body, json_size = httpclient.InferenceServerClient.generate_request_body([tensor], outputs=[output])
        headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(json_size)}
        with self.client.post(
            f"/v2/models/{model}/infer", data=body, headers=headers, name=model, catch_response=True
        ) as response:
            if response.status_code != 200:
                reason = response.text or response.error  # no text when the connection failed
                response.failure(f"HTTP {response.status_code}: {str(reason)[:200]}")
                return
            outputs = response.json().get("outputs", [])
            if not any(o["name"] == "FAKE_PROB" and np.isfinite(o["data"]).all() for o in outputs):
                response.failure("no finite FAKE_PROB in the response")

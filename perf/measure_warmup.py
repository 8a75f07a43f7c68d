"""First request against the tenth, per entry model, right after ``/v2/health/ready``.

A fresh server is started on free ports (``deepfake_serving.testing.triton``);
as soon as it reports ready, each entry model gets 10 requests in a row with
the same file (a one-face JPEG, 6 s of speech-like WAV, a 2 s MP4 with a face
and sound), and the latency of each is recorded. The entry models are asked
in the order ``detect_image``, ``detect_audio``, ``detect_video``, so a model
two entries share (``visual_detector``) is warm for the later ones, as it is
for real traffic. ``--rounds`` repeats the whole thing on new servers.

A single first request is a single sample on a noisy machine, so the summary
gives the median and range of first / tenth over the servers, and each
step's compute time (median over the servers) names where a first-call cost
remains.

Run: ``.venv/bin/python -m perf.measure_warmup [--rounds 5] [--json build/perf/warmup.json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient

from deepfake_contract import ENTRY_MODELS
from deepfake_serving.testing import media, media_av
from deepfake_serving.testing.benchmark import model_compute
from deepfake_serving.testing.triton import running_triton

REQUESTS = 10
#: The control: one more request after this long idle, when nothing is left to warm up.
IDLE_S = 2.0


def files() -> dict[str, bytes]:
    """One file per entry model, made here."""
    frames = media_av.moving_frames(media.astronaut(), 24, 256, 256)
    return {
        "detect_image": media.encode(media.astronaut(), "JPEG", quality=90),
        "detect_audio": media_av.audio_clip("wav", 6.0),
        "detect_video": media_av.encode_video(frames, 12, "mp4_h264_aac", audio=media_av.speechlike),
    }


def compute_ns(client: grpcclient.InferenceServerClient) -> dict[str, int]:
    """Each model's cumulative compute time in Triton's statistics, ns."""
    return {name: ns for name, (_, ns) in model_compute(client.get_inference_statistics(as_json=True)).items()}


def latencies(
    client: grpcclient.InferenceServerClient, model: str, data: bytes
) -> tuple[list[float], dict[str, tuple[float, float]]]:
    """Seconds per request for ``REQUESTS`` requests in a row, then one after ``IDLE_S`` idle; outputs included.

    Also, per composing model, the compute seconds of the first and of the
    tenth request (from the statistics before and after each), which names
    the step that pays a first-call cost. The last request is the control:
    the first request also comes after the models sat idle (loading, or the
    previous entry model's turn), and an idle CPU (cold caches, sleeping
    ONNX Runtime threads) is slower once even when everything is warm.
    """
    spec = next(m for m in ENTRY_MODELS if m.name == model)
    tensor = grpcclient.InferInput(spec.inputs[0].name, [1], "BYTES")
    tensor.set_data_from_numpy(np.array([data], dtype=object))
    outputs = [grpcclient.InferRequestedOutput(name) for name in spec.output_names]
    out, steps = [], {}
    for i in range(REQUESTS):
        before = compute_ns(client) if i in (0, REQUESTS - 1) else None
        start = time.perf_counter()
        client.infer(model, [tensor], outputs=outputs)
        out.append(time.perf_counter() - start)
        if before is not None:
            time.sleep(0.5)  # the statistics of a request are recorded just after its response is sent
            after = compute_ns(client)
            for name, ns in after.items():
                if ns > before.get(name, 0):
                    steps.setdefault(name, [0.0, 0.0])[0 if i == 0 else 1] = (ns - before.get(name, 0)) / 1e9
    time.sleep(IDLE_S)
    start = time.perf_counter()
    client.infer(model, [tensor], outputs=outputs)
    out.append(time.perf_counter() - start)
    return out, {name: tuple(v) for name, v in steps.items()}


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table for perf/RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="fresh servers, one after the other")
    parser.add_argument("--json", type=Path, default=Path("build/perf/warmup.json"))
    args = parser.parse_args(argv)
    media_files = files()
    rounds: list[dict[str, list[float]]] = []
    steps: list[dict[str, dict[str, tuple[float, float]]]] = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as work, running_triton(Path(work)) as server:
            with grpcclient.InferenceServerClient(server.grpc_url) as client:
                measured = {model: latencies(client, model, data) for model, data in media_files.items()}
        rounds.append({model: times for model, (times, _) in measured.items()})
        steps.append({model: per_step for model, (_, per_step) in measured.items()})
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"latency_s": rounds, "step_compute_s": steps}, indent=2))
    print(
        f"| entry model | first request ms | tenth ms | median of 2-10 ms | first / tenth | after {IDLE_S:g} s idle ms |"
    )
    print("|---|---|---|---|---|---|")
    for model in media_files:
        for r, times in enumerate(rounds):
            first, tenth, idle = times[model][0], times[model][REQUESTS - 1], times[model][REQUESTS]
            median = statistics.median(times[model][1:REQUESTS])
            label = f"{model} (server {r + 1})"
            print(
                f"| {label} | {1e3 * first:.0f} | {1e3 * tenth:.0f} | {1e3 * median:.0f} | {first / tenth:.2f}"
                f" | {1e3 * idle:.0f} |"
            )
    print(
        "\n| entry model | servers | first / tenth, median | first / tenth, range"
        f" | control: warm after {IDLE_S:g} s idle / tenth, median |"
    )
    print("|---|---|---|---|---|")
    for model in media_files:
        ratios = [times[model][0] / times[model][REQUESTS - 1] for times in rounds]
        control = [times[model][REQUESTS] / times[model][REQUESTS - 1] for times in rounds]
        print(
            f"| {model} | {len(rounds)} | {statistics.median(ratios):.2f} | {min(ratios):.2f}-{max(ratios):.2f}"
            f" | {statistics.median(control):.2f} |"
        )
    print("\n| entry model | step | first request compute ms | tenth ms |")
    print("|---|---|---|---|")
    for model in media_files:
        for name in sorted(steps[0][model]):
            first = statistics.median(s[model][name][0] for s in steps if name in s[model])
            tenth = statistics.median(s[model][name][1] for s in steps if name in s[model])
            print(f"| {model} | {name} | {1e3 * first:.0f} | {1e3 * tenth:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

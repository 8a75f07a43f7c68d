"""First request against the tenth, per entry model, right after ``/v2/health/ready``.

A fresh server is started on free ports (``deepfake_serving.testing.triton``);
as soon as it reports ready, each entry model gets 10 requests in a row with
the same file (a one-face JPEG, 6 s of speech-like WAV, a 2 s MP4 with a face
and sound), and the latency of each is recorded. The entry models are asked
in the order ``detect_image``, ``detect_audio``, ``detect_video``, so a model
two entries share (``visual_detector``) is warm for the later ones, as it is
for real traffic. ``--rounds`` repeats the whole thing on new servers.

Run: ``.venv/bin/python -m perf.measure_warmup [--rounds 2] [--json build/perf/warmup.json]``.
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
from deepfake_serving.testing.triton import running_triton

REQUESTS = 10


def files() -> dict[str, bytes]:
    """One file per entry model, made here."""
    frames = media_av.moving_frames(media.astronaut(), 24, 256, 256)
    return {
        "detect_image": media.encode(media.astronaut(), "JPEG", quality=90),
        "detect_audio": media_av.audio_clip("wav", 6.0),
        "detect_video": media_av.encode_video(frames, 12, "mp4_h264_aac", audio=media_av.speechlike),
    }


def latencies(client: grpcclient.InferenceServerClient, model: str, data: bytes) -> list[float]:
    """Seconds per request for ``REQUESTS`` requests in a row, outputs included."""
    spec = next(m for m in ENTRY_MODELS if m.name == model)
    tensor = grpcclient.InferInput(spec.inputs[0].name, [1], "BYTES")
    tensor.set_data_from_numpy(np.array([data], dtype=object))
    outputs = [grpcclient.InferRequestedOutput(name) for name in spec.output_names]
    out = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        client.infer(model, [tensor], outputs=outputs)
        out.append(time.perf_counter() - start)
    return out


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table for perf/RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path("build/perf/warmup.json"))
    args = parser.parse_args(argv)
    media_files = files()
    rounds: list[dict[str, list[float]]] = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as work, running_triton(Path(work)) as server:
            with grpcclient.InferenceServerClient(server.grpc_url) as client:
                rounds.append({model: latencies(client, model, data) for model, data in media_files.items()})
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rounds, indent=2))
    print("| entry model | first request ms | tenth ms | median of 2-10 ms | first / tenth |")
    print("|---|---|---|---|---|")
    for model in media_files:
        for r, times in enumerate(rounds):
            first, tenth, median = times[model][0], times[model][-1], statistics.median(times[model][1:])
            label = f"{model} (server {r + 1})"
            print(f"| {label} | {1e3 * first:.0f} | {1e3 * tenth:.0f} | {1e3 * median:.0f} | {first / tenth:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

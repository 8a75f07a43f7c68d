"""Sequential and concurrent latency of detect_audio / detect_video, without perf_analyzer.

Starts the real server on the project's model repository (free ports), makes a
10 s speech-like FLAC clip and a 5 s 320x240 MP4 (H.264/AAC, the astronaut
face with slight motion), and for each model sends ``--requests`` requests at
concurrency 1 and 4 over gRPC, after ``--warmup`` requests. Prints throughput
and p50/p99 latency.

    .venv/bin/python -m perf.media_latency --requests 40
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient

from deepfake_serving.testing import media, media_av
from deepfake_serving.testing.triton import start_triton


def _infer(client: grpcclient.InferenceServerClient, model: str, name: str, data: bytes) -> None:
    tensor = grpcclient.InferInput(name, [1], "BYTES")
    tensor.set_data_from_numpy(np.array([data], dtype=object))
    client.infer(model, [tensor], outputs=[grpcclient.InferRequestedOutput("FAKE_PROB")])


def measure(url: str, model: str, name: str, data: bytes, requests: int, concurrency: int) -> dict[str, float]:
    """Each of ``concurrency`` threads sends its share of ``requests`` back to back on its own client."""
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(count: int) -> None:
        client = grpcclient.InferenceServerClient(url)
        try:
            for _ in range(count):
                start = time.perf_counter()
                _infer(client, model, name, data)
                with lock:
                    latencies.append(time.perf_counter() - start)
        finally:
            client.close()

    shares = [requests // concurrency + (i < requests % concurrency) for i in range(concurrency)]
    threads = [threading.Thread(target=worker, args=(n,)) for n in shares]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    ms = np.array(latencies) * 1000
    return {
        "throughput_per_s": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def main() -> None:
    """Print throughput and latency of ``detect_audio`` and ``detect_video`` at 1 and 4 clients."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=4)
    args = parser.parse_args()
    audio = media_av.audio_clip("flac", 10.0)
    video = media_av.encode_video(
        media_av.moving_frames(media.astronaut(), 125, 320, 240), 25, "mp4_h264_aac", audio=media_av.speechlike
    )
    cases = [("detect_audio", "AUDIO", audio, "10 s FLAC"), ("detect_video", "VIDEO", video, "5 s 320x240 MP4")]
    with tempfile.TemporaryDirectory() as tmp:
        server = start_triton(Path(tmp))
        try:
            for model, name, data, label in cases:
                measure(server.grpc_url, model, name, data, args.warmup, 1)
                for concurrency in (1, 4):
                    r = measure(server.grpc_url, model, name, data, args.requests, concurrency)
                    print(
                        f"{model} ({label}, {len(data)} bytes) concurrency {concurrency}: "
                        f"{r['throughput_per_s']:.2f} infer/s, p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms",
                        flush=True,
                    )
        finally:
            server.stop()


if __name__ == "__main__":
    main()

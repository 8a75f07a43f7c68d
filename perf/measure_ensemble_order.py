"""What running ``detect_image`` one step at a time costs, side by side with the parallel graph.

``detect_image`` runs its steps as a chain (``forensic_features`` waits for
``visual_detector``) because the parallel graph crashes Triton 2.51 when a gRPC
client abandons a request (RELIABILITY.md, "Abandoned requests"). This serves
both graphs from one server, the parallel one as ``detect_image_parallel``
(the same config with ``ORDER_AFTER`` unmapped), and measures them in
alternating rounds at 1 and 8 concurrent clients, so machine noise hits both:

    .venv/bin/python -m perf.measure_ensemble_order --seconds 15 --rounds 2
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient

from deepfake_serving.testing import media
from deepfake_serving.testing.triton import IMAGE_MODELS, MODEL_REPOSITORY, start_triton, subset_repository


def parallel_config() -> str:
    """``detect_image``'s config without the ``ORDER_AFTER`` edge, as ``detect_image_parallel``."""
    config = (MODEL_REPOSITORY / "detect_image" / "config.pbtxt").read_text()
    config = config.replace('name: "detect_image"', 'name: "detect_image_parallel"')
    parallel, count = re.subn(r',\s*\{ key: "ORDER_AFTER", value: "visual_probs" \}', "", config)
    if count != 1:
        raise SystemExit("detect_image/config.pbtxt no longer maps ORDER_AFTER: update this script")
    return parallel


def run(url: str, model: str, data: bytes, clients: int, seconds: float) -> tuple[float, float]:
    """(requests/s, p50 latency ms) of ``clients`` threads sending ``data`` for ``seconds``."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def loop() -> None:
        client = grpcclient.InferenceServerClient(url)
        tensor = grpcclient.InferInput("IMAGE", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([data], dtype=object))
        while time.monotonic() < stop_at:
            started = time.monotonic()
            client.infer(model, [tensor], client_timeout=120)
            with lock:
                latencies.append(time.monotonic() - started)
        client.close()

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies) / (time.monotonic() - started), 1000 * statistics.median(latencies)


def main() -> None:
    """Compare the serialized and the parallel ``detect_image`` graph at 1 and 8 clients."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ensemble-order-"))
    repository = subset_repository(work, IMAGE_MODELS)
    (repository / "detect_image_parallel" / "1").mkdir(parents=True)
    (repository / "detect_image_parallel" / "config.pbtxt").write_text(parallel_config())
    server = start_triton(work, repository)
    data = media.encode(media.astronaut(), "JPEG")
    try:
        for model in ("detect_image", "detect_image_parallel"):
            run(server.grpc_url, model, data, 2, 3)  # warm-up
        results: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for _ in range(args.rounds):
            for clients in (1, 8):
                for model in ("detect_image", "detect_image_parallel"):
                    results.setdefault((model, clients), []).append(
                        run(server.grpc_url, model, data, clients, args.seconds)
                    )
        print("| graph | clients | images/s | p50 ms |\n|---|---:|---:|---:|")
        for (model, clients), rows in sorted(results.items(), key=lambda item: (item[0][1], item[0][0])):
            rate = statistics.mean(r for r, _ in rows)
            p50 = statistics.mean(p for _, p in rows)
            print(f"| {model} | {clients} | {rate:.2f} | {p50:.0f} |")
        for clients in (1, 8):
            chain = statistics.mean(r for r, _ in results[("detect_image", clients)])
            parallel = statistics.mean(r for r, _ in results[("detect_image_parallel", clients)])
            print(f"chain / parallel throughput at {clients} client(s): {chain / parallel:.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()

"""Does Triton's system shared memory speed up a client on the same host?

The client would keep a shared-memory path only if it paid (it does not:
``perf/RESULTS.md``). The client sends encoded files (tens of KB to a few
MB), so the question is
whether handing Triton the bytes through a registered ``/dev/shm`` region
instead of inside the gRPC message saves anything end to end. For each
payload this sends the same request sequentially through both paths (the
shared-memory one copies each file into the region first, as a client with a
new file each time must) and reports the latency:

    .venv/bin/python -m perf.measure_shm --requests 30
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import serialize_byte_tensor

from deepfake_serving.testing import media, media_av
from deepfake_serving.testing.triton import start_triton


def payloads() -> dict[str, tuple[str, str, bytes]]:
    """The files sent, by label: ``(model, input name, encoded bytes)``."""
    big = np.asarray(media.grid_2x2(media.grid_2x2(media.astronaut())))  # 2048x2048, 16 faces
    return {
        "JPEG 512x512 (1 face)": ("detect_image", "IMAGE", media.encode(media.astronaut(), "JPEG")),
        "PNG 2048x2048 (16 faces)": ("detect_image", "IMAGE", media.encode(big, "PNG")),
        "MP4 10 s 640x480": (
            "detect_video",
            "VIDEO",
            media_av.encode_video(
                media_av.moving_frames(media.astronaut(), 250, 640, 480), 25, "mp4_h264_aac", audio=media_av.speechlike
            ),
        ),
    }


def timed(fn, requests: int) -> list[float]:
    """Latencies in milliseconds of ``requests`` sequential calls, after one warm-up call."""
    fn()  # warm-up
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        fn()
        latencies.append((time.perf_counter() - started) * 1e3)
    return latencies


def main() -> None:
    """Print p50 and mean latency per payload, inside the gRPC message and through shared memory."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30, help="sequential requests per payload and path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_triton(Path(tmp))
        client = grpcclient.InferenceServerClient(server.grpc_url)
        print("| payload | bytes | path | p50 ms | mean ms |")
        print("|---|---:|---|---:|---:|")
        try:
            for label, (model, name, data) in payloads().items():
                array = np.array([data], dtype=object)
                outputs = [grpcclient.InferRequestedOutput("FAKE_PROB")]

                def inline(model=model, name=name, array=array, outputs=outputs):
                    tensor = grpcclient.InferInput(name, [1], "BYTES")
                    tensor.set_data_from_numpy(array)
                    client.infer(model, [tensor], outputs=outputs)

                size = len(serialize_byte_tensor(array).item())
                # Python's own POSIX shared memory: tritonclient 2.51's helper module
                # imports pkg_resources, which this environment does not install.
                region = shared_memory.SharedMemory(create=True, size=size)
                key = f"/{region.name.lstrip('/')}"
                client.register_system_shared_memory(region.name, key, size)

                def shared(model=model, name=name, array=array, outputs=outputs, region=region, size=size):
                    # A new file each time: serialize and copy it in, as a real client must.
                    region.buf[:size] = serialize_byte_tensor(array).item()
                    tensor = grpcclient.InferInput(name, [1], "BYTES")
                    tensor.set_shared_memory(region.name, size)
                    client.infer(model, [tensor], outputs=outputs)

                try:
                    inline()
                    shared()
                    # Interleave rounds so drift on a shared machine hits both paths alike.
                    results = {"gRPC message": [], "system shared memory": []}
                    for _ in range(3):
                        results["gRPC message"] += timed(inline, args.requests // 3)
                        results["system shared memory"] += timed(shared, args.requests // 3)
                    for path, latencies in results.items():
                        print(
                            f"| {label} | {len(data)} | {path} | {statistics.median(latencies):.1f} | "
                            f"{statistics.mean(latencies):.1f} |",
                            flush=True,
                        )
                finally:
                    client.unregister_system_shared_memory(region.name)
                    region.close()
                    region.unlink()
        finally:
            client.close()
            server.stop()


if __name__ == "__main__":
    main()

"""How long a graceful stop takes, and what happens to the requests in flight.

Starts the server as ``make serve`` does (``python -m deepfake_serving.server``,
so under ``deepfake_serving.supervise``) on free ports, sends ``--videos``
``detect_video`` and ``--images`` ``detect_image`` requests at once, and after
``--after`` seconds sends SIGINT to the whole process group, as a terminal's
Ctrl-C does. Reports each request's outcome, the drain time (signal to
"drained") and the stop time (signal to exit):

    .venv/bin/python -m perf.measure_shutdown --videos 3 --images 4
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient

from deepfake_serving.testing import media, media_av
from deepfake_serving.testing.triton import ROOT, free_ports, wait_http_ok


def main() -> int:
    """Interrupt a loaded server and report what was answered, drained and when it exited.

    Returns 0 when every request was answered and the server exited cleanly, 1
    otherwise.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--after", type=float, default=1.0, help="seconds between sending and Ctrl-C")
    args = parser.parse_args()

    ports = dict(zip(("http", "grpc", "metrics"), free_ports(3), strict=True))
    log_path = Path(tempfile.mkdtemp(prefix="shutdown-")) / "server.log"
    command = [sys.executable, "-m", "deepfake_serving.server", "--backend-directory", str(log_path.parent / "backends"),
               "--model-repository", str(ROOT / "model_repository"), "--http-port", str(ports["http"]),
               "--grpc-port", str(ports["grpc"]), "--metrics-port", str(ports["metrics"])]  # fmt: skip
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        if not wait_http_ok(f"http://127.0.0.1:{ports['http']}/v2/health/ready", server, 300):
            raise SystemExit(f"server not ready; log: {log_path}")

        video = media_av.encode_video(media_av.moving_frames(media.astronaut(), 50, 320, 240), 25, "mp4_h264_aac")
        image = media.encode(media.grid_2x2(media.astronaut()), "JPEG")
        outcomes: list[tuple[str, str, float]] = []

        def call(model: str, name: str, data: bytes) -> None:
            client = grpcclient.InferenceServerClient(f"127.0.0.1:{ports['grpc']}")
            try:
                tensor = grpcclient.InferInput(name, [1], "BYTES")
                tensor.set_data_from_numpy(np.array([data], dtype=object))
                client.infer(model, [tensor], client_timeout=120)
                outcomes.append((model, "ok", time.monotonic()))
            except Exception as error:  # noqa: BLE001 - reported
                outcomes.append((model, type(error).__name__ + ": " + str(error)[:120], time.monotonic()))
            finally:
                client.close()

        jobs = [("detect_video", "VIDEO", video)] * args.videos + [("detect_image", "IMAGE", image)] * args.images
        threads = [threading.Thread(target=call, args=job) for job in jobs]
        for thread in threads:
            thread.start()
        time.sleep(args.after)
        answered_before = len(outcomes)
        stopped_at = time.monotonic()
        os.killpg(server.pid, signal.SIGINT)
        drained_at = None
        while server.poll() is None:
            if drained_at is None and "drained:" in log_path.read_text(errors="replace"):
                drained_at = time.monotonic()
            time.sleep(0.05)
        exited_at = time.monotonic()
        for thread in threads:
            thread.join(130)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()

    ok = sum(status == "ok" for _, status, _ in outcomes)
    print(f"{len(jobs)} requests ({args.videos} detect_video, {args.images} detect_image); "
          f"{answered_before} answered before Ctrl-C, {len(jobs) - answered_before} in flight")  # fmt: skip
    print(f"answered: {ok}/{len(jobs)}; last answer {max(t for *_, t in outcomes) - stopped_at:.1f} s after Ctrl-C")
    for model, status, _ in outcomes:
        if status != "ok":
            print(f"  {model}: {status}")
    drain = f"{drained_at - stopped_at:.1f} s" if drained_at else "not reached"
    print(
        f"drain: {drain}; exit: {exited_at - stopped_at:.1f} s after Ctrl-C (status {server.returncode}); log {log_path}"
    )
    return 0 if ok == len(jobs) and server.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

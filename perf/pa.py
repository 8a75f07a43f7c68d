"""perf_analyzer over the deployment, with real encoded media as input data.

perf_analyzer ships in the ``tritonclient==2.51.0`` wheel (``.venv/bin``); it
needs ``libb64.so.0d`` (Debian ``libb64-0d``) and ``libcudart.so.12`` (PyPI
``nvidia-cuda-runtime-cu12``) even on CPU: ``make perf-tools`` installs both.

    .venv/bin/python perf/pa.py --url 127.0.0.1:8001 --model detect_image --concurrency-range 1:8:7

(with ``TRITON_ADMIN_KEY`` set to the server's admin key: perf_analyzer reads
the model config, an admin API under ``make serve``) writes
``perf/results/<date>/<model>.csv`` (perf_analyzer's own CSV with the
server-side queue/compute breakdown) and prints throughput and p50/p95/p99.
"""

from __future__ import annotations

import argparse
import base64
import csv
import datetime
import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from deepfake_serving.server_flags import ADMIN_KEY_ENV, GRPC_ADMIN_METADATA

ROOT = Path(__file__).resolve().parents[1]


def sample_media(model: str) -> tuple[str, bytes]:
    """The ensemble's input name and one real encoded file for it (perf/sample_media.py)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from sample_media import SAMPLES

    if model not in SAMPLES:
        raise SystemExit(f"no sample media for {model}; ONNX models use perf_analyzer's random data")
    name, make = SAMPLES[model]
    return name, make()


def input_data_file(model: str, directory: Path) -> Path | None:
    if not model.startswith("detect_"):
        return None
    name, payload = sample_media(model)
    path = directory / f"{model}-input.json"
    # perf_analyzer sends "b64" content as the tensor's raw bytes, so a BYTES
    # element needs Triton's serialized form: a little-endian length prefix.
    serialized = struct.pack("<I", len(payload)) + payload
    entry = {name: {"content": {"b64": base64.b64encode(serialized).decode()}, "shape": [1]}}
    path.write_text(json.dumps({"data": [entry]}))
    return path


def cudart_dir() -> str:
    import nvidia.cuda_runtime

    return str(Path(next(iter(nvidia.cuda_runtime.__path__))) / "lib")


def run(url: str, model: str, concurrency_range: str, out: Path, measurement_ms: int, extra: list[str]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"{model}.csv"
    with tempfile.TemporaryDirectory() as tmp:
        data = input_data_file(model, Path(tmp))
        command = [
            str(Path(sys.executable).parent / "perf_analyzer"),
            "-m",
            model,
            "-u",
            url,
            "-i",
            "grpc",
            "--concurrency-range",
            concurrency_range,
            "--measurement-interval",
            str(measurement_ms),
            "-f",
            str(csv_path),
            "--verbose-csv",
            *(["--input-data", str(data)] if data else []),
            # perf_analyzer reads the model config, an admin API of a server
            # started with the production flags (make serve does).
            *(["-H", f"{GRPC_ADMIN_METADATA}:{os.environ[ADMIN_KEY_ENV]}"] if os.environ.get(ADMIN_KEY_ENV) else []),
            *extra,
        ]
        env = dict(
            os.environ, LD_LIBRARY_PATH=os.pathsep.join(filter(None, [cudart_dir(), os.environ.get("LD_LIBRARY_PATH")]))
        )
        subprocess.run(command, check=True, env=env)
    return csv_path


def summarize(csv_path: Path) -> list[dict[str, str]]:
    with csv_path.open() as handle:
        rows = list(csv.DictReader(handle))
    return [
        {
            "concurrency": row["Concurrency"],
            "infer/s": f"{float(row['Inferences/Second']):.2f}",
            "p50 ms": f"{float(row['p50 latency']) / 1000:.0f}",
            "p95 ms": f"{float(row['p95 latency']) / 1000:.0f}",
            "p99 ms": f"{float(row['p99 latency']) / 1000:.0f}",
            "server queue ms": f"{float(row['Server Queue']) / 1000:.1f}",
            "server compute ms": f"{(float(row['Server Compute Input']) + float(row['Server Compute Infer']) + float(row['Server Compute Output'])) / 1000:.1f}",
        }
        for row in rows
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="127.0.0.1:8001", help="Triton gRPC host:port")
    parser.add_argument("--model", default="detect_image")
    parser.add_argument(
        "--concurrency-range", default="1:8:7", help="perf_analyzer's start:end:step (default: 1 and 8)"
    )
    parser.add_argument("--measurement-ms", type=int, default=10000)
    parser.add_argument("--out", type=Path, default=ROOT / "perf" / "results" / datetime.date.today().isoformat())
    parser.add_argument("extra", nargs="*", help="further perf_analyzer flags (after --)")
    args = parser.parse_args()
    csv_path = run(args.url, args.model, args.concurrency_range, args.out, args.measurement_ms, args.extra)
    rows = summarize(csv_path)
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---:|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(row.values()) + " |")


if __name__ == "__main__":
    main()

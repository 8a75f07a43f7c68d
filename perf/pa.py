"""perf_analyzer over the deployment, with real encoded media as input data.

perf_analyzer ships in the ``tritonclient==2.51.0`` wheel (``.venv/bin``); it
needs ``libb64.so.0d`` (Debian ``libb64-0d``) and ``libcudart.so.12`` (PyPI
``nvidia-cuda-runtime-cu12``) even on CPU: ``make perf-tools`` installs both.
The runner is :mod:`deepfake_serving.testing.perf_analyzer`, as for the suite.

    .venv/bin/python -m perf.pa --url 127.0.0.1:8001 --model detect_image --concurrency-range 1:8:7

(with ``TRITON_ADMIN_KEY`` set to the server's admin key: perf_analyzer reads
the model config, an admin API under ``make serve``) writes
``perf/results/<date>/<model>.csv`` (perf_analyzer's own CSV with the
server-side queue/compute breakdown) and prints throughput and p50/p95/p99.
"""

from __future__ import annotations

import argparse
import datetime
import os
import tempfile
from pathlib import Path

from deepfake_contract import DETECTORS
from deepfake_serving.server_flags import ADMIN_KEY_ENV, GRPC_ADMIN_METADATA
from deepfake_serving.testing import perf_analyzer
from deepfake_serving.testing.triton import ROOT
from perf.sample_media import SAMPLES


def input_data_file(model: str, directory: Path) -> Path:
    """One real encoded file (perf/sample_media.py) for an entry model; finite random data for a detector."""
    if model in {spec.name for spec in DETECTORS}:
        return perf_analyzer.detector_input_data(model, directory)
    if model not in SAMPLES:
        raise SystemExit(f"no sample media for {model}; give an entry model or a detector")
    name, make = SAMPLES[model]
    return perf_analyzer.bytes_input_data(model, name, make(), directory)


def run(url: str, model: str, concurrency_range: str, out: Path, measurement_ms: int, extra: list[str]) -> Path:
    """Run perf_analyzer against ``model`` and return the path of its CSV (``out/<model>.csv``)."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"{model}.csv"
    # perf_analyzer reads the model config, an admin API of a server
    # started with the production flags (make serve does).
    key = os.environ.get(ADMIN_KEY_ENV)
    with tempfile.TemporaryDirectory() as tmp:
        command = perf_analyzer.command(
            model,
            url,
            concurrency_range,
            measurement_ms,
            csv_path,
            input_data_file(model, Path(tmp)),
            headers={GRPC_ADMIN_METADATA: key} if key else None,
            extra=extra,
        )
        perf_analyzer.run(command, check=True)
    return csv_path


def summarize(csv_path: Path) -> list[dict[str, str]]:
    """The CSV's throughput, latency percentiles and server-side breakdown per concurrency, formatted."""
    return [
        {
            "concurrency": str(row.concurrency),
            "infer/s": f"{row.throughput:.2f}",
            "p50 ms": f"{row.p50_ms:.0f}",
            "p95 ms": f"{row.p95_ms:.0f}",
            "p99 ms": f"{row.p99_ms:.0f}",
            "server queue ms": f"{row.server_queue_ms:.1f}",
            "server compute ms": f"{row.server_compute_ms:.1f}",
        }
        for row in perf_analyzer.parse_csv(csv_path, "pa", csv_path.stem)
    ]


def main() -> None:
    """Measure one model and print the summary as a Markdown table."""
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

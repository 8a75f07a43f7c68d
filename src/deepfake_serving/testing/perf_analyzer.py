"""perf_analyzer as a library: its input data, its command line, its CSV.

perf_analyzer ships in the ``tritonclient==2.51.0`` wheel (next to the Python
executable); it needs ``libb64.so.0d`` (Debian ``libb64-0d``) and
``libcudart.so.12`` (PyPI ``nvidia-cuda-runtime-cu12``) even on CPU:
``make perf-tools`` installs both. ``perf/pa.py`` (one run against a running
server) and ``perf/suite.py`` (the benchmark suite) both run it through
:func:`run` and read its ``-f`` CSV (``--verbose-csv``) with :func:`parse_csv`.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import struct
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepfake_contract import by_name


@dataclass(frozen=True)
class PaRow:
    """One perf_analyzer measurement, latencies in milliseconds."""

    setup: str
    model: str
    concurrency: int
    throughput: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    server_queue_ms: float
    server_compute_ms: float
    batch_sizes: str = ""
    mean_batch: float = float("nan")


def parse_csv(path: Path, setup: str, model: str) -> list[PaRow]:
    """perf_analyzer's ``-f`` CSV (with ``--verbose-csv``); its times are microseconds."""
    with path.open() as handle:
        rows = list(csv.DictReader(handle))

    def ms(row: dict[str, str], key: str) -> float:
        return float(row.get(key) or "nan") / 1000

    return [
        PaRow(
            setup=setup,
            model=model,
            concurrency=int(row["Concurrency"]),
            throughput=float(row["Inferences/Second"]),
            p50_ms=ms(row, "p50 latency"),
            p95_ms=ms(row, "p95 latency"),
            p99_ms=ms(row, "p99 latency"),
            server_queue_ms=ms(row, "Server Queue"),
            server_compute_ms=sum(
                ms(row, k) for k in ("Server Compute Input", "Server Compute Infer", "Server Compute Output")
            ),
        )
        for row in rows
    ]


def bytes_input_data(model: str, name: str, payload: bytes, directory: Path) -> Path:
    """perf_analyzer ``--input-data`` sending ``payload`` as the one BYTES element of input ``name``.

    ``b64`` content is sent as the tensor's raw bytes, so a BYTES element needs
    Triton's serialized form: a 4-byte little-endian length prefix.
    """
    serialized = struct.pack("<I", len(payload)) + payload
    path = directory / f"{model}-input.json"
    path.write_text(
        json.dumps({"data": [{name: {"content": {"b64": base64.b64encode(serialized).decode()}, "shape": [1]}}]})
    )
    return path


def detector_input_data(model: str, directory: Path) -> Path:
    """perf_analyzer ``--input-data`` directory: one standard-normal sample as raw FP32.

    perf_analyzer's own random data is random bytes, which include NaN and Inf
    bit patterns that the detectors (rightly) reject.
    """
    spec = by_name(model)
    path = directory / f"{model}-input"
    path.mkdir(parents=True, exist_ok=True)
    for tensor in spec.inputs:
        np.random.default_rng(0).standard_normal(tensor.dims, dtype=np.float32).tofile(path / tensor.name)
    return path


def cudart_dir() -> str:
    """Where the ``nvidia-cuda-runtime-cu12`` wheel keeps ``libcudart.so.12``."""
    import nvidia.cuda_runtime  # the perf extra: only where perf_analyzer runs

    return str(Path(next(iter(nvidia.cuda_runtime.__path__))) / "lib")


def environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (the process environment) with libcudart's folder on ``LD_LIBRARY_PATH``."""
    base = os.environ if base is None else base
    return dict(base, LD_LIBRARY_PATH=os.pathsep.join(filter(None, [cudart_dir(), base.get("LD_LIBRARY_PATH")])))


def executable() -> Path:
    """The perf_analyzer binary of the tritonclient wheel installed next to this Python."""
    return Path(sys.executable).parent / "perf_analyzer"


def command(
    model: str,
    url: str,
    concurrency_range: str,
    measurement_ms: int,
    csv_path: Path,
    input_data: Path | None = None,
    max_trials: int | None = None,
    stability_percentage: int | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """perf_analyzer over gRPC, writing its verbose CSV to ``csv_path``.

    ``concurrency_range`` is perf_analyzer's ``start:end:step``; ``headers``
    become ``-H name:value`` (gRPC metadata, e.g. the admin key: perf_analyzer
    reads the model config, an admin API under the production flags).
    """
    return [
        str(executable()),
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
        *(["--max-trials", str(max_trials)] if max_trials is not None else []),
        *(["--stability-percentage", str(stability_percentage)] if stability_percentage is not None else []),
        "-f",
        str(csv_path),
        "--verbose-csv",
        *(["--input-data", str(input_data)] if input_data else []),
        *(arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}:{value}")),
        *extra,
    ]


def run(
    arguments: Sequence[str],
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    timeout_s: float | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess:
    """Run a :func:`command` (``env``: :func:`environment`), its output to ``log_path`` when given,
    else to this terminal; ``check`` raises on a non-zero exit (after the log is written)."""
    env = dict(env) if env is not None else environment()
    if log_path is None:
        return subprocess.run(list(arguments), env=env, check=check, timeout=timeout_s)
    done = subprocess.run(list(arguments), env=env, timeout=timeout_s, capture_output=True, text=True)
    log_path.write_text(done.stdout + done.stderr)
    if check:
        done.check_returncode()
    return done

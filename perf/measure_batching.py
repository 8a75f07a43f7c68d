"""Throughput of each ONNX detector by batch size, in-process, on this machine.

This is the measurement the ``dynamic_batching`` settings in
``deepfake_serving.model_configs.BATCHING`` are chosen from: the batch size
past which images/s stop improving is where a bigger preferred batch only adds
queueing delay. Run: ``.venv/bin/python -m perf.measure_batching``.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from deepfake_contract import DETECTORS
from deepfake_serving.onnx_runner import OnnxRunner, SessionSettings

BATCHES = {"temporal_analyzer": (1, 2, 4), "forensic_classifier": (1, 4, 16, 64, 256)}


def measure(runner: OnnxRunner, x: np.ndarray, min_seconds: float) -> float:
    """Mean seconds per ``run_batch`` of ``x``, over at least ``min_seconds`` and 3 runs."""
    runner.run_batch([{"input": x}], ["output"])  # warm-up
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < min_seconds or runs < 3:
        runner.run_batch([{"input": x}], ["output"])
        runs += 1
    return (time.perf_counter() - started) / runs


def main() -> None:
    """Print a Markdown table of ONNX Runtime latency per detector and batch size."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repository", type=Path, default=Path("model_repository"))
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads (the configs use 2)")
    parser.add_argument("--seconds", type=float, default=2.0, help="minimum time per measurement")
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, intra_op_threads={args.threads}\n")
    print("| model | batch | ms per batch | ms per item | items/s |")
    print("|---|---:|---:|---:|---:|")
    for spec in DETECTORS:
        runner = OnnxRunner(args.repository / spec.name / "1" / "model.onnx", SessionSettings(args.threads))
        for batch in BATCHES.get(spec.name, (1, 2, 4, 8, 16)):
            x = np.random.default_rng(0).standard_normal((batch, *spec.inputs[0].dims), dtype=np.float32)
            seconds = measure(runner, x, args.seconds)
            print(
                f"| {spec.name} | {batch} | {seconds * 1e3:.1f} | {seconds * 1e3 / batch:.2f} | {batch / seconds:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

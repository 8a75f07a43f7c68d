"""Throughput of each detector by batch size on a CUDA GPU, with PyTorch.

The GPU overlay's ``dynamic_batching`` values (``gpu_preferred_batch_sizes``
and ``gpu_max_queue_delay_us`` in ``deepfake_serving.model_configs.BATCHING``)
are chosen from this table, as the CPU values are chosen from
``perf/measure_batching.py``. It times the PyTorch definitions of
``export/deepfake_export/models.py`` (the source the ONNX files are exported
from) in three modes:

- ``fp32``: eager FP32, what ONNX Runtime's CUDA provider approximates;
- ``fp16``: eager FP16 weights and inputs;
- ``fp16+graph``: FP16 replayed from a CUDA graph, which removes the per-kernel
  launch cost the way a TensorRT engine does; the closest stand-in for the
  overlay's TensorRT FP16 path that runs without TensorRT.

It also reports how far the FP16 probabilities move from FP32 on the same
inputs: the price of the overlay's ``precision_mode: FP16``.

Needs only torch (CUDA build), efficientnet_pytorch and this repository's
``src``/``export`` on ``PYTHONPATH``::

    PYTHONPATH=src:export python -m perf.measure_gpu --out results.csv
"""

from __future__ import annotations

import argparse
import csv
import platform
import sys
import threading
import time
from functools import partial
from pathlib import Path

import torch

from deepfake_contract import DETECTORS, ModelSpec
from deepfake_export.models import BUILDERS
from deepfake_export.weights import load_weights

BATCHES = {
    "visual_detector": (1, 2, 4, 8, 16, 32, 64),
    "forensic_classifier": (1, 16, 64, 256),
    "audio_detector": (1, 2, 4, 8, 16, 32, 64),
    "temporal_analyzer": (1, 2, 4, 8),
}
MODES = ("fp32", "fp16", "fp16+graph")
#: The batch at which the instance-count question is asked: the overlay's preferred batch.
INSTANCE_BATCH = {"visual_detector": 16, "forensic_classifier": 64, "audio_detector": 16, "temporal_analyzer": 4}


def _timed(fn, min_seconds: float) -> float:
    """Seconds per call of ``fn``, from CUDA events over at least ``min_seconds``."""
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    runs, start, end = 0, torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    started = time.perf_counter()
    start.record()
    while runs < 10 or time.perf_counter() - started < min_seconds:
        fn()
        runs += 1
        if runs % 10 == 0:
            torch.cuda.synchronize()  # keeps the wall-clock check honest
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / runs


def _graphed(module: torch.nn.Module, x: torch.Tensor):
    static_x = x.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            module(static_x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        module(static_x)
    return graph.replay


def instance_throughput(module: torch.nn.Module, x: torch.Tensor, instances: int, seconds: float) -> float:
    """Batches/s when ``instances`` threads replay their own graph on their own stream.

    This is what ``instance_group { count: N }`` does on one GPU: N model
    instances, each executing on its own CUDA stream.
    """
    streams = [torch.cuda.Stream() for _ in range(instances)]
    replays = [_graphed(module, x) for _ in range(instances)]
    counts = [0] * instances
    stop = threading.Event()

    def work(index: int) -> None:
        with torch.cuda.stream(streams[index]):
            while not stop.is_set():
                replays[index]()
                counts[index] += 1
                if counts[index] % 8 == 0:  # bounded launch queue
                    streams[index].synchronize()
            streams[index].synchronize()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(instances)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def measure_model(spec: ModelSpec, device: torch.device, min_seconds: float) -> tuple[list[dict[str, object]], float]:
    """Timing rows of one detector, and the largest FP16-vs-FP32 probability difference."""
    fp32 = BUILDERS[spec.name]().eval()
    load_weights(fp32, spec.name, None)  # demo weights: timings do not depend on values
    fp16 = BUILDERS[spec.name]().eval()
    fp16.load_state_dict(fp32.state_dict())
    fp32, fp16 = fp32.to(device), fp16.to(device).half()
    generator = torch.Generator(device="cpu").manual_seed(0)
    rows: list[dict[str, object]] = []
    with torch.inference_mode():
        for batch in BATCHES[spec.name]:
            x32 = torch.randn((batch, *spec.inputs[0].dims), generator=generator).to(device)
            x16 = x32.half()
            for mode in MODES:
                try:
                    if mode == "fp32":
                        seconds = _timed(partial(fp32, x32), min_seconds)
                    elif mode == "fp16":
                        seconds = _timed(partial(fp16, x16), min_seconds)
                    else:
                        seconds = _timed(_graphed(fp16, x16), min_seconds)
                except RuntimeError as error:  # e.g. a layer that cannot be captured
                    print(f"| {spec.name} | {batch} | {mode} | failed: {str(error).splitlines()[0]} | | |")
                    continue
                rows.append(
                    {
                        "model": spec.name,
                        "batch": batch,
                        "mode": mode,
                        "ms_per_batch": seconds * 1e3,
                        "ms_per_item": seconds * 1e3 / batch,
                        "items_per_s": batch / seconds,
                    }
                )
                print(
                    f"| {spec.name} | {batch} | {mode} | {seconds * 1e3:.3f} | "
                    f"{seconds * 1e3 / batch:.3f} | {batch / seconds:.0f} |",
                    flush=True,
                )
        batch = INSTANCE_BATCH[spec.name]
        x16 = torch.randn((batch, *spec.inputs[0].dims), generator=generator).to(device).half()
        for instances in (1, 2, 3):
            per_second = instance_throughput(fp16, x16, instances, max(1.0, min_seconds * 2))
            print(
                f"| {spec.name} | {batch} | fp16+graph x{instances} instances | {1e3 / per_second:.3f} | "
                f"{1e3 / per_second / batch:.3f} | {per_second * batch:.0f} |",
                flush=True,
            )
            rows.append(
                {
                    "model": spec.name,
                    "batch": batch,
                    "mode": f"fp16+graph x{instances} instances",
                    "ms_per_batch": 1e3 / per_second,
                    "ms_per_item": 1e3 / per_second / batch,
                    "items_per_s": per_second * batch,
                }
            )
        x32 = torch.randn((8, *spec.inputs[0].dims), generator=generator).to(device)
        p32 = torch.softmax(fp32(x32).float(), dim=1)
        p16 = torch.softmax(fp16(x32.half()).float(), dim=1)
    return rows, (p32 - p16).abs().max().item()


def main() -> int:
    """Print per-detector GPU latency tables and the FP16 drift; exit 2 without CUDA."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="minimum time per measurement")
    parser.add_argument("--out", type=Path, help="also write the rows as CSV here")
    parser.add_argument("--only", nargs="*", help="detectors to measure (default: all four)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("measure_gpu: no CUDA device visible to PyTorch", file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda")
    print(
        f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"cuDNN {torch.backends.cudnn.version()}, {platform.python_version()}\n"
    )
    rows: list[dict[str, object]] = []
    print("| model | batch | mode | ms per batch | ms per item | items/s |")
    print("|---|---:|---|---:|---:|---:|")
    drift: list[str] = []
    for spec in DETECTORS:
        if args.only and spec.name not in args.only:
            continue
        model_rows, worst = measure_model(spec, device, args.seconds)
        rows += model_rows
        drift.append(f"| {spec.name} | {worst:.2e} |")
        torch.cuda.empty_cache()
    print("\n| model | max abs(FP16 - FP32) probability, batch of 8 |\n|---|---:|")
    print("\n".join(drift))
    if args.out:
        with args.out.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

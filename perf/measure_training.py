"""Training throughput of each detector: optimizer steps on the served architectures, samples per second.

The step is what ``python -m deepfake_train`` runs per batch (forward,
cross-entropy with label smoothing, backward, AdamW), on inputs of each
detector's contract shape, so the figure is the network's training cost
without the data pipeline (whose samples are cached after the first epoch).
On CUDA it runs with automatic mixed precision, as training does; on the CPU
with the threads given. Detectors are measured in alternating rounds so that
the machine's noise falls on all alike; the median is reported.

Run: ``.venv/bin/python -m perf.measure_training [--batch 8] [--seconds 5] [--rounds 3] [--device cpu|cuda]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from deepfake_train.loop import DETECTORS
from torch import nn

from deepfake_contract import by_name
from deepfake_export.models import BUILDERS


def step_rate(name: str, batch: int, seconds: float, device: torch.device) -> float:
    """Samples per second of training steps of ``name`` at ``batch``."""
    torch.manual_seed(0)
    model = BUILDERS[name]().to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    x = torch.randn((batch, *by_name(name).inputs[0].dims), device=device)
    y = torch.randint(0, 2, (batch,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            loss = criterion(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    step()  # warm-up: allocations, cuDNN autotuning
    if amp:
        torch.cuda.synchronize()
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or steps < 2:
        step()
        steps += 1
    if amp:
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - started)


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum time per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", nargs="*", choices=sorted(DETECTORS), help="these detectors only")
    args = parser.parse_args()
    device = torch.device(args.device)
    names = [DETECTORS[d] for d in (args.only or DETECTORS)]
    rates: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            rates[name].append(step_rate(name, args.batch, args.seconds, device))
    where = f"{device.type}, AMP" if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"| detector | batch | samples/s ({where}, median of {args.rounds}) |")
    print("|---|---:|---:|")
    for name, values in rates.items():
        print(f"| {name} | {args.batch} | {statistics.median(values):.1f} |")


if __name__ == "__main__":
    main()

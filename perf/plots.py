"""PNG plots of the suite's measurements (matplotlib, headless ``Agg`` backend).

One figure per model (throughput and p50/p95/p99 against concurrency), one
for batching on against off, one for this deployment against the naive server.
Concurrency is on a log2 axis because the levels double.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from deepfake_serving.testing.perf_analyzer import PaRow as Row  # noqa: E402

SETUP_LABELS = {"batching": "dynamic batching on", "nobatch": "dynamic batching off"}


def _log2_x(axis: Any, levels: Sequence[int]) -> None:
    axis.set_xscale("log", base=2)
    axis.set_xticks(levels)
    axis.set_xticklabels([str(c) for c in levels])
    axis.set_xlabel("concurrency")
    axis.grid(True, alpha=0.3)
    axis.set_ylim(bottom=0)  # a truncated axis would exaggerate small differences


def model_plot(out: Path, model: str, rows: Sequence[Row]) -> Path:
    """Throughput (left) and latency percentiles (right) of one model with batching as served."""
    rows = sorted(rows, key=lambda r: r.concurrency)
    levels = [r.concurrency for r in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(levels, [r.throughput for r in rows], marker="o")
    left.set_ylabel("inferences/s")
    left.set_title(f"{model}: throughput")
    for name in ("p50_ms", "p95_ms", "p99_ms"):
        right.plot(levels, [getattr(r, name) for r in rows], marker="o", label=name.split("_")[0])
    right.set_ylabel("latency (ms)")
    right.set_title(f"{model}: latency")
    right.legend()
    for axis in (left, right):
        _log2_x(axis, levels)
    path = out / f"{model}.png"
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def batching_plot(out: Path, rows: Sequence[Row]) -> Path | None:
    """Throughput with and without dynamic batching, one panel per detector."""
    models = sorted({r.model for r in rows if r.setup == "nobatch"})
    if not models:
        return None
    figure, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3.6), squeeze=False)
    for axis, model in zip(axes[0], models, strict=True):
        levels: set[int] = set()
        for setup, label in SETUP_LABELS.items():
            mine = sorted((r for r in rows if r.model == model and r.setup == setup), key=lambda r: r.concurrency)
            axis.plot([r.concurrency for r in mine], [r.throughput for r in mine], marker="o", label=label)
            levels |= {r.concurrency for r in mine}
        _log2_x(axis, sorted(levels))
        axis.set_title(model)
        axis.set_ylabel("inferences/s")
    axes[0][0].legend(fontsize="small")
    path = out / "batching_on_off.png"
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def naive_plot(out: Path, rows: Sequence[dict[str, Any]]) -> Path | None:
    """Requests/s and p99 of Triton against the naive server at each concurrency."""
    if not rows:
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    levels: set[int] = set()
    for server in sorted({r["server"] for r in rows}):
        mine = sorted((r for r in rows if r["server"] == server), key=lambda r: r["concurrency"])
        x = [r["concurrency"] for r in mine]
        levels |= set(x)
        left.plot(x, [r["requests_per_s"] for r in mine], marker="o", label=server)
        right.plot(x, [r["p99_ms"] for r in mine], marker="o", label=server)
    left.set_ylabel("requests/s")
    left.set_title("visual detector: throughput")
    right.set_ylabel("p99 latency (ms)")
    right.set_title("visual detector: p99")
    for axis in (left, right):
        _log2_x(axis, sorted(levels))
        axis.legend()
    path = out / "naive_vs_triton.png"
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def all_plots(out: Path, pa_rows: Sequence[Row], load_rows: Sequence[dict[str, Any]]) -> list[Path]:
    """Write every plot into ``out`` and return their paths; plots without data are skipped."""
    paths = [
        model_plot(out, model, [r for r in pa_rows if r.model == model and r.setup == "batching"])
        for model in sorted({r.model for r in pa_rows if r.setup == "batching"})
    ]
    paths += [p for p in (batching_plot(out, pa_rows), naive_plot(out, load_rows)) if p is not None]
    return paths

"""The benchmark suite's pure parts: settings, sweep levels, batch statistics, tables and ratios.

``perf/suite.py`` (``python -m perf.suite``) measures; everything here only
computes on what it measured, so tests/unit/test_perf_suite.py covers it
without a server.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import json_format

from deepfake_contract import DETECTORS
from deepfake_serving.model_configs import BATCHING, parse_pbtxt, to_pbtxt
from deepfake_serving.testing.perf_analyzer import PaRow

FULL_CONCURRENCY = (1, 2, 4, 8, 16, 32)
QUICK_CONCURRENCY = (1, 4)
#: Slow models only queue past these levels, and at 15 s windows each extra
#: level costs ~50 s: temporal_analyzer ~400 ms per clip, detect_video ~1.4 s.
MAX_CONCURRENCY = {"temporal_analyzer": 4, "detect_video": 8}


@dataclass(frozen=True)
class Settings:
    """What ``--quick`` changes: fewer levels and shorter windows, same phases."""

    concurrency: tuple[int, ...]
    measurement_ms: int
    max_trials: int
    inprocess_s: float
    naive_concurrency: tuple[int, ...]
    naive_s: float

    @classmethod
    def make(cls, quick: bool) -> Settings:
        """The full suite's settings, or the quick run's (``--quick``)."""
        if quick:
            return cls(QUICK_CONCURRENCY, 1000, 3, 0.7, (1, 4), 2.5)
        return cls(FULL_CONCURRENCY, 3000, 3, 2.0, (1, 4, 16), 6.0)


def levels_for(model: str, concurrency: Sequence[int]) -> list[int]:
    """The concurrency levels a model is swept over (capped for the slow ones)."""
    cap = MAX_CONCURRENCY.get(model)
    chosen = [c for c in concurrency if cap is None or c <= cap]
    if cap is not None and cap not in chosen and any(c > cap for c in concurrency):
        chosen.append(cap)
    return chosen


def window_ms(base_ms: int, concurrency: int, best_throughput: float, cap_ms: int = 15000) -> int:
    """A measurement window long enough to hold about two latencies at this concurrency.

    A closed loop at concurrency c and throughput X has latency ~ c/X; a window
    shorter than that completes almost nothing and perf_analyzer gives up. The
    best throughput seen at a lower level is the estimate. The cap keeps the
    slowest level (detect_image at 32) from taking minutes on a loaded machine.
    """
    if best_throughput <= 0:
        return base_ms
    return min(cap_ms, max(base_ms, int(2000 * concurrency / best_throughput)))


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``; NaN rather than an error when either is missing."""
    if not denominator or np.isnan(denominator) or np.isnan(numerator):
        return float("nan")
    return numerator / denominator


def batch_histogram(before: dict[str, Any], after: dict[str, Any]) -> dict[int, int]:
    """Executions per batch size between two ``get_inference_statistics(as_json=True)`` answers.

    Triton's counters are cumulative (and int64 values arrive as strings in
    JSON), so the batches of one measurement are the difference.
    """

    def counts(stats: dict[str, Any]) -> dict[int, int]:
        model = (stats.get("model_stats") or [{}])[0]
        return {
            int(entry["batch_size"]): int(entry.get("compute_infer", {}).get("count", 0))
            for entry in model.get("batch_stats", [])
        }

    old, new = counts(before), counts(after)
    delta = {size: new[size] - old.get(size, 0) for size in new}
    return {size: n for size, n in sorted(delta.items()) if n > 0}


def model_compute(stats: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Per model of a ``get_inference_statistics(as_json=True)`` answer: (successful requests, compute ns).

    Compute is Triton's input + infer + output time inside the model (wall
    time: under load it includes waiting for a core). Cumulative, like every
    counter there: a measurement is the difference of two answers.
    """
    out = {}
    for model in stats.get("model_stats", []):
        s = model.get("inference_stats", {})  # JSON leaves out counters that are still zero
        ns = sum(int(s.get(k, {}).get("ns", 0)) for k in ("compute_input", "compute_infer", "compute_output"))
        out[model["name"]] = (int(s.get("success", {}).get("count", 0)), ns)
    return out


def mean_batch(histogram: dict[int, int]) -> float:
    """Mean executed batch size of a ``{size: executions}`` histogram; NaN when nothing ran."""
    executions = sum(histogram.values())
    return sum(size * n for size, n in histogram.items()) / executions if executions else float("nan")


def format_histogram(histogram: dict[int, int]) -> str:
    """``"1x120 4x30"``: batch size x executions."""
    return " ".join(f"{size}x{n}" for size, n in histogram.items())


def unbatched_config(config_text: str | Path) -> dict[str, Any]:
    """A served ``config.pbtxt`` as a dict, without ``dynamic_batching``; everything else kept."""
    path = Path(config_text)
    message = parse_pbtxt(path)
    config = json_format.MessageToDict(message, preserving_proto_field_name=True)
    config.pop("dynamic_batching", None)
    return config


def write_variant_repository(source: Path, target: Path, models: Iterable[str]) -> list[Path]:
    """A repository serving ``models`` without dynamic batching: symlinked versions, generated configs."""
    written = []
    for name in models:
        model_dir = target / name
        model_dir.mkdir(parents=True, exist_ok=True)
        for version in sorted(p for p in (source / name).iterdir() if p.is_dir() and p.name.isdigit()):
            link = model_dir / version.name
            if not link.exists():
                link.symlink_to(version.resolve(), target_is_directory=True)
        config_path = model_dir / "config.pbtxt"
        config_path.write_text(to_pbtxt(unbatched_config(source / name / "config.pbtxt")))
        written.append(config_path)
    return written


def saturation(rows: Sequence[PaRow]) -> PaRow | None:
    """The highest-throughput row: the server at saturation."""
    return max(rows, key=lambda row: row.throughput, default=None)


def batching_table(on: Sequence[PaRow], off: Sequence[PaRow]) -> list[dict[str, Any]]:
    """Per model and concurrency: throughput with and without dynamic batching, and the ratio."""
    off_by_key = {(row.model, row.concurrency): row for row in off}
    table = []
    for row in on:
        other = off_by_key.get((row.model, row.concurrency))
        if other is None:
            continue
        table.append(
            {
                "model": row.model,
                "concurrency": row.concurrency,
                "on_infer_per_s": round(row.throughput, 2),
                "off_infer_per_s": round(other.throughput, 2),
                "ratio_on_off": round(ratio(row.throughput, other.throughput), 3),
                "on_p99_ms": round(row.p99_ms, 1),
                "off_p99_ms": round(other.p99_ms, 1),
                "on_batches": row.batch_sizes,
                "on_mean_batch": round(row.mean_batch, 2),
                "off_batches": other.batch_sizes,
            }
        )
    return table


def naive_ratios(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per concurrency: this deployment's throughput over the naive one's, and p99 naive over ours."""
    by = {(r["server"], r["concurrency"]): r for r in rows}
    table = []
    for (server, concurrency), ours in sorted(by.items(), key=lambda item: item[0][1]):
        naive = by.get(("naive", concurrency))
        if server != "triton" or naive is None:
            continue
        table.append(
            {
                "concurrency": concurrency,
                "triton_per_s": ours["requests_per_s"],
                "naive_per_s": naive["requests_per_s"],
                "throughput_ratio": round(ratio(ours["requests_per_s"], naive["requests_per_s"]), 3),
                "triton_p99_ms": ours["p99_ms"],
                "naive_p99_ms": naive["p99_ms"],
                "p99_ratio_naive_over_triton": round(ratio(naive["p99_ms"], ours["p99_ms"]), 3),
            }
        )
    return table


def overhead_table(inprocess: Sequence[dict[str, Any]], served: Sequence[PaRow]) -> list[dict[str, Any]]:
    """Triton at saturation over ONNX Runtime in-process at the preferred batch size."""
    table = []
    for spec in DETECTORS:
        preferred = BATCHING[spec.name].preferred_batch_sizes[0]
        local = next((r for r in inprocess if r["model"] == spec.name and r["batch"] == preferred), None)
        best = saturation([r for r in served if r.model == spec.name])
        if local is None or best is None:
            continue
        table.append(
            {
                "model": spec.name,
                "inprocess_batch": preferred,
                "inprocess_items_per_s": local["items_per_s"],
                "triton_best_infer_per_s": round(best.throughput, 2),
                "at_concurrency": best.concurrency,
                "ratio_triton_inprocess": round(ratio(best.throughput, local["items_per_s"]), 3),
            }
        )
    return table


def image_overhead(parts: Sequence[dict[str, Any]], served: Sequence[PaRow]) -> dict[str, Any] | None:
    """detect_image through Triton against the sum of its parts in-process."""
    rows = [r for r in served if r.model == "detect_image"]
    best, single = saturation(rows), next((r for r in rows if r.concurrency == 1), None)
    if not parts or best is None:
        return None
    total_ms = sum(p["ms"] for p in parts)
    return {
        "sum_of_parts_ms": round(total_ms, 1),
        "inprocess_images_per_s": round(1000 / total_ms, 2),
        "triton_best_images_per_s": round(best.throughput, 2),
        "at_concurrency": best.concurrency,
        "ratio_triton_inprocess": round(ratio(best.throughput, 1000 / total_ms), 3),
        "triton_c1_p50_ms": round(single.p50_ms, 1) if single else float("nan"),
    }


def headline_ratios(
    served: Sequence[PaRow],
    unbatched: Sequence[PaRow],
    overhead: Sequence[dict[str, Any]],
    image: dict[str, Any] | None,
    naive: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The three numbers the suite exists for, one row each per model.

    Batching on/off compares each setup at its own saturation (best
    throughput over the sweep), which is what an operator sizing a fleet
    gets; the per-concurrency ratios are in ``batching.csv``.
    """
    rows = []
    for name in sorted({r.model for r in unbatched}):
        on = saturation([r for r in served if r.model == name])
        off = saturation([r for r in unbatched if r.model == name])
        if on and off:
            rows.append(
                {
                    "ratio": "batching on / off (saturation)",
                    "model": name,
                    "value": round(ratio(on.throughput, off.throughput), 3),
                    "detail": f"{on.throughput:.2f}/s at c={on.concurrency} vs {off.throughput:.2f}/s at c={off.concurrency}",
                }
            )
    for entry in overhead:
        rows.append(
            {
                "ratio": "Triton (saturation) / in-process",
                "model": entry["model"],
                "value": entry["ratio_triton_inprocess"],
                "detail": f"{entry['triton_best_infer_per_s']}/s at c={entry['at_concurrency']} vs {entry['inprocess_items_per_s']}/s at batch {entry['inprocess_batch']}",
            }
        )
    if image:
        rows.append(
            {
                "ratio": "Triton (saturation) / sum of parts in-process",
                "model": "detect_image",
                "value": image["ratio_triton_inprocess"],
                "detail": f"{image['triton_best_images_per_s']}/s at c={image['at_concurrency']} vs {image['inprocess_images_per_s']}/s",
            }
        )
    if naive:
        top = max(naive, key=lambda r: r["concurrency"])
        rows.append(
            {
                "ratio": "this deployment / naive: throughput",
                "model": "visual_detector",
                "value": top["throughput_ratio"],
                "detail": f"c={top['concurrency']}: {top['triton_per_s']}/s vs {top['naive_per_s']}/s",
            }
        )
        rows.append(
            {
                "ratio": "naive / this deployment: p99",
                "model": "visual_detector",
                "value": top["p99_ratio_naive_over_triton"],
                "detail": f"c={top['concurrency']}: {top['naive_p99_ms']} ms vs {top['triton_p99_ms']} ms",
            }
        )
    return rows


def served_table(rows: Sequence[PaRow]) -> list[dict[str, Any]]:
    """perf_analyzer rows as table rows: ``perf_analyzer.csv`` and the summary's throughput table."""
    return [
        {
            "setup": r.setup,
            "model": r.model,
            "concurrency": r.concurrency,
            "infer_per_s": round(r.throughput, 2),
            "p50_ms": round(r.p50_ms, 1),
            "p95_ms": round(r.p95_ms, 1),
            "p99_ms": round(r.p99_ms, 1),
            "server_queue_ms": round(r.server_queue_ms, 2),
            "server_compute_ms": round(r.server_compute_ms, 2),
            "batches": r.batch_sizes,
            "mean_batch": round(r.mean_batch, 2),
        }
        for r in rows
    ]

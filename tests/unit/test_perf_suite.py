"""The pure parts of the benchmark suite (perf/suite.py): variant configs, CSV parsing, ratios. No timing.

They live in :mod:`deepfake_serving.testing.benchmark` and
:mod:`deepfake_serving.testing.perf_analyzer`, which the suite and perf/pa.py import.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from deepfake_contract import DETECTORS
from deepfake_serving.model_configs import detector_config, parse_pbtxt, to_pbtxt
from deepfake_serving.testing import benchmark, perf_analyzer

PA_CSV = (
    "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,"
    "Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency,"
    "Avg latency,request/response,response wait\n"
    "4,26.8356,82,1865,65190,304,78522,1543,3,141496,182722,233623,246591,147511,85,147398\n"
)


def write_source_repository(root: Path) -> Path:
    for spec in DETECTORS:
        (root / spec.name / "1").mkdir(parents=True)
        (root / spec.name / "1" / "model.onnx").write_bytes(b"onnx")
        (root / spec.name / "config.pbtxt").write_text(to_pbtxt(detector_config(spec)))
    return root


def test_the_variant_repository_drops_dynamic_batching_and_keeps_everything_else(tmp_path):
    source = write_source_repository(tmp_path / "source")
    names = [spec.name for spec in DETECTORS]
    written = benchmark.write_variant_repository(source, tmp_path / "variant", names)
    assert [p.parent.name for p in written] == names
    for name in names:
        original, variant = (
            parse_pbtxt(source / name / "config.pbtxt"),
            parse_pbtxt(tmp_path / "variant" / name / "config.pbtxt"),
        )
        assert original.HasField("dynamic_batching") and not variant.HasField("dynamic_batching")
        original.ClearField("dynamic_batching")
        assert variant == original, "same instances, threads, warm-up, everything but batching"
        version = tmp_path / "variant" / name / "1"
        assert version.is_symlink() and (version / "model.onnx").read_bytes() == b"onnx"


def test_writing_the_variant_twice_is_harmless(tmp_path):
    source = write_source_repository(tmp_path / "source")
    benchmark.write_variant_repository(source, tmp_path / "variant", ["visual_detector"])
    benchmark.write_variant_repository(source, tmp_path / "variant", ["visual_detector"])
    assert (tmp_path / "variant" / "visual_detector" / "1").is_symlink()


def test_perf_analyzer_csv_is_read_in_milliseconds(tmp_path):
    path = tmp_path / "pa.csv"
    path.write_text(PA_CSV)
    [row] = perf_analyzer.parse_csv(path, "batching", "visual_detector")
    assert (row.concurrency, row.throughput) == (4, pytest.approx(26.8356))
    assert (row.p50_ms, row.p95_ms, row.p99_ms) == pytest.approx((141.496, 233.623, 246.591))
    assert row.server_queue_ms == pytest.approx(65.19)
    assert row.server_compute_ms == pytest.approx((304 + 78522 + 1543) / 1000)


def stats(counts: dict[int, int]) -> dict:
    return {
        "model_stats": [
            {
                "batch_stats": [
                    {"batch_size": str(size), "compute_infer": {"count": str(n), "ns": "1"}}
                    for size, n in counts.items()
                ]
            }
        ]
    }


def test_executed_batches_are_the_difference_of_triton_counters():
    histogram = benchmark.batch_histogram(stats({1: 5, 4: 2}), stats({1: 7, 2: 3, 4: 2}))
    assert histogram == {1: 2, 2: 3}
    assert benchmark.format_histogram(histogram) == "1x2 2x3"
    assert benchmark.mean_batch(histogram) == pytest.approx((2 + 6) / 5)
    assert benchmark.batch_histogram({}, stats({1: 1})) == {1: 1}
    assert math.isnan(benchmark.mean_batch({}))


def test_ratios_are_nan_instead_of_errors_when_a_side_is_missing():
    assert benchmark.ratio(6, 3) == 2
    assert math.isnan(benchmark.ratio(1, 0))
    assert math.isnan(benchmark.ratio(float("nan"), 2))


def row(setup: str, concurrency: int, throughput: float, model: str = "visual_detector") -> perf_analyzer.PaRow:
    return perf_analyzer.PaRow(setup, model, concurrency, throughput, 1.0, 2.0, 3.0, 0.5, 0.5)


def test_batching_table_pairs_on_and_off_by_model_and_concurrency():
    on = [row("batching", 1, 30), row("batching", 4, 40)]
    off = [row("nobatch", 4, 20), row("nobatch", 8, 25)]
    [entry] = benchmark.batching_table(on, off)
    assert (entry["concurrency"], entry["ratio_on_off"]) == (4, 2.0)


def test_overhead_compares_saturation_with_the_preferred_batch_in_process():
    inprocess = [
        {"model": "visual_detector", "batch": 1, "items_per_s": 30.0},
        {"model": "visual_detector", "batch": 4, "items_per_s": 32.0},
    ]
    served = [row("batching", 1, 20), row("batching", 8, 28.8), row("batching", 16, 27)]
    [entry] = benchmark.overhead_table(inprocess, served)
    assert (entry["inprocess_batch"], entry["at_concurrency"], entry["ratio_triton_inprocess"]) == (4, 8, 0.9)


def test_naive_ratios_pair_the_two_servers_per_concurrency():
    rows = [
        {"server": "triton", "concurrency": 4, "requests_per_s": 30.0, "p99_ms": 200.0},
        {"server": "naive", "concurrency": 4, "requests_per_s": 10.0, "p99_ms": 800.0},
        {"server": "triton", "concurrency": 16, "requests_per_s": 31.0, "p99_ms": 700.0},
    ]
    [entry] = benchmark.naive_ratios(rows)
    assert (entry["throughput_ratio"], entry["p99_ratio_naive_over_triton"]) == (3.0, 4.0)


def test_slow_models_are_capped_and_windows_stretch_with_expected_latency():
    assert benchmark.levels_for("temporal_analyzer", (1, 2, 4, 8, 16, 32)) == [1, 2, 4]
    assert benchmark.levels_for("temporal_analyzer", (1, 8)) == [1, 4]
    assert benchmark.levels_for("visual_detector", (1, 4)) == [1, 4]
    assert benchmark.window_ms(3000, 1, 0.0) == 3000
    assert benchmark.window_ms(3000, 32, 5.0) == 12800
    assert benchmark.window_ms(3000, 32, 1.0) == 15000


def test_quick_settings_are_a_subset_of_the_full_ones():
    quick, full = benchmark.Settings.make(True), benchmark.Settings.make(False)
    assert set(quick.concurrency) <= set(full.concurrency) == {1, 2, 4, 8, 16, 32}
    assert quick.measurement_ms < full.measurement_ms


def test_headline_ratios_compare_each_setup_at_its_own_saturation():
    served = [row("batching", 1, 20), row("batching", 4, 40)]
    unbatched = [row("nobatch", 1, 25), row("nobatch", 4, 20)]
    overhead = benchmark.overhead_table([{"model": "visual_detector", "batch": 4, "items_per_s": 50.0}], served)
    naive = benchmark.naive_ratios(
        [
            {"server": "triton", "concurrency": 1, "requests_per_s": 20.0, "p99_ms": 60.0},
            {"server": "naive", "concurrency": 1, "requests_per_s": 10.0, "p99_ms": 120.0},
            {"server": "triton", "concurrency": 4, "requests_per_s": 30.0, "p99_ms": 150.0},
            {"server": "naive", "concurrency": 4, "requests_per_s": 10.0, "p99_ms": 450.0},
        ]
    )
    rows = benchmark.headline_ratios(served, unbatched, overhead, None, naive)
    values = {r["ratio"]: r["value"] for r in rows}
    assert values == {
        "batching on / off (saturation)": 1.6,
        "Triton (saturation) / in-process": 0.8,
        "this deployment / naive: throughput": 3.0,
        "naive / this deployment: p99": 3.0,
    }


def test_model_compute_reads_requests_and_compute_time_and_skips_missing_counters():
    stats = {
        "model_stats": [
            {
                "name": "a",
                "inference_stats": {
                    "success": {"count": "3", "ns": "90"},
                    "compute_input": {"ns": "1"},
                    "compute_infer": {"ns": "20"},
                    "compute_output": {"ns": "2"},
                },
            },
            {"name": "idle"},
        ]
    }
    assert benchmark.model_compute(stats) == {"a": (3, 23), "idle": (0, 0)}

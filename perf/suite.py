"""The whole benchmark suite in one command: CSV, PNG plots and a markdown summary.

    PYTHONPATH=. .venv/bin/python perf/suite.py [--quick] [--out DIR]

from the repository root (``PYTHONPATH=.`` so ``tests.triton_process`` imports;
it starts the real ``tritonserver`` on free ports). It answers, on this machine:

1. throughput and p50/p95/p99 (with Triton's queue/compute split) of every
   ONNX detector and every ensemble in ``model_repository`` against
   concurrency (perf_analyzer; real encoded media for the ensembles);
2. what dynamic batching buys: the detectors again from a generated variant
   repository without ``dynamic_batching`` (same instances, same files), the
   throughput ratio per concurrency and the batch sizes Triton executed;
3. serving overhead: Triton at saturation against ONNX Runtime in-process
   (same threads, the preferred batch size), and ``detect_image`` against the
   sum of its parts run in-process;
4. this deployment against the naive server of ``perf/naive_server.py``.

The phases run one after the other, never overlapping, because on a 2-core
machine any two of them would measure each other.
"""

from __future__ import annotations

import argparse
import base64
import csv
import datetime
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PERF = Path(__file__).resolve().parent
ROOT = PERF.parent
sys.path.insert(0, str(PERF))

from loadgen import LoadResult, run_load  # noqa: E402

from deepfake_serving.contract import DETECTORS  # noqa: E402
from deepfake_serving.model_configs import BATCHING, parse_pbtxt, to_pbtxt  # noqa: E402

ENSEMBLES = ("detect_image", "detect_audio", "detect_video")
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
        if quick:
            return cls(QUICK_CONCURRENCY, 1000, 3, 0.7, (1, 4), 2.5)
        return cls(FULL_CONCURRENCY, 3000, 3, 2.0, (1, 4, 16), 6.0)


# --------------------------------------------------------------------------- pure helpers


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


def parse_pa_csv(path: Path, setup: str, model: str) -> list[PaRow]:
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


def mean_batch(histogram: dict[int, int]) -> float:
    executions = sum(histogram.values())
    return sum(size * n for size, n in histogram.items()) / executions if executions else float("nan")


def format_histogram(histogram: dict[int, int]) -> str:
    """``"1x120 4x30"``: batch size x executions."""
    return " ".join(f"{size}x{n}" for size, n in histogram.items())


def unbatched_config(config_text: str | Path) -> dict[str, Any]:
    """A served ``config.pbtxt`` as a dict, without ``dynamic_batching``; everything else kept."""
    from google.protobuf import json_format

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


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "_(no data)_\n"
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- perf_analyzer


def perf_analyzer_env() -> dict[str, str]:
    """perf_analyzer loads libcudart.so.12 even on CPU (see perf/pa.py)."""
    from pa import cudart_dir

    return dict(
        os.environ, LD_LIBRARY_PATH=os.pathsep.join(filter(None, [cudart_dir(), os.environ.get("LD_LIBRARY_PATH")]))
    )


def detector_input_data(model: str, directory: Path) -> Path:
    """perf_analyzer ``--input-data`` directory: one standard-normal sample as raw FP32.

    perf_analyzer's own random data is random bytes, which include NaN and Inf
    bit patterns that the detectors (rightly) reject.
    """
    from deepfake_serving.contract import by_name

    spec = by_name(model)
    path = directory / f"{model}-input"
    path.mkdir(parents=True, exist_ok=True)
    for tensor in spec.inputs:
        np.random.default_rng(0).standard_normal(tensor.dims, dtype=np.float32).tofile(path / tensor.name)
    return path


def ensemble_input_data(model: str, directory: Path) -> Path:
    """perf_analyzer ``--input-data`` with one real encoded file.

    ``b64`` content is sent as the tensor's raw bytes, so a BYTES element needs
    Triton's serialized form: a 4-byte little-endian length prefix.
    """
    from sample_media import SAMPLES

    name, make = SAMPLES[model]
    payload = make()
    serialized = struct.pack("<I", len(payload)) + payload
    path = directory / f"{model}-input.json"
    path.write_text(
        json.dumps({"data": [{name: {"content": {"b64": base64.b64encode(serialized).decode()}, "shape": [1]}}]})
    )
    return path


@dataclass
class Sweeper:
    """perf_analyzer, one invocation per concurrency level, against one server.

    One invocation per level costs a second of start-up each but gives each
    level its own slice of Triton's batch statistics and its own window length,
    and a level that fails loses only itself.
    """

    grpc_url: str
    setup: str
    settings: Settings
    raw_dir: Path
    env: dict[str, str] = field(default_factory=perf_analyzer_env)

    def sweep(self, model: str, input_data: Path | None = None) -> list[PaRow]:
        """Every level of one model; a model the server stops answering loses its remaining levels only."""
        from tritonclient.utils import InferenceServerException

        rows: list[PaRow] = []
        try:
            self._sweep(model, input_data, rows)
        except InferenceServerException as error:
            print(f"  {model}: {error.message()}; rest of its sweep skipped", flush=True)
        return rows

    def _sweep(self, model: str, input_data: Path | None, rows: list[PaRow]) -> None:
        """Append one row per level to ``rows`` (kept when a later level raises)."""
        import tritonclient.grpc as grpcclient

        client = grpcclient.InferenceServerClient(self.grpc_url)
        best = 0.0
        try:
            for concurrency in levels_for(model, self.settings.concurrency):
                before = client.get_inference_statistics(model, as_json=True)
                row = self._measure(
                    model, concurrency, window_ms(self.settings.measurement_ms, concurrency, best), input_data
                )
                if row is None:
                    continue
                histogram = batch_histogram(before, client.get_inference_statistics(model, as_json=True))
                row = PaRow(
                    **{**asdict(row), "batch_sizes": format_histogram(histogram), "mean_batch": mean_batch(histogram)}
                )
                rows.append(row)
                best = max(best, row.throughput)
                print(
                    f"  {self.setup:>9} {model:<20} c={concurrency:<3} {row.throughput:8.2f}/s  p99 {row.p99_ms:8.1f} ms  batches {row.batch_sizes}",
                    flush=True,
                )
        finally:
            client.close()

    def _measure(self, model: str, concurrency: int, measurement_ms: int, input_data: Path | None) -> PaRow | None:
        """One level; once more with longer windows when perf_analyzer finds no stable measurement."""
        row = self._run(model, concurrency, measurement_ms, self.settings.max_trials, input_data)
        if row is None:
            print(f"  retrying {model} c={concurrency} with {2 * measurement_ms} ms windows", flush=True)
            row = self._run(model, concurrency, 2 * measurement_ms, self.settings.max_trials + 2, input_data)
        return row

    def _run(
        self, model: str, concurrency: int, measurement_ms: int, max_trials: int, input_data: Path | None
    ) -> PaRow | None:
        csv_path = self.raw_dir / f"{self.setup}-{model}-c{concurrency}.csv"
        command = [
            str(Path(sys.executable).parent / "perf_analyzer"),
            "-m",
            model,
            "-u",
            self.grpc_url,
            "-i",
            "grpc",
            "--concurrency-range",
            f"{concurrency}:{concurrency}:1",
            "--measurement-interval",
            str(measurement_ms),
            # At most max_trials windows; 1000% (max/min <= 11) lets three windows
            # count as stable, so a noisy shared machine costs accuracy, not the level.
            "--max-trials",
            str(max_trials),
            "--stability-percentage",
            "1000",
            "-f",
            str(csv_path),
            "--verbose-csv",
            *(["--input-data", str(input_data)] if input_data else []),
        ]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=600)
        (self.raw_dir / f"{self.setup}-{model}-c{concurrency}.log").write_text(done.stdout + done.stderr)
        if not csv_path.exists():
            print(
                f"  perf_analyzer failed for {model} c={concurrency} (exit {done.returncode}); see its .log", flush=True
            )
            return None
        rows = parse_pa_csv(csv_path, self.setup, model)
        return rows[0] if rows else None


# --------------------------------------------------------------------------- phases


def measure_seconds(function: Callable[[], object], min_seconds: float, min_runs: int = 3) -> float:
    """Median seconds per call after one warm-up call."""
    function()
    times: list[float] = []
    started = time.perf_counter()
    while time.perf_counter() - started < min_seconds or len(times) < min_runs:
        begun = time.perf_counter()
        function()
        times.append(time.perf_counter() - begun)
    return float(np.median(times))


def inprocess_detectors(repository: Path, settings: Settings) -> list[dict[str, Any]]:
    """Each ONNX detector under ONNX Runtime in this process: the machine's own limit."""
    from deepfake_serving.onnx_runner import OnnxRunner, SessionSettings

    rows = []
    for spec in DETECTORS:
        batching = BATCHING[spec.name]
        runner = OnnxRunner(repository / spec.name / "1" / "model.onnx", SessionSettings(batching.intra_op_threads))
        for batch in sorted({1, batching.preferred_batch_sizes[0]}):
            x = np.random.default_rng(0).standard_normal((batch, *spec.inputs[0].dims), dtype=np.float32)
            seconds = measure_seconds(
                lambda x=x, runner=runner: runner.run_batch([{"input": x}], ["output"]), settings.inprocess_s
            )
            rows.append(
                {
                    "model": spec.name,
                    "batch": batch,
                    "ms_per_batch": round(seconds * 1e3, 2),
                    "items_per_s": round(batch / seconds, 2),
                }
            )
            print(f"  in-process {spec.name:<20} batch {batch:<3} {batch / seconds:10.1f} items/s", flush=True)
    return rows


def inprocess_image_parts(repository: Path, settings: Settings) -> list[dict[str, Any]]:
    """detect_image's steps run in-process, one after another, on the same JPEG perf_analyzer sends.

    image_fusion (a few arithmetic operations) is left out.
    """
    from sample_media import image_jpeg

    from deepfake_serving import forensics
    from deepfake_serving.image_pipeline import FaceDetector, FaceSettings
    from deepfake_serving.onnx_runner import OnnxRunner, SessionSettings

    data = image_jpeg()
    faces_model = FaceDetector(repository / "face_detector" / "1", FaceSettings(), threads=1)
    visual = OnnxRunner(repository / "visual_detector" / "1" / "model.onnx", SessionSettings(2))
    classifier = OnnxRunner(repository / "forensic_classifier" / "1" / "model.onnx", SessionSettings(2))
    faces = faces_model.detect(data)
    features = forensics.extract_batch(faces.crops, workers=2).astype(np.float32)
    parts = {
        "face_detector": lambda: faces_model.detect(data),
        "visual_detector": lambda: visual.run_batch([{"input": faces.visual_input}], ["output"]),
        "forensic_features": lambda: forensics.extract_batch(faces.crops, workers=2),
        "forensic_classifier": lambda: classifier.run_batch([{"input": features}], ["output"]),
    }
    rows = []
    for name, function in parts.items():
        seconds = measure_seconds(function, settings.inprocess_s)
        rows.append({"part": name, "ms": round(seconds * 1e3, 3)})
        print(f"  in-process detect_image part {name:<20} {seconds * 1e3:8.1f} ms", flush=True)
    return rows


def triton_visual_call(grpc_url: str, jpeg: bytes) -> Callable[[], Callable[[], None]]:
    """Triton's side of the naive comparison: the client decodes and preprocesses, visual_detector runs.

    The same work as the naive server (decode + spec section 3 preprocess + one
    forward), with the preprocess in the client, which shares this machine.
    """
    import tritonclient.grpc as grpcclient
    from naive_server import decode, preprocess

    def make() -> Callable[[], None]:
        client = grpcclient.InferenceServerClient(grpc_url)

        def call() -> None:
            tensor = grpcclient.InferInput("input", [1, 3, 224, 224], "FP32")
            tensor.set_data_from_numpy(np.ascontiguousarray(preprocess(decode(jpeg)), dtype=np.float32))
            client.infer("visual_detector", [tensor], outputs=[grpcclient.InferRequestedOutput("output")])

        return call

    return make


def naive_call(url: str, jpeg: bytes) -> Callable[[], Callable[[], None]]:
    import http.client

    host, port = url.split(":")

    def make() -> Callable[[], None]:
        def call() -> None:
            connection = http.client.HTTPConnection(host, int(port), timeout=120)
            try:
                connection.request("POST", "/detect", body=jpeg, headers={"Content-Type": "image/jpeg"})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"naive server answered {response.status}")
            finally:
                connection.close()

        return call

    return make


def load_rows(server: str, results: Iterable[LoadResult]) -> list[dict[str, Any]]:
    return [
        {
            "server": server,
            "concurrency": r.concurrency,
            "requests_per_s": round(r.throughput, 2),
            "p50_ms": round(r.percentile(50), 1),
            "p95_ms": round(r.percentile(95), 1),
            "p99_ms": round(r.percentile(99), 1),
            "errors": r.errors,
        }
        for r in results
    ]


def run_naive_server(workdir: Path, settings: Settings, jpeg: bytes) -> list[dict[str, Any]]:
    """Start perf/naive_server.py, wait for it, drive it with the same load generator."""

    from tests.triton_process import free_port, wait_http_ok

    port = free_port()
    log = (workdir / "naive_server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(PERF / "naive_server.py"), "--port", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        if not wait_http_ok(f"http://127.0.0.1:{port}/health", process, 180):
            raise RuntimeError(f"naive server did not start; see {log.name}")
        results = []
        for concurrency in settings.naive_concurrency:
            results.append(run_load(naive_call(f"127.0.0.1:{port}", jpeg), concurrency, settings.naive_s))
            print(
                f"  naive  c={concurrency:<3} {results[-1].throughput:8.2f}/s p99 {results[-1].percentile(99):8.1f} ms",
                flush=True,
            )
        return load_rows("naive", results)
    finally:
        process.terminate()
        process.wait(30)
        log.close()


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


# --------------------------------------------------------------------------- orchestration


def present_ensembles(repository: Path, grpc_url: str) -> list[str]:
    """Ensembles the server actually serves: in the repository and ready (a failed load is skipped)."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(grpc_url)
    found = []
    try:
        for name in ENSEMBLES:
            if not (repository / name / "config.pbtxt").exists():
                print(f"note: {name} is not in {repository}; skipped", flush=True)
                continue
            try:
                ready = client.is_model_ready(name)
            except InferenceServerException:
                ready = False
            if ready:
                found.append(name)
            else:
                print(
                    f"note: {name} is in the repository but the server has not loaded it (see its log); skipped",
                    flush=True,
                )
    finally:
        client.close()
    return found


def served_phase(
    repository: Path, out: Path, work: Path, settings: Settings, jpeg: bytes
) -> tuple[list[PaRow], list[dict[str, Any]]]:
    """The production repository: detector and ensemble sweeps, then Triton's side of the naive comparison."""
    from tests.triton_process import start_triton

    server = start_triton(work / "triton-main", repository=repository)
    try:
        sweeper = Sweeper(server.grpc_url, "batching", settings, out / "raw")
        rows = [row for spec in DETECTORS for row in sweeper.sweep(spec.name, detector_input_data(spec.name, work))]
        for ensemble in present_ensembles(repository, server.grpc_url):
            rows += sweeper.sweep(ensemble, ensemble_input_data(ensemble, work))
        results = []
        for concurrency in settings.naive_concurrency:
            results.append(run_load(triton_visual_call(server.grpc_url, jpeg), concurrency, settings.naive_s))
            print(
                f"  triton c={concurrency:<3} {results[-1].throughput:8.2f}/s p99 {results[-1].percentile(99):8.1f} ms",
                flush=True,
            )
        return rows, load_rows("triton", results)
    finally:
        server.stop()
        shutil.copy(server.log_path, out / "logs" / "tritonserver-main.log")


def unbatched_phase(repository: Path, out: Path, work: Path, settings: Settings) -> list[PaRow]:
    """The detectors again from the generated no-batching variant repository."""
    from tests.triton_process import start_triton

    variant = work / "repository-no-batching"
    names = [spec.name for spec in DETECTORS]
    for path in write_variant_repository(repository, variant, names):
        shutil.copy(path, out / "variant_configs" / f"{path.parent.name}.pbtxt")
    server = start_triton(work / "triton-nobatch", repository=variant)
    try:
        sweeper = Sweeper(server.grpc_url, "nobatch", settings, out / "raw")
        return [row for name in names for row in sweeper.sweep(name, detector_input_data(name, work))]
    finally:
        server.stop()
        shutil.copy(server.log_path, out / "logs" / "tritonserver-nobatch.log")


def summary(out: Path, started: datetime.datetime, wall_s: float, quick: bool, tables: dict[str, Any]) -> str:
    lines = [
        f"# Benchmark suite results, {started:%Y-%m-%d %H:%M}",
        "",
        f"`PYTHONPATH=. .venv/bin/python perf/suite.py{' --quick' if quick else ''}` on {os.cpu_count()} cores, "
        f"wall time {wall_s / 60:.1f} min. Demo weights; perf_analyzer with random data for the detectors and a "
        "real encoded file for the ensembles.",
        "",
        "## The three ratios (`ratios.csv`)",
        "",
        "Above 1 means the first named setup is better. Items/s throughout: a Triton request carries one "
        "item, an in-process call the preferred batch.",
        "",
        markdown_table(tables["ratios"]),
        "## Throughput and latency (perf_analyzer; `perf_analyzer.csv`, `<model>.png`)",
        "",
        markdown_table(tables["served"]),
        "## 1. Dynamic batching on / off (`batching.csv`, `batching_on_off.png`)",
        "",
        "Batches executed: `size x executions` from Triton's inference statistics during that measurement.",
        "",
        markdown_table(tables["batching"]),
        "## 2. Triton at saturation / in-process ONNX Runtime (`overhead.csv`, `inprocess.csv`)",
        "",
        markdown_table(tables["overhead"]),
        "detect_image against the sum of its parts in-process (`image_parts.csv`):",
        "",
        markdown_table(tables["image_parts"]),
        markdown_table([tables["image_overhead"]] if tables["image_overhead"] else []),
        "## 3. This deployment / naive server (`naive.csv`, `naive_vs_triton.png`)",
        "",
        "Naive: `perf/naive_server.py` (single-threaded `http.server.HTTPServer`, PyTorch forward per request). "
        "Triton: the client decodes and preprocesses the same 224x224 JPEG and sends the tensor to "
        "`visual_detector`. Same threaded load generator (`perf/loadgen.py`) for both.",
        "",
        markdown_table(tables["naive"]),
    ]
    text = "\n".join(lines)
    (out / "summary.md").write_text(text)
    return text


def served_table(rows: Sequence[PaRow]) -> list[dict[str, Any]]:
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


def exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the ``finally`` blocks stop the servers this suite started."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="concurrency 1 and 4, short windows (~3 minutes)")
    parser.add_argument("--out", type=Path, help="results folder (default perf/results/<YYYY-MM-DD-HHMM>)")
    parser.add_argument("--repository", type=Path, default=ROOT / "model_repository")
    args = parser.parse_args()
    settings = Settings.make(args.quick)
    started = datetime.datetime.now()
    out = args.out or PERF / "results" / f"{started:%Y-%m-%d-%H%M}"
    for sub in ("raw", "logs", "variant_configs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    repository = args.repository.resolve()
    from sample_media import image_jpeg

    jpeg = image_jpeg(224)
    clock = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="perf-suite-") as tmp:
        work = Path(tmp)
        print("phase 1/4: in-process ONNX Runtime", flush=True)
        inprocess = inprocess_detectors(repository, settings)
        parts = inprocess_image_parts(repository, settings)
        print("phase 2/4: production repository (dynamic batching on)", flush=True)
        served, triton_load = served_phase(repository, out, work, settings, jpeg)
        print("phase 3/4: naive server", flush=True)
        naive_load = run_naive_server(out / "logs", settings, jpeg)
        print("phase 4/4: variant repository without dynamic batching", flush=True)
        unbatched = unbatched_phase(repository, out, work, settings)
    tables = {
        "served": served_table(served),
        "batching": batching_table([r for r in served if r.model not in ENSEMBLES], unbatched),
        "overhead": overhead_table(inprocess, served),
        "image_parts": parts,
        "image_overhead": image_overhead(parts, served),
        "naive": naive_ratios([*triton_load, *naive_load]),
    }
    tables["ratios"] = headline_ratios(served, unbatched, tables["overhead"], tables["image_overhead"], tables["naive"])
    write_csv(out / "ratios.csv", tables["ratios"])
    write_csv(out / "perf_analyzer.csv", served_table([*served, *unbatched]))
    write_csv(out / "batching.csv", tables["batching"])
    write_csv(out / "inprocess.csv", inprocess)
    write_csv(out / "overhead.csv", tables["overhead"])
    write_csv(out / "image_parts.csv", parts)
    write_csv(out / "image_overhead.csv", [tables["image_overhead"]] if tables["image_overhead"] else [])
    write_csv(out / "naive.csv", [*triton_load, *naive_load])
    write_csv(out / "naive_ratios.csv", tables["naive"])
    import plots

    plots.all_plots(out, [*served, *unbatched], [*triton_load, *naive_load])
    print(summary(out, started, time.monotonic() - clock, args.quick, tables))
    print(f"\nresults in {out}")


if __name__ == "__main__":
    main()

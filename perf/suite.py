"""The whole benchmark suite in one command: CSV, PNG plots and a markdown summary.

    .venv/bin/python -m perf.suite [--quick] [--out DIR]

from the repository root (it starts the real ``tritonserver`` on free ports,
with :mod:`deepfake_serving.testing.triton`). It answers, on this machine:

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
import csv
import datetime
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from deepfake_contract import DETECTORS
from deepfake_serving import forensics
from deepfake_serving.image_pipeline import FaceDetector, FaceSettings
from deepfake_serving.model_configs import BATCHING
from deepfake_serving.onnx_runner import OnnxRunner, SessionSettings
from deepfake_serving.testing import perf_analyzer
from deepfake_serving.testing.benchmark import (
    Settings,
    batch_histogram,
    batching_table,
    format_histogram,
    headline_ratios,
    image_overhead,
    levels_for,
    mean_batch,
    naive_ratios,
    overhead_table,
    served_table,
    window_ms,
    write_variant_repository,
)
from deepfake_serving.testing.perf_analyzer import PaRow
from deepfake_serving.testing.triton import ROOT, free_port, start_triton, wait_http_ok
from perf.loadgen import LoadResult, run_load
from perf.sample_media import SAMPLES, image_jpeg

PERF = Path(__file__).resolve().parent
ENSEMBLES = ("detect_image", "detect_audio", "detect_video")


# --------------------------------------------------------------------------- reports


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write ``rows`` as CSV with the first row's keys as header; nothing when empty."""
    if not rows:
        return
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """``rows`` as a Markdown table (floats to 2 decimals) for ``summary.md``."""
    if not rows:
        return "_(no data)_\n"
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- perf_analyzer


def ensemble_input_data(model: str, directory: Path) -> Path:
    """perf_analyzer ``--input-data`` with one real encoded file of ``perf/sample_media.py``."""
    name, make = SAMPLES[model]
    return perf_analyzer.bytes_input_data(model, name, make(), directory)


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
    env: dict[str, str] = field(default_factory=perf_analyzer.environment)

    def sweep(self, model: str, input_data: Path | None = None) -> list[PaRow]:
        """Every level of one model; a model the server stops answering loses its remaining levels only."""
        rows: list[PaRow] = []
        try:
            self._sweep(model, input_data, rows)
        except InferenceServerException as error:
            print(f"  {model}: {error.message()}; rest of its sweep skipped", flush=True)
        return rows

    def _sweep(self, model: str, input_data: Path | None, rows: list[PaRow]) -> None:
        """Append one row per level to ``rows`` (kept when a later level raises)."""
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
        command = perf_analyzer.command(
            model,
            self.grpc_url,
            f"{concurrency}:{concurrency}:1",
            measurement_ms,
            csv_path,
            input_data,
            # At most max_trials windows; 1000% (max/min <= 11) lets three windows
            # count as stable, so a noisy shared machine costs accuracy, not the level.
            max_trials=max_trials,
            stability_percentage=1000,
        )
        log_path = self.raw_dir / f"{self.setup}-{model}-c{concurrency}.log"
        done = perf_analyzer.run(command, self.env, log_path=log_path, timeout_s=600)
        if not csv_path.exists():
            print(
                f"  perf_analyzer failed for {model} c={concurrency} (exit {done.returncode}); see its .log", flush=True
            )
            return None
        rows = perf_analyzer.parse_csv(csv_path, self.setup, model)
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

    The same work as the naive server (decode + the visual detector's preprocess + one
    forward), with the preprocess in the client, which shares this machine.
    """
    from perf.naive_server import decode, preprocess  # imports torch (for the naive server's forward)

    def make() -> Callable[[], None]:
        client = grpcclient.InferenceServerClient(grpc_url)

        def call() -> None:
            tensor = grpcclient.InferInput("input", [1, 3, 224, 224], "FP32")
            tensor.set_data_from_numpy(np.ascontiguousarray(preprocess(decode(jpeg)), dtype=np.float32))
            client.infer("visual_detector", [tensor], outputs=[grpcclient.InferRequestedOutput("output")])

        return call

    return make


def naive_call(url: str, jpeg: bytes) -> Callable[[], Callable[[], None]]:
    """A ``make_call`` for :mod:`perf.loadgen`: each thread posts ``jpeg`` to the naive server, own connection."""
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
    """One server's load-generator results as rows of ``naive.csv`` and the plots."""
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
    port = free_port()
    log = (workdir / "naive_server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "perf.naive_server", "--port", str(port)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
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


# --------------------------------------------------------------------------- orchestration


def present_ensembles(repository: Path, grpc_url: str) -> list[str]:
    """Ensembles the server actually serves: in the repository and ready (a failed load is skipped)."""
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
    server = start_triton(work / "triton-main", repository=repository)
    try:
        sweeper = Sweeper(server.grpc_url, "batching", settings, out / "raw")
        rows = [
            row
            for spec in DETECTORS
            for row in sweeper.sweep(spec.name, perf_analyzer.detector_input_data(spec.name, work))
        ]
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
    variant = work / "repository-no-batching"
    names = [spec.name for spec in DETECTORS]
    for path in write_variant_repository(repository, variant, names):
        shutil.copy(path, out / "variant_configs" / f"{path.parent.name}.pbtxt")
    server = start_triton(work / "triton-nobatch", repository=variant)
    try:
        sweeper = Sweeper(server.grpc_url, "nobatch", settings, out / "raw")
        return [row for name in names for row in sweeper.sweep(name, perf_analyzer.detector_input_data(name, work))]
    finally:
        server.stop()
        shutil.copy(server.log_path, out / "logs" / "tritonserver-nobatch.log")


def summary(out: Path, started: datetime.datetime, wall_s: float, quick: bool, tables: dict[str, Any]) -> str:
    """The text of ``summary.md``: the three ratios first, then every table."""
    lines = [
        f"# Benchmark suite results, {started:%Y-%m-%d %H:%M}",
        "",
        f"`.venv/bin/python -m perf.suite{' --quick' if quick else ''}` on {os.cpu_count()} cores, "
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


def exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the ``finally`` blocks stop the servers this suite started."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def main() -> None:
    """Run the four phases and write every CSV, plot and ``summary.md`` under the results folder."""
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
    from perf import plots  # matplotlib: the perf extra

    plots.all_plots(out, [*served, *unbatched], [*triton_load, *naive_load])
    print(summary(out, started, time.monotonic() - clock, args.quick, tables))
    print(f"\nresults in {out}")


if __name__ == "__main__":
    main()

"""A few seconds of the Locust suite against the real server (a smoke run, not a benchmark)."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest

from deepfake_serving.testing.triton import ROOT, free_port

pytestmark = pytest.mark.server
# Locust lives in its own venv (make perf-venv): see perf/requirements.txt.
LOCUST = ROOT / "perf" / ".venv" / "bin" / "locust"


def run_locust(
    tmp_path: Path, http_url: str, grpc_url: str
) -> tuple[subprocess.CompletedProcess, list[dict[str, str]]]:
    prefix = tmp_path / "locust"
    command = [
        str(LOCUST),
        "-f",
        str(ROOT / "perf" / "locustfile.py"),
        "--headless",
        "-u",
        "4",
        "-r",
        "4",
        "-t",
        "6s",
        "--stop-timeout",
        "20",
        "--host",
        f"http://{http_url}",
        "--grpc-url",
        grpc_url,
        "--mix",
        "detect_image:1",
        "--max-fail-ratio",
        "0.0",
        "--csv",
        str(prefix),
        "--only-summary",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    with open(f"{prefix}_stats.csv") as handle:
        return done, list(csv.DictReader(handle))


def test_grpc_and_http_users_succeed(triton, tmp_path):
    done, rows = run_locust(tmp_path, triton.http_url, triton.grpc_url)
    assert done.returncode == 0, done.stderr[-2000:]
    by_type = {row["Type"]: row for row in rows if row["Name"] == "detect_image"}
    assert set(by_type) == {"grpc", "POST"}
    for row in by_type.values():
        assert int(row["Request Count"]) > 0 and int(row["Failure Count"]) == 0


def test_failures_above_the_threshold_fail_the_run(triton, tmp_path):
    # HTTP users aim at a closed port: every HTTP request fails.
    done, rows = run_locust(tmp_path, f"127.0.0.1:{free_port()}", triton.grpc_url)
    assert done.returncode == 1
    aggregated = next(row for row in rows if row["Name"] == "Aggregated")
    assert int(aggregated["Failure Count"]) > 0

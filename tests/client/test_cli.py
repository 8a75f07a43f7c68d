"""``deepfake-detect``: output formats and exit codes, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deepfake_serving.testing.triton import TritonProcess, free_port


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "deepfake_client.cli", *args]
    process = subprocess.run(command, input=stdin, capture_output=True, timeout=120)
    return subprocess.CompletedProcess(
        process.args, process.returncode, process.stdout.decode(), process.stderr.decode()
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, small_jpeg: bytes) -> Path:
    root = tmp_path_factory.mktemp("cli")
    (root / "nested").mkdir()
    (root / "nested" / "face.jpg").write_bytes(small_jpeg)
    (root / "notes.txt").write_text("not media, skipped when found in a folder")
    return root


def test_a_folder_is_searched_recursively_and_shown_as_a_table(triton: TritonProcess, folder: Path) -> None:
    done = run_cli(str(folder), "--url", triton.grpc_url, "--threshold", "1.0", "--progress")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["FILE", "KIND", "FAKE_PROB", "VERDICT", "DETAILS"]
    assert "face.jpg" in lines[1] and "real" in lines[1] and "1 face(s)" in lines[1]
    assert "1 file(s): 0 fake" in done.stdout and "notes.txt" not in done.stdout
    assert "1/1" in done.stderr  # the progress bar
    # The demo detectors behind the verdict are named, as the server lists them.
    assert "warning: the server runs demo weights (forensic_classifier, visual_detector)" in done.stdout


def test_json_over_http_reports_a_fake_above_the_threshold_with_exit_code_1(
    triton: TritonProcess, folder: Path
) -> None:
    done = run_cli(
        str(folder / "nested" / "face.jpg"),
        "--url",
        triton.http_url,
        "--protocol",
        "http",
        "--json",
        "--threshold",
        "0",
    )
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert document["summary"] == {"files": 1, "fake": 1, "errors": 0}
    assert document["results"][0]["fake"] is True and document["results"][0]["kind"] == "image"


def test_jsonl_reads_stdin_and_any_error_gives_exit_code_2(
    triton: TritonProcess, small_jpeg: bytes, tmp_path: Path
) -> None:
    missing = str(tmp_path / "missing.jpg")
    done = run_cli("-", missing, "--url", triton.grpc_url, "--jsonl", "--threshold", "1.0", stdin=small_jpeg)
    assert done.returncode == 2, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert {r["source"] for r in records} == {"-", missing}
    assert [r for r in records if r["source"] == "-"][0]["fake"] is False
    assert [r for r in records if r["source"] == missing][0]["error"] == "DeepfakeClientError"


def test_no_server_is_an_error_with_exit_code_2(small_jpeg: bytes) -> None:
    done = run_cli("-", "--url", f"127.0.0.1:{free_port()}", "--retries", "1", stdin=small_jpeg)
    assert done.returncode == 2
    assert "ERROR" in done.stdout and "UnavailableError" in done.stdout


def test_a_video_shows_its_people_and_most_suspicious_segment(triton: TritonProcess, tmp_path: Path) -> None:
    from deepfake_serving.testing import media_av

    # One person for 6 s, then two: 12 s at 8 fps.
    def layout(t: float) -> list[tuple[float, float]]:
        return [(0.3, 0.5)] if t < 6 else [(0.3, 0.5), (0.75, 0.5)]

    path = tmp_path / "talk.mp4"
    path.write_bytes(media_av.encode_video(media_av.people_frames(layout, 12, 8), 8, "mp4_h264_aac"))
    table = run_cli(str(path), "--url", triton.grpc_url, "--threshold", "1.0")
    assert table.returncode == 0, table.stderr
    assert "2 person(s)" in table.stdout and "most suspicious" in table.stdout, table.stdout

    done = run_cli(str(path), "--url", triton.grpc_url, "--json", "--threshold", "1.0")
    result = json.loads(done.stdout)["results"][0]
    assert [t["judged"] for t in result["tracks"]] == [True, True]
    assert result["tracks"][0]["start_s"] == 0 and abs(result["tracks"][1]["start_s"] - 6) <= 0.5 + 1 / 8
    worst = max(result["segments"], key=lambda s: s["fake_prob"])
    assert f"{worst['start_s']:.1f}-{worst['end_s']:.1f}s" in table.stdout
    assert len(result["frames"]) == 24 and len(result["faces"]) == sum(t["faces"] for t in result["tracks"])
    assert result["segments"][0]["start_s"] == 0 and result["segments"][-1]["end_s"] == pytest.approx(12, abs=0.2)
    assert result["frames_fake_prob"] == pytest.approx(max(t["fake_prob"] for t in result["tracks"]), abs=1e-6)

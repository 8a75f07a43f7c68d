"""``deepfake-detect``: score media files from the shell.

Exit codes: 0 every file scored and none at or above the threshold; 1 at least
one file at or above the threshold (fake; the server's THRESHOLD unless
``--threshold`` is given); 2 any error (unreadable file, refused media,
no server, bad arguments). Errors win over fakes, so a script never mistakes
a partial run for a clean one.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from deepfake_client._client import DeepfakeClient
from deepfake_client._common import DEFAULT_PORTS, RetryPolicy
from deepfake_client._errors import DeepfakeClientError
from deepfake_client._results import AudioResult, DetectionResult, ImageResult, VideoResult
from deepfake_client._sniff import SNIFF_BYTES, sniff
from deepfake_contract.limits import VIDEO_FRAMES

__all__ = ["main", "EXIT_REAL", "EXIT_FAKE", "EXIT_ERROR"]

EXIT_REAL = 0
EXIT_FAKE = 1
EXIT_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepfake-detect",
        description="Score images, audio and video for deepfakes with a Triton server.",
        epilog="Exit codes: 0 all real, 1 at least one fake (FAKE_PROB >= the threshold), 2 any error.",
    )
    parser.add_argument("paths", nargs="+", help="files, folders (searched recursively) or - for stdin")
    parser.add_argument(
        "--url",
        action="append",
        help="server host:port or dns:///name:port; repeat for several "
        "(default: $DEEPFAKE_URL or localhost:8001 for gRPC, localhost:8000 for HTTP)",
    )
    parser.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON document with every result")
    output.add_argument("--jsonl", action="store_true", help="one JSON object per line, as results arrive")
    parser.add_argument(
        "--threshold",
        type=float,
        help="fake when FAKE_PROB >= this (default: the server's THRESHOLD, chosen on validation data; 0.5 if none)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="deadline per request in seconds (default 60)")
    parser.add_argument("--retries", type=int, default=3, help="retries when no server answers (default 3)")
    parser.add_argument("--kind", choices=("image", "audio", "video"), help="skip content sniffing")
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress", dest="progress", action="store_true", default=None, help="always show the progress bar on stderr"
    )
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    return parser


def _expand(paths: Sequence[str], stdin: IO[bytes]) -> tuple[list[str | IO[bytes]], list[str], bool]:
    """The items to score, the paths that could not be used, and whether a folder was given.

    Files met inside folders are kept only when their content is recognised
    media, so a folder with stray text files is not an error; files named
    explicitly are always sent and fail loudly if they are not media.
    """
    items: list[str | IO[bytes]] = []
    missing: list[str] = []
    folder = False
    for raw in paths:
        if raw == "-":
            stream = io.BytesIO(stdin.read())
            stream.name = "-"
            items.append(stream)
            continue
        path = Path(raw)
        if path.is_dir():
            folder = True
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                with child.open("rb") as handle:
                    if sniff(handle.read(SNIFF_BYTES)) is not None:
                        items.append(str(child))
        elif path.exists():
            items.append(str(path))
        else:
            missing.append(raw)
    return items, missing, folder


def _summary(result: DetectionResult) -> str:
    if isinstance(result, ImageResult):
        text = f"{len(result.faces)} face(s)" if result.face_found else "no face (center scored)"
        return text + (f", {result.faces_dropped} dropped" if result.faces_dropped else "")
    if isinstance(result, AudioResult):
        return "silent" if result.audio_silent else f"{len(result.windows)} window(s), {result.duration_s:.1f}s"
    if isinstance(result, VideoResult):
        return _video_summary(result)
    return ""


def _video_summary(result: VideoResult) -> str:
    """People, the most suspicious segment, faces on the timeline, audio, and anything degenerate."""
    parts = []
    if result.tracks:
        unjudged = len(result.tracks) - result.people
        parts.append(f"{result.people} person(s)" + (f" (+{unjudged} seen too briefly to judge)" if unjudged else ""))
    segment = result.most_suspicious_segment
    if segment is not None:
        parts.append(f"most suspicious {segment.start_s:.1f}-{segment.end_s:.1f}s ({segment.fake_prob:.3f})")
    faces = sum(f.has_face for f in result.frames)
    parts.append(f"{faces}/{len(result.frames)} frames with faces")
    parts.append(f"audio {result.audio_fake_prob:.3f}" if result.audio_fake_prob is not None else "no audio")
    if result.distinct_frames is not None and result.distinct_frames < VIDEO_FRAMES:
        parts.append(f"only {result.distinct_frames} distinct frame(s)")
    if result.coverage_reduced:
        parts.append("coverage thinned (decode limit)")
    return ", ".join(parts)


class _Progress:
    """A one-line text bar on stderr, redrawn in place."""

    def __init__(self, total: int, stream: IO[str], enabled: bool) -> None:
        self.total, self.done, self.stream, self.enabled = total, 0, stream, enabled and total > 0

    def step(self) -> None:
        self.done += 1
        if self.enabled:
            width = 30
            filled = width * self.done // self.total
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}")
            self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    args = _parser().parse_args(argv)
    out, err = sys.stdout, sys.stderr
    try:
        items, missing, folder = _expand(args.paths, sys.stdin.buffer)
    except OSError as error:
        print(f"deepfake-detect: {error}", file=err)
        return EXIT_ERROR
    urls = args.url or [os.environ.get("DEEPFAKE_URL") or f"localhost:{DEFAULT_PORTS[args.protocol]}"]
    show_progress = args.progress if args.progress is not None else (folder and err.isatty())
    progress = _Progress(len(items), err, show_progress)

    results: list[DetectionResult] = []
    failures: list[DeepfakeClientError] = [
        DeepfakeClientError(f"{path}: no such file or folder", source=path) for path in missing
    ]
    try:
        client = DeepfakeClient(
            urls,
            protocol=args.protocol,
            timeout=args.timeout,
            retry=RetryPolicy(attempts=max(1, args.retries + 1)),
        )
    except (ValueError, DeepfakeClientError) as error:
        print(f"deepfake-detect: {error}", file=err)
        return EXIT_ERROR
    with client:
        stream = client.detect_many(items, concurrency=args.concurrency, kind=args.kind, return_exceptions=True)
        for outcome in stream:
            progress.step()
            if isinstance(outcome, DeepfakeClientError):
                failures.append(outcome)
                if args.jsonl:
                    print(json.dumps(_error_dict(outcome)), file=out, flush=True)
                continue
            results.append(outcome)
            if args.jsonl:
                print(json.dumps({**outcome.to_dict(), "fake": outcome.is_fake(args.threshold)}), file=out, flush=True)
    progress.finish()

    fakes = sum(r.is_fake(args.threshold) for r in results)
    if args.json:
        document = {
            "threshold": args.threshold,  # null: each result's own (the server's) threshold
            "results": [{**r.to_dict(), "fake": r.is_fake(args.threshold)} for r in results],
            "errors": [_error_dict(f) for f in failures],
            "summary": {"files": len(results) + len(failures), "fake": fakes, "errors": len(failures)},
        }
        print(json.dumps(document, indent=2), file=out)
    elif not args.jsonl:
        _print_table(results, failures, args.threshold, out)
    else:
        for failure in failures[: len(missing)]:
            print(json.dumps(_error_dict(failure)), file=out)
    if failures:
        return EXIT_ERROR
    return EXIT_FAKE if fakes else EXIT_REAL


def _threshold_text(results: list[DetectionResult], threshold: float | None) -> str:
    if threshold is not None:
        return f"{threshold}"
    served = sorted({r.threshold for r in results if r.threshold is not None})
    return "the server's threshold " + "/".join(f"{t:g}" for t in served) if served else "0.5"


def _error_dict(error: DeepfakeClientError) -> dict[str, object]:
    return {"source": error.source, "error": type(error).__name__, "message": error.message}


def _print_table(
    results: list[DetectionResult], failures: list[DeepfakeClientError], threshold: float | None, out: IO[str]
) -> None:
    rows = [
        (str(r.source), r.kind, f"{r.fake_prob:.3f}", "FAKE" if r.is_fake(threshold) else "real", _summary(r))
        for r in sorted(results, key=lambda r: str(r.source))
    ]
    rows += [(str(f.source), "-", "-", "ERROR", f"{type(f).__name__}: {f.message}") for f in failures]
    header = ("FILE", "KIND", "FAKE_PROB", "VERDICT", "DETAILS")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=False)) + "  " + row[4], file=out
        )
    fakes = sum(r.is_fake(threshold) for r in results)
    print(
        f"\n{len(results) + len(failures)} file(s): {fakes} fake (FAKE_PROB >= {_threshold_text(results, threshold)}), "
        f"{len(results) - fakes} real, {len(failures)} error(s)",
        file=out,
    )
    if any(r.demo_weights for r in results):
        named = sorted({model for r in results for model in r.demo_models})
        which = f" ({', '.join(named)})" if named else ""
        print(f"warning: the server runs demo weights{which}; these probabilities are not meaningful", file=out)


if __name__ == "__main__":
    sys.exit(main())

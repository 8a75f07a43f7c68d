"""``deepfake-eval``: how well a running deployment separates real from fake on a labelled dataset.

Every file of the chosen split is sent through the server (the same client,
retries and concurrency as ``deepfake-detect``), and its scores are appended
to ``REPORT_DIR/scores.jsonl`` as they arrive, so an interrupted run resumes
where it stopped. Then, for the fused score and for each model's own score
that the responses carry (visual, forensic, temporal, frames, audio), the
report gives AUC, EER, average precision and accuracy at the threshold and at
0.5, at file level and, for video, at frame level and at video level from the
frame scores (DeepfakeBench's conventions: frame AUC over every scored frame,
video AUC over the mean of each video's frame scores). Files the server
refuses are counted and listed, never dropped silently.

Writes ``report.json``, ``report.md``, ``roc.png`` and ``histogram.png``;
prints one JSON line with the fused score's headline figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from deepfake_client._client import DeepfakeClient
from deepfake_client._common import DEFAULT_PORTS, RetryPolicy
from deepfake_client._errors import DeepfakeClientError, InvalidInputError
from deepfake_client._results import AudioResult, DetectionResult, ImageResult, VideoResult
from deepfake_client.cli import _Progress
from deepfake_client.datasets import FAKE, LAYOUTS, SPLITS, DatasetError, Item, load_dataset
from deepfake_client.metrics import summarize, video_scores

SCORES_FILE = "scores.jsonl"
EXIT_OK, EXIT_ERROR = 0, 2


def scores_of(result: DetectionResult) -> dict[str, float]:
    """The file-level scores a response carries, by name: ``fused`` and each model's own."""
    scores = {"fused": result.fake_prob}
    if isinstance(result, ImageResult):
        # The image's model scores, like its fused one, are those of its most suspicious face.
        scores["visual"] = max(f.visual_fake_prob for f in result.faces)
        scores["forensic"] = max(f.forensic_fake_prob for f in result.faces)
    elif isinstance(result, VideoResult):
        scores["temporal"] = result.temporal_fake_prob
        faces = [f.fake_prob for f in result.frames if f.has_face]
        if faces:
            scores["frames"] = float(np.mean(faces))
        if result.audio_fake_prob is not None:
            scores["audio"] = result.audio_fake_prob
    elif isinstance(result, AudioResult) and not result.audio_silent:
        scores["audio"] = result.fake_prob
    return {name: float(value) for name, value in scores.items()}


def frame_scores_of(result: DetectionResult) -> list[float]:
    """A video's per-frame scores (frames with a face); empty for other media."""
    if isinstance(result, VideoResult):
        return [float(f.fake_prob) for f in result.frames if f.has_face]
    return []


def _record(item: Item, outcome: DetectionResult | DeepfakeClientError) -> dict[str, Any]:
    record: dict[str, Any] = {
        "path": str(item.path),
        "label": item.label,
        "group": item.group,
        "split": item.split,
        "media": item.media,
    }
    if isinstance(outcome, DeepfakeClientError):
        # A refusal is the server's verdict on the file and is kept; anything else may pass on a rerun.
        record["status"] = "refused" if isinstance(outcome, InvalidInputError) else "failed"
        record["error"] = str(outcome)
    else:
        record.update(
            status="ok",
            scores=scores_of(outcome),
            frames=frame_scores_of(outcome),
            demo_models=list(outcome.demo_models),
        )
    return record


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of ``scores.jsonl``, the last one per file winning (a rerun replaces a failure)."""
    if not path.is_file():
        return []
    latest: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            latest[record["path"]] = record
    return list(latest.values())


def score(
    client: DeepfakeClient,
    items: Sequence[Item],
    out: Path,
    *,
    concurrency: int = 4,
    progress: bool = False,
    stream: IO[str] = sys.stderr,
) -> list[dict[str, Any]]:
    """Send every item not yet scored in ``out/scores.jsonl`` and append its record; return all records."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / SCORES_FILE
    done = {r["path"] for r in read_records(path) if r["status"] in ("ok", "refused")}
    todo = [item for item in items if str(item.path) not in done]
    by_source = {str(item.path): item for item in todo}
    bar = _Progress(len(todo), stream, progress)
    with path.open("a") as handle:
        for outcome in client.detect_many(
            (str(item.path) for item in todo), concurrency=concurrency, return_exceptions=True
        ):
            handle.write(json.dumps(_record(by_source[str(outcome.source)], outcome)) + "\n")
            handle.flush()
            bar.step()
    bar.finish()
    wanted = {str(item.path) for item in items}
    return [r for r in read_records(path) if r["path"] in wanted]


def _figures(labels: Iterable[int], scores: Iterable[float], threshold: float) -> dict[str, Any] | None:
    labels, scores = np.asarray(list(labels)), np.asarray(list(scores), dtype=np.float64)
    if len(set(labels.tolist())) < 2:
        return None
    at = summarize(labels, scores, threshold).as_dict()
    at["accuracy_at_0.5"] = summarize(labels, scores, 0.5).accuracy
    return at


def report(records: Sequence[dict[str, Any]], threshold: float = 0.5) -> dict[str, Any]:
    """The figures of :mod:`deepfake_client.metrics` for every score the records carry."""
    ok = [r for r in records if r["status"] == "ok"]
    names = sorted({name for r in ok for name in r["scores"]}, key=lambda n: (n != "fused", n))
    file_level = {}
    for name in names:
        scored = [r for r in ok if name in r["scores"]]
        figures = _figures((r["label"] for r in scored), (r["scores"][name] for r in scored), threshold)
        if figures is not None:
            file_level[name] = figures
    videos = [r for r in ok if r["frames"]]
    frame_level = video_level = None
    if videos:
        frames = [(r["label"], s) for r in videos for s in r["frames"]]
        frame_level = _figures((f[0] for f in frames), (f[1] for f in frames), threshold)
        groups = [r["path"] for r in videos for _ in r["frames"]]
        _, labels, means = video_scores(groups, [f[0] for f in frames], [f[1] for f in frames])
        video_level = _figures(labels, means, threshold)
    return {
        "threshold": threshold,
        "files": len(records),
        "scored": len(ok),
        "refused": [{"path": r["path"], "error": r["error"]} for r in records if r["status"] == "refused"],
        "failed": [{"path": r["path"], "error": r["error"]} for r in records if r["status"] == "failed"],
        "demo_models": sorted({m for r in ok for m in r.get("demo_models", [])}),
        "file_level": file_level,
        "frame_level": frame_level,
        "video_level": video_level,
    }


def headline(figures: dict[str, Any]) -> dict[str, Any]:
    """The one-line summary of the fused score."""
    fused = figures["file_level"].get("fused")
    if fused is None:
        return {"n_real": 0, "n_fake": 0, "auc": None, "eer": None, "ap": None, "accuracy": None, "threshold": None}
    return {k: fused[k] for k in ("n_real", "n_fake", "auc", "eer", "ap", "accuracy", "threshold")}


def write_report(figures: dict[str, Any], records: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    """``report.json``, ``report.md`` and, with matplotlib, ``roc.png`` and ``histogram.png``."""
    written = [out / "report.json", out / "report.md"]
    (out / "report.json").write_text(json.dumps(figures, indent=2) + "\n")
    (out / "report.md").write_text(_markdown(figures))
    try:
        written += _plots(figures, records, out)
    except ImportError:
        (out / "report.md").write_text(
            _markdown(figures) + "\nPlots skipped: matplotlib is not installed (`pip install deepfake-client[eval]`).\n"
        )
    return written


def _markdown(figures: dict[str, Any]) -> str:
    lines = [
        "# Evaluation report",
        "",
        f"{figures['scored']} of {figures['files']} files scored; {len(figures['refused'])} refused by the server,"
        f" {len(figures['failed'])} failed. Threshold {figures['threshold']}.",
        "",
    ]
    if figures["demo_models"]:
        lines += [f"**Demo weights** behind these scores: {', '.join(figures['demo_models'])}.", ""]
    lines += [
        "| level | score | real | fake | AUC | EER | AP | accuracy | accuracy at 0.5 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [("file", name, f) for name, f in figures["file_level"].items()]
    rows += [(level, "frames", figures[f"{level}_level"]) for level in ("frame", "video") if figures[f"{level}_level"]]
    for level, name, f in rows:
        lines.append(
            f"| {level} | {name} | {f['n_real']} | {f['n_fake']} | {f['auc']:.4f} | {f['eer']:.4f} | {f['ap']:.4f}"
            f" | {f['accuracy']:.4f} | {f['accuracy_at_0.5']:.4f} |"
        )
    for kind in ("refused", "failed"):
        if figures[kind]:
            lines += ["", f"## {kind.capitalize()} files", ""] + [
                f"- `{r['path']}`: {r['error']}" for r in figures[kind]
            ]
    return "\n".join(lines) + "\n"


def _plots(figures: dict[str, Any], records: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from deepfake_client.metrics import roc_curve

    ok = [r for r in records if r["status"] == "ok"]
    figure, axis = plt.subplots(figsize=(5, 5))
    for name, f in figures["file_level"].items():
        scored = [r for r in ok if name in r["scores"]]
        fpr, tpr, _ = roc_curve([r["label"] for r in scored], [r["scores"][name] for r in scored])
        axis.plot(fpr, tpr, label=f"{name} (AUC {f['auc']:.3f})")
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":")
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, file level")
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(out / "roc.png", dpi=100)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(6, 4))
    for label, name in ((0, "real"), (FAKE, "fake")):
        axis.hist(
            [r["scores"]["fused"] for r in ok if r["label"] == label], bins=20, range=(0, 1), alpha=0.6, label=name
        )
    axis.axvline(figures["threshold"], color="black", linestyle="--", label="threshold")
    axis.set(xlabel="fused FAKE_PROB", ylabel="files", title="Score histogram")
    axis.legend()
    figure.tight_layout()
    figure.savefig(out / "histogram.png", dpi=100)
    plt.close(figure)
    return [out / "roc.png", out / "histogram.png"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepfake-eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="the dataset's root folder")
    parser.add_argument("--layout", choices=LAYOUTS, default="folder")
    parser.add_argument(
        "--split", choices=(*SPLITS, "all"), default="test", help="which split to send (default test; all: every file)"
    )
    parser.add_argument("--out", required=True, type=Path, help="report folder (scores.jsonl there is resumed)")
    parser.add_argument("--url", action="append", help="server host:port (default: $DEEPFAKE_URL or localhost)")
    parser.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    parser.add_argument("--timeout", type=float, default=120.0, help="deadline per request in seconds (default 120)")
    parser.add_argument("--retries", type=int, default=3, help="retries when no server answers (default 3)")
    parser.add_argument("--threshold", type=float, default=0.5, help="the decision threshold reported (default 0.5)")
    parser.add_argument("--seed", type=int, default=0, help="the split seed, where the layout has no split")
    parser.add_argument(
        "--val-ratio", type=float, default=0.2, help="as given to training, where the layout has no split"
    )
    parser.add_argument("--compression", default="c23", help="FaceForensics++ compression")
    parser.add_argument("--methods", nargs="*", help="FaceForensics++ methods (default: all five)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation; exit 2 with one line when the dataset or the server cannot be used."""
    args = _parser().parse_args(argv)
    try:
        items = load_dataset(
            args.data,
            args.layout,
            val_ratio=args.val_ratio,
            seed=args.seed,
            compression=args.compression,
            methods=args.methods,
        )
    except DatasetError as error:
        print(f"deepfake-eval: {error}", file=sys.stderr)
        return EXIT_ERROR
    chosen = [i for i in items if args.split == "all" or i.split == args.split]
    if not chosen:
        present = sorted({i.split for i in items})
        print(f"deepfake-eval: the dataset has no {args.split} split (it has {', '.join(present)})", file=sys.stderr)
        return EXIT_ERROR
    urls = args.url or [os.environ.get("DEEPFAKE_URL") or f"localhost:{DEFAULT_PORTS[args.protocol]}"]
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    try:
        client = DeepfakeClient(
            urls, protocol=args.protocol, timeout=args.timeout, retry=RetryPolicy(attempts=max(1, args.retries + 1))
        )
    except (ValueError, DeepfakeClientError) as error:
        print(f"deepfake-eval: {error}", file=sys.stderr)
        return EXIT_ERROR
    with client:
        records = score(client, chosen, args.out, concurrency=args.concurrency, progress=progress)
    figures = report(records, args.threshold)
    write_report(figures, records, args.out)
    print(json.dumps(headline(figures)))
    return EXIT_OK if figures["file_level"].get("fused") else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

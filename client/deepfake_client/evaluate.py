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
prints one JSON line with the fused score's headline figures. Accuracy is
given at the threshold the server returns (``THRESHOLD``; ``--threshold``
overrides it) and at 0.5.

``--fit-fusion --repository DIR`` fits the weights of the image rule (visual,
forensic) or the video rule (temporal, frames, audio) on the split's per-model
scores with a logistic regression and writes them, normalized, with their
provenance into the fusion model's config (run it on validation data, before
``--calibrate``: the threshold depends on the weights).

``--calibrate RULE --repository DIR`` chooses the threshold on the evaluated
split (run it on the validation split, never on the test split you report):
``eer``, ``fpr=0.01`` (the highest detection rate that flags at most 1% of
real files) or ``tpr=0.95``, and writes it with its provenance into the
``threshold`` and ``threshold_source`` parameters of the model that fuses that
media's score (``image_fusion``, ``audio_fusion``, ``detect_video``). The
server serves it once that model is reloaded (a restart).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import sys
import time
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
from deepfake_client.metrics import summarize, threshold_for, video_scores

#: The model whose config holds the decision threshold, per kind of media.
FUSION_MODELS = {"image": "image_fusion", "audio": "audio_fusion", "video": "detect_video"}

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
        if result.frames_fake_prob is not None:
            scores["frames"] = result.frames_fake_prob
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
            threshold=outcome.threshold,
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


def served_threshold(records: Sequence[dict[str, Any]]) -> float | None:
    """The threshold the server returned (the most common one, should a reload have changed it mid-run)."""
    values = [r["threshold"] for r in records if r["status"] == "ok" and r.get("threshold") is not None]
    return max(set(values), key=values.count) if values else None


def report(records: Sequence[dict[str, Any]], threshold: float | None = None) -> dict[str, Any]:
    """The figures of :mod:`deepfake_client.metrics` for every score the records carry.

    ``threshold`` None: the server's (0.5 from a server that sends none).
    """
    ok = [r for r in records if r["status"] == "ok"]
    if threshold is None:
        threshold = served_threshold(records)
        threshold = 0.5 if threshold is None else threshold
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


def calibrate(records: Sequence[dict[str, Any]], rule: str, data: str, split: str) -> dict[str, Any]:
    """The threshold ``rule`` picks on the fused scores of ``records``, with what it was chosen from.

    Raises:
        ValueError: an unknown rule, one class missing, or a rule no threshold in [0, 1] satisfies.
    """
    ok = [r for r in records if r["status"] == "ok"]
    labels, scores = [r["label"] for r in ok], [r["scores"]["fused"] for r in ok]
    value = threshold_for(labels, scores, rule)
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise ValueError(f"--calibrate {rule}: no threshold in [0, 1] meets it on these scores (got {value})")
    figures = summarize(labels, scores, value)
    media = sorted({r["media"] for r in ok})
    date = datetime.date.today().isoformat()
    source = (
        f"{rule} on {data} ({split}: {figures.n_real} real, {figures.n_fake} fake; AUC {figures.auc:.4f},"
        f" accuracy {figures.accuracy:.4f} at it), deepfake-eval {date}"
    )
    return {"threshold": value, "rule": rule, "media": media, "source": source, "figures": figures.as_dict()}


#: The fused scores' parts and the config parameters of their weights, per kind of media.
FUSION_PARTS = {
    "image": (("visual", "visual_weight"), ("forensic", "forensic_weight")),
    "video": (("temporal", "temporal_weight"), ("frames", "frame_weight"), ("audio", "audio_weight")),
}


def logistic_fit(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 50) -> tuple[np.ndarray, float]:
    """``(coefficients, intercept)`` of an L2-regularized logistic regression, by Newton's method."""
    x = np.column_stack([np.asarray(x, np.float64), np.ones(len(x))])
    w = np.zeros(x.shape[1])
    penalty = np.diag([l2] * (x.shape[1] - 1) + [0.0])  # the intercept is not shrunk
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w)))
        gradient = x.T @ (p - y) / len(y) + penalty @ w
        hessian = (x.T * (p * (1 - p))) @ x / len(y) + penalty
        update = np.linalg.solve(hessian + 1e-9 * np.eye(len(w)), gradient)
        w -= update
        if np.max(np.abs(update)) < 1e-10:
            break
    return w[:-1], float(w[-1])


def fit_fusion(records: Sequence[dict[str, Any]], media: str) -> dict[str, Any]:
    """Fusion weights for ``media`` fitted on the records' per-model scores (logistic regression).

    The served rule is a weighted mean of the parts, so the fitted coefficients
    are clipped at 0 and normalized to sum to 1: the ratio the regression found
    between the parts, in the form the server applies. Only files where every
    part scored are used.

    Raises:
        ValueError: no such rule for ``media``, one class missing, or no part with a positive weight.
    """
    if media not in FUSION_PARTS:
        raise ValueError(f"--fit-fusion: {media} has no fusion weights to fit (image and video do)")
    parts = FUSION_PARTS[media]
    rows = [r for r in records if r["status"] == "ok" and r["media"] == media]
    rows = [r for r in rows if all(part in r["scores"] for part, _ in parts)]
    labels = np.array([r["label"] for r in rows], np.float64)
    if len(set(labels.tolist())) < 2:
        raise ValueError(f"--fit-fusion: needs real and fake {media} files scored by every part; got {len(rows)}")
    x = np.array([[r["scores"][part] for part, _ in parts] for r in rows])
    coefficients, _ = logistic_fit(x, labels)
    clipped = np.clip(coefficients, 0, None)
    if clipped.sum() <= 0 or (media == "video" and clipped[0] <= 0):
        raise ValueError(
            f"--fit-fusion: the fitted coefficients {coefficients.round(4).tolist()} give no usable weights"
        )
    weights = clipped / clipped.sum()
    return {
        "media": media,
        "weights": {key: round(float(w), 6) for (_, key), w in zip(parts, weights, strict=True)},
        "coefficients": coefficients.tolist(),
        "files": len(rows),
    }


_PARAMETER = r'(\{{ key: "{key}", value: \{{ string_value: )"[^"]*"( \}} \}})'


def write_threshold(config: Path, value: float, source: str) -> None:
    """Set the ``threshold`` and ``threshold_source`` parameters of a hand-written ``config.pbtxt`` in place."""
    write_parameters(config, {"threshold": repr(float(value)), "threshold_source": source})


def write_parameters(config: Path, values: dict[str, str]) -> None:
    """Set string parameters of a hand-written ``config.pbtxt`` in place.

    Only those lines change, so the file keeps its comments.

    Raises:
        ValueError: the config has not exactly one line for a parameter.
    """
    text = config.read_text()
    for key, new in ((k, v.replace('"', "'")) for k, v in values.items()):
        text, count = re.subn(_PARAMETER.format(key=key), lambda m, new=new: f'{m.group(1)}"{new}"{m.group(2)}', text)
        if count != 1:
            raise ValueError(f'{config}: expected one {{ key: "{key}", ... }} parameter line, found {count}')
    config.write_text(text)


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
    parser.add_argument("--threshold", type=float, help="the decision threshold reported (default: the server's)")
    parser.add_argument("--calibrate", metavar="RULE", help="choose the threshold here: eer, fpr=0.01, tpr=0.95, ...")
    parser.add_argument(
        "--fit-fusion",
        action="store_true",
        help="fit the image (visual/forensic) or video (temporal/frames/audio) fusion weights here",
    )
    parser.add_argument(
        "--repository", type=Path, help="with --calibrate/--fit-fusion: the model repository whose configs to write"
    )
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
    parser = _parser()
    args = parser.parse_args(argv)
    if (args.calibrate or args.fit_fusion) and args.repository is None:
        parser.error("--calibrate and --fit-fusion need --repository (where the fusion models' configs are)")
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
    started = time.perf_counter()
    with client:
        records = score(client, chosen, args.out, concurrency=args.concurrency, progress=progress)
    elapsed = time.perf_counter() - started
    figures = report(records, args.threshold)
    # This run's rate (files already in scores.jsonl from an interrupted run are not re-sent).
    figures["run"] = {"seconds": round(elapsed, 2), "concurrency": args.concurrency}
    write_report(figures, records, args.out)
    print(json.dumps(headline(figures)))
    if not figures["file_level"].get("fused"):
        return EXIT_ERROR
    if args.fit_fusion and _fit_fusion(args, records) != EXIT_OK:
        return EXIT_ERROR
    return _calibrate(args, records) if args.calibrate else EXIT_OK


def _fit_fusion(args: argparse.Namespace, records: Sequence[dict[str, Any]]) -> int:
    fitted = []
    try:
        for media in sorted({r["media"] for r in records if r["status"] == "ok"} & set(FUSION_PARTS)):
            fit = fit_fusion(records, media)
            source = f"logistic regression on {args.data} ({args.split}: {fit['files']} files), deepfake-eval"
            values = {key: repr(w) for key, w in fit["weights"].items()}
            write_parameters(
                args.repository / FUSION_MODELS[media] / "config.pbtxt", {**values, "fusion_source": source}
            )
            fitted.append(fit)
    except (ValueError, OSError) as error:
        print(f"deepfake-eval: {error}", file=sys.stderr)
        return EXIT_ERROR
    if not fitted:
        print("deepfake-eval: --fit-fusion: no image or video files scored", file=sys.stderr)
        return EXIT_ERROR
    (args.out / "fusion.json").write_text(json.dumps(fitted, indent=2) + "\n")
    for fit in fitted:
        print(
            f"deepfake-eval: {FUSION_MODELS[fit['media']]} weights {fit['weights']}; restart the server",
            file=sys.stderr,
        )
    return EXIT_OK


def _calibrate(args: argparse.Namespace, records: Sequence[dict[str, Any]]) -> int:
    try:
        chosen = calibrate(records, args.calibrate, args.data, args.split)
        for media in chosen["media"]:
            write_threshold(
                args.repository / FUSION_MODELS[media] / "config.pbtxt", chosen["threshold"], chosen["source"]
            )
    except (ValueError, OSError) as error:
        print(f"deepfake-eval: {error}", file=sys.stderr)
        return EXIT_ERROR
    (args.out / "calibration.json").write_text(json.dumps(chosen, indent=2) + "\n")
    models = ", ".join(FUSION_MODELS[m] for m in chosen["media"])
    print(
        f"deepfake-eval: threshold {chosen['threshold']:.6g} ({args.calibrate}) written to {models} in"
        f" {args.repository}; restart the server to serve it",
        file=sys.stderr,
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

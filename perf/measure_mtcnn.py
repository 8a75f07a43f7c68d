"""Face detection: the served MTCNN against facenet-pytorch's, side by side, same images and threads.

facenet-pytorch 2.6.0 is loaded the way the tests' oracle loads it
(``deepfake_serving.testing.facenet_oracle``: its own ``detect_face`` and
pretrained nets, in PyTorch). The served path is
``deepfake_serving.mtcnn.MTCNN`` on the three exported ONNX stages through ONNX
Runtime (``model_repository/face_detector/1/*.onnx``, written by ``make
export``), as ``face_detector`` runs it. ``--before REV`` also times the
``mtcnn.py`` of a git revision on the same ONNX sessions, for a before/after
table from one run.

Images (made here): a 512x512 one-face photo (scikit-image's astronaut), a
1024x1024 grid of four, a 1920x1080 frame with six small faces (about 50 px),
and a face-free photo (scikit-image's coffee, 400x600). Every implementation
is timed on every image in turn, round after round, so machine noise hits
them alike; the table gives medians. Boxes are checked against facenet's
(same count, IoU >= 0.99 per face) before anything is timed.

Run: ``.venv/bin/python -m perf.measure_mtcnn [--threads 2] [--rounds 15] [--before 7217dd1]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import skimage.data as skimage_data
import torch

from deepfake_contract import MTCNN_STAGES
from deepfake_serving import mtcnn as served_mtcnn
from deepfake_serving.onnx_runner import onnx_callable
from deepfake_serving.testing import facenet_oracle

ROOT = Path(__file__).resolve().parents[1]
ONNX_DIR = ROOT / "model_repository" / "face_detector" / "1"
PAUSE_S = 0.05
Detect = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def images() -> dict[str, tuple[np.ndarray, int]]:
    """name -> (HxWx3 uint8 image, faces in it)."""
    astronaut = skimage_data.astronaut()
    row = np.concatenate([astronaut, astronaut], axis=1)
    small = served_mtcnn.resize_area(astronaut, (256, 256)).round().astype(np.uint8)
    frame = np.full((1080, 1920, 3), 96, np.uint8)
    for k in range(6):
        y, x = 150 + 500 * (k // 3), 100 + 620 * (k % 3)
        frame[y : y + 256, x : x + 256] = small
    return {
        "512x512, one face": (astronaut, 1),
        "1024x1024, four faces": (np.ascontiguousarray(np.concatenate([row, row], axis=0)), 4),
        "1920x1080, six small faces": (frame, 6),
        "600x400, no face": (skimage_data.coffee(), 0),
    }


def module_at(rev: str) -> object:
    """``deepfake_serving/mtcnn.py`` as it was at git revision ``rev``, imported under a private name."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:src/deepfake_serving/mtcnn.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mtcnn_before.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("mtcnn_before", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return module


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two x1, y1, x2, y2 boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def same_faces(boxes: np.ndarray, expected: np.ndarray) -> str | None:
    """None when the boxes are facenet's (count, IoU >= 0.99 one to one), else what differs."""
    if len(boxes) != len(expected):
        return f"{len(boxes)} faces, facenet found {len(expected)}"
    worst = min((iou(a, b) for a, b in zip(boxes, expected, strict=True)), default=1.0)
    return None if worst >= 0.99 else f"lowest IoU with facenet's boxes {worst:.4f}"


def main(argv: list[str] | None = None) -> int:
    """Check, time and print the table for perf/RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads", type=int, default=2, help="torch threads; the served MTCNN's workers (ONNX Runtime: 1 thread each)"
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--before", help="also time mtcnn.py at this git revision")
    parser.add_argument("--json", type=Path, default=Path("build/perf/mtcnn.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    missing = [stage.name for stage in MTCNN_STAGES if not (ONNX_DIR / f"{stage.name}.onnx").is_file()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)} ONNX files in {ONNX_DIR}: run `make export` first")
    threaded = [onnx_callable(ONNX_DIR / f"{stage.name}.onnx", args.threads) for stage in MTCNN_STAGES]
    single = [onnx_callable(ONNX_DIR / f"{stage.name}.onnx", 1) for stage in MTCNN_STAGES]
    detectors: dict[str, Detect] = {"facenet-pytorch 2.6.0 (PyTorch)": facenet_oracle.oracle_detect}
    if args.before:
        # As served before: one call at a time, ONNX Runtime's intra-op threads for the parallelism.
        detectors[f"MTCNN at {args.before}"] = module_at(args.before).MTCNN(*threaded).detect
    detectors[f"served MTCNN, {args.threads} workers"] = served_mtcnn.MTCNN(*single, workers=args.threads).detect

    cases = images()
    for name, (image, faces) in cases.items():
        expected, _ = facenet_oracle.oracle_detect(image)
        if len(expected) != faces:
            raise SystemExit(f"{name}: facenet finds {len(expected)} faces, the image was made with {faces}")
        for label, detect in detectors.items():
            problem = same_faces(detect(image)[0], expected)
            if problem:
                raise SystemExit(f"{name}: {label}: {problem}")

    times: dict[str, dict[str, list[float]]] = {label: {name: [] for name in cases} for label in detectors}
    for _ in range(args.rounds):
        for name, (image, _) in cases.items():
            for label, detect in detectors.items():
                # ONNX Runtime's and torch's idle threads spin a while after a call: let them stop, so
                # that they do not run into the next detector's time.
                time.sleep(PAUSE_S)
                start = time.perf_counter()
                detect(image)
                times[label][name].append(time.perf_counter() - start)

    medians = {label: {name: statistics.median(t) for name, t in per.items()} for label, per in times.items()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"threads": args.threads, "onnxruntime": ort.__version__, "seconds": times}))
    baseline = next(iter(detectors))
    labels = list(detectors)
    print(f"threads: {args.threads}, rounds: {args.rounds}; same faces as facenet on every image")
    print("| image | " + " | ".join(f"{label} ms" for label in labels) + " | facenet / served |")
    print("|---|" + "---|" * (len(labels) + 1))
    for name in cases:
        cells = " | ".join(f"{1e3 * medians[label][name]:.1f}" for label in labels)
        ratio = medians[baseline][name] / medians[labels[-1]][name]
        print(f"| {name} | {cells} | {ratio:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

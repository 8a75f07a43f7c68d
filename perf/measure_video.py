"""CPU seconds per second of video for ``detect_video``'s whole-video coverage, by step.

Two 60 s H.264 files are made here (a talking-head scene: one person, then
two), at 640x360 and at 1280x720, 30 fps, x264 ``veryfast`` with its default
keyframe interval (250 frames), as a phone or a screen recorder would write
them. Each is scored by :func:`deepfake_serving.video_pipeline.analyze_video`
at the shipped ``detect_video`` settings, in-process: MTCNN and cropping as
the model does, the three detectors as ONNX Runtime sessions with the thread
counts of their served configs. CPU time is this process's
(``time.process_time``: every thread, ONNX Runtime's included), charged to the
step that was running: decoding (with the 224x224 resize of clip frames),
face detection (MTCNN + crops), the visual detector, the temporal analyzer and
the audio track (decode, resample, log-mel, detector).

Run: ``.venv/bin/python -m perf.measure_video [--seconds 60] [--json build/perf/video.json]``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from deepfake_contract import AUDIO_DETECTOR, TEMPORAL_ANALYZER, VISUAL_DETECTOR
from deepfake_serving import video_pipeline as V
from deepfake_serving.image_pipeline import FaceDetector, FaceSettings
from deepfake_serving.onnx_runner import OnnxRunner, SessionSettings
from deepfake_serving.provenance import config_parameters
from deepfake_serving.testing import media_av
from deepfake_serving.testing.triton import MODEL_REPOSITORY
from deepfake_serving.video import VideoReader

SIZES = ((640, 360), (1280, 720))
FPS = 30
STEPS = ("decode", "faces", "visual", "temporal", "audio")


def layout(t: float) -> list[tuple[float, float]]:
    """One person for the first half, two for the second, moving a little."""
    drift = 0.02 * ((t % 6) - 3) / 3
    return [(0.35 + drift, 0.5)] if t < 30 else [(0.3 + drift, 0.5), (0.72 - drift, 0.5)]


def scene(width: int, height: int, seconds: float) -> bytes:
    """The benchmark file: H.264 (x264 veryfast, default GOP) with a speech-like sound track."""
    frames = media_av.people_frames(layout, seconds, FPS, width, height, face_height=int(height * 0.5))
    options = {"preset": "veryfast"}
    return media_av.encode_frames(frames, FPS, "mp4", "libx264", "yuv420p", options, "aac", 44100, media_av.speechlike)


def scorer(model: str, name: str):
    """A served detector's fake probability as an in-process ONNX Runtime call, at its config's threads."""
    settings = SessionSettings.from_parameters(config_parameters(MODEL_REPOSITORY, model))
    runner = OnnxRunner(MODEL_REPOSITORY / model / "1" / "model.onnx", settings)
    return lambda batch: runner.run_batch([{name: batch}], ["output"])[0]["output"][:, 1]


def measure(data: bytes, seconds: float, detectors: V.Detectors, faces: FaceDetector) -> dict:
    """One scoring of ``data``: CPU seconds in all and per step, wall seconds, and what was looked at."""
    wall, cpu = time.perf_counter(), time.process_time()
    with VideoReader(data) as reader:
        result = V.analyze_video(reader, faces, detectors, data=data)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    steps = asdict(result.times)
    return {
        "cpu_s": cpu,
        "wall_s": wall,
        "cpu_s_per_video_s": cpu / seconds,
        "steps_cpu_s": steps,
        "shares": {step: steps[step] / cpu for step in STEPS},
        "timeline_frames": len(result.frame_time_s),
        "segments": len(result.segment_fake_prob),
        "faces": len(result.face_fake_prob),
        "tracks": int(result.tracks.judged.sum()),
        "decoded_frames": result.decoded_frames,
    }


def main(argv: list[str] | None = None) -> int:
    """Measure both sizes and print the table for perf/RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--json", type=Path, default=Path("build/perf/video.json"))
    args = parser.parse_args(argv)
    detectors = V.Detectors(
        visual=scorer(VISUAL_DETECTOR.name, VISUAL_DETECTOR.input.name),
        temporal=scorer(TEMPORAL_ANALYZER.name, TEMPORAL_ANALYZER.input.name),
        audio=scorer(AUDIO_DETECTOR.name, AUDIO_DETECTOR.input.name),
        visual_batch=VISUAL_DETECTOR.max_batch_size,
        temporal_batch=TEMPORAL_ANALYZER.max_batch_size,
    )
    face_settings = FaceSettings(max_faces=4)
    faces = FaceDetector(MODEL_REPOSITORY / "face_detector" / "1", face_settings, threads=1)
    rows = {}
    for width, height in SIZES:
        data = scene(width, height, args.seconds)
        rows[f"{width}x{height}"] = {"bytes": len(data), **measure(data, args.seconds, detectors, faces)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))
    print(
        "| file | CPU s / video s | wall s | "
        + " | ".join(f"{s} share" for s in STEPS)
        + " | frames / segments / faces |"
    )
    print("|---|---|---|" + "---|" * len(STEPS) + "---|")
    for name, row in rows.items():
        shares = " | ".join(f"{100 * row['shares'][s]:.0f}%" for s in STEPS)
        looked = f"{row['timeline_frames']} / {row['segments']} / {row['faces']}"
        print(f"| {name} | {row['cpu_s_per_video_s']:.3f} | {row['wall_s']:.1f} | {shares} | {looked} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

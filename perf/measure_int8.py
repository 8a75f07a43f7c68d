"""The visual detector in INT8 against FP32 on the CPU: speed and probability drift, in one run.

The served ``visual_detector/1/model.onnx`` (FP32) is quantized with ONNX
Runtime's static quantization the way ``python -m deepfake_export --quantize
int8`` does it (:mod:`deepfake_export.quantize`: uint8 activations, int8
per-channel weights, MinMax), in both formats (QDQ, which ONNX Runtime fuses
into ``QLinearConv`` at load, and QOperator), with every node quantized or with
the first convolution and the head kept FP32. Calibration: the face crops
:class:`deepfake_serving.image_pipeline.FaceDetector` makes of scikit-image's
photos (or of the images in ``--calibration-images DIR``).

For each variant: ms per crop at batch 1 and 4 (the CPU config's preferred
batch), best of the rounds (median in brackets), interleaved round by round;
the speed-up over FP32; the largest |fake probability difference| against
FP32 on held-out face crops (other photos and frames, mirrored, JPEG-compressed,
none of them in the calibration) and, separately, on standard-normal inputs;
the file size.

Run: ``.venv/bin/python -m perf.measure_int8`` (about 4 minutes on the 2-core
development machine).
"""

from __future__ import annotations

import argparse
import io
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from deepfake_export.quantize import (
    Int8Profile,
    calibration_inputs,
    default_images,
    face_crops,
    fake_probs,
    folder_images,
    quantize_int8,
    session,
)

BATCHES = (1, 4)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` after a JPEG round trip at ``quality``."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def evaluation_images() -> list[np.ndarray]:
    """Photos and frames the calibration did not see (other crops, mirrored, recompressed, a video frame)."""
    from skimage import data

    from deepfake_serving.testing.media_av import moving_frames

    astronaut = data.astronaut()
    camera = np.repeat(data.camera()[:, :, None], 3, axis=2)
    return [
        astronaut[:, ::-1].copy(),
        jpeg(astronaut, 35),
        astronaut[40:400, 60:420].copy(),
        moving_frames(astronaut, 5, 640, 360)[4],
        moving_frames(astronaut[:, ::-1], 3, 480, 270)[2],
        camera[:, ::-1].copy(),
        jpeg(camera, 50),
        data.rocket(),
        data.chelsea()[:, ::-1].copy(),
    ]


def main() -> None:
    """Quantize, measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repository", type=Path, default=Path("model_repository"))
    parser.add_argument("--calibration-images", type=Path, help="calibrate on this folder's images instead")
    parser.add_argument("--rounds", type=int, default=7, help="timed runs per variant and batch")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (the CPU config's)")
    args = parser.parse_args()
    served = args.repository / "visual_detector" / "1" / "model.onnx"
    mtcnn = args.repository / "face_detector" / "1"
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:5.0f} s] {message}", flush=True)

    images = folder_images(args.calibration_images) if args.calibration_images else default_images()
    calibration = calibration_inputs("visual_detector", images, mtcnn)
    crops = face_crops(evaluation_images(), mtcnn)
    noise = np.random.default_rng(3).standard_normal((8, 3, 224, 224), dtype=np.float32)
    log(f"{len(calibration)} calibration crops from {len(images)} images, {len(crops)} evaluation crops")
    variants = {"FP32 (served)": served}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for label, profile in [
            ("int8 QDQ, first conv + head FP32", Int8Profile("QDQ")),
            ("int8 QDQ, every node", Int8Profile("QDQ", fp32_first_conv=False, fp32_head=False)),
            ("int8 QOperator, first conv + head FP32", Int8Profile("QOperator")),
            ("int8 QOperator, every node", Int8Profile("QOperator", fp32_first_conv=False, fp32_head=False)),
        ]:
            t0 = time.perf_counter()
            variants[label] = quantize_int8(served, tmp / f"v{len(variants)}.onnx", profile, calibration)
            log(f"{label}: quantized in {time.perf_counter() - t0:.0f} s")
        sessions = {label: session(path, args.threads) for label, path in variants.items()}
        reference = {"crops": fake_probs(sessions["FP32 (served)"], [crops]), "noise": None}
        reference["noise"] = fake_probs(sessions["FP32 (served)"], [noise])
        drift = {
            label: {
                "crops": float(np.max(np.abs(fake_probs(s, [crops]) - reference["crops"]))),
                "noise": float(np.max(np.abs(fake_probs(s, [noise]) - reference["noise"]))),
            }
            for label, s in sessions.items()
        }
        sizes = {label: path.stat().st_size / 2**20 for label, path in variants.items()}
        inputs = {b: np.ascontiguousarray(crops[:b]) for b in BATCHES}
        times: dict[str, dict[int, list[float]]] = {label: {b: [] for b in BATCHES} for label in sessions}
        for s in sessions.values():
            for b in BATCHES:
                s.run(["output"], {"input": inputs[b]})
        for r in range(args.rounds):
            for b in BATCHES:
                for label, s in sessions.items():
                    t0 = time.perf_counter()
                    s.run(["output"], {"input": inputs[b]})
                    times[label][b].append((time.perf_counter() - t0) / b)
            log(f"round {r + 1}/{args.rounds} done")
    base = times["FP32 (served)"]
    cpu = platform.processor() or platform.machine()
    print(f"\n# {cpu}, onnxruntime {ort.__version__}, intra_op_threads={args.threads}, {args.rounds} rounds")
    print(
        f"# drift: max |fake prob INT8 - FP32| over {len(crops)} held-out face crops "
        f"(fake prob {reference['crops'].min():.4f} .. {reference['crops'].max():.4f}) and {len(noise)} noise inputs\n"
    )
    print("| variant | ms/crop b=1 | ms/crop b=4 | speed-up b=1 | speed-up b=4 | drift, crops | drift, noise | MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label in sessions:
        t = times[label]
        cells = " | ".join(f"{min(t[b]) * 1e3:.1f} ({np.median(t[b]) * 1e3:.1f})" for b in BATCHES)
        ups = " | ".join(f"{min(base[b]) / min(t[b]):.2f}x" for b in BATCHES)
        d = drift[label]
        print(f"| {label} | {cells} | {ups} | {d['crops']:.1e} | {d['noise']:.1e} | {sizes[label]:.1f} |")
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()

"""EfficientNet-B4 (the project's visual detector) against ViT-base (a pretrained hub detector's architecture).

Both as served: ONNX files exported by ``python -m deepfake_export`` (ViT-base
with random weights from its config: the hub is not reachable here, and speed
does not depend on the weights), measured side by side in one run, in-process
with ONNX Runtime and through Triton (``visual_detector`` called directly over
gRPC), at batch 1 and at the preferred batch of the generated config. The
rounds alternate between the two models so that the machine's noise falls on
both alike.

Run: ``.venv/bin/python -m perf.measure_pretrained [--seconds 3] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient

from deepfake_contract import VISUAL_DETECTOR
from deepfake_export.__main__ import main as export_main
from deepfake_serving.model_configs import BATCHING
from deepfake_serving.onnx_runner import OnnxRunner, SessionSettings
from deepfake_serving.testing.triton import MODEL_REPOSITORY, running_triton

PREFERRED = BATCHING[VISUAL_DETECTOR.name].preferred_batch_sizes[0]


def vit_base_repository(root: Path) -> Path:
    """A repository holding only visual_detector, exported from a ViT-base config (86 M parameters)."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessorPil

    folder = root / "vit-base"
    labels = {0: "Real", 1: "Fake"}
    ViTForImageClassification(ViTConfig(id2label=labels, label2id={v: k for k, v in labels.items()})).save_pretrained(
        folder
    )
    ViTImageProcessorPil().save_pretrained(folder)
    repository = root / "vit-repository"
    shutil.copytree(MODEL_REPOSITORY / VISUAL_DETECTOR.name, repository / VISUAL_DETECTOR.name)
    code = export_main(
        [
            "--repository",
            str(repository),
            "--manifest",
            str(root / "manifest.json"),
            "--only",
            VISUAL_DETECTOR.name,
            "--visual-model",
            str(folder),
        ]
    )
    if code != 0:
        raise SystemExit(f"export of ViT-base failed ({code})")
    return repository


def b4_repository(root: Path) -> Path:
    """A repository holding only the served EfficientNet-B4 visual_detector."""
    repository = root / "b4-repository"
    repository.mkdir()
    (repository / VISUAL_DETECTOR.name).symlink_to(MODEL_REPOSITORY / VISUAL_DETECTOR.name, target_is_directory=True)
    return repository


def images_per_s(call, batch: int, seconds: float) -> float:
    """Images per second of ``call(x)`` on a batch of ``batch``, over at least ``seconds``."""
    x = np.random.default_rng(batch).standard_normal((batch, *VISUAL_DETECTOR.input.dims), dtype=np.float32)
    call(x)  # warm-up
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or runs < 3:
        call(x)
        runs += 1
    return runs * batch / (time.perf_counter() - started)


def in_process(repository: Path):
    """ONNX Runtime with the config's two intra-op threads."""
    runner = OnnxRunner(repository / VISUAL_DETECTOR.name / "1" / "model.onnx", SessionSettings(2))
    return lambda x: runner.run_batch([{"input": x}], ["output"])


def through_triton(url: str):
    """One gRPC request per batch to visual_detector."""
    client = grpcclient.InferenceServerClient(url)

    def call(x: np.ndarray) -> None:
        tensor = grpcclient.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        client.infer(VISUAL_DETECTOR.name, [tensor], outputs=[grpcclient.InferRequestedOutput("output")])

    return call


def main() -> None:
    """Print the side-by-side table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum time per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        repositories = {"EfficientNet-B4": b4_repository(root), "ViT-base": vit_base_repository(root)}
        servers = {
            name: stack.enter_context(running_triton(root / f"triton-{i}", repository=repository))
            for i, (name, repository) in enumerate(repositories.items())
        }
        calls = {}
        for name, repository in repositories.items():
            calls[(name, "in-process")] = in_process(repository)
            calls[(name, "Triton")] = through_triton(servers[name].grpc_url)
        results: dict[tuple[str, str, int], list[float]] = {}
        for _ in range(args.rounds):
            for (name, where), call in calls.items():
                for batch in (1, PREFERRED):
                    results.setdefault((name, where, batch), []).append(images_per_s(call, batch, args.seconds))
    print(f"| model | where | batch | images/s (median of {args.rounds}) |")
    print("|---|---|---:|---:|")
    for (name, where, batch), values in results.items():
        print(f"| {name} | {where} | {batch} | {statistics.median(values):.1f} |")
    for where in ("in-process", "Triton"):
        for batch in (1, PREFERRED):
            ratio = statistics.median(results[("ViT-base", where, batch)]) / statistics.median(
                results[("EfficientNet-B4", where, batch)]
            )
            print(f"ViT-base / B4, {where}, batch {batch}: {ratio:.2f}")


if __name__ == "__main__":
    main()

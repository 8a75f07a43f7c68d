"""The project's detector against a pretrained hub detector's architecture, as served.

``--detector visual``: EfficientNet-B4 against ViT-base (``dima806/...`` is a
ViT-base). ``--detector audio``: the log-mel ResNet18 against wav2vec2-base
(the public audio-deepfake detectors are wav2vec2-base/large fine-tunes), on
4 s windows. Both as served: ONNX files exported by ``python -m
deepfake_export`` (the hub model with random weights from its config: the hub
is not reachable here, and speed does not depend on the weights), measured side
by side in one run, in-process with ONNX Runtime and through Triton (the
detector called directly over gRPC), at batch 1 and at the preferred batch of
the generated config. The rounds alternate between the two models so that the
machine's noise falls on both alike.

Run: ``.venv/bin/python -m perf.measure_pretrained [--detector visual|audio] [--seconds 3] [--rounds 3]``.
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

from deepfake_contract import AUDIO_DETECTOR, AUDIO_PREPROCESS, VISUAL_DETECTOR, ModelSpec
from deepfake_export.__main__ import main as export_main
from deepfake_serving.model_configs import BATCHING, detector_spec
from deepfake_serving.onnx_runner import OnnxRunner, SessionSettings
from deepfake_serving.testing.triton import MODEL_REPOSITORY, running_triton


def save_vit_base(folder: Path) -> list[str]:
    """ViT-base from its default config (86 M parameters); the export flag that serves it."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessorPil

    labels = {0: "Real", 1: "Fake"}
    config = ViTConfig(id2label=labels, label2id={v: k for k, v in labels.items()})
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessorPil().save_pretrained(folder)
    return ["--visual-model", str(folder)]


def save_wav2vec2_base(folder: Path) -> list[str]:
    """wav2vec2-base from its default config (95 M parameters); the export flag that serves it."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    labels = {0: "bonafide", 1: "spoof"}
    config = Wav2Vec2Config(id2label=labels, label2id={v: k for k, v in labels.items()})
    Wav2Vec2ForSequenceClassification(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(folder)
    return ["--audio-model", str(folder)]


#: --detector -> (served detector, the project's network, the hub architecture, how to save it).
PAIRS = {
    "visual": (VISUAL_DETECTOR, "EfficientNet-B4", "ViT-base", save_vit_base),
    "audio": (AUDIO_DETECTOR, "ResNet18 log-mel", "wav2vec2-base", save_wav2vec2_base),
}


def hub_repository(root: Path, detector: ModelSpec, save) -> Path:
    """A repository holding only ``detector``, exported from a hub architecture with random weights."""
    flags = save(root / "hub-model")
    repository = root / "hub-repository"
    for name in (detector.name, AUDIO_PREPROCESS.name):  # the audio export also writes audio_preprocess's config
        shutil.copytree(MODEL_REPOSITORY / name, repository / name)
    code = export_main(
        ["--repository", str(repository), "--manifest", str(root / "manifest.json"), "--only", detector.name, *flags]
    )
    if code != 0:
        raise SystemExit(f"export of the hub architecture failed ({code})")
    shutil.rmtree(repository / AUDIO_PREPROCESS.name)
    return repository


def own_repository(root: Path, detector: ModelSpec) -> Path:
    """A repository holding only the served project's ``detector``."""
    repository = root / "own-repository"
    repository.mkdir()
    (repository / detector.name).symlink_to(MODEL_REPOSITORY / detector.name, target_is_directory=True)
    return repository


def served_spec(repository: Path, detector: ModelSpec) -> ModelSpec:
    """The detector's contract as the repository serves it (the audio detector's input follows its config)."""
    from deepfake_serving.model_configs import parse_pbtxt

    config = parse_pbtxt(repository / detector.name / "config.pbtxt")
    return detector_spec(detector.name, {k: v.string_value for k, v in config.parameters.items()})


def items_per_s(call, spec: ModelSpec, batch: int, seconds: float) -> float:
    """Items (faces, windows) per second of ``call(x)`` on a batch of ``batch``, over at least ``seconds``."""
    x = np.random.default_rng(batch).standard_normal((batch, *spec.input.dims), dtype=np.float32)
    call(x)  # warm-up
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or runs < 3:
        call(x)
        runs += 1
    return runs * batch / (time.perf_counter() - started)


def in_process(repository: Path, detector: ModelSpec):
    """ONNX Runtime with the config's two intra-op threads."""
    runner = OnnxRunner(repository / detector.name / "1" / "model.onnx", SessionSettings(2))
    return lambda x: runner.run_batch([{"input": x}], ["output"])


def through_triton(url: str, detector: ModelSpec):
    """One gRPC request per batch to the detector."""
    client = grpcclient.InferenceServerClient(url)

    def call(x: np.ndarray) -> None:
        tensor = grpcclient.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        client.infer(detector.name, [tensor], outputs=[grpcclient.InferRequestedOutput("output")])

    return call


def main() -> None:
    """Print the side-by-side table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detector", choices=sorted(PAIRS), default="visual", help="which detector pair to measure")
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum time per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported")
    args = parser.parse_args()
    detector, own, hub, save = PAIRS[args.detector]
    preferred = BATCHING[detector.name].preferred_batch_sizes[0]
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        repositories = {own: own_repository(root, detector), hub: hub_repository(root, detector, save)}
        servers = {
            name: stack.enter_context(running_triton(root / f"triton-{i}", repository=repository))
            for i, (name, repository) in enumerate(repositories.items())
        }
        calls, specs = {}, {name: served_spec(repository, detector) for name, repository in repositories.items()}
        for name, repository in repositories.items():
            calls[(name, "in-process")] = in_process(repository, detector)
            calls[(name, "Triton")] = through_triton(servers[name].grpc_url, detector)
        results: dict[tuple[str, str, int], list[float]] = {}
        for _ in range(args.rounds):
            for (name, where), call in calls.items():
                for batch in (1, preferred):
                    rate = items_per_s(call, specs[name], batch, args.seconds)
                    results.setdefault((name, where, batch), []).append(rate)
    unit = "faces/s" if detector is VISUAL_DETECTOR else "windows/s"
    print(f"| model | where | batch | {unit} (median of {args.rounds}) |")
    print("|---|---|---:|---:|")
    for (name, where, batch), values in results.items():
        print(f"| {name} | {where} | {batch} | {statistics.median(values):.1f} |")
    for where in ("in-process", "Triton"):
        for batch in (1, preferred):
            ratio = statistics.median(results[(hub, where, batch)]) / statistics.median(results[(own, where, batch)])
            print(f"{hub} / {own}, {where}, batch {batch}: {ratio:.2f}")


if __name__ == "__main__":
    main()

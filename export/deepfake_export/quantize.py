"""Opt-in INT8 CPU profiles: ONNX Runtime static quantization of an exported detector.

``python -m deepfake_export --quantize int8`` (``make export QUANTIZE=int8``)
serves, for each network in :data:`INT8_PROFILES`, an INT8 graph quantized
from the FP32 one that passed the parity check against PyTorch. A profile
exists only where INT8 measured at least 1.5x faster than FP32 on the CPU
(``perf/measure_int8.py``, ``perf/measure_temporal.py``; figures in
``perf/RESULTS.md``); elsewhere the FP32 graph is exported as without the flag.

How a network is quantized (:func:`quantize_int8`): ``quantize_static`` in
the QDQ format (ONNX Runtime fuses it into ``QLinearConv`` at load),
activations uint8 per tensor (the fast u8s8 path on x86-64), weights int8 per
output channel, ranges by MinMax over the calibration inputs. Some nodes stay
FP32 where measurement says so: the first convolution (3 input channels, for
which the INT8 kernels are slower than FP32 ones: twice as slow for the
temporal analyzer's 3x7x7 Conv3d) and the classifier head after the last
global pooling (it costs nothing and keeps the probabilities in float).

Calibration inputs are made with the serving code: face crops from
:class:`deepfake_serving.image_pipeline.FaceDetector` (MTCNN from the
repository's ONNX files) for the visual detector; for the temporal analyzer,
16-frame clips of each image drifting a few pixels
(:func:`deepfake_serving.testing.media_av.moving_frames`), resized and
normalized as ``detect_video`` does. The images are scikit-image's bundled
photos, or the images of ``--calibration-images DIR``.

A quantized graph is served only if its probabilities stay within the
profile's ``max_prob_diff`` of the FP32 graph's on held-out inputs (the
calibration inputs mirrored, plus standard-normal ones); otherwise the export
fails like a failed parity check and the served model is left as it was.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

QUANTIZE_CHOICES = ("none", "int8")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class Int8Profile:
    """How one network is quantized, and the drift its INT8 graph may have."""

    quant_format: str = "QDQ"  # or "QOperator"
    fp32_first_conv: bool = True
    fp32_head: bool = True
    #: Largest |INT8 - FP32| fake probability accepted at export, on held-out inputs.
    max_prob_diff: float = 0.02

    def describe(self) -> str:
        """One line for the config's ``quantization`` parameter."""
        kept = [part for part, on in (("first conv", self.fp32_first_conv), ("head", self.fp32_head)) if on]
        return (
            f"onnxruntime {ort.__version__} quantize_static {self.quant_format}, activations uint8 per tensor,"
            f" weights int8 per channel, MinMax" + (f"; FP32: {', '.join(kept)}" if kept else "")
        )


#: The networks that have an INT8 CPU profile (perf/RESULTS.md, "INT8 CPU profiles").
INT8_PROFILES: dict[str, Int8Profile] = {
    # 1.51x at batch 1, 1.66x at batch 4 on one thread (perf/measure_int8.py). The export serves it
    # only if no held-out crop's fake probability moves by more than 0.05. The seeded demo weights
    # move by 0.06-0.24 (random weights are fragile), so with them the export refuses it; trained
    # weights are what the gate is for.
    "visual_detector": Int8Profile(
        "QDQ",
        fp32_first_conv=False,
        fp32_head=False,
        max_prob_diff=0.05,
    ),
}

#: Why ``--quantize int8`` leaves the other detectors FP32.
NOT_OFFERED: dict[str, str] = {
    "temporal_analyzer": "its best INT8 graph measured 1.45x at batch 1 and 1.52x at batch 4, under the 1.5x"
    " a profile must reach at both",
    "audio_detector": "not measured",
    "forensic_classifier": "an MLP of 0.01 ms per image: nothing to gain",
}


class QuantizationError(AssertionError):
    """An INT8 graph drifted from its FP32 graph by more than its profile allows."""


# ---------------------------------------------------------------------------
# Calibration inputs, made with the serving code
# ---------------------------------------------------------------------------


def default_images() -> list[np.ndarray]:
    """scikit-image's bundled photos (people, a cat, a cup) at a few scales and exposures, RGB uint8.

    Raises:
        ImportError: scikit-image is not installed (the venv's test extra has it;
            elsewhere pass ``--calibration-images DIR``).
    """
    import cv2
    from skimage import data

    astronaut = data.astronaut()
    camera = np.repeat(data.camera()[:, :, None], 3, axis=2)
    grid = np.concatenate([np.concatenate([astronaut, astronaut], axis=1)] * 2, axis=0)
    images = [astronaut, camera, data.coffee(), data.chelsea(), grid]
    for scale in (0.6, 1.6):
        images.append(cv2.resize(astronaut, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    images.append(np.clip(astronaut.astype(np.float32) * 0.6, 0, 255).astype(np.uint8))  # underexposed
    images.append(np.clip(camera.astype(np.float32) * 1.3 + 10, 0, 255).astype(np.uint8))  # overexposed
    return images


def folder_images(folder: Path) -> list[np.ndarray]:
    """Every image file of ``folder`` (sorted by name), decoded as the serving code decodes uploads.

    Raises:
        ValueError: the folder holds no image.
    """
    from deepfake_serving.imaging import decode_image

    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"--calibration-images {folder}: no image ({', '.join(IMAGE_SUFFIXES)}) in it")
    return [decode_image(p.read_bytes()) for p in paths]


def folder_fingerprint(folder: Path | None) -> str:
    """What the calibration was made from: ``default`` or the SHA-256 of the folder's images."""
    if folder is None:
        return "default"
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def face_crops(images: Iterable[np.ndarray], mtcnn_dir: Path, parameters: dict[str, str] | None = None) -> np.ndarray:
    """``float32[n, 3, 224, 224]``: the visual detector's input for every face of ``images`` as face_detector makes it.

    An image without a face gives its center crop, as the served fallback does.
    ``parameters`` are the visual detector's config parameters (its
    ``preprocess_*`` steps; ImageNet's when absent).
    """
    from deepfake_serving.image_pipeline import FaceDetector, FaceSettings
    from deepfake_serving.visual_preprocessing import VisualPreprocessing

    preprocessing = VisualPreprocessing.from_parameters(parameters or {})
    detector = FaceDetector(mtcnn_dir, FaceSettings(), threads=2, preprocessing=preprocessing)
    return np.concatenate([detector.detect_rgb(image).visual_input for image in images])


def clip_of(image: np.ndarray, width: int = 320, height: int = 240) -> np.ndarray:
    """``float32[1, 16, 3, 224, 224]``: 16 frames of ``image`` drifting a few pixels, as detect_video feeds them."""
    from deepfake_serving.faces import normalize_for_visual
    from deepfake_serving.testing.media_av import moving_frames
    from deepfake_serving.video import NUM_FRAMES, to_size

    frames = moving_frames(image, NUM_FRAMES, width, height)
    return normalize_for_visual(np.stack([to_size(frame) for frame in frames]))[np.newaxis]


def calibration_inputs(
    name: str, images: Sequence[np.ndarray], mtcnn_dir: Path, parameters: dict[str, str] | None = None
) -> list[np.ndarray]:
    """The calibration batches of network ``name`` (one input array each, batch first)."""
    if name == "visual_detector":
        crops = face_crops(images, mtcnn_dir, parameters)
        return [crops[i : i + 1] for i in range(len(crops))]
    if name == "temporal_analyzer":
        return [clip_of(image) for image in images]
    raise ValueError(f"{name}: no INT8 calibration inputs defined")


def held_out(inputs: Sequence[np.ndarray], random: int = 2, seed: int = 0) -> list[np.ndarray]:
    """Inputs the calibration did not see: each one mirrored left to right, plus ``random`` standard-normal ones."""
    rng = np.random.default_rng(seed)
    mirrored = [np.ascontiguousarray(x[..., ::-1]) for x in inputs]
    noise = [rng.standard_normal(inputs[0].shape, dtype=np.float32) for _ in range(random)]
    return mirrored + noise


# ---------------------------------------------------------------------------
# Quantization
# ---------------------------------------------------------------------------


def fp32_nodes(model: onnx.ModelProto, profile: Int8Profile) -> list[str]:
    """Names of the nodes the profile keeps FP32: the first Conv, and everything after the last global pooling."""
    nodes = list(model.graph.node)
    keep: list[str] = []
    if profile.fp32_first_conv:
        keep += [n.name for n in nodes if n.op_type == "Conv"][:1]
    if profile.fp32_head:
        pools = [i for i, n in enumerate(nodes) if n.op_type == "GlobalAveragePool"]
        if pools:
            # Nodes are topologically sorted: those fed (transitively) by the last pool form the head.
            tensors = set(nodes[pools[-1]].output)
            for node in nodes[pools[-1] + 1 :]:
                if tensors & set(node.input):
                    keep.append(node.name)
                    tensors |= set(node.output)
    return keep


class _Reader:
    """``onnxruntime.quantization.CalibrationDataReader`` over a list of inputs."""

    def __init__(self, input_name: str, inputs: Sequence[np.ndarray]) -> None:
        self._feeds = iter([{input_name: x} for x in inputs])

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next calibration feed, or None at the end."""
        return next(self._feeds, None)

    def rewind(self) -> None:
        """Not needed: the calibrater reads the inputs once."""


def quantize_int8(source: Path, target: Path, profile: Int8Profile, calibration: Sequence[np.ndarray]) -> Path:
    """Write the INT8 graph of the FP32 ONNX file ``source`` to ``target`` and return it.

    The ONNX metadata of ``source`` (network, weights provenance) is kept and
    ``deepfake.precision = int8`` added.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static

    fp32 = onnx.load(str(source))
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference and ORT's basic graph optimizations (BatchNorm folding), as recommended before quantization.
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        model = onnx.load(str(prepared))
        quantize_static(
            str(prepared),
            str(target),
            _Reader(fp32.graph.input[0].name, calibration),
            quant_format=QuantFormat.QDQ if profile.quant_format == "QDQ" else QuantFormat.QOperator,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=fp32_nodes(model, profile),
        )
    quantized = onnx.load(str(target))
    quantized.doc_string = fp32.doc_string
    del quantized.metadata_props[:]
    for prop in fp32.metadata_props:
        quantized.metadata_props.add(key=prop.key, value=prop.value)
    quantized.metadata_props.add(key="deepfake.precision", value="int8")
    onnx.save(quantized, str(target))
    return target


def session(path: Path, threads: int = 2) -> ort.InferenceSession:
    """An ONNX Runtime CPU session as the served one is opened (every graph optimization, ``threads`` intra-op)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def fake_probs(sess: ort.InferenceSession, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """The fake probability (``output[:, 1]``) of every input, concatenated."""
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(["output"], {name: x})[0][:, 1] for x in inputs])


def prob_drift(fp32: Path, int8: Path, inputs: Sequence[np.ndarray]) -> float:
    """Largest |INT8 - FP32| fake probability over ``inputs``."""
    return float(np.max(np.abs(fake_probs(session(fp32), inputs) - fake_probs(session(int8), inputs))))


def check_drift(name: str, fp32: Path, int8: Path, inputs: Sequence[np.ndarray], profile: Int8Profile) -> float:
    """Return :func:`prob_drift`, or raise :class:`QuantizationError` above the profile's ``max_prob_diff``."""
    drift = prob_drift(fp32, int8, inputs)
    if not drift <= profile.max_prob_diff:
        raise QuantizationError(
            f"{name}: the INT8 graph's probabilities differ from the FP32 graph's by {drift:.3g}"
            f" (> {profile.max_prob_diff}, the INT8 profile's documented drift)"
        )
    return drift

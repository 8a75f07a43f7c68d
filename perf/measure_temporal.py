"""The temporal analyzer under ONNX Runtime's CPU options, side by side, in one run.

Every variant runs the served ``temporal_analyzer/1/model.onnx`` (or a graph
made from it) in-process at batch 1 and 4, interleaved round by round so that
load from anything else on the machine falls on every variant alike:

* graph optimization level basic / extended / layout / all (``all`` is what is
  served today, by the project's Python-based backend and by Triton's native
  ONNX Runtime backend alike), intra-op threads 1 and 2, sequential and
  parallel execution;
* channels-last: ONNX Runtime's layout transformer (level ``layout`` and up)
  rewrites only 2D convolutions to its blocked NCHWc kernels, so a variant
  re-expresses each Conv3d as a Conv2d over ``kt`` stacked neighbouring frames
  (an exact rewrite, same weights) for which it applies;
* INT8: static quantization (QDQ and QOperator, uint8 activations, int8
  per-channel weights, calibrated on clips of scikit-image's photos made with
  the serving code, :mod:`deepfake_export.quantize`), with every convolution
  quantized or the first one (3 input channels) and the head kept FP32; and
  dynamic quantization (``ConvInteger``).

For each: ms per clip (best of the rounds; median in brackets), the speed-up
over today's default at batch 1 and 4, and the largest |fake probability
difference| against today's FP32 default over a set of clips (moving frames
of real photos at other sizes than the calibration's, faceless gradients,
standard-normal noise).

Run: ``.venv/bin/python -m perf.measure_temporal`` (about 5 minutes on the
2-core development machine; ``--rounds`` trades time for noise).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from deepfake_export.quantize import Int8Profile, calibration_inputs, clip_of, default_images, quantize_int8

Level = ort.GraphOptimizationLevel
BATCHES = (1, 4)
#: What a variant must reach to become the served default (issue #17).
SPEEDUP_TO_KEEP = 1.5
DRIFT_TO_KEEP = 1e-3


@dataclass
class Variant:
    """One way of running the temporal analyzer, and how Triton's config would say it."""

    name: str
    path: Path
    level: ort.GraphOptimizationLevel = Level.ORT_ENABLE_ALL
    intra: int = 2
    inter: int = 1
    parallel: bool = False
    triton: str = "(today's config)"
    session: ort.InferenceSession | None = None
    times: dict[int, list[float]] = field(default_factory=lambda: {b: [] for b in BATCHES})

    def open(self) -> None:
        """Open the ONNX Runtime session with this variant's options."""
        options = ort.SessionOptions()
        options.graph_optimization_level = self.level
        options.intra_op_num_threads = self.intra
        options.inter_op_num_threads = self.inter
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL if self.parallel else ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def run(self, x: np.ndarray) -> np.ndarray:
        """Probabilities ``[N, 2]`` of clips ``x``."""
        assert self.session is not None
        return self.session.run(["output"], {"input": x})[0]


# ---------------------------------------------------------------------------
# The Conv2d variant: Conv3d over (C, T, H, W) as Conv2d over kt stacked frames
# ---------------------------------------------------------------------------


def conv2d_variant(source: Path, target: Path) -> Path:
    """Write the served 3D CNN re-expressed with 2D convolutions and pools (exact, same weights).

    The activations stay frame-major ``[N, T, C, H, W]`` (the input's own
    layout, so the graph's Transpose goes). A Conv3d with kernel ``(kt, kh, kw)``
    and temporal padding ``kt // 2`` becomes: pad T, concatenate the ``kt``
    shifted views along C, fold T into the batch, one Conv2d with the weights
    reordered ``[co, kt * ci, kh, kw]``. MaxPool3d(1, 3, 3) is a MaxPool2d per
    frame; MaxPool3d(2) a MaxPool2d then the max of frame pairs.
    """
    model = onnx.load(str(source))
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    gemms = [n for n in model.graph.node if n.op_type == "Gemm"]
    nodes: list[onnx.NodeProto] = []
    inits: list[TensorProto] = []
    counter = iter(range(10_000))

    def name(prefix: str) -> str:
        return f"{prefix}_{next(counter)}"

    def const(values, dtype=np.int64) -> str:
        n = name("c")
        inits.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), n))
        return n

    def op(kind: str, inputs: list[str], **attrs) -> str:
        out = name(kind.lower())
        nodes.append(helper.make_node(kind, inputs, [out], name=out, **attrs))
        return out

    x, t, c, hw = "input", 16, 3, 224
    pools = iter(n for n in model.graph.node if n.op_type == "MaxPool")
    for index, conv in enumerate(convs):
        attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        w, b = weights[conv.input[1]], weights[conv.input[2]]
        co, ci, kt, kh, kw = w.shape
        pt = attrs["pads"][0]
        padded = op("Pad", [x, const([0, pt, 0, 0, 0, 0, pt, 0, 0, 0])])
        shifted = [op("Slice", [padded, const([k]), const([k + t]), const([1])]) for k in range(kt)]
        stacked = op("Concat", shifted, axis=2) if kt > 1 else shifted[0]
        folded = op("Reshape", [stacked, const([-1, kt * ci, hw, hw])])
        w2 = np.ascontiguousarray(w.transpose(0, 2, 1, 3, 4).reshape(co, kt * ci, kh, kw))
        y = op(
            "Conv",
            [folded, const(w2, np.float32), const(b, np.float32)],
            kernel_shape=[kh, kw],
            strides=list(attrs["strides"][1:]),
            pads=[attrs["pads"][1], attrs["pads"][2], attrs["pads"][4], attrs["pads"][5]],
        )
        y = op("Relu", [y])
        hw = (hw + 2 * attrs["pads"][1] - kh) // attrs["strides"][1] + 1
        c = co
        if index < len(convs) - 1:
            pool = next(pools)
            p = {a.name: helper.get_attribute_value(a) for a in pool.attribute}
            k2, s2 = list(p["kernel_shape"][1:]), list(p["strides"][1:])
            pads2 = [p["pads"][1], p["pads"][2], p["pads"][4], p["pads"][5]]
            y = op("MaxPool", [y], kernel_shape=k2, strides=s2, pads=pads2)
            hw = (hw + pads2[0] + pads2[2] - k2[0]) // s2[0] + 1
            if p["kernel_shape"][0] == 2:  # pool pairs of frames too
                t //= 2
                y = op("Reshape", [y, const([-1, t, 2, c, hw, hw])])
                x = op("ReduceMax", [y], axes=[2], keepdims=0)
            else:
                x = op("Reshape", [y, const([-1, t, c, hw, hw])])
        else:
            x = op("Reshape", [y, const([-1, t, c, hw, hw])])
    x = op("ReduceMean", [x], axes=[1, 3, 4], keepdims=0)
    for index, gemm in enumerate(gemms):
        attrs = {a.name: helper.get_attribute_value(a) for a in gemm.attribute}
        x = op("Gemm", [x, gemm.input[1], gemm.input[2]], transB=attrs.get("transB", 0))
        if index < len(gemms) - 1:
            x = op("Relu", [x])
    nodes.append(helper.make_node("Identity", [x], ["logits"], name="logits_out"))
    nodes.append(helper.make_node("Softmax", ["logits"], ["output"], axis=1, name="softmax"))
    inits += [t for t in model.graph.initializer if t.name in {i for g in gemms for i in g.input[1:]}]
    graph = helper.make_graph(nodes, "temporal_conv2d", list(model.graph.input), list(model.graph.output), inits)
    variant = helper.make_model(graph, opset_imports=list(model.opset_import))
    onnx.checker.check_model(variant)
    onnx.save(variant, str(target))
    return target


def nchwc_ops(variant: Variant, tmp: Path) -> int:
    """How many nodes ONNX Runtime turned into its NCHWc (blocked channels-last) kernels for this variant."""
    options = ort.SessionOptions()
    options.graph_optimization_level = variant.level
    options.log_severity_level = 3  # its "hardware specific" warning is expected here
    options.optimized_model_filepath = str(tmp / f"{abs(hash(variant.name))}.optimized.onnx")
    ort.InferenceSession(str(variant.path), options, providers=["CPUExecutionProvider"])
    optimized = onnx.load(options.optimized_model_filepath)
    return sum(1 for n in optimized.graph.node if n.domain == "com.microsoft.nchwc")


# ---------------------------------------------------------------------------
# Clips
# ---------------------------------------------------------------------------


def evaluation_clips(random: int) -> list[np.ndarray]:
    """Clips the INT8 calibration did not see: real photos at other canvas sizes, faceless gradients, noise."""
    from skimage import data

    from deepfake_serving.faces import normalize_for_visual
    from deepfake_serving.testing.media_av import gradient_frames
    from deepfake_serving.video import NUM_FRAMES, to_size

    astronaut, coffee = data.astronaut(), data.coffee()
    camera = np.repeat(data.camera()[:, :, None], 3, axis=2)
    clips = [
        clip_of(astronaut, 480, 270),
        clip_of(astronaut[:, ::-1], 640, 360),
        clip_of(coffee, 256, 256),
        clip_of(camera, 400, 300),
        clip_of(data.rocket(), 320, 180),
        normalize_for_visual(np.stack([to_size(f) for f in gradient_frames(NUM_FRAMES, 320, 240)]))[np.newaxis],
    ]
    rng = np.random.default_rng(17)
    clips += [rng.standard_normal((1, 16, 3, 224, 224), dtype=np.float32) for _ in range(random)]
    return clips


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------


def make_variants(served: Path, tmp: Path, log: Callable[[str], None]) -> list[Variant]:
    """Every variant measured; the first is today's default."""
    variants = [
        Variant("default: all, intra 2, sequential", served),
        Variant("level basic", served, level=Level.ORT_ENABLE_BASIC, triton="optimization { graph { level: -1 } }"),
        Variant(
            "level extended", served, level=Level.ORT_ENABLE_EXTENDED, triton="optimization { graph { level: 1 } }"
        ),
        Variant("level layout", served, level=Level.ORT_ENABLE_LAYOUT, triton="(no Triton key; `all` includes it)"),
        Variant("intra 1", served, intra=1, triton='intra_op_thread_count "1"'),
        Variant(
            "parallel, inter 2",
            served,
            inter=2,
            parallel=True,
            triton='execution_mode "1", inter_op_thread_count "2"',
        ),
    ]
    conv2d = conv2d_variant(served, tmp / "conv2d.onnx")
    variants.append(Variant("Conv2d variant (NCHWc), all", conv2d, triton="a different exported graph"))
    log("calibrating on clips of scikit-image's photos ...")
    calibration = calibration_inputs("temporal_analyzer", default_images(), tmp)
    for label, profile in [
        ("int8 QDQ, every conv", Int8Profile("QDQ", fp32_first_conv=False, fp32_head=False)),
        ("int8 QDQ, conv 2-4 (first conv, head FP32)", Int8Profile("QDQ")),
        ("int8 QOperator, conv 2-4", Int8Profile("QOperator")),
    ]:
        started = time.perf_counter()
        path = quantize_int8(
            served, tmp / f"{label.split(',')[0].replace(' ', '_')}_{len(variants)}.onnx", profile, calibration
        )
        log(f"{label}: quantized in {time.perf_counter() - started:.0f} s")
        variants.append(Variant(label, path, triton="a different exported graph (--quantize int8)"))
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dynamic = tmp / "dynamic.onnx"
    quantize_dynamic(str(served), str(dynamic), op_types_to_quantize=["Conv"], weight_type=QuantType.QUInt8)
    variants.append(Variant("int8 dynamic (ConvInteger)", dynamic, triton="a different exported graph"))
    return variants


def measure(variants: list[Variant], rounds: int, log: Callable[[str], None]) -> None:
    """Time every variant at every batch, ``rounds`` times, interleaved (one run per variant per round)."""
    x1 = np.random.default_rng(0).standard_normal((1, 16, 3, 224, 224), dtype=np.float32)
    inputs = {b: np.repeat(x1, b, axis=0) for b in BATCHES}
    for variant in variants:
        for b in BATCHES:
            variant.run(inputs[b])  # warm-up: arena growth, first-run allocations
    for r in range(rounds):
        for b in BATCHES:
            for variant in variants:
                started = time.perf_counter()
                variant.run(inputs[b])
                variant.times[b].append((time.perf_counter() - started) / b)
        log(f"round {r + 1}/{rounds} done")


def table(variants: list[Variant], drift: dict[str, float], nchwc: dict[str, int]) -> str:
    """The Markdown table of the results."""
    base = variants[0]
    lines = [
        "| variant | ms/clip b=1 | ms/clip b=4 | speed-up b=1 | speed-up b=4 | max abs prob diff | NCHWc nodes | in config.pbtxt |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for v in variants:
        cells = []
        for b in BATCHES:
            cells.append(f"{min(v.times[b]) * 1e3:.0f} ({np.median(v.times[b]) * 1e3:.0f})")
        ups = [f"{min(base.times[b]) / min(v.times[b]):.2f}x" for b in BATCHES]
        lines.append(
            f"| {v.name} | {cells[0]} | {cells[1]} | {ups[0]} | {ups[1]} | {drift[v.name]:.1e} | {nchwc.get(v.name, '')} | {v.triton} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Measure every variant and print the table (and ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repository", type=Path, default=Path("model_repository"))
    parser.add_argument("--rounds", type=int, default=5, help="timed runs per variant and batch")
    parser.add_argument("--random-clips", type=int, default=4, help="standard-normal clips in the drift set")
    parser.add_argument("--json", type=Path, help="also write the raw timings and drifts here")
    args = parser.parse_args()
    served = args.repository / "temporal_analyzer" / "1" / "model.onnx"
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:5.0f} s] {message}", flush=True)

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        # MTCNN is not needed for clips; calibration_inputs takes the folder anyway.
        variants = make_variants(served, tmp, log)
        nchwc = {v.name: nchwc_ops(v, tmp) for v in variants if "int8" not in v.name}
        for v in variants:
            v.open()
        clips = evaluation_clips(args.random_clips)
        reference = np.concatenate([variants[0].run(c)[:, 1] for c in clips])
        drift = {}
        for v in variants:
            probs = np.concatenate([v.run(c)[:, 1] for c in clips])
            drift[v.name] = float(np.max(np.abs(probs - reference)))
        log(f"drift measured on {len(clips)} clips (fake prob {reference.min():.4f} .. {reference.max():.4f})")
        measure(variants, args.rounds, log)
    cpu = platform.processor() or platform.machine()
    print(f"\n# {cpu}, {ort.__version__}, {args.rounds} rounds, {len(clips)} clips in the drift set")
    print(f"# ms per clip: best of {args.rounds} (median); speed-up from the best times\n")
    print(table(variants, drift, nchwc))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    keep = [
        v.name
        for v in variants[1:]
        if all(min(variants[0].times[b]) / min(v.times[b]) >= SPEEDUP_TO_KEEP for b in BATCHES)
        and drift[v.name] <= DRIFT_TO_KEEP
    ]
    print(f"\nat least {SPEEDUP_TO_KEEP}x at both batches and within {DRIFT_TO_KEEP} of FP32: {keep or 'none'}")
    print(f"peak RSS {peak:.0f} MiB, {time.perf_counter() - started:.0f} s in all")
    if args.json:
        args.json.write_text(
            json.dumps(
                {v.name: {"times": {str(b): v.times[b] for b in BATCHES}, "drift": drift[v.name]} for v in variants},
                indent=2,
            )
        )


if __name__ == "__main__":
    main()

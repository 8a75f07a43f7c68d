"""``python -m deepfake_export.tensorrt``: build TensorRT plans from the exported ONNX detectors.

Runs on a GPU node after ``python -m deepfake_export`` (the compose ``export``
service, the Kubernetes export Job). For each detector of
:data:`deepfake_contract.DETECTORS` it builds an FP16 engine with one
optimization profile covering batch 1..``max_batch_size`` (opt = the largest
GPU preferred batch size), writes ``<model>/1/model.plan`` and a
``<model>/configs/trt.pbtxt`` that serves it with ``platform: "tensorrt_plan"``.

What is served by default stays ``configs/gpu.pbtxt`` (ONNX Runtime with its
TensorRT execution provider): see ``deploy/README.md`` ("TensorRT: plans or
the ONNX Runtime accelerator") for the reasons. The plans are the measured,
opt-in alternative (``--model-config-name=trt``), and ``model.onnx`` stays the
fallback in every case.

TensorRT is imported lazily: command and profile construction are plain
functions, unit-tested on machines without a GPU. A plan is only valid for the
TensorRT version and GPU model it was built on, so it must be built with the
TensorRT of the serving image's release (``Dockerfile.export`` uses the NGC
PyTorch image of the same month as the Triton image).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfake_contract import DETECTORS, ModelSpec
from deepfake_serving.model_configs import BATCHING, detector_config, detector_spec, gpu_overlay, parse_pbtxt, to_pbtxt

log = logging.getLogger("deepfake_export.tensorrt")

TRT_CONFIG_NAME = "trt"
PLAN_FILENAME = "model.plan"
#: Where NGC images put trtexec when it is not on PATH.
TRTEXEC_CANDIDATES = ("trtexec", "/usr/src/tensorrt/bin/trtexec")
DEFAULT_WORKSPACE_MIB = 2048


class TensorRTUnavailable(RuntimeError):
    """Neither the ``tensorrt`` Python package nor ``trtexec`` is present."""


@dataclass(frozen=True)
class Profile:
    """One TensorRT optimization profile of one input, shapes with the batch axis."""

    input_name: str
    min_shape: tuple[int, ...]
    opt_shape: tuple[int, ...]
    max_shape: tuple[int, ...]


def optimization_profile(spec: ModelSpec) -> Profile:
    """Batch 1..max_batch_size; optimized for the largest GPU preferred batch size.

    The opt batch is where TensorRT picks its kernels, so it is the batch the
    dynamic batcher is asked to form on GPUs (``Batching.gpu_preferred_batch_sizes``).
    """
    if spec.max_batch_size < 1:
        raise ValueError(f"{spec.name}: max_batch_size {spec.max_batch_size} has no batch axis to profile")
    if len(spec.inputs) != 1:
        raise ValueError(f"{spec.name}: expected one input, got {len(spec.inputs)}")
    (tensor,) = spec.inputs
    if any(d < 1 for d in tensor.dims):
        raise ValueError(f"{spec.name}: input {tensor.name} has dynamic dims {tensor.dims}; only the batch may vary")
    opt = min(max(BATCHING[spec.name].gpu_preferred_batch_sizes), spec.max_batch_size)
    return Profile(
        input_name=tensor.name,
        min_shape=(1, *tensor.dims),
        opt_shape=(opt, *tensor.dims),
        max_shape=(spec.max_batch_size, *tensor.dims),
    )


def _shape(name: str, shape: tuple[int, ...]) -> str:
    return f"{name}:{'x'.join(str(d) for d in shape)}"


def trtexec_command(
    trtexec: str,
    onnx: Path,
    plan: Path,
    profile: Profile,
    *,
    fp16: bool = True,
    workspace_mib: int = DEFAULT_WORKSPACE_MIB,
    time_inference: bool = False,
) -> list[str]:
    """The ``trtexec`` call that builds one plan (TensorRT 10 flag names)."""
    command = [
        trtexec,
        f"--onnx={onnx}",
        f"--saveEngine={plan}",
        f"--minShapes={_shape(profile.input_name, profile.min_shape)}",
        f"--optShapes={_shape(profile.input_name, profile.opt_shape)}",
        f"--maxShapes={_shape(profile.input_name, profile.max_shape)}",
        f"--memPoolSize=workspace:{workspace_mib}M",
    ]
    if fp16:
        command.append("--fp16")
    if not time_inference:
        command.append("--skipInference")
    return command


#: Config parameters the plan inherits from the ONNX model it is built from: provenance and input preparation.
_CARRIED = ("weights_", "labels", "preprocess_", "audio_")


def plan_config(spec: ModelSpec, served: dict[str, str] | None = None) -> dict[str, Any]:
    """``configs/trt.pbtxt``: the GPU overlay served from the plan.

    Same name, tensors, batching and warmup as ``configs/gpu.pbtxt``; the
    ONNX Runtime backend, its parameters and its accelerator are replaced by
    ``platform: tensorrt_plan``. ``served`` are the parameters of the model's
    ``config.pbtxt``: the plan is built from that ONNX file, so its provenance
    (``weights*``, ``labels``), the visual detector's ``preprocess_*`` and the
    audio detector's ``audio_*`` carry over.
    """
    served = served or {}
    extra = {k: v for k, v in served.items() if k.startswith(_CARRIED)}
    config = gpu_overlay(
        detector_config(
            spec,
            weights=served.get("weights", "demo"),
            weights_sha256=served.get("weights_sha256", ""),
            parameters={k: v for k, v in extra.items() if k != "weights_sha256"},
        )
    )
    del config["backend"]
    config.pop("optimization", None)
    config["platform"] = "tensorrt_plan"
    config["default_model_filename"] = PLAN_FILENAME
    # Thread-count keys belong to ONNX Runtime; provenance and preprocessing stay.
    config["parameters"] = {k: v for k, v in config["parameters"].items() if k.startswith(("weights", *_CARRIED))}
    return config


def find_trtexec() -> str | None:
    """Path of the ``trtexec`` binary (on ``PATH`` or in the NGC image's folder), or None."""
    for candidate in TRTEXEC_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def build_with_python_api(onnx: Path, plan: Path, profile: Profile, *, fp16: bool, workspace_mib: int) -> None:
    """Build one plan with the ``tensorrt`` package (imported here, not at module import)."""
    import tensorrt as trt  # optional: GPU images only

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # TensorRT 10 networks are always explicit-batch; the flag is for 8.x.
    flags = (
        0 if int(trt.__version__.split(".")[0]) >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    )
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    trt_profile = builder.create_optimization_profile()
    trt_profile.set_shape(profile.input_name, profile.min_shape, profile.opt_shape, profile.max_shape)
    config.add_optimization_profile(trt_profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build {plan} from {onnx}")
    plan.write_bytes(bytes(serialized))


def build_plan(
    onnx: Path,
    plan: Path,
    profile: Profile,
    *,
    fp16: bool = True,
    workspace_mib: int = DEFAULT_WORKSPACE_MIB,
    prefer: str = "auto",
) -> str:
    """Build one plan; returns which builder was used ("python" or "trtexec")."""
    plan.parent.mkdir(parents=True, exist_ok=True)
    tmp = plan.with_suffix(".plan.tmp")
    use_python = prefer in ("auto", "python")
    if use_python:
        try:
            build_with_python_api(onnx, tmp, profile, fp16=fp16, workspace_mib=workspace_mib)
            tmp.replace(plan)
            return "python"
        except ImportError:
            if prefer == "python":
                raise TensorRTUnavailable("the tensorrt Python package is not installed") from None
    trtexec = find_trtexec()
    if trtexec is None:
        raise TensorRTUnavailable("neither the tensorrt Python package nor trtexec is available (GPU image only)")
    subprocess.run(trtexec_command(trtexec, onnx, tmp, profile, fp16=fp16, workspace_mib=workspace_mib), check=True)
    tmp.replace(plan)
    return "trtexec"


def main(argv: list[str] | None = None) -> int:
    """Build a TensorRT plan and its ``configs/trt.pbtxt`` for each exported detector.

    Returns the exit status: 0 on success (or without TensorRT under
    ``--if-available``), 2 when an ONNX file is missing, 3 when TensorRT is
    unavailable.
    """
    parser = argparse.ArgumentParser(prog="python -m deepfake_export.tensorrt", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repository", type=Path, default=Path("model_repository"))
    parser.add_argument("--only", nargs="*", choices=[s.name for s in DETECTORS])
    parser.add_argument("--fp32", action="store_true", help="build FP32 plans (default FP16)")
    parser.add_argument("--workspace-mib", type=int, default=DEFAULT_WORKSPACE_MIB)
    parser.add_argument("--builder", choices=("auto", "python", "trtexec"), default="auto")
    parser.add_argument(
        "--if-available",
        action="store_true",
        help="exit 0 with a warning when TensorRT is missing (CPU nodes share the export image)",
    )
    parser.add_argument("--timings", type=Path, default=Path("build/export/tensorrt.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")

    timings: dict[str, Any] = {}
    for name in args.only or [s.name for s in DETECTORS]:
        onnx, config = args.repository / name / "1" / "model.onnx", args.repository / name / "config.pbtxt"
        missing = [path for path in (onnx, config) if not path.is_file()]
        if missing:
            log.error("%s: %s is missing; run `python -m deepfake_export` first", name, missing[0])
            return 2
        served = {k: v.string_value for k, v in parse_pbtxt(config).parameters.items()}
        spec = detector_spec(name, served)
        profile = optimization_profile(spec)
        plan = args.repository / name / "1" / PLAN_FILENAME
        started = time.perf_counter()
        try:
            builder = build_plan(
                onnx, plan, profile, fp16=not args.fp32, workspace_mib=args.workspace_mib, prefer=args.builder
            )
        except TensorRTUnavailable as error:
            if args.if_available:
                log.warning("no TensorRT here (%s): serving stays on ONNX Runtime", error)
                return 0
            log.error("%s", error)
            return 3
        seconds = time.perf_counter() - started
        config_path = args.repository / name / "configs" / f"{TRT_CONFIG_NAME}.pbtxt"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(to_pbtxt(plan_config(spec, served)))
        timings[name] = {
            "builder": builder,
            "build_s": round(seconds, 1),
            "fp16": not args.fp32,
            "profile": [profile.min_shape, profile.opt_shape, profile.max_shape],
        }
        log.info("%s: built %s in %.1fs with %s", name, plan, seconds, builder)
    args.timings.parent.mkdir(parents=True, exist_ok=True)
    args.timings.write_text(json.dumps(timings, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

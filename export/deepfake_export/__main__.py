"""``python -m deepfake_export``: build every network's ONNX file, checked.

Without ``--checkpoints`` the four detectors get seeded demo weights and are
marked ``weights: demo`` in their configs, ONNX metadata and the export
manifest. ``--visual-model SOURCE`` serves a pretrained Hugging Face image
classifier as the visual detector instead, ``--audio-model SOURCE`` a
pretrained waveform classifier as the audio detector
(:mod:`deepfake_export.pretrained`). MTCNN uses facenet-pytorch's pretrained weights unless the checkpoint
folder holds ``pnet``, ``rnet`` or ``onet`` files, which replace them. ``--quantize
int8`` serves the INT8 CPU profile of the networks that have one
(:mod:`deepfake_export.quantize`), checked against the FP32 graph. Work whose
inputs (code, weights, precision) did not change is skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from pathlib import Path

import torch

import deepfake_contract as contract
import deepfake_export
from deepfake_export.models import BUILDERS
from deepfake_export.onnx_export import ParityError, check_parity, export_onnx, publish
from deepfake_export.pretrained import PretrainedDetector, load_audio, load_visual
from deepfake_export.quantize import (
    INT8_PROFILES,
    NOT_OFFERED,
    QUANTIZE_CHOICES,
    QuantizationError,
    calibration_inputs,
    check_drift,
    default_images,
    folder_fingerprint,
    folder_images,
    held_out,
    quantize_int8,
)
from deepfake_export.weights import (
    MTCNN_STAGES,
    CheckpointError,
    check_checkpoint_folder,
    has_checkpoint,
    load_weights,
    sha256_file,
)
from deepfake_serving.model_configs import provenance_from_manifest, write_detector_configs

log = logging.getLogger("deepfake_export")


def onnx_path(repository: Path, name: str) -> Path:
    """Where a network's ONNX file lives in the model repository.

    MTCNN's stages are run in-process by the face_detector Python model, so
    their ONNX files live beside its model.py.
    """
    if name in MTCNN_STAGES:
        return repository / contract.FACE_DETECTOR.name / "1" / f"{name}.onnx"
    return repository / name / "1" / "model.onnx"


def code_fingerprint() -> str:
    """Hash of the code that shapes the exported graphs: a change re-exports."""
    digest = hashlib.sha256(torch.__version__.encode())
    package = Path(deepfake_export.__file__).parent
    sources = [
        package / name for name in ("models.py", "onnx_export.py", "weights.py", "pretrained.py", "quantize.py")
    ] + [Path(contract.networks.__file__)]
    for path in sources:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    """Export the networks named by ``argv`` (all by default) and write their configs.

    Returns the exit status: 0 on success, 2 when a checkpoint is missing or does
    not fit, when an ONNX file fails the parity check, or when an INT8 graph
    drifts past its profile's limit (the served file is then left as it was).
    """
    args = _arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    torch.set_num_threads(max(1, torch.get_num_threads()))

    manifest = json.loads(args.manifest.read_text()) if args.manifest.is_file() else {}
    fingerprint = code_fingerprint()
    if args.check:
        return _check(args.repository, manifest, fingerprint, args.only or list(BUILDERS))
    return _export(args, manifest, fingerprint)


def _export(args: argparse.Namespace, manifest: dict, fingerprint: str) -> int:
    """Export what ``args`` asks for, recording it in ``manifest`` (written back whatever happens)."""
    names = _export_order(args)
    try:
        pretrained: dict[str, PretrainedDetector] = {}
        if args.visual_model:
            pretrained[contract.VISUAL_DETECTOR.name] = load_visual(args.visual_model, args.fake_label)
        if args.audio_model:
            pretrained[contract.AUDIO_DETECTOR.name] = load_audio(args.audio_model, args.audio_fake_label)
        if args.checkpoints is not None:
            check_checkpoint_folder(args.checkpoints)
        for name in names:
            spec = contract.by_name(name)
            parameters: dict[str, str] = {}
            path = onnx_path(args.repository, name)
            if (
                args.checkpoints is not None
                and name not in pretrained
                and name not in MTCNN_STAGES
                and not has_checkpoint(args.checkpoints, name)
                and path.is_file()
            ):
                # A folder of some detectors (one modality trained at a time): the others keep what they serve.
                log.info("%s: no checkpoint in %s; keeps the weights it serves", name, args.checkpoints)
                continue
            if name in pretrained:
                chosen = pretrained[name]
                module, source, parameters = chosen.module, chosen.weights, chosen.parameters()
                if name == contract.AUDIO_DETECTOR.name:
                    spec = contract.audio_detector(parameters["audio_input"])
                log.info(
                    "%s: %s at %s, labels [real, fake] = %s", name, chosen.source, chosen.revision, list(chosen.labels)
                )
            else:
                module = BUILDERS[name]().eval()
                # A detector the folder lacks and nothing serves yet starts as demo.
                folder = args.checkpoints if args.checkpoints and has_checkpoint(args.checkpoints, name) else None
                source = load_weights(module, name, folder if name not in MTCNN_STAGES else args.checkpoints)
            parameters = {**parameters, **_precision(name, args, name in pretrained)}
            previous = manifest.get(name, {})
            if (
                not args.force
                and path.is_file()
                and previous.get("onnx") == str(path)
                and previous.get("onnx_sha256") == sha256_file(path)
                and previous.get("code") == fingerprint
                and previous.get("weights_sha256") == source.sha256
                and previous.get("parameters", {}) == parameters
            ):
                log.info("%s: up to date (%s weights)", name, source.kind)
                continue
            started = time.perf_counter()
            candidate = export_onnx(module, spec, path, source)
            try:
                worst = check_parity(module, spec, candidate)
            except ParityError:
                candidate.unlink(missing_ok=True)
                raise
            drift = None
            if parameters.get("precision") == "int8":
                candidate, drift = _quantized(name, candidate, args)
            publish(candidate, path)
            log.info(
                "%s: exported %s in %.1fs, %s weights, max |ONNX - PyTorch| = %.2e%s",
                name,
                path,
                time.perf_counter() - started,
                source.kind,
                worst,
                "" if drift is None else f"; INT8, max |INT8 - FP32| fake probability {drift:.2e} on held-out inputs",
            )
            if source.is_demo:
                log.warning("%s: DEMO WEIGHTS (seeded random): its scores mean nothing", name)
            manifest[name] = {
                "onnx": str(path),
                "onnx_sha256": sha256_file(path),
                "weights": source.kind,
                "weights_path": source.path,
                "weights_sha256": source.sha256,
                "code": fingerprint,
                "max_abs_diff": worst,
                "parameters": parameters,
            }
            if drift is not None:
                manifest[name]["int8_max_prob_diff"] = drift
            # The config follows its ONNX file at once: a later failure must not leave
            # new weights served under the old config (provenance, preprocessing).
            _write_configs(args.repository, manifest, [name])
    except CheckpointError as error:
        log.error("%s", error)
        return 2
    except (ParityError, QuantizationError) as error:
        log.error("%s; the served model was left as it was", error)
        return 2
    finally:
        args.manifest.parent.mkdir(parents=True, exist_ok=True)
        args.manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    # --only leaves the other detectors' configs as they are.
    _write_configs(args.repository, manifest, names)
    return 0


def _check(repository: Path, manifest: dict, fingerprint: str, names: list[str]) -> int:
    """0 when the networks ``names`` are served as the manifest records and the current code would
    build them, else 2 with one line per stale network and the sources to re-export with."""
    stale = []
    for name in names:
        record, path = manifest.get(name), onnx_path(repository, name)
        if record is None or not path.is_file():
            stale.append(f"{name}: not exported")
        elif record.get("onnx_sha256") != sha256_file(path):
            stale.append(f"{name}: {path} is not the file the export wrote")
        elif record.get("code") != fingerprint:
            stale.append(f"{name}: exported by other code (the networks' code or torch changed since)")
    if not stale:
        log.info("%s serves what the export manifest records, as this code builds it", repository)
        return 0
    for line in stale:
        log.error("%s", line)
    log.error("re-export with the sources of the last export: make export %s", _sources(manifest) or "(demo weights)")
    return 2


def _sources(manifest: dict) -> str:
    """The ``make export`` variables that rebuild what ``manifest`` records (empty for demo weights)."""
    checkpoints = {str(Path(r["weights_path"]).parent) for r in manifest.values() if r.get("weights") == "trained"}
    variables = [f"CHECKPOINTS={folder}" for folder in sorted(checkpoints)]
    for name, variable in (
        (contract.VISUAL_DETECTOR.name, "VISUAL_MODEL"),
        (contract.AUDIO_DETECTOR.name, "AUDIO_MODEL"),
    ):
        source = manifest.get(name, {}).get("parameters", {}).get("weights_source")
        if source:
            variables.append(f"{variable}={source}")
    if any(record.get("parameters", {}).get("precision") == "int8" for record in manifest.values()):
        variables.append("QUANTIZE=int8")
    return " ".join(variables)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    """The command line, checked."""
    parser = argparse.ArgumentParser(prog="python -m deepfake_export", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repository", type=Path, default=Path("model_repository"), help="model repository to write into"
    )
    parser.add_argument(
        "--checkpoints", type=Path, help="directory of trained state dicts (<model>.safetensors or <model>.pt)"
    )
    parser.add_argument(
        "--manifest",
        type=Path,
        default=Path("build/export/manifest.json"),
        help="record of what was exported from what",
    )
    parser.add_argument(
        "--visual-model",
        metavar="SOURCE",
        help="a Hugging Face image classifier to serve as visual_detector: hub id[@revision] or a save_pretrained folder",
    )
    parser.add_argument(
        "--fake-label", metavar="NAME", help="the --visual-model label that means fake, where the labels do not say"
    )
    parser.add_argument(
        "--audio-model",
        metavar="SOURCE",
        help="a Hugging Face waveform classifier (wav2vec2, HuBERT, WavLM) to serve as audio_detector:"
        " hub id[@revision] or a save_pretrained folder",
    )
    parser.add_argument(
        "--audio-fake-label",
        metavar="NAME",
        help="the --audio-model label that means fake, where the labels do not say",
    )
    parser.add_argument(
        "--quantize",
        choices=QUANTIZE_CHOICES,
        default="none",
        help="int8: serve the INT8 CPU profile of the networks that have one (visual_detector), checked"
        " against the FP32 graph; the others stay FP32",
    )
    parser.add_argument(
        "--calibration-images",
        type=Path,
        metavar="DIR",
        help="--quantize int8 calibrates on this folder's images (default: scikit-image's bundled photos)",
    )
    parser.add_argument("--only", nargs="*", choices=sorted(BUILDERS), help="export only these networks")
    parser.add_argument("--force", action="store_true", help="export even if nothing changed")
    parser.add_argument(
        "--check",
        action="store_true",
        help="export nothing: exit 2, naming the stale networks, unless the repository serves what the"
        " manifest records and this code would build (all networks, or those of --only)",
    )
    args = parser.parse_args(argv)
    sources = (
        ("--checkpoints", args.checkpoints),
        ("--visual-model", args.visual_model),
        ("--audio-model", args.audio_model),
        ("--force", args.force),
    )
    named = [flag for flag, value in sources if value]
    if args.check and (named or args.quantize != "none"):
        parser.error(f"--check exports nothing; it takes no sources ({', '.join(named) or '--quantize'})")
    if args.checkpoints is not None and not args.checkpoints.is_dir():
        parser.error(f"--checkpoints {args.checkpoints} is not a directory")
    if args.calibration_images is not None and not (args.quantize == "int8" and args.calibration_images.is_dir()):
        parser.error(f"--calibration-images {args.calibration_images}: a directory, with --quantize int8")
    return args


def _export_order(args: argparse.Namespace) -> list[str]:
    """The networks to export, in order: with ``--quantize int8``, MTCNN first (it makes the calibration crops)."""
    names = args.only or list(BUILDERS)
    if args.quantize != "int8":
        return names
    for name in sorted(set(names) & set(NOT_OFFERED)):
        log.info("%s: stays FP32 with --quantize int8 (%s)", name, NOT_OFFERED[name])
    return sorted(names, key=lambda n: n not in MTCNN_STAGES)


def _precision(name: str, args: argparse.Namespace, is_pretrained: bool) -> dict[str, str]:
    """The config parameters that say a network is served in INT8 (none for FP32)."""
    if args.quantize != "int8" or name not in INT8_PROFILES:
        return {}
    if is_pretrained:
        log.info("%s: stays FP32 with --quantize int8 (the INT8 profile was measured on the built-in network)", name)
        return {}
    return {
        "precision": "int8",
        "quantization": INT8_PROFILES[name].describe(),
        "calibration": folder_fingerprint(args.calibration_images),
    }


def _quantized(name: str, fp32: Path, args: argparse.Namespace) -> tuple[Path, float]:
    """The INT8 graph of the checked FP32 candidate ``fp32`` (which it replaces), and its drift.

    Raises:
        QuantizationError: the INT8 probabilities drift past the profile's
            ``max_prob_diff``; both candidates are removed, the served file stays.
    """
    profile = INT8_PROFILES[name]
    mtcnn = onnx_path(args.repository, MTCNN_STAGES[0]).parent
    missing = [stage for stage in MTCNN_STAGES if not (mtcnn / f"{stage}.onnx").is_file()]
    if missing:
        fp32.unlink(missing_ok=True)
        raise QuantizationError(
            f"{name}: INT8 calibration needs the served MTCNN, but {', '.join(missing)}.onnx are missing in"
            f" {mtcnn}; export them too (leave out --only, or add {' '.join(missing)})"
        )
    images = folder_images(args.calibration_images) if args.calibration_images else default_images()
    calibration = calibration_inputs(name, images, mtcnn)
    int8 = fp32.with_name(f"{fp32.name.removesuffix('.onnx.tmp')}.int8.onnx.tmp")
    try:
        quantize_int8(fp32, int8, profile, calibration)
        drift = check_drift(name, fp32, int8, held_out(calibration), profile)
    except BaseException:
        int8.unlink(missing_ok=True)
        raise
    finally:
        fp32.unlink(missing_ok=True)
    log.info("%s: INT8 from %d calibration inputs (%s)", name, len(calibration), profile.describe())
    return int8, drift


def _write_configs(repository: Path, manifest: dict, names: list[str]) -> None:
    """Write the configs of the detectors in ``names`` from what the manifest says they were built from."""
    provenance, parameters = provenance_from_manifest(manifest)
    for path in write_detector_configs(repository, provenance, parameters, only=names):
        log.info("wrote %s", path)


if __name__ == "__main__":
    sys.exit(main())

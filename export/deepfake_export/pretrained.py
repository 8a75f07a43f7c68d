"""Pretrained Hugging Face classifiers as the served visual and audio detectors.

``--visual-model SOURCE`` (an image classifier) and ``--audio-model SOURCE``
(a waveform classifier of the wav2vec2 / HuBERT / WavLM family) each name a
hub model (``owner/name``, optionally ``owner/name@revision``) or a local
folder written by ``save_pretrained``. It is loaded with ``transformers``' own
``from_pretrained`` (on a networked machine into the usual Hugging Face cache;
nothing is downloaded at serving time) and becomes ``visual_detector`` or
``audio_detector`` under the same contract as the project's own network:

* the fake class is found from ``config.id2label``, never guessed, and the
  exported ``logits`` are always ``[real, fake]`` whatever the model's order;
* the preprocessing is the model's processor's, translated into
  :class:`~deepfake_serving.visual_preprocessing.VisualPreprocessing` (images)
  or :class:`~deepfake_serving.audio_pipeline.AudioInput` (audio) and checked
  against the processor's own output before anything is written; an option
  that cannot be reproduced is refused by name.

Every problem is a :class:`SourceError` with one line naming it; the export
then stops and the served model stays as it was.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepfake_contract import AUDIO_INPUTS
from deepfake_export.weights import CheckpointError, WeightsSource, sha256_file
from deepfake_serving.audio import SAMPLE_RATE
from deepfake_serving.audio_pipeline import AudioInput
from deepfake_serving.visual_preprocessing import INPUT_HW, VisualPreprocessing

#: Label words that mark the fake class (case-insensitive, whole label or a word of it).
FAKE_WORDS = ("fake", "deepfake", "spoof", "synthetic", "manipulated", "ai-generated", "ai_generated")
#: Processor options reproduced by VisualPreprocessing; another ``do_*`` option that is on is refused.
_HONOURED = {"do_resize", "do_rescale", "do_normalize", "do_center_crop", "do_convert_rgb"}
#: The largest difference allowed between the processor's pixel_values and ours.
PREPROCESSING_TOLERANCE = 1e-5
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class SourceError(CheckpointError):
    """A model source that cannot be served: missing, unreachable, not an image classifier, or ambiguous."""


@dataclass(frozen=True)
class PretrainedDetector:
    """What the export needs from a pretrained source."""

    module: nn.Module  # the detector's input batch -> logits [B, 2] as [real, fake]
    preprocessing: VisualPreprocessing | AudioInput
    weights: WeightsSource
    source: str  # as the user gave it
    revision: str  # the resolved commit, or "local"
    labels: tuple[str, str]  # (real label, fake label) as the model names them

    def parameters(self) -> dict[str, str]:
        """The config parameters that say where the model came from and how its input is prepared."""
        return {
            "weights_source": self.source,
            "weights_revision": self.revision,
            "labels": ",".join(self.labels),
            **self.preprocessing.to_parameters(),
        }


class TwoClassLogits(nn.Module):
    """A ``transformers`` classifier whose logits are reordered to [real, fake]."""

    def __init__(self, model: nn.Module, real: int, fake: int) -> None:
        """Wrap ``model``; ``real`` and ``fake`` are its class indices."""
        super().__init__()
        self.model = model
        self.input_name = model.main_input_name  # pixel_values, input_values
        self.register_buffer("order", torch.tensor([real, fake]), persistent=False)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, 2]``: column 0 the real class, column 1 the fake class."""
        return self.model(**{self.input_name: inputs}).logits.index_select(1, self.order)


def parse_source(text: str) -> tuple[str, str | None, bool]:
    """``(name or folder, revision, is_local)`` of a ``--visual-model`` value.

    A hub id is ``name`` or ``owner/name``, so a value with more slashes can only be
    a folder; ``owner/name`` that is not a folder here is looked up on the hub (and
    the error, if it fails there, says it is not a folder either).
    """
    path = Path(text).expanduser()
    name, _, revision = text.partition("@")
    if path.exists() or text.startswith((".", "/", "~")) or name.count("/") > 1:
        return str(path), None, True
    return name, revision or None, False


def fake_class(id2label: dict[int, str], override: str | None = None) -> tuple[int, int]:
    """``(real index, fake index)`` from the model's labels.

    Raises:
        SourceError: not two classes, or no / two labels that say fake (listing them).
    """
    labels = {int(index): str(label) for index, label in id2label.items()}
    listed = ", ".join(f"{i}={label!r}" for i, label in sorted(labels.items()))
    if len(labels) != 2:
        raise SourceError(f"the model has {len(labels)} classes ({listed}); a detector needs exactly two")
    if override is not None:
        matches = [i for i, label in labels.items() if label == override]
        matches = matches or [i for i, label in labels.items() if label.lower() == override.lower()]
        if len(matches) != 1:
            raise SourceError(f"--fake-label {override!r} is not exactly one of the model's labels ({listed})")
    else:
        matches = [i for i, label in labels.items() if _says_fake(label)]
        if len(matches) != 1:
            found = "none of" if not matches else "both of"
            raise SourceError(f"{found} the labels ({listed}) name the fake class; choose it with --fake-label")
    (fake,) = matches
    (real,) = [i for i in labels if i != fake]
    return real, fake


#: A label with one of these words is not taken to say fake ("non-fake", "not_fake"): choose with --fake-label.
_NEGATIONS = {"not", "non", "no", "un", "never"}


def _says_fake(label: str) -> bool:
    words = label.lower().replace("-", " ").replace("_", " ").split()
    if _NEGATIONS & set(words):
        return False
    joined = f" {' '.join(words)} "
    return any(word in FAKE_WORDS for word in words) or " ai generated " in joined


def preprocessing_of(processor: Any) -> VisualPreprocessing:
    """The processor's steps as :class:`VisualPreprocessing`, checked against the processor itself.

    Raises:
        SourceError: naming the option that cannot be honoured, or the difference found.
    """
    options = processor.to_dict()
    name = type(processor).__name__
    refused = sorted(k for k, v in options.items() if k.startswith("do_") and v and k not in _HONOURED)
    if refused:
        raise SourceError(f"{name}: option(s) {', '.join(refused)} cannot be reproduced in face_detector")
    resize, crop = None, None
    if options.get("do_resize"):
        size = dict(options.get("size") or {})
        if {"height", "width"} <= size.keys():
            resize = (int(size["height"]), int(size["width"]))
        elif "shortest_edge" in size:
            edge = int(size["shortest_edge"])
            crop_pct = options.get("crop_pct")
            if crop_pct is not None and edge < 384:
                # ConvNeXt-style: resize to edge / crop_pct, then center-crop to edge.
                resize, crop = (int(edge / crop_pct),) * 2, (edge, edge)
            else:
                resize = (edge, edge)  # face crops are square: the shortest edge is every edge
        else:
            raise SourceError(f"{name}: size {size} cannot be reproduced (need height/width or shortest_edge)")
    if options.get("do_center_crop"):
        size = dict(options.get("crop_size") or {})
        if not {"height", "width"} <= size.keys():
            raise SourceError(f"{name}: crop_size {size} cannot be reproduced (need height/width)")
        crop = (int(size["height"]), int(size["width"]))
    normalize = bool(options.get("do_normalize"))
    if normalize and not {"image_mean", "image_std"} <= options.keys():
        raise SourceError(f"{name}: do_normalize without image_mean and image_std")
    if options.get("resample") is None and resize is not None:
        raise SourceError(f"{name}: do_resize without a resample filter")
    try:
        steps = VisualPreprocessing(
            resize=resize,
            resample=int(options.get("resample", 2)),
            crop=crop,
            rescale=float(options.get("rescale_factor", 1 / 255)) if options.get("do_rescale") else 1.0,
            mean=tuple(float(v) for v in options["image_mean"]) if normalize else (0.0, 0.0, 0.0),  # type: ignore[arg-type]
            std=tuple(float(v) for v in options["image_std"]) if normalize else (1.0, 1.0, 1.0),  # type: ignore[arg-type]
        )
    except ValueError as error:
        raise SourceError(f"{name}: {error} (face_detector's crops are {INPUT_HW[0]}x{INPUT_HW[1]})") from None
    worst = _difference(processor, steps)
    if not worst <= PREPROCESSING_TOLERANCE:
        raise SourceError(f"{name}: its pixel_values differ from face_detector's by {worst:.3g}; not reproducible")
    return steps


def _difference(processor: Any, steps: VisualPreprocessing) -> float:
    crops = np.random.default_rng(0).integers(0, 256, (4, *INPUT_HW, 3), dtype=np.uint8)
    expected = np.asarray(processor(images=list(crops), return_tensors="np")["pixel_values"], np.float32)
    got = steps.apply(crops)
    if expected.shape != got.shape:
        return float("inf")
    return float(np.max(np.abs(expected - got)))


def _weights_file(folder: Path) -> Path | None:
    """The weights file ``from_pretrained`` reads in ``folder``."""
    for name in _WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


#: What a snapshot needs: configs, the processor's and the model's, and the weights.
_SNAPSHOT_FILES = ["*.json", "*.safetensors", "pytorch_model.bin", "*.txt"]


def _hub_snapshot(name: str, revision: str | None, text: str, flag: str, what: str) -> tuple[Path, str]:
    """The local snapshot folder of a hub model and its commit, downloaded into the usual cache if needed.

    The snapshot folder is named after the commit it holds, so the revision
    recorded is the one whose files are loaded and fingerprinted, whatever
    ``main`` points at later.
    """
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id=name, revision=revision, allow_patterns=_SNAPSHOT_FILES))
    except Exception as error:  # noqa: BLE001 - the hub client raises many types; each is one line to the user
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SourceError(
            f"{flag} {text}: cannot load {what} (the hub is unreachable and there is no cached copy?): {reason}; "
            f"nor is it a folder here ({Path(name).absolute()} does not exist)"
        ) from None
    return folder, folder.name


def load_source(text: str, flag: str, what: str, auto_model: Any, auto_processor: Any) -> tuple[Any, Any, Path, str]:
    """``(model, processor, folder, revision)`` of a source, every failure one :class:`SourceError` line."""
    name, revision, local = parse_source(text)
    if local:
        folder, resolved = Path(name), "local"
        if not folder.is_dir():
            raise SourceError(f"{flag} {text}: no such folder")
    else:
        folder, resolved = _hub_snapshot(name, revision, text, flag, what)
    if not (folder / "preprocessor_config.json").is_file():
        raise SourceError(f"{flag} {text}: no preprocessor_config.json (save the processor too)")
    try:
        model = auto_model.from_pretrained(folder).eval()
        processor = auto_processor.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SourceError(f"{flag} {text}: cannot load {what}: {reason}") from None
    return model, processor, folder, resolved


def _detector(
    text: str, flag: str, model: Any, preprocessing: Any, folder: Path, revision: str, fake_label: str | None
) -> PretrainedDetector:
    real, fake = fake_class(model.config.id2label, fake_label)
    weights_path = _weights_file(folder)
    if weights_path is None:
        raise SourceError(f"{flag} {text}: loaded, but its weights file was not found to fingerprint")
    return PretrainedDetector(
        module=TwoClassLogits(model, real, fake).eval(),
        preprocessing=preprocessing,
        weights=WeightsSource(kind="pretrained", path=os.fspath(weights_path), sha256=sha256_file(weights_path)),
        source=text,
        revision=revision,
        labels=(model.config.id2label[real], model.config.id2label[fake]),
    )


def load_visual(text: str, fake_label: str | None = None) -> PretrainedDetector:
    """Load ``--visual-model`` ``text`` as a two-class visual detector.

    Raises:
        SourceError: one line naming what is wrong with the source.
    """
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    flag = "--visual-model"
    model, processor, folder, revision = load_source(
        text, flag, "an image classifier", AutoModelForImageClassification, AutoImageProcessor
    )
    return _detector(text, flag, model, preprocessing_of(processor), folder, revision, fake_label)


#: Samples in one 4 s window at 16 kHz: what every audio detector scores.
WINDOW_SAMPLES = AUDIO_INPUTS["waveform"].dims[0]


def audio_input_of(extractor: Any) -> AudioInput:
    """The feature extractor's steps as :class:`AudioInput`, checked against the extractor itself.

    Raises:
        SourceError: a rate other than 16 kHz, features that are not the waveform
            (a spectrogram extractor), or a difference from its ``input_values``.
    """
    name = type(extractor).__name__
    rate = getattr(extractor, "sampling_rate", None)
    if rate != SAMPLE_RATE:
        raise SourceError(f"{name}: sampling_rate {rate}; audio_preprocess prepares {SAMPLE_RATE} Hz windows")
    steps = AudioInput(kind="waveform", normalize=bool(getattr(extractor, "do_normalize", False)))
    windows = np.random.default_rng(0).uniform(-0.5, 0.5, (3, WINDOW_SAMPLES)).astype(np.float32)
    windows[1] *= 0.01  # a quiet window: normalization must scale it, not leave it
    try:
        expected = extractor(list(windows), sampling_rate=SAMPLE_RATE, return_tensors="np")["input_values"]
    except (KeyError, TypeError, ValueError) as error:
        raise SourceError(f"{name}: does not give input_values for raw 16 kHz windows ({error})") from None
    expected = np.asarray(expected, np.float32)
    if expected.shape != (len(windows), WINDOW_SAMPLES):
        raise SourceError(
            f"{name}: its input_values have shape {list(expected.shape)}, not [windows, {WINDOW_SAMPLES}]:"
            " only raw-waveform models (wav2vec2, HuBERT, WavLM) can be served as audio_detector"
        )
    worst = float(np.max(np.abs(expected - steps.apply(windows))))
    if not worst <= PREPROCESSING_TOLERANCE:
        raise SourceError(f"{name}: its input_values differ from audio_preprocess's by {worst:.3g}; not reproducible")
    return steps


def load_audio(text: str, fake_label: str | None = None) -> PretrainedDetector:
    """Load ``--audio-model`` ``text`` as a two-class audio detector on raw 16 kHz windows.

    Raises:
        SourceError: one line naming what is wrong with the source.
    """
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    flag = "--audio-model"
    model, extractor, folder, revision = load_source(
        text, flag, "an audio classifier", AutoModelForAudioClassification, AutoFeatureExtractor
    )
    if model.main_input_name != "input_values":
        raise SourceError(
            f"{flag} {text}: {type(model).__name__} reads {model.main_input_name}, not the waveform"
            " (input_values); only raw-waveform models (wav2vec2, HuBERT, WavLM) can be served"
        )
    return _detector(text, flag, model, audio_input_of(extractor), folder, revision, fake_label)

"""Fine-tuning a Hugging Face image classifier as the visual detector (``--backbone hf:SOURCE``).

Some of the specification's hub models (``microsoft/resnet-50``,
``google/siglip-base-patch16-224``) are backbones, not detectors: their heads
classify ImageNet or nothing at all. ``--backbone hf:SOURCE`` loads one with
``transformers``' ``from_pretrained`` and a new two-class head (labels
``real`` and ``fake``), trains it on the face crops, normalized exactly as
its own image processor would (the translation the exporter checks and
serves, :func:`deepfake_export.pretrained.preprocessing_of`), and saves the
best epoch with ``save_pretrained`` beside its processor, so that
``make serve VISUAL_MODEL=OUT/visual_detector-hf`` serves it through the
pretrained-model export path, preprocessing included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepfake_export.pretrained import SourceError, load_source, preprocessing_of
from deepfake_serving.visual_preprocessing import VisualPreprocessing

PREFIX = "hf:"
#: What the fine-tuned model's classes are called: the exporter finds the fake one by this name.
LABELS = {0: "real", 1: "fake"}
#: Where the best epoch is saved inside ``--out``.
FOLDER = "visual_detector-hf"


class HubClassifier(nn.Module):
    """A ``transformers`` image classifier with a two-class head: pixel values -> logits [real, fake]."""

    def __init__(self, model: Any, processor: Any, preprocessing: VisualPreprocessing) -> None:
        """Wrap ``model``, which already has its new head."""
        super().__init__()
        self.model = model
        self.processor = processor
        self.preprocessing = preprocessing

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, 2]``."""
        return self.model(pixel_values=pixel_values).logits

    def to_input(self, crops: np.ndarray) -> np.ndarray:
        """uint8 face crops -> the model's pixel values, as its processor (and the server) makes them."""
        return self.preprocessing.apply(np.asarray(crops))

    def save(self, folder: Path) -> None:
        """``save_pretrained`` the model and its processor: what ``--visual-model`` loads."""
        partial = folder.with_name(folder.name + ".tmp")
        self.model.save_pretrained(partial)
        self.processor.save_pretrained(partial)
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        partial.replace(folder)


class _TwoClass:
    """``AutoModelForImageClassification`` whose ``from_pretrained`` swaps in a fresh two-class head."""

    @staticmethod
    def from_pretrained(folder: Path) -> Any:
        from transformers import AutoModelForImageClassification

        return AutoModelForImageClassification.from_pretrained(
            folder,
            num_labels=len(LABELS),
            id2label=LABELS,
            label2id={v: k for k, v in LABELS.items()},
            ignore_mismatched_sizes=True,  # the old head (1000 ImageNet classes, or none) is replaced
        )


def load(backbone: str) -> HubClassifier:
    """The classifier named by ``--backbone hf:SOURCE`` (hub id[@revision] or a save_pretrained folder).

    Raises:
        SourceError: one line naming what is wrong with the source or its processor.
    """
    from transformers import AutoImageProcessor

    text = backbone.removeprefix(PREFIX)
    model, processor, _, _ = load_source(text, "--backbone hf:", "an image classifier", _TwoClass, AutoImageProcessor)
    return HubClassifier(model.train(), processor, preprocessing_of(processor))


__all__ = ["FOLDER", "LABELS", "PREFIX", "HubClassifier", "SourceError", "load"]

"""How a face crop becomes the visual detector's input, as that detector was trained.

The project's own detector (EfficientNet-B4) takes the 224x224 crop as it is,
scaled to [0, 1] and ImageNet-normalized. A pretrained Hugging Face detector
expects what its image processor does: its own resize (size and PIL
resampling filter), maybe a center crop, its rescale factor and its mean/std
(0.5/0.5 for most ViT fine-tunes). The export reads those from the model's
processor, checks that :meth:`VisualPreprocessing.apply` reproduces the
processor's ``pixel_values`` on sample crops, and writes them into the
``visual_detector`` config's ``preprocess_*`` parameters; ``face_detector`` and
``detect_video`` read them from there (:func:`served_preprocessing`), so the
crop is normalized the way ``transformers`` would normalize it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from deepfake_contract import VISUAL_DETECTOR
from deepfake_serving.provenance import config_parameters

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The visual detector's input size (height, width), from the contract.
INPUT_HW = (VISUAL_DETECTOR.input.dims[1], VISUAL_DETECTOR.input.dims[2])
_PREFIX = "preprocess_"


def _pair(text: str) -> tuple[int, int] | None:
    if not text:
        return None
    height, width = (int(part) for part in text.split(","))
    return height, width


def _triple(text: str) -> tuple[float, float, float]:
    a, b, c = (float(part) for part in text.split(","))
    return a, b, c


@dataclass(frozen=True)
class VisualPreprocessing:
    """The steps from a uint8 RGB crop to the visual detector's float input.

    Attributes:
        resize: (height, width) the crop is resized to with PIL, or None to keep it.
        resample: the PIL resampling filter of that resize (2 bilinear, 3 bicubic).
        crop: (height, width) of a center crop after the resize, or None.
        rescale: the factor pixel values are multiplied by (1/255 maps to [0, 1]).
        mean: per-channel mean subtracted after rescaling.
        std: per-channel standard deviation divided by after that.
    """

    resize: tuple[int, int] | None = None
    resample: int = 2
    crop: tuple[int, int] | None = None
    rescale: float = 1 / 255
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        final = self.crop or self.resize
        if final is not None and tuple(final) != INPUT_HW:
            raise ValueError(f"preprocessing ends at {final[0]}x{final[1]}; visual_detector takes {INPUT_HW}")
        if min(self.std) <= 0:
            raise ValueError("std must be positive")

    def apply(self, crops: np.ndarray) -> np.ndarray:
        """uint8 ``[N, h, w, 3]`` RGB crops -> float32 ``[N, 3, H, W]`` detector input."""
        if crops.ndim != 4 or crops.shape[3] != 3:
            raise ValueError(f"expected [N, h, w, 3] RGB crops, got {crops.shape}")
        images = [self._geometry(crop) for crop in crops]
        x = np.stack(images).astype(np.float32) if images else np.empty((0, *INPUT_HW, 3), np.float32)
        # Dividing by 1/rescale keeps the default (1/255) bit-identical to x / 255.
        x = (x / np.float32(1 / self.rescale) - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def _geometry(self, crop: np.ndarray) -> np.ndarray:
        image = crop
        if self.resize is not None and image.shape[:2] != self.resize:
            height, width = self.resize
            image = np.asarray(Image.fromarray(image).resize((width, height), resample=self.resample))
        if self.crop is not None:
            height, width = self.crop
            top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
            image = image[top : top + height, left : left + width]
        if image.shape[:2] != INPUT_HW:
            raise ValueError(f"a {crop.shape[0]}x{crop.shape[1]} crop became {image.shape[:2]}, not {INPUT_HW}")
        return image

    def to_parameters(self) -> dict[str, str]:
        """The ``visual_detector`` config parameters that carry these steps."""
        return {
            f"{_PREFIX}resize": ",".join(map(str, self.resize)) if self.resize else "",
            f"{_PREFIX}resample": str(self.resample),
            f"{_PREFIX}crop": ",".join(map(str, self.crop)) if self.crop else "",
            f"{_PREFIX}rescale": repr(self.rescale),
            f"{_PREFIX}mean": ",".join(repr(v) for v in self.mean),
            f"{_PREFIX}std": ",".join(repr(v) for v in self.std),
        }

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, str]) -> VisualPreprocessing:
        """The steps a config's ``preprocess_*`` parameters describe; none: the ImageNet default."""
        if not any(key.startswith(_PREFIX) for key in parameters):
            return cls()
        p = {key[len(_PREFIX) :]: value for key, value in parameters.items() if key.startswith(_PREFIX)}
        return cls(
            resize=_pair(p["resize"]),
            resample=int(p["resample"]),
            crop=_pair(p["crop"]),
            rescale=float(p["rescale"]),
            mean=_triple(p["mean"]),
            std=_triple(p["std"]),
        )


#: What the project's own visual detector was trained with.
IMAGENET = VisualPreprocessing()


def served_preprocessing(repository: Path) -> VisualPreprocessing:
    """The preprocessing of the visual detector served from ``repository``.

    Raises:
        OSError, text_format.ParseError, KeyError, ValueError: the config cannot be
            read or its parameters are incomplete; a model must not load then, since
            a silently wrong normalization would give confident wrong scores.
    """
    return VisualPreprocessing.from_parameters(config_parameters(repository, VISUAL_DETECTOR.name))

"""How per-model probabilities become one verdict.

Image rule (``detect_image``): each face's score is a weighted mean of its
visual and forensic fake probabilities (weights are the ``image_fusion``
config parameters, default 0.7 visual / 0.3 forensic: the visual detector is
the stronger model in spec section 9's table, 88-92% vs 75-80%); the image's
``FAKE_PROB`` is the maximum over faces, because one manipulated face makes
the image a deepfake however many real faces surround it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ImageFusion:
    visual_weight: float = 0.7
    forensic_weight: float = 0.3

    def __post_init__(self) -> None:
        if self.visual_weight < 0 or self.forensic_weight < 0 or self.visual_weight + self.forensic_weight <= 0:
            raise ValueError("fusion weights must be >= 0 and not both 0")

    def face_scores(self, visual: np.ndarray, forensic: np.ndarray) -> np.ndarray:
        total = self.visual_weight + self.forensic_weight
        return (self.visual_weight * visual + self.forensic_weight * forensic) / total

    def image_score(self, visual: np.ndarray, forensic: np.ndarray) -> float:
        """``FAKE_PROB`` of an image from its faces' fake probabilities."""
        if len(visual) == 0:
            raise ValueError("an image is scored from at least one region")
        return float(np.max(self.face_scores(visual, forensic)))

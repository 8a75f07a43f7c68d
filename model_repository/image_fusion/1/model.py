"""image_fusion: per-face probabilities -> the image's verdict (deepfake_serving.fusion)."""

from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from deepfake_contract import FORENSIC_CLASSIFIER, VISUAL_DETECTOR
from deepfake_contract import IMAGE_FUSION as SPEC
from deepfake_serving import validation as check
from deepfake_serving.fusion import DecisionThreshold, ImageFusion
from deepfake_serving.provenance import REAL_KINDS, demo_models_tensor, describe, weights_kind
from deepfake_serving.triton_python import model_parameters, respond, settings_from


class TritonPythonModel:
    """Fuse one image's per-face scores per request."""

    def initialize(self, args):
        """Read the weights from the config parameters; note whether a detector is demo."""
        self.threshold = DecisionThreshold.from_parameters(model_parameters(args))
        pb_utils.Logger.log_info(f"image_fusion: THRESHOLD {self.threshold.value} ({self.threshold.source})")
        repository = Path(args["model_repository"]).parent
        kinds = {name: weights_kind(repository, name) for name in (VISUAL_DETECTOR.name, FORENSIC_CLASSIFIER.name)}
        real = {name: kind in REAL_KINDS for name, kind in kinds.items()}
        # FAKE_PROB uses only detectors with real weights when there is one; DEMO_WEIGHTS
        # is true when the answer still rests on a demo detector.
        self.fusion = settings_from(ImageFusion, model_parameters(args)).trusting(
            real[VISUAL_DETECTOR.name], real[FORENSIC_CLASSIFIER.name]
        )
        used = [n for n, w in zip(kinds, (self.fusion.visual_weight, self.fusion.forensic_weight), strict=True) if w]
        self.demo_models = [name for name in used if not real[name]]
        for name in kinds:
            pb_utils.Logger.log_info(f"image_fusion: serves {describe(repository, name)}")
        pb_utils.Logger.log_info(f"image_fusion: FAKE_PROB from {used}")
        if self.demo_models:
            pb_utils.Logger.log_warn("image_fusion: detect_image answers DEMO_WEIGHTS=true (untrained detectors)")

    def execute(self, requests):
        """One response per request."""
        return respond(pb_utils, SPEC, requests, self._fuse)

    def _fuse(self, request):
        def get(name):
            return pb_utils.get_input_tensor_by_name(request, name).as_numpy()

        visual_probs = check.probabilities("VISUAL_PROBS", get("VISUAL_PROBS"))
        forensic_probs = check.probabilities("FORENSIC_PROBS", get("FORENSIC_PROBS"))
        features = check.finite("FORENSIC_FEATURES", get("FORENSIC_FEATURES"))
        check.same_length(
            {"VISUAL_PROBS": visual_probs, "FORENSIC_PROBS": forensic_probs, "FORENSIC_FEATURES": features}, minimum=1
        )
        visual, forensic = visual_probs[:, 1], forensic_probs[:, 1]
        return {
            "VISUAL_FAKE_PROB": visual.astype(np.float32),
            "FORENSIC_FAKE_PROB": forensic.astype(np.float32),
            "FAKE_PROB": np.array([self.fusion.image_score(visual, forensic)], dtype=np.float32),
            # Passed through: see the note in detect_image/config.pbtxt.
            "FORENSIC_FEATURES": features,
            "DEMO_WEIGHTS": np.array([bool(self.demo_models)]),
            "DEMO_MODELS": demo_models_tensor(self.demo_models),
            "THRESHOLD": self.threshold.tensor(),
        }

"""image_fusion: per-face probabilities -> the image's verdict (deepfake_serving.fusion)."""

from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from deepfake_serving import validation as check
from deepfake_serving.fusion import ImageFusion
from deepfake_serving.provenance import any_demo
from deepfake_serving.triton_python import model_parameters, respond


class TritonPythonModel:
    def initialize(self, args):
        p = model_parameters(args)
        self.fusion = ImageFusion(float(p["visual_weight"]), float(p["forensic_weight"]))
        repository = Path(args["model_repository"]).parent
        self.demo = any_demo(repository, ["visual_detector", "forensic_classifier"])
        if self.demo:
            pb_utils.Logger.log_warn("image_fusion: detect_image answers DEMO_WEIGHTS=true (untrained detectors)")

    def execute(self, requests):
        return respond(pb_utils, "image_fusion", requests, self._fuse)

    def _fuse(self, request):
        def get(name):
            return pb_utils.get_input_tensor_by_name(request, name).as_numpy()

        visual_probs = check.probabilities("VISUAL_PROBS", get("VISUAL_PROBS"))
        forensic_probs = check.probabilities("FORENSIC_PROBS", get("FORENSIC_PROBS"))
        features = check.finite("FEATURES", get("FEATURES"))
        check.same_length(
            {"VISUAL_PROBS": visual_probs, "FORENSIC_PROBS": forensic_probs, "FEATURES": features}, minimum=1
        )
        visual, forensic = visual_probs[:, 1], forensic_probs[:, 1]
        return {
            "VISUAL_FAKE_PROB": visual.astype(np.float32),
            "FORENSIC_FAKE_PROB": forensic.astype(np.float32),
            "FAKE_PROB": np.array([self.fusion.image_score(visual, forensic)], dtype=np.float32),
            # Passed through: see the note in detect_image/config.pbtxt.
            "FORENSIC_FEATURES": features,
            "DEMO_WEIGHTS": np.array([self.demo]),
        }

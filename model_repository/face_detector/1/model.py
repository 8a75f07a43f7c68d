"""face_detector: encoded image -> faces (MTCNN), crops and visual-detector input.

The work lives in deepfake_serving.image_pipeline; this file only adapts it to
Triton. MTCNN's three ONNX stages sit next to this file (written by export).
"""

from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from deepfake_contract import FACE_DETECTOR as SPEC
from deepfake_serving.image_pipeline import FaceDetector, FaceSettings
from deepfake_serving.triton_python import model_parameters, respond, settings_from, single_bytes, work_budget
from deepfake_serving.visual_preprocessing import served_preprocessing


class TritonPythonModel:
    """MTCNN on one image per request."""

    def initialize(self, args):
        """Load the three MTCNN stages with the settings of the config parameters."""
        self.parameters = p = model_parameters(args)
        settings = settings_from(FaceSettings, p)
        version_dir = Path(args["model_repository"]) / args["model_version"]
        # Crops are normalized for the visual detector actually served (its config says how).
        preprocessing = served_preprocessing(Path(args["model_repository"]).parent)
        pb_utils.Logger.log_info(f"face_detector: visual_detector input prepared as {preprocessing}")
        self.detector = FaceDetector(
            version_dir, settings, threads=1, workers=int(p["mtcnn_workers"]), preprocessing=preprocessing
        )
        self.detector.warm_up()  # the first request pays no first-call costs (deepfake_serving.warmup)

    def execute(self, requests):
        """One response per request."""
        return respond(pb_utils, SPEC, requests, self._detect)

    def _detect(self, request):
        budget = work_budget(request, SPEC.IMAGE.name, self.parameters)
        faces = self.detector.detect(single_bytes(pb_utils, request, SPEC.IMAGE.name), budget=budget)
        return {
            "FACE_BOXES": faces.boxes,
            "FACE_CONFIDENCE": faces.confidence,
            "FACE_CROPS": faces.crops,
            "VISUAL_INPUT": faces.visual_input,
            "FACE_FOUND": np.array([faces.face_found]),
            "FACES_DROPPED": np.array([faces.faces_dropped], dtype=np.int32),
            "FACE_BLOCKING": faces.blocking,
        }

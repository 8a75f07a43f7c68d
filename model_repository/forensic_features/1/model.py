"""forensic_features: the 12 forensic features of each face crop (deepfake_serving.forensics)."""

import numpy as np
import triton_python_backend_utils as pb_utils

from deepfake_contract import FORENSIC_FEATURES as SPEC
from deepfake_serving import validation as check
from deepfake_serving.errors import RequestError
from deepfake_serving.forensics import extract_batch
from deepfake_serving.triton_python import model_parameters, respond


class TritonPythonModel:
    """Features of one image's face crops per request."""

    def initialize(self, args):
        """Read the worker count and the crop limit from the config parameters."""
        p = model_parameters(args)
        self.workers = int(p["denoise_workers"])
        self.max_crops = int(p["max_crops"])

    def execute(self, requests):
        """One response per request."""
        return respond(pb_utils, SPEC, requests, self._features)

    def _features(self, request):
        crops = pb_utils.get_input_tensor_by_name(request, "FACE_CROPS").as_numpy()
        # About 75 ms of CPU per crop: an unbounded count is a denial of service.
        check.at_most("FACE_CROPS", len(crops), self.max_crops, "crops")
        try:
            features = extract_batch(crops, workers=self.workers)
        except ValueError as error:
            raise RequestError("FACE_CROPS", str(error)) from error
        return {"FORENSIC_FEATURES": features.astype(np.float32)}

"""forensic_features: the 12 forensic features of each face crop (deepfake_serving.forensics).

Feature 12 comes from the optional FACE_BLOCKING input when it is sent
(face_detector measures it on each face region at the image's own pixel grid),
and from the crop itself otherwise.
"""

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
        blocking = pb_utils.get_input_tensor_by_name(request, "FACE_BLOCKING")
        if blocking is not None:
            blocking = check.finite("FACE_BLOCKING", blocking.as_numpy())
            check.same_length({"FACE_BLOCKING": blocking, "FACE_CROPS": crops})
        try:
            features = extract_batch(crops, workers=self.workers, blocking=blocking)
        except ValueError as error:
            raise RequestError("FACE_CROPS", str(error)) from error
        return {"FORENSIC_FEATURES": features.astype(np.float32)}

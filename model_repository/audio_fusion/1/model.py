"""audio_fusion: per-window probabilities -> the recording's verdict (deepfake_serving.fusion)."""

from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from deepfake_serving import validation as check
from deepfake_serving.fusion import AudioAggregation
from deepfake_serving.provenance import any_demo
from deepfake_serving.triton_python import model_parameters, respond


class TritonPythonModel:
    def initialize(self, args):
        p = model_parameters(args)
        self.aggregation = AudioAggregation(float(p["top_fraction"]), float(p["silent_score"]))
        self.demo = any_demo(Path(args["model_repository"]).parent, ["audio_detector"])
        if self.demo:
            pb_utils.Logger.log_warn("audio_fusion: detect_audio answers DEMO_WEIGHTS=true (untrained detector)")

    def execute(self, requests):
        return respond(pb_utils, "audio_fusion", requests, self._fuse)

    def _fuse(self, request):
        def get(name):
            return pb_utils.get_input_tensor_by_name(request, name).as_numpy()

        probs = check.probabilities("PROBS", get("PROBS"))
        starts = check.finite("STARTS", get("STARTS"))
        silent = get("SILENT_IN").astype(bool)
        check.same_length({"PROBS": probs, "STARTS": starts, "SILENT_IN": silent}, minimum=1)
        seconds = check.finite("SECONDS", get("SECONDS"))
        window_fake = probs[:, 1].astype(np.float32)
        score, all_silent = self.aggregation.score(window_fake, silent)
        return {
            "WINDOW_FAKE_PROB": window_fake,
            "WINDOW_START_S": starts.astype(np.float32),
            "WINDOW_SILENT": silent,
            "FAKE_PROB": np.array([score], dtype=np.float32),
            "REAL_SECONDS": seconds.astype(np.float32),
            "ALL_SILENT": np.array([all_silent]),
            "DEMO_WEIGHTS": np.array([self.demo]),
        }

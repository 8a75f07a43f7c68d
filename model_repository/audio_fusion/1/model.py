"""audio_fusion: per-window probabilities -> the recording's verdict (deepfake_serving.fusion)."""

from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from deepfake_contract import AUDIO_DETECTOR
from deepfake_contract import AUDIO_FUSION as SPEC
from deepfake_serving import validation as check
from deepfake_serving.fusion import AudioAggregation, DecisionThreshold
from deepfake_serving.provenance import demo_models, demo_models_tensor, describe
from deepfake_serving.triton_python import model_parameters, respond, settings_from


class TritonPythonModel:
    """Aggregate one recording's window scores per request."""

    def initialize(self, args):
        """Read the rule from the config parameters; note whether the detector is demo."""
        self.threshold = DecisionThreshold.from_parameters(model_parameters(args))
        pb_utils.Logger.log_info(f"audio_fusion: THRESHOLD {self.threshold.value} ({self.threshold.source})")
        self.aggregation = settings_from(AudioAggregation, model_parameters(args))
        repository = Path(args["model_repository"]).parent
        self.demo_models = demo_models(repository, [AUDIO_DETECTOR.name])
        pb_utils.Logger.log_info(f"audio_fusion: serves {describe(repository, AUDIO_DETECTOR.name)}")
        if self.demo_models:
            pb_utils.Logger.log_warn("audio_fusion: detect_audio answers DEMO_WEIGHTS=true (untrained detector)")

    def execute(self, requests):
        """One response per request."""
        return respond(pb_utils, SPEC, requests, self._fuse)

    def _fuse(self, request):
        def get(name):
            return pb_utils.get_input_tensor_by_name(request, name).as_numpy()

        probs = check.probabilities("WINDOW_PROBS", get("WINDOW_PROBS"))
        silent = get("WINDOW_SILENT").astype(bool)
        check.same_length({"WINDOW_PROBS": probs, "WINDOW_SILENT": silent}, minimum=1)
        window_fake = probs[:, 1].astype(np.float32)
        score, all_silent = self.aggregation.score(window_fake, silent)
        return {
            "WINDOW_FAKE_PROB": window_fake,
            # Passed through: see the note in config.pbtxt.
            "WINDOW_SILENT": silent,
            "FAKE_PROB": np.array([score], dtype=np.float32),
            "AUDIO_SILENT": np.array([all_silent]),
            "DEMO_WEIGHTS": np.array([bool(self.demo_models)]),
            "DEMO_MODELS": demo_models_tensor(self.demo_models),
            "THRESHOLD": self.threshold.tensor(),
        }

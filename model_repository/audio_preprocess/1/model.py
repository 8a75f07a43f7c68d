"""audio_preprocess: encoded audio -> per-window mels (deepfake_serving.audio_pipeline)."""

import numpy as np
import triton_python_backend_utils as pb_utils

from deepfake_contract import AUDIO_PREPROCESS as SPEC
from deepfake_serving.audio_pipeline import AudioLimits, prepare_audio
from deepfake_serving.triton_python import model_parameters, respond, settings_from, single_bytes, work_budget


class TritonPythonModel:
    """Decode, window and mel one recording per request."""

    def initialize(self, args):
        """Read the limits from the config parameters."""
        self.parameters = model_parameters(args)
        self.limits = settings_from(AudioLimits, self.parameters)

    def execute(self, requests):
        """One response per request."""
        return respond(pb_utils, SPEC, requests, self._prepare)

    def _prepare(self, request):
        budget = work_budget(request, SPEC.AUDIO.name, self.parameters)
        windows = prepare_audio(single_bytes(pb_utils, request, SPEC.AUDIO.name), self.limits, budget=budget)
        return {
            "MEL": windows.mel,
            "WINDOW_START_S": windows.starts_s,
            "DURATION_S": np.array([windows.duration_s], dtype=np.float32),
            "WINDOW_SILENT": windows.silent,
        }

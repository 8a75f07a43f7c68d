"""audio_preprocess: encoded audio -> per-window mels (deepfake_serving.audio_pipeline)."""

import numpy as np
import triton_python_backend_utils as pb_utils

from deepfake_serving.audio_pipeline import AudioLimits, prepare_audio
from deepfake_serving.triton_python import model_parameters, respond, single_bytes, work_budget


class TritonPythonModel:
    def initialize(self, args):
        self.parameters = p = model_parameters(args)
        self.limits = AudioLimits(
            max_bytes=int(p["max_bytes"]),
            max_duration_s=float(p["max_duration_s"]),
            max_windows=int(p["max_windows"]),
            silence_peak_dbfs=float(p["silence_peak_dbfs"]),
            max_native_samples=int(p["max_native_samples"]),
            max_rate_changes=int(p["max_rate_changes"]),
        )

    def execute(self, requests):
        return respond(pb_utils, "audio_preprocess", requests, self._prepare)

    def _prepare(self, request):
        budget = work_budget(request, "AUDIO", self.parameters)
        windows = prepare_audio(single_bytes(pb_utils, request, "AUDIO"), self.limits, budget=budget)
        return {
            "MEL": windows.mel,
            "WINDOW_START_S": windows.starts_s,
            "REAL_SECONDS": np.array([windows.real_seconds], dtype=np.float32),
            "SILENT": windows.silent,
        }

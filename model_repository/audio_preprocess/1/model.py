"""audio_preprocess: encoded audio -> the audio detector's input per window (deepfake_serving.audio_pipeline)."""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from deepfake_contract import audio_preprocess
from deepfake_serving import warmup
from deepfake_serving.audio_pipeline import AudioLimits, prepare_audio, served_audio_input
from deepfake_serving.triton_python import model_parameters, respond, settings_from, single_bytes, work_budget


class TritonPythonModel:
    """Decode, window and featurize one recording per request."""

    def initialize(self, args):
        """Read the limits, and what the served audio detector reads per window."""
        self.parameters = model_parameters(args)
        self.limits = settings_from(AudioLimits, self.parameters)
        self.audio_input = served_audio_input(Path(args["model_repository"]).parent)
        self.spec = audio_preprocess(self.audio_input.kind)
        # The export writes both configs together; a hand edit that splits them
        # would fail later inside the ensemble with a shape error naming neither.
        declared = {o["name"]: o["dims"] for o in json.loads(args["model_config"])["output"]}
        expected = [str(d) for d in self.spec.AUDIO_INPUT.dims]
        if [str(d) for d in declared.get("AUDIO_INPUT", [])] != expected:
            raise ValueError(
                f"audio_preprocess: config.pbtxt declares AUDIO_INPUT dims {declared.get('AUDIO_INPUT')}, but the"
                f" served audio_detector takes {self.audio_input.kind} windows {expected}; regenerate the configs"
                " with `python -m deepfake_serving.model_configs`"
            )
        pb_utils.Logger.log_info(f"audio_preprocess: windows prepared as {self.audio_input}")
        # The decoder's and the features' first calls, before the first request (deepfake_serving.warmup).
        prepare_audio(warmup.audio_bytes(), self.limits, audio_input=self.audio_input)

    def execute(self, requests):
        """One response per request."""
        return respond(pb_utils, self.spec, requests, self._prepare)

    def _prepare(self, request):
        name = self.spec.AUDIO.name
        budget = work_budget(request, name, self.parameters)
        data = single_bytes(pb_utils, request, name)
        windows = prepare_audio(data, self.limits, budget=budget, audio_input=self.audio_input)
        return {
            "AUDIO_INPUT": windows.inputs,
            "WINDOW_START_S": windows.starts_s,
            "DURATION_S": np.array([windows.duration_s], dtype=np.float32),
            "WINDOW_SILENT": windows.silent,
        }

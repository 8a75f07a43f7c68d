"""Python-based ``onnxruntime`` backend for Triton builds without the native one.

Triton loads ``<backend-directory>/onnxruntime/model.py`` for every model
whose config says ``backend: "onnxruntime"``. On GPU nodes the NGC container's
native ONNX Runtime backend serves the same configs instead, so this file only
exists on CPU machines (``make serve`` assembles it into build/backends).
"""

import json
from pathlib import Path

import triton_python_backend_utils as pb_utils

from deepfake_serving.onnx_runner import OnnxRunner, SessionSettings, non_finite_inputs


class TritonPythonModel:
    """One ONNX detector served through ONNX Runtime, one session per model instance."""

    def initialize(self, args):
        """Open the ONNX Runtime session with the config's settings and check its tensor names."""
        config = json.loads(args["model_config"])
        self.name = config["name"]
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        filename = config.get("default_model_filename") or "model.onnx"
        path = Path(args["model_repository"]) / args["model_version"] / filename
        self.runner = OnnxRunner(path, SessionSettings.from_parameters(parameters))
        self.inputs = [i["name"] for i in config["input"]]
        self.outputs = [o["name"] for o in config["output"]]
        self.runner.check_signature(self.inputs, self.outputs)
        weights = parameters.get("weights", "unknown")
        if weights == "demo":
            pb_utils.Logger.log_warn(
                f"{self.name}: DEMO WEIGHTS (seeded random, untrained): its scores mean nothing; "
                "export trained checkpoints with `make serve CHECKPOINTS=dir`"
            )
        pb_utils.Logger.log_info(f"{self.name}: ONNX Runtime session on {path} ({weights} weights)")

    def execute(self, requests):
        """Run the batch in one session call; a request holding NaN or Inf gets INVALID_ARG instead."""
        feeds = [
            {name: pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in self.inputs}
            for request in requests
        ]
        # A request with NaN/Inf gets its own error and stays out of the batch.
        problems = [non_finite_inputs(feed) for feed in feeds]
        results = iter(
            self.runner.run_batch([f for f, p in zip(feeds, problems, strict=True) if p is None], self.outputs)
        )
        responses = []
        for problem in problems:
            if problem is None:
                tensors = [pb_utils.Tensor(name, array) for name, array in next(results).items()]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            else:
                error = pb_utils.TritonError(problem, pb_utils.TritonError.INVALID_ARG)
                responses.append(pb_utils.InferenceResponse(error=error))
        return responses

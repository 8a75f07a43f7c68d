"""The shape every Python-backend ``model.py`` here shares.

One response per request; a :class:`~deepfake_serving.errors.RequestError`
becomes that request's ``INVALID_ARG`` error with its message, a request whose
client gave up (:class:`~deepfake_serving.budget.RequestCancelled`) a
``CANCELLED`` error, anything else an ``INTERNAL`` error that points at the
server log (no traceback reaches a client). ``triton_python_backend_utils`` exists only inside Triton's stub, so
it is passed in rather than imported here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from deepfake_serving.budget import DEFAULT_MAX_CPU_S, RequestCancelled, WorkBudget
from deepfake_serving.errors import RequestError

Handler = Callable[[Any], Mapping[str, np.ndarray]]


def model_parameters(args: Mapping[str, str]) -> dict[str, str]:
    """The ``parameters`` of a model's config as plain strings."""
    config = json.loads(args["model_config"])
    return {key: value["string_value"] for key, value in config.get("parameters", {}).items()}


def respond(pb_utils: Any, model_name: str, requests: list, handle: Handler) -> list:
    """Run ``handle`` on each request and wrap its outputs or its error."""
    responses = []
    for request in requests:
        try:
            outputs = handle(request)
        except RequestError as error:
            responses.append(
                pb_utils.InferenceResponse(error=pb_utils.TritonError(str(error), pb_utils.TritonError.INVALID_ARG))
            )
            continue
        except RequestCancelled as error:
            responses.append(
                pb_utils.InferenceResponse(error=pb_utils.TritonError(str(error), pb_utils.TritonError.CANCELLED))
            )
            continue
        except Exception as error:  # noqa: BLE001 - one request's bug must not fail the others
            pb_utils.Logger.log_error(f"{model_name}: {type(error).__name__}: {error}")
            message = f"{model_name}: internal error ({type(error).__name__}); see the server log"
            responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(message)))
            continue
        tensors = [pb_utils.Tensor(name, np.ascontiguousarray(array)) for name, array in outputs.items()]
        responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
    return responses


def work_budget(request: Any, input_name: str, parameters: Mapping[str, str]) -> WorkBudget:
    """The request's :class:`WorkBudget`: the model's ``max_cpu_s`` parameter, stopped by cancellation."""
    return WorkBudget(
        float(parameters.get("max_cpu_s", DEFAULT_MAX_CPU_S)), input_name, is_cancelled=request.is_cancelled
    )


def single_bytes(pb_utils: Any, request: Any, name: str) -> bytes:
    """The one encoded file of a ``TYPE_STRING`` input of shape [1]."""
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    values = tensor.as_numpy().reshape(-1) if tensor is not None else np.empty(0, dtype=object)
    if values.size != 1:
        raise RequestError(name, f"expected exactly one encoded file (shape [1]), got {values.size} elements")
    value = values[0]
    return bytes(value) if not isinstance(value, bytes) else value

"""The shape every Python-backend ``model.py`` here shares.

One response per request; a :class:`~deepfake_serving.errors.RequestError`
becomes that request's ``INVALID_ARG`` error with its message, a request whose
client gave up (:class:`~deepfake_serving.budget.RequestCancelled`) a
``CANCELLED`` error, anything else an ``INTERNAL`` error that points at the
server log (no traceback reaches a client). ``triton_python_backend_utils``
exists only inside Triton's stub, so it is passed in rather than imported here.

Every response is checked against the model's contract
(:mod:`deepfake_contract`): an output that is missing, extra, of another dtype
or another rank is this server's bug, reported as an ``INTERNAL`` error naming
the tensor, never sent on to a client that trusts the contract.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

from deepfake_contract import ModelSpec
from deepfake_serving.budget import DEFAULT_MAX_CPU_S, RequestCancelled, WorkBudget
from deepfake_serving.errors import RequestError

Settings = TypeVar("Settings")

Handler = Callable[[Any], Mapping[str, np.ndarray]]


def model_parameters(args: Mapping[str, str]) -> dict[str, str]:
    """The ``parameters`` of a model's config as plain strings."""
    config = json.loads(args["model_config"])
    return {key: value["string_value"] for key, value in config.get("parameters", {}).items()}


def settings_from(
    cls: type[Settings], parameters: Mapping[str, str], prefix: str = "", defaulted: tuple[str, ...] = ()
) -> Settings:
    """A settings dataclass filled from the config parameters named like its fields.

    Parameter ``prefix + field`` sets ``field``, so a parameter and the field it
    fills have one name. Every field needs its parameter except those named in
    ``defaulted``, which keep their default: a renamed field or a misspelt
    parameter fails the model's load instead of silently using a default.
    ``tuple[int, ...]`` fields take comma-separated integers.
    """
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = prefix + field.name
        if key not in parameters:
            if field.name not in defaulted:
                raise ValueError(f"{cls.__name__}.{field.name} needs the config parameter {key}")
            continue
        text, kind = parameters[key], hints[field.name]
        try:
            if typing.get_origin(kind) is tuple:
                values[field.name] = tuple(int(part) for part in text.split(","))
            elif kind is bool:
                values[field.name] = {"true": True, "false": False}[text.strip().lower()]
            else:
                values[field.name] = kind(text)
        except (KeyError, ValueError) as error:
            raise ValueError(f"config parameter {key}={text!r} is not a valid {kind}") from error
    return cls(**values)


def check_outputs(spec: ModelSpec, outputs: Mapping[str, np.ndarray]) -> None:
    """Raise ``RuntimeError`` naming the first output that breaks ``spec``."""
    expected = set(spec.output_names)
    if set(outputs) != expected:
        missing, extra = sorted(expected - set(outputs)), sorted(set(outputs) - expected)
        raise RuntimeError(f"{spec.name} answered outputs that break its contract: missing {missing}, extra {extra}")
    for tensor in spec.outputs:
        array = outputs[tensor.name]
        if array.dtype != np.dtype(tensor.numpy_dtype) or array.ndim != len(tensor.dims):
            raise RuntimeError(
                f"{spec.name}.{tensor.name} is {array.dtype}{list(array.shape)}, "
                f"the contract says {tensor.numpy_dtype}{list(tensor.dims)}"
            )


def respond(pb_utils: Any, spec: ModelSpec, requests: list, handle: Handler) -> list:
    """Run ``handle`` on each request and wrap its outputs (checked against ``spec``) or its error."""
    model_name = spec.name
    responses = []
    for request in requests:
        try:
            outputs = handle(request)
            check_outputs(spec, outputs)
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

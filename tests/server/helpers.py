"""Raw gRPC requests for the server tests, bypassing the project's client.

The server's own checks are under test here, so tensors go out exactly as
given: any name, dtype and shape, with no client-side validation.
"""

from __future__ import annotations

import numpy as np
import tritonclient.grpc as grpcclient

Tensor = tuple[str, np.ndarray, str]  # input name, data, Triton datatype


def infer(client: grpcclient.InferenceServerClient, model: str, tensors: list[Tensor], timeout_s: float = 120):
    """One request to ``model`` with ``tensors``; raises ``InferenceServerException``."""
    inputs = []
    for name, array, datatype in tensors:
        tensor = grpcclient.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return client.infer(model, inputs, client_timeout=timeout_s)

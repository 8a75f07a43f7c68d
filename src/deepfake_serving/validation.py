"""Value checks on tensors that reach a Python model.

Triton checks each input's dtype and shape against the config before a model
sees it. It cannot check what the values mean: that two inputs describe the
same number of faces or windows, that probabilities are finite and in [0, 1],
or that a count with a cost stays under its limit. The composing models are as
reachable as the ensembles (Triton has no private models), so each one checks
its own inputs and names the input in a :class:`RequestError` rather than
failing with a numpy error or passing NaN on as a score.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from deepfake_serving.errors import RequestError

#: Float32 softmax outputs can exceed 1 by a rounding error.
_PROB_TOLERANCE = 1e-4


def finite(name: str, array: np.ndarray) -> np.ndarray:
    """``array`` if it holds no NaN or Inf."""
    if not np.isfinite(array).all():
        raise RequestError(name, "contains NaN or Inf; send finite values")
    return array


def probabilities(name: str, array: np.ndarray) -> np.ndarray:
    """``array`` if it is ``[n, 2]`` rows of finite probabilities in [0, 1]."""
    if array.ndim != 2 or array.shape[1] != 2:
        raise RequestError(name, f"expected shape [n, 2] of [real_prob, fake_prob] rows, got {list(array.shape)}")
    finite(name, array)
    if (array < -_PROB_TOLERANCE).any() or (array > 1 + _PROB_TOLERANCE).any():
        raise RequestError(name, "probabilities must be in [0, 1]")
    return array


def same_length(arrays: Mapping[str, np.ndarray], *, minimum: int = 0) -> int:
    """The common first dimension of ``arrays``, which must be at least ``minimum``."""
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name} has {length}" for name, length in lengths.items())
        raise RequestError(next(iter(lengths)), f"inputs must have the same number of rows: {described}")
    length = next(iter(lengths.values()))
    if length < minimum:
        raise RequestError(next(iter(lengths)), f"at least {minimum} row(s) required, got {length}")
    return length


def at_most(name: str, count: int, limit: int, what: str) -> int:
    """``count`` if it does not exceed ``limit``."""
    if count > limit:
        raise RequestError(name, f"{count} {what} exceeds the limit of {limit}")
    return count

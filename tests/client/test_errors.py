"""How transport errors become this package's errors (Triton's exact statuses and messages)."""

from __future__ import annotations

import pytest
from tritonclient.utils import InferenceServerException

from deepfake_client import ModelNotFoundError, RetryPolicy, UnavailableError
from deepfake_client._common import map_error


@pytest.mark.parametrize("status", ["StatusCode.NOT_FOUND", "404"])
def test_a_model_that_is_draining_is_retried_elsewhere(status: str) -> None:
    # What Triton 2.51 answers while the supervisor unloads detect_image before
    # a shutdown (recorded from tests/server/test_shutdown.py).
    error = InferenceServerException("Request for unknown model: 'detect_image' has no available versions", status)
    mapped = map_error(error, url="127.0.0.1:8001")
    assert isinstance(mapped, UnavailableError)
    assert RetryPolicy().should_retry(mapped, attempt=1)


@pytest.mark.parametrize("status", ["StatusCode.NOT_FOUND", "404"])
def test_a_model_the_server_does_not_have_is_not_retried(status: str) -> None:
    error = InferenceServerException("Request for unknown model: 'no_such_model' is not found", status)
    mapped = map_error(error, url="127.0.0.1:8001")
    assert isinstance(mapped, ModelNotFoundError)
    assert not RetryPolicy().should_retry(mapped, attempt=1)

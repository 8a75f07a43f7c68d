"""The value checks the Python models run on their inputs."""

from __future__ import annotations

import numpy as np
import pytest

from deepfake_serving import validation as check
from deepfake_serving.errors import RequestError


def test_finite_passes_finite_arrays_through():
    x = np.arange(3, dtype=np.float32)
    assert check.finite("X", x) is x


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_finite_names_the_input(bad):
    with pytest.raises(RequestError, match=r"^X: contains NaN or Inf"):
        check.finite("X", np.array([0.0, bad], np.float32))


def test_probabilities_accept_softmax_rows_with_rounding():
    rows = np.array([[0.25, 0.75], [1.00001, -0.00001]], np.float32)
    assert check.probabilities("P", rows) is rows


@pytest.mark.parametrize(
    "rows, message",
    [
        (np.zeros((2, 3), np.float32), r"expected shape \[n, 2\].*got \[2, 3\]"),
        (np.zeros(2, np.float32), r"got \[2\]"),
        (np.array([[0.5, np.nan]], np.float32), "NaN or Inf"),
        (np.array([[1.5, -0.5]], np.float32), r"must be in \[0, 1\]"),
    ],
)
def test_probabilities_refuse_what_a_softmax_cannot_produce(rows, message):
    with pytest.raises(RequestError, match=message):
        check.probabilities("P", rows)


def test_same_length_returns_the_common_length():
    assert check.same_length({"A": np.zeros(3), "B": np.zeros((3, 2))}, minimum=1) == 3


def test_same_length_lists_every_length_when_they_differ():
    with pytest.raises(RequestError, match="^A: inputs must have the same number of rows: A has 2, B has 3"):
        check.same_length({"A": np.zeros(2), "B": np.zeros(3)})


def test_same_length_enforces_the_minimum():
    with pytest.raises(RequestError, match=r"at least 1 row\(s\) required, got 0"):
        check.same_length({"A": np.zeros(0), "B": np.zeros(0)}, minimum=1)


def test_at_most():
    assert check.at_most("C", 16, 16, "crops") == 16
    with pytest.raises(RequestError, match="^C: 17 crops exceeds the limit of 16$"):
        check.at_most("C", 17, 16, "crops")

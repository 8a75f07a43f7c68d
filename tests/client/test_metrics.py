"""deepfake_client.metrics against scikit-learn (the oracle, used only here), hand-worked cases and brute force."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pytest
from sklearn import metrics as skm

from deepfake_client import metrics


def _datasets() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Seeded label/score sets: continuous, heavily tied, unbalanced both ways, tiny, and unbounded scores."""
    rng = np.random.default_rng(20240611)
    out = []
    for n, p_fake in ((200, 0.5), (57, 0.5), (500, 0.05), (300, 0.93)):
        y = (rng.random(n) < p_fake).astype(int)
        y[:2] = [0, 1]
        s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
        out.append((f"n{n}-p{p_fake}", y, s))
        out.append((f"n{n}-p{p_fake}-ties", y, np.round(s, 1)))
    y = rng.integers(0, 2, 40)
    y[:2] = [0, 1]
    out.append(("coarse-ties", y, rng.integers(0, 3, 40) / 2))
    out.append(("two", np.array([0, 1]), np.array([0.3, 0.3])))
    out.append(("logits", y, rng.normal(2 * y - 1, 3.0)))
    return out


DATASETS = _datasets()
IDS = [name for name, _, _ in DATASETS]


@pytest.mark.parametrize(("y", "s"), [(y, s) for _, y, s in DATASETS], ids=IDS)
def test_roc_auc_matches_sklearn(y: np.ndarray, s: np.ndarray) -> None:
    assert metrics.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize(("y", "s"), [(y, s) for _, y, s in DATASETS], ids=IDS)
def test_roc_curve_matches_sklearn(y: np.ndarray, s: np.ndarray) -> None:
    fpr, tpr, thresholds = metrics.roc_curve(y, s)
    sk_fpr, sk_tpr, sk_thresholds = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_array_equal(thresholds, sk_thresholds)
    np.testing.assert_allclose(fpr, sk_fpr, rtol=0, atol=1e-15)
    np.testing.assert_allclose(tpr, sk_tpr, rtol=0, atol=1e-15)
    assert thresholds[0] == np.inf
    assert fpr.dtype == tpr.dtype == thresholds.dtype == np.float64


@pytest.mark.parametrize(("y", "s"), [(y, s) for _, y, s in DATASETS], ids=IDS)
def test_average_precision_matches_sklearn(y: np.ndarray, s: np.ndarray) -> None:
    assert metrics.average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)


def test_lists_are_accepted() -> None:
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert metrics.average_precision([False, True], [0.2, 0.9]) == 1.0


def test_separated_and_inverted() -> None:
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert metrics.roc_auc(y, s) == 1.0
    assert metrics.roc_auc(y, -s) == 0.0
    assert metrics.roc_auc(1 - y, s) == 0.0
    assert metrics.roc_auc(y, np.full(5, 0.5)) == 0.5
    assert skm.roc_auc_score(y, -s) == 0.0
    assert metrics.average_precision(y, s) == 1.0
    assert metrics.average_precision(y, -s) == pytest.approx(skm.average_precision_score(y, -s), abs=1e-15)
    assert metrics.eer(y, s) == (0.0, 0.8)  # the lowest fake score: no miss, no false alarm
    assert metrics.eer(y, -s) == (1.0, -0.3)  # inverted: every real flagged before any fake


def test_roc_auc_counts_ties_as_half() -> None:
    # Pairs (fake, real): 0.5 vs 0.5 tie (1/2), 0.5 vs 0.2 win, 0.9 wins both: (0.5 + 1 + 2) / 4.
    assert metrics.roc_auc([1, 0, 1, 0], [0.5, 0.5, 0.9, 0.2]) == 0.875


def test_eer_exactly_on_a_point() -> None:
    # Descending: 0.9F 0.8F 0.7R 0.6F 0.4F 0.3R 0.2R 0.1R; at >= 0.6: 1 of 4 reals flagged, 1 of 4 fakes missed.
    y = [1, 1, 0, 1, 1, 0, 0, 0]
    s = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1]
    assert metrics.eer(y, s) == (0.25, 0.6)
    assert metrics.threshold_for(y, s, "eer") == 0.6
    assert metrics.accuracy(y, s, 0.6) == 0.75


def test_eer_interpolated_between_points() -> None:
    # 3 real, 2 fake, descending 0.9F 0.8R 0.7F 0.6R 0.5R. ROC (FPR, FNR): >=0.8 (1/3, 1/2), >=0.7 (1/3, 0).
    # On that segment FPR stays 1/3 while FNR falls: they meet at 1/3. |FPR - FNR| is 1/6 at 0.8, 1/3 at 0.7.
    y = [1, 0, 1, 0, 0]
    s = [0.9, 0.8, 0.7, 0.6, 0.5]
    rate, threshold = metrics.eer(y, s)
    assert rate == 1 / 3
    assert threshold == 0.8
    # Fakes and reals swapped, scores negated: the same curve mirrored, the same EER.
    assert metrics.eer([1 - v for v in y], [-v for v in s])[0] == 1 / 3


def test_eer_tie_between_bracketing_points_takes_the_higher_threshold() -> None:
    # 2 real, 2 fake: 0.9F 0.8R 0.7F 0.6R. (FPR, FNR): >=0.8 (1/2, 1/2) is on the line: EER 1/2 there.
    assert metrics.eer([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.6]) == (0.5, 0.8)
    # 3 real, 2 fake: 0.9F 0.8R 0.7R 0.6F 0.5R. >=0.8 (1/3, 1/2), >=0.7 (2/3, 1/2): FNR 1/2 throughout, the
    # crossing midway, both points 1/6 away from it: the higher threshold is returned.
    assert metrics.eer([1, 0, 0, 1, 0], [0.9, 0.8, 0.7, 0.6, 0.5]) == (0.5, 0.8)


def test_eer_never_returns_the_infinite_start() -> None:
    # 0.9R 0.1F: (FPR, FNR) +inf (0, 1), >=0.9 (1, 1), >=0.1 (1, 0). The crossing (1, 1) is a point.
    assert metrics.eer([0, 1], [0.9, 0.1]) == (1.0, 0.9)
    # 1 real and 2 fakes, the real tied with a fake on top: +inf (0, 1), >=0.9 (1, 1/2). FPR - FNR goes from -1 to
    # +1/2, crossing at 2/3 of the way, at 2/3; only the 0.9 point has a finite threshold.
    assert metrics.eer([0, 1, 1], [0.9, 0.9, 0.1]) == (2 / 3, 0.9)
    # All scores tied: one step from (0, 1) to (1, 0), crossing midway; +inf is as close but is not returned.
    assert metrics.eer([0, 1, 1], [0.5, 0.5, 0.5]) == (0.5, 0.5)


def _rates(y: np.ndarray, s: np.ndarray, threshold: float) -> tuple[float, float]:
    """(FPR, FNR) predicting fake for score >= threshold, by brute force."""
    flagged = s >= threshold
    return float(np.mean(flagged[y == 0])), float(np.mean(~flagged[y == 1]))


def _oracle_eer(y: np.ndarray, s: np.ndarray) -> float:
    """The FPR == FNR crossing of sklearn's ROC polyline, in floats."""
    fpr, tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    gap = fpr - (1 - tpr)
    k = int(np.argmax(gap >= 0))
    if gap[k] == 0:
        return float(fpr[k])
    t = -gap[k - 1] / (gap[k] - gap[k - 1])
    return float(fpr[k - 1] + t * (fpr[k] - fpr[k - 1]))


@pytest.mark.parametrize(("y", "s"), [(y, s) for _, y, s in DATASETS], ids=IDS)
def test_eer_value_and_threshold(y: np.ndarray, s: np.ndarray) -> None:
    rate, threshold = metrics.eer(y, s)
    assert rate == pytest.approx(_oracle_eer(y, s), abs=1e-12)
    assert threshold in set(s.tolist())
    fpr, fnr = _rates(y, s, threshold)
    # One step of the curve: the samples tied at the returned threshold or at the next score below it.
    unique = np.unique(s)
    below = unique[unique < threshold]
    step = s == threshold
    if below.size:
        step |= s == below[-1]
    n_real, n_fake = int(np.sum(y == 0)), int(np.sum(y == 1))
    assert abs(fpr - rate) <= np.sum(step & (y == 0)) / n_real + 1e-12
    assert abs(fnr - rate) <= np.sum(step & (y == 1)) / n_fake + 1e-12


@pytest.mark.parametrize("seed", range(5))
def test_eer_threshold_within_one_sample_without_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 101)
    y[:2] = [0, 1]
    s = rng.normal(y, 1.0)
    rate, threshold = metrics.eer(y, s)
    fpr, fnr = _rates(y, s, threshold)
    n_real, n_fake = int(np.sum(y == 0)), int(np.sum(y == 1))
    assert abs(fpr - rate) <= 1 / n_real + 1e-12
    assert abs(fnr - rate) <= 1 / n_fake + 1e-12
    # Each step moves only one of the rates, so the EER is one of them exactly.
    assert min(abs(fpr - rate), abs(fnr - rate)) < 1e-12


def _brute_thresholds(y: np.ndarray, s: np.ndarray) -> list[tuple[float, float, float]]:
    """(threshold, FPR, TPR) for every candidate: +inf and each score."""
    out = []
    for t in [math.inf, *np.unique(s).tolist()]:
        flagged = s >= t
        out.append((t, np.sum(flagged & (y == 0)) / np.sum(y == 0), np.sum(flagged & (y == 1)) / np.sum(y == 1)))
    return out


@pytest.mark.parametrize(("y", "s"), [(y, s) for _, y, s in DATASETS], ids=IDS)
def test_threshold_for_rates_against_brute_force(y: np.ndarray, s: np.ndarray) -> None:
    candidates = _brute_thresholds(y, s)
    n_real, n_fake = int(np.sum(y == 0)), int(np.sum(y == 1))
    # Budgets on, just off and between the achievable rates, and the extremes.
    for x in (0.0, 0.01, 0.05, 0.1, 1 / n_real, min(3 / n_real, 1.0), 0.5, 0.999, 1.0):
        want = min(t for t, fpr, _ in candidates if fpr <= x)
        assert metrics.threshold_for(y, s, f"fpr={x!r}") == want, x
    for x in (0.0, 0.5, 0.9, 0.95, 0.99, 1 / n_fake, 1.0):
        want = max(t for t, _, tpr in candidates if tpr >= x)
        assert metrics.threshold_for(y, s, f"tpr={x!r}") == want, x
    assert metrics.threshold_for(y, s, "eer") == metrics.eer(y, s)[1]


def test_threshold_for_hand_case() -> None:
    # 4 real, 4 fake, descending 0.9F 0.8F 0.7R 0.6F 0.4F 0.3R 0.2R 0.1R.
    y = [1, 1, 0, 1, 1, 0, 0, 0]
    s = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1]
    assert metrics.threshold_for(y, s, "fpr=0") == 0.8
    assert metrics.threshold_for(y, s, "fpr=0.25") == 0.4
    assert metrics.threshold_for(y, s, "FPR = 0.3") == 0.4
    assert metrics.threshold_for(y, s, "fpr=0.5") == 0.3
    assert metrics.threshold_for(y, s, "tpr=1") == 0.4
    assert metrics.threshold_for(y, s, "tpr=0.5") == 0.8
    assert metrics.threshold_for(y, s, "tpr=0.51") == 0.6
    assert metrics.threshold_for(y, s, "tpr=0") == math.inf
    # A real on top and no false alarm allowed: nothing can be flagged.
    assert metrics.threshold_for([0, 1], [0.9, 0.1], "fpr=0") == math.inf


def test_accuracy() -> None:
    y = [0, 0, 1, 1, 1]
    s = [0.1, 0.5, 0.49, 0.5, 0.9]
    assert metrics.accuracy(y, s, 0.5) == 0.6  # a score equal to the threshold counts as fake
    assert metrics.accuracy(y, s, 0.495) == 0.6
    assert metrics.accuracy(y, s, 0.2) == 0.8
    assert metrics.accuracy(y, s, math.inf) == 0.4
    assert metrics.accuracy(y, s, -math.inf) == 0.6
    assert metrics.accuracy([1, 1], [0.7, 0.2], 0.5) == 0.5  # one class is enough
    with pytest.raises(ValueError, match="threshold must be a number, got nan"):
        metrics.accuracy(y, s, math.nan)


def test_summarize() -> None:
    y = [1, 1, 0, 1, 1, 0, 0, 0]
    s = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1]
    summary = metrics.summarize(y, s)
    assert summary == metrics.Summary(
        n_real=4,
        n_fake=4,
        auc=14 / 16,  # fakes above reals in 14 of the 16 pairs
        eer=0.25,
        eer_threshold=0.6,
        ap=metrics.average_precision(y, s),
        accuracy=0.75,
        threshold=0.5,
    )
    assert summary.auc == pytest.approx(skm.roc_auc_score(y, s), abs=1e-15)
    as_dict = summary.as_dict()
    assert list(as_dict) == ["n_real", "n_fake", "auc", "eer", "ap", "accuracy", "threshold", "eer_threshold"]
    assert all(type(v) is int for v in (as_dict["n_real"], as_dict["n_fake"]))
    assert all(type(as_dict[k]) is float for k in ("auc", "eer", "ap", "accuracy", "threshold", "eer_threshold"))
    json.dumps(as_dict, allow_nan=False)
    assert metrics.summarize(y, s, threshold=0.35).accuracy == 0.875
    with pytest.raises(AttributeError):
        summary.auc = 0.0  # type: ignore[misc]


def test_video_scores() -> None:
    groups = ["vid_b", "vid_a", "vid_b", "vid_c", "vid_a", "vid_b"]
    labels = [1, 0, 1, 0, 0, 1]
    scores = [0.9, 0.2, 0.6, 0.4, 0.3, 0.3]
    names, y, s = metrics.video_scores(groups, labels, scores)
    assert names == ["vid_a", "vid_b", "vid_c"]
    np.testing.assert_array_equal(y, [0, 1, 0])
    np.testing.assert_allclose(s, [0.25, 0.6, 0.4], rtol=0, atol=1e-15)
    assert y.dtype == np.int64 and s.dtype == np.float64
    # Object arrays (a pandas column) work the same.
    assert metrics.video_scores(np.array(groups, dtype=object), labels, scores)[0] == names


def test_video_scores_refuses_mixed_labels() -> None:
    with pytest.raises(ValueError, match=r"group 'vid_b' has mixed labels: 1 fake and 2 real$"):
        metrics.video_scores(["vid_a", "vid_b", "vid_b", "vid_b"], [0, 1, 0, 0], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match=r"group 'a' has mixed labels: 1 fake and 1 real \(and 1 more mixed groups\)"):
        metrics.video_scores(["b", "a", "b", "a"], [0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4])


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ("abc", "groups must be a sequence of names"),
        ([1, 2, 3], "groups must be a sequence of names"),
        (["a", "b"], "groups and scores differ in length: 2 groups, 3 scores"),
    ],
)
def test_video_scores_refuses_bad_groups(groups: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        metrics.video_scores(groups, [0, 1, 1], [0.1, 0.2, 0.3])  # type: ignore[arg-type]


@pytest.mark.parametrize("function", [metrics.roc_auc, metrics.roc_curve, metrics.eer, metrics.average_precision])
def test_one_class_is_refused(function: Callable[..., object]) -> None:
    name = function.__name__
    with pytest.raises(ValueError, match=f"^{name} needs both classes: got 12 fake, 0 real$"):
        function([1] * 12, np.linspace(0, 1, 12))
    with pytest.raises(ValueError, match=f"^{name} needs both classes: got 0 fake, 3 real$"):
        function([0, 0, 0], [0.1, 0.2, 0.3])


def test_one_class_is_refused_by_summarize_and_threshold_for() -> None:
    with pytest.raises(ValueError, match="^summarize needs both classes: got 2 fake, 0 real$"):
        metrics.summarize([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="^roc_curve needs both classes: got 0 fake, 2 real$"):
        metrics.threshold_for([0, 0], [0.2, 0.3], "fpr=0.01")


@pytest.mark.parametrize(
    ("labels", "scores", "message"),
    [
        ([0, 2, 1], [0.1, 0.2, 0.3], r"^roc_auc: labels must be 0 \(real\) or 1 \(fake\), got 2 at index 1$"),
        ([0, -1, 1, 5], [0.1, 0.2, 0.3, 0.4], r"got -1 at index 1 and 1 more$"),
        ([0, 0.5, 1], [0.1, 0.2, 0.3], r"got 0.5 at index 1$"),
        ([0, math.nan, 1], [0.1, 0.2, 0.3], r"got nan at index 1$"),
        (["real", "fake"], [0.1, 0.2], r"labels must be 0 \(real\) or 1 \(fake\), got an array of <U4$"),
        ([[0, 1]], [[0.1, 0.2]], r"^roc_auc: labels must be one-dimensional, got shape \(1, 2\)$"),
        ([0, 1, 1], [0.1, 0.2], r"^roc_auc: labels and scores differ in length: 3 labels, 2 scores$"),
        ([0, 1], [0.1, math.nan], r"^roc_auc: scores must be finite, got nan at index 1$"),
        ([0, 1, 1], [math.inf, 0.2, -math.inf], r"^roc_auc: scores must be finite, got inf at index 0 and 1 more$"),
        ([0, 1], ["low", "high"], r"^roc_auc: scores must be numbers"),
        ([], [], r"^roc_auc needs at least one sample, got none$"),
    ],
)
def test_bad_input_is_refused(labels: object, scores: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        metrics.roc_auc(labels, scores)


def test_bool_and_float_labels_are_accepted() -> None:
    s = [0.1, 0.7, 0.4, 0.9]
    assert metrics.roc_auc([False, True, False, True], s) == metrics.roc_auc([0.0, 1.0, 0.0, 1.0], s) == 1.0


@pytest.mark.parametrize(
    "rule", ["", "auc", "fpr", "fpr=", "tpr0.9", "fnr=0.1", "eer=0.1", "fpr=1.5", "tpr=-0.1", "fpr=nan", "fpr=1%", None]
)
def test_threshold_for_refuses_unknown_rules(rule: object) -> None:
    with pytest.raises(
        ValueError, match=r"threshold rule .*expected 'eer', 'fpr=X' or 'tpr=X' with X in \[0, 1\]"
    ) as err:
        metrics.threshold_for([0, 1], [0.1, 0.9], rule)  # type: ignore[arg-type]
    assert repr(rule) in str(err.value)

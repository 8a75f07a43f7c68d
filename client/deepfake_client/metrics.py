"""How well scores separate fake (label 1, the positive class) from real (label 0).

Used for the validation AUC of each training epoch, by the evaluation command
that reports on a deployed detector, and by the calibration step that picks a
decision threshold. Only numpy: the client must stay installable without
scikit-learn, yet :func:`roc_auc`, :func:`roc_curve` and
:func:`average_precision` give what ``sklearn.metrics`` gives (the tests check
them against it). Scores are "higher = more likely fake", and a sample is
predicted fake when its score is ``>=`` the threshold, as in scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "roc_auc",
    "roc_curve",
    "eer",
    "average_precision",
    "accuracy",
    "threshold_for",
    "Summary",
    "summarize",
    "video_scores",
]

RULE_FORMS = "'eer', 'fpr=X' or 'tpr=X' with X in [0, 1] (e.g. 'fpr=0.01', 'tpr=0.95')"


def _check(caller: str, labels: Any, scores: Any, *, both_classes: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` as a bool array (True = fake) and ``scores`` as float64, or a ValueError naming ``caller``."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"{caller}: labels must be one-dimensional, got shape {y.shape}")
    # Strings or objects would compare unequal to 0 and 1 element by element; say so plainly instead.
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{caller}: labels must be 0 (real) or 1 (fake), got an array of {y.dtype}")
    bad = np.flatnonzero((y != 0) & (y != 1))
    if bad.size:
        raise ValueError(
            f"{caller}: labels must be 0 (real) or 1 (fake), got {y[bad[0]].item()!r} at index {bad[0]}"
            + (f" and {bad.size - 1} more" if bad.size > 1 else "")
        )
    try:
        s = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{caller}: scores must be numbers ({exc})") from None
    if s.ndim != 1:
        raise ValueError(f"{caller}: scores must be one-dimensional, got shape {s.shape}")
    if y.shape != s.shape:
        raise ValueError(f"{caller}: labels and scores differ in length: {y.size} labels, {s.size} scores")
    if s.size == 0:
        raise ValueError(f"{caller} needs at least one sample, got none")
    bad = np.flatnonzero(~np.isfinite(s))
    if bad.size:
        raise ValueError(
            f"{caller}: scores must be finite, got {s[bad[0]]} at index {bad[0]}"
            + (f" and {bad.size - 1} more" if bad.size > 1 else "")
        )
    y = y == 1
    if both_classes:
        n_fake = int(np.count_nonzero(y))
        n_real = y.size - n_fake
        if n_fake == 0 or n_real == 0:
            raise ValueError(f"{caller} needs both classes: got {n_fake} fake, {n_real} real")
    return y, s


def _counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(thresholds, tps, fps)``: each distinct score, highest first, and the fakes and reals scored ``>=`` it."""
    order = np.argsort(s, kind="mergesort")[::-1]
    s = s[order]
    # Tied scores are one threshold: only the last sample of each run of equal scores ends a step of the curve.
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tps = np.cumsum(y[order], dtype=np.int64)[last]
    fps = last + 1 - tps
    return s[last], tps, fps


def roc_auc(labels: Any, scores: Any) -> float:
    """The area under the ROC curve, as ``sklearn.metrics.roc_auc_score`` gives it.

    Computed as the Mann-Whitney U statistic with average ranks for tied
    scores: the chance that a random fake scores above a random real, ties
    counting one half. 1.0 separates perfectly, 0.5 is chance, 0.0 is
    perfectly inverted.
    """
    y, s = _check("roc_auc", labels, scores)
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    # Runs of equal scores share the mean of their 1-based ranks; twice that mean, first + last, is an integer,
    # so the sum stays exact and the only rounding is the final division.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], s.size] - 1
    doubled_ranks = np.repeat(starts + ends + 2, ends - starts + 1)
    n_fake = int(np.count_nonzero(y))
    n_real = y.size - n_fake
    doubled_u = int(doubled_ranks[y[order]].sum()) - n_fake * (n_fake + 1)
    return doubled_u / (2 * n_fake * n_real)


def roc_curve(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``, as ``sklearn.metrics.roc_curve(..., drop_intermediate=False)`` gives them.

    ``thresholds`` are the distinct scores in decreasing order, preceded by
    ``+inf`` (nothing predicted fake, the point (0, 0)); ``fpr[i]`` and
    ``tpr[i]`` are the rates when a sample is predicted fake for
    ``score >= thresholds[i]``. All three are float64 arrays of one length.
    """
    y, s = _check("roc_curve", labels, scores)
    thresholds, tps, fps = _counts(y, s)
    tps = np.r_[0, tps]
    fps = np.r_[0, fps]
    return fps / fps[-1], tps / tps[-1], np.r_[np.inf, thresholds]


def eer(labels: Any, scores: Any) -> tuple[float, float]:
    """``(equal error rate, threshold)``: where the false positive rate equals the false negative rate.

    With FNR = 1 - TPR along the points of :func:`roc_curve`, FPR - FNR rises
    strictly from -1 (threshold +inf) to +1 (the lowest score). The EER is the
    value at which the polyline through those points crosses FPR == FNR: the
    common value at a point that lies on it, otherwise the crossing of the
    straight segment between the last point with FPR < FNR and the first with
    FPR > FNR (computed in exact integer arithmetic, one rounding at the end).

    The threshold is not interpolated: it is the threshold of whichever of
    those two bracketing points has the smaller ``|FPR - FNR|`` (the higher of
    the two on a tie; never the +inf start point, whose neighbour is taken
    instead), so it is one of the scores, and predicting fake for
    ``score >= threshold`` gives exactly that point. Its FPR and FNR are each
    within one step of the curve (one sample, or one run of tied scores) of
    the EER.
    """
    y, s = _check("eer", labels, scores)
    thresholds, tps, fps = _counts(y, s)
    n_fake, n_real = int(tps[-1]), int(fps[-1])
    tps = np.r_[0, tps].tolist()
    fps = np.r_[0, fps].tolist()
    # n_real * n_fake * (FPR - FNR), an integer: exact zero and exact sign, where floats could make 1/3 != 1 - 2/3.
    gap = [fp * n_fake - (n_fake - tp) * n_real for tp, fp in zip(tps, fps, strict=True)]
    k = next(i for i, g in enumerate(gap) if g >= 0)  # gap[0] = -n_real * n_fake < 0 <= gap[-1], so 0 < k
    if gap[k] == 0:
        return fps[k] / n_real, float(thresholds[k - 1])
    below, above = -gap[k - 1], gap[k]  # how far each bracketing point is from the FPR == FNR line
    # FPR at the crossing = (fps[k-1] + t * (fps[k] - fps[k-1])) / n_real, with t = below / (below + above).
    rate = (fps[k - 1] * (below + above) + below * (fps[k] - fps[k - 1])) / (n_real * (below + above))
    chosen = k - 1 if below <= above and k > 1 else k
    return rate, float(thresholds[chosen - 1])


def average_precision(labels: Any, scores: Any) -> float:
    """The average precision, as ``sklearn.metrics.average_precision_score`` gives it.

    The sum over the distinct score thresholds of precision at that threshold
    times the recall it adds (no interpolation between points).
    """
    y, s = _check("average_precision", labels, scores)
    _, tps, fps = _counts(y, s)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def accuracy(labels: Any, scores: Any, threshold: float) -> float:
    """The fraction of samples classified right when a sample is predicted fake for ``score >= threshold``.

    One class alone is allowed. ``threshold`` may be infinite (nothing, or
    everything, predicted fake) but not NaN.
    """
    y, s = _check("accuracy", labels, scores, both_classes=False)
    if math.isnan(threshold):
        raise ValueError("accuracy: threshold must be a number, got nan")
    return float(np.count_nonzero((s >= threshold) == y)) / y.size


def _rule_value(rule: str, text: str) -> float:
    """The X of ``fpr=X`` / ``tpr=X``, a rate in [0, 1], or a ValueError naming the rule."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # also false for nan
        raise ValueError(f"threshold rule {rule!r}: {text.strip()!r} is not a rate in [0, 1]; expected {RULE_FORMS}")
    return value


def threshold_for(labels: Any, scores: Any, rule: str) -> float:
    """The decision threshold (predict fake for ``score >= threshold``) that ``rule`` picks.

    - ``"eer"``: the threshold :func:`eer` returns.
    - ``"fpr=X"``: the lowest threshold whose false positive rate is ``<= X``,
      i.e. the highest true positive rate within that false alarm budget.
    - ``"tpr=X"``: the highest threshold whose true positive rate is ``>= X``,
      i.e. the fewest false alarms that still catch that share of fakes.

    Thresholds are chosen among those of :func:`roc_curve`: the scores
    themselves and ``+inf``. So ``"fpr=X"`` returns ``+inf`` (nothing is
    flagged) when even the highest score alone breaks the budget, i.e. it
    belongs to a real sample and ``X`` is below one real's share; and
    ``"tpr=0"`` returns ``+inf``. Any other rule raises ValueError.
    """
    if not isinstance(rule, str):
        raise ValueError(f"unknown threshold rule {rule!r}: expected {RULE_FORMS}")
    name, sep, text = rule.strip().lower().partition("=")
    name = name.strip()
    if not sep and name == "eer":
        return eer(labels, scores)[1]
    if sep and name == "fpr":
        budget = _rule_value(rule, text)
        fpr, _, thresholds = roc_curve(labels, scores)
        # fpr rises with the index as the threshold falls: the last index within budget is the lowest threshold.
        return float(thresholds[np.searchsorted(fpr, budget, side="right") - 1])
    if sep and name == "tpr":
        target = _rule_value(rule, text)
        _, tpr, thresholds = roc_curve(labels, scores)
        # tpr[-1] == 1 >= target, so an index is always found: the first one reaching it is the highest threshold.
        return float(thresholds[np.searchsorted(tpr, target, side="left")])
    raise ValueError(f"unknown threshold rule {rule!r}: expected {RULE_FORMS}")


@dataclass(frozen=True)
class Summary:
    """The separation of real from fake by one set of scores, and the accuracy at one threshold.

    ``eer_threshold`` is the threshold :func:`eer` returns; ``accuracy`` is at
    ``threshold``, the one :func:`summarize` was given.
    """

    n_real: int
    n_fake: int
    auc: float
    eer: float
    eer_threshold: float
    ap: float
    accuracy: float
    threshold: float

    def as_dict(self) -> dict[str, float | int]:
        """Plain JSON-ready values, in the order reports print them."""
        return {
            "n_real": self.n_real,
            "n_fake": self.n_fake,
            "auc": self.auc,
            "eer": self.eer,
            "ap": self.ap,
            "accuracy": self.accuracy,
            "threshold": self.threshold,
            "eer_threshold": self.eer_threshold,
        }


def summarize(labels: Any, scores: Any, threshold: float = 0.5) -> Summary:
    """AUC, EER (and its threshold), average precision and the accuracy at ``threshold``; both classes needed."""
    y, s = _check("summarize", labels, scores)
    n_fake = int(np.count_nonzero(y))
    rate, eer_threshold = eer(y, s)
    return Summary(
        n_real=y.size - n_fake,
        n_fake=n_fake,
        auc=roc_auc(y, s),
        eer=rate,
        eer_threshold=eer_threshold,
        ap=average_precision(y, s),
        accuracy=accuracy(y, s, threshold),
        threshold=float(threshold),
    )


def video_scores(groups: Sequence[str], labels: Any, scores: Any) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Frame (or window) scores pooled per video, DeepfakeBench's video-level convention.

    ``groups[i]`` names the video of sample ``i``. Returns the distinct names
    sorted, each one's label (int64; all its samples must share it, else
    ValueError naming the group) and the mean of its scores (float64),
    aligned with the names.
    """
    y, s = _check("video_scores", labels, scores, both_classes=False)
    g = np.asarray(groups)
    # A pandas column of names arrives as objects; anything but strings (ints, None, a lone str) is refused.
    if g.dtype.kind == "O" and g.ndim == 1 and all(isinstance(name, str) for name in g):
        g = g.astype(str)
    if g.ndim != 1 or g.dtype.kind != "U":
        raise ValueError(f"video_scores: groups must be a sequence of names (str), one per score, got {g.dtype}")
    if g.size != s.size:
        raise ValueError(f"video_scores: groups and scores differ in length: {g.size} groups, {s.size} scores")
    names, index = np.unique(g, return_inverse=True)
    index = index.reshape(-1)  # numpy 2.0-2.1 kept the input's shape here
    frames = np.bincount(index, minlength=names.size)
    fakes = np.bincount(index, weights=y, minlength=names.size).astype(np.int64)
    mixed = np.flatnonzero((fakes > 0) & (fakes < frames))
    if mixed.size:
        i = mixed[0]
        raise ValueError(
            f"video_scores: group {str(names[i])!r} has mixed labels: {fakes[i]} fake and {frames[i] - fakes[i]} real"
            + (f" (and {mixed.size - 1} more mixed groups)" if mixed.size > 1 else "")
        )
    means = np.bincount(index, weights=s, minlength=names.size) / frames
    return names.tolist(), (fakes > 0).astype(np.int64), means

"""Probabilities that mean what they say: temperature scaling and calibration error.

Temperature scaling (Guo et al. 2017) divides the logits by one number fitted to minimise
the negative log-likelihood of held-out labels. It never changes a prediction (the argmax is
the same), only how sure the model claims to be, which is what a cascade's threshold reads.
For a multilabel model the likelihood is that of every label's own yes/no (a sigmoid per
logit); its decisions, made on the logit scale against per-label thresholds, do not move
either. numpy only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from textdistill.runtime.outputs import softmax

# The first bracket of the temperature search, moved (up to MAX_BRACKET_MOVES times) when the
# minimum sits on its edge, but never past T_LIMITS: a temperature beyond them means the
# held-out set is degenerate (say, every row right with a margin), not that the model is.
T_MIN, T_MAX = 0.05, 20.0
MAX_BRACKET_MOVES = 4
T_LIMITS = (1e-3, 1e3)


def negative_log_likelihood(
    logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0
) -> float:
    """Mean NLL of integer ``labels`` under ``softmax(logits / temperature)``; for a 0/1
    label matrix (multilabel), the mean binary cross-entropy of ``sigmoid(logits / T)``.

    >>> round(negative_log_likelihood(np.zeros((1, 2)), np.array([[1.0, 0.0]])), 4)
    0.6931
    """
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    if labels.ndim == 2:
        return float(np.mean(np.logaddexp(0.0, scaled) - labels * scaled))
    scaled -= scaled.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(scaled).sum(axis=1))
    return float(np.mean(log_norm - scaled[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising held-out NLL (golden-section search on log T; the NLL is
    convex in 1/T, so the search finds the optimum). ``labels``: class ids, or a 0/1 matrix
    for a multilabel model.

    >>> rng = np.random.default_rng(0)
    >>> labels = rng.integers(0, 2, 2000)
    >>> true_logits = np.stack([-(2 * labels - 1.0), 2 * labels - 1.0], axis=1) * 1.5
    >>> noisy = true_logits + rng.normal(scale=1.5, size=true_logits.shape)
    >>> overconfident = noisy * 4
    >>> 2.5 < fit_temperature(overconfident, labels) < 6
    True
    """
    if len(labels) == 0:
        raise ValueError("cannot fit a temperature on an empty set")
    low, high = math.log(T_MIN), math.log(T_MAX)
    width = high - low
    # A minimum on the edge of the bracket may lie past it: move the bracket that way.
    for _ in range(MAX_BRACKET_MOVES):
        found = _golden_section(logits, labels, low, high)
        if found > high - 0.01 * width and high < math.log(T_LIMITS[1]):
            low, high = high - 0.1 * width, min(high + width, math.log(T_LIMITS[1]))
        elif found < low + 0.01 * width and low > math.log(T_LIMITS[0]):
            low, high = max(low - width, math.log(T_LIMITS[0])), low + 0.1 * width
        else:
            break
    return math.exp(found)


def _golden_section(logits: np.ndarray, labels: np.ndarray, low: float, high: float) -> float:
    """The log temperature minimising the NLL within ``[low, high]`` (log scale)."""
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa = negative_log_likelihood(logits, labels, math.exp(a))
    fb = negative_log_likelihood(logits, labels, math.exp(b))
    for _ in range(60):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = negative_log_likelihood(logits, labels, math.exp(a))
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = negative_log_likelihood(logits, labels, math.exp(b))
    return (low + high) / 2


def reliability(
    probabilities: np.ndarray, labels: np.ndarray, n_bins: int = 10
) -> list[dict[str, float]]:
    """Per confidence bin (equal width over [1/k, 1]): mean confidence, accuracy, count."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    floor = 1.0 / probabilities.shape[1]
    edges = np.linspace(floor, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        members = which == b
        count = int(members.sum())
        bins.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": count,
                "confidence": float(confidence[members].mean()) if count else math.nan,
                "accuracy": float(correct[members].mean()) if count else math.nan,
            }
        )
    return bins


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, n_bins: int = 10
) -> float:
    """ECE: the count-weighted mean |accuracy - confidence| over confidence bins.

    >>> p = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    >>> round(expected_calibration_error(p, np.array([0, 1, 0, 1]), n_bins=5), 3)
    0.35
    """
    bins = reliability(probabilities, labels, n_bins)
    total = sum(b["count"] for b in bins)
    return float(
        sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"]) / total
    )


def calibration_report(
    logits: np.ndarray, labels: np.ndarray, temperature: float, n_bins: int = 10
) -> dict[str, Any]:
    """ECE, NLL and reliability bins before (T=1) and after temperature scaling."""
    before = softmax(logits)
    after = softmax(logits, temperature)
    return {
        "temperature": temperature,
        "ece_before": expected_calibration_error(before, labels, n_bins),
        "ece_after": expected_calibration_error(after, labels, n_bins),
        "nll_before": negative_log_likelihood(logits, labels),
        "nll_after": negative_log_likelihood(logits, labels, temperature),
        "reliability_before": reliability(before, labels, n_bins),
        "reliability_after": reliability(after, labels, n_bins),
    }

"""Per-label decision thresholds for multilabel models.

A multilabel model outputs one logit per label and predicts the label when the logit exceeds
a threshold. The default, 0.0, is a sigmoid probability of 0.5, which suits a label only if
the model is calibrated for it; rare labels in particular are often predicted too seldom. So
each label gets the threshold that maximises its F1 on held-out rows. Numpy only: choosing
thresholds needs nothing from the training stack.
"""

from __future__ import annotations

import numpy as np

MIN_POSITIVES = 5
"""Positive held-out rows a label needs before its threshold moves from 0.0. With fewer, the
F1-best threshold follows the noise of those rows: measured on TREC-derived multilabel data
(benchmarks/multilabel_quality.py), a rare label's threshold fitted on three positives cost
it most of its F1 on the test set."""


def choose_thresholds(
    logits: np.ndarray, truth: np.ndarray, *, min_positives: int = MIN_POSITIVES
) -> np.ndarray:
    """One threshold per label (column) on the logit scale, maximising that label's F1 on
    these held-out rows; a row is predicted positive when its logit is above the threshold.

    The candidates are the midpoints between consecutive distinct logits of the column (every
    split of the rows a threshold can make, away from the logits themselves) and 0.0; no
    threshold below every logit, whose place on unseen rows would be arbitrary. Among
    thresholds of equal F1 the one closest to 0.0 wins, so a threshold moves from the
    default only as far as the data asks. A label with fewer than ``min_positives`` positive
    rows keeps 0.0: with none its F1 is 0 at every threshold, so the rows say nothing about
    where it should be, and with a handful they say too little.

    >>> logits = np.array([[2.0, -1.0], [1.0, -2.0], [-1.0, -3.0], [-2.0, -4.0]])
    >>> truth = np.array([[1, 1], [1, 1], [0, 0], [0, 0]])
    >>> choose_thresholds(logits, truth, min_positives=1).tolist()
    [0.0, -2.5]
    """
    logits = np.asarray(logits, dtype=np.float64)
    truth = np.asarray(truth)
    if logits.ndim != 2:
        raise ValueError(f"logits must be a (rows, labels) matrix, not shape {logits.shape}")
    if truth.shape != logits.shape:
        raise ValueError(f"truth has shape {truth.shape} but logits {logits.shape}")
    if not np.all(np.isfinite(logits)):
        raise ValueError("logits must be finite")
    if not np.all((truth == 0) | (truth == 1)):
        raise ValueError("truth must hold only 0 and 1")
    return np.array(
        [
            _best_threshold(logits[:, j], truth[:, j] == 1)
            if np.sum(truth[:, j]) >= max(min_positives, 1)
            else 0.0
            for j in range(logits.shape[1])
        ],
        dtype=np.float64,
    )


def _best_threshold(logits: np.ndarray, positive: np.ndarray) -> float:
    """The F1-maximising threshold of one label, in O(n log n): one sort, then each
    candidate's true and predicted positives from cumulative counts by binary search.

    >>> _best_threshold(np.array([3.0, 2.0, 1.0]), np.array([True, True, False]))
    1.5
    """
    n_positive = int(np.sum(positive))
    if not n_positive:
        return 0.0
    order = np.argsort(logits, kind="stable")
    ascending = logits[order]
    # positives_below[k]: positive rows among the k lowest logits.
    positives_below = np.concatenate(([0], np.cumsum(positive[order])))
    distinct = np.unique(ascending)
    candidates = np.append((distinct[:-1] + distinct[1:]) / 2, 0.0)
    below = np.searchsorted(ascending, candidates, side="right")  # rows not predicted
    true_positives = n_positive - positives_below[below]
    predicted = len(logits) - below
    # F1 = 2TP / (predicted + actual positives): one division of integers, so thresholds of
    # equal F1 get exactly equal floats and the tie-break below sees them as ties.
    f1 = 2 * true_positives / (predicted + n_positive)
    best = np.flatnonzero(f1 == f1.max())
    return float(candidates[best[np.argmin(np.abs(candidates[best]))]])

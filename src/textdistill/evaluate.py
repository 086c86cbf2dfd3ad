"""Scores that put baseline, teacher and student side by side.

Implemented with numpy so that the numbers mean exactly what the docstrings say; they agree
with scikit-learn's ``classification_report`` (a test checks it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def classification_scores(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class precision, recall, F1 and support.

    A class never predicted has precision 0 (not NaN), as scikit-learn's ``zero_division=0``.

    >>> s = classification_scores(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"])
    >>> s["accuracy"], s["per_class"]["a"]["recall"], round(s["per_class"]["b"]["precision"], 3)
    (0.75, 0.5, 0.667)
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    if not len(y_true):
        raise ValueError("cannot score an empty test set")
    true = np.asarray(y_true, dtype=object)
    pred = np.asarray(y_pred, dtype=object)
    per_class: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = float(np.sum((pred == label) & (true == label)))
        predicted = float(np.sum(pred == label))
        support = float(np.sum(true == label))
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[str(label)] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": int(support),
        }
    return {
        "accuracy": float(np.mean(true == pred)),
        "macro_f1": float(np.mean([scores["f1"] for scores in per_class.values()])),
        "per_class": per_class,
        "n": len(true),
    }


def agreement(a: Sequence[str], b: Sequence[str]) -> float:
    """Fraction of documents on which two systems predict the same label.

    >>> agreement(["x", "y", "x"], ["x", "x", "x"])
    0.6666666666666666
    """
    if len(a) != len(b):
        raise ValueError(f"{len(a)} predictions against {len(b)}")
    return float(np.mean(np.asarray(a, dtype=object) == np.asarray(b, dtype=object)))


def throughput(
    predict: Callable[[Sequence[str]], object],
    texts: Sequence[str],
    *,
    min_seconds: float = 1.0,
    batch_size: int = 1000,
) -> float:
    """Documents per second of ``predict`` over ``texts`` in batches, repeated until at least
    ``min_seconds`` have passed so that fast models are not timed on noise."""
    if not texts:
        raise ValueError("cannot time prediction on no texts")
    done = 0
    started = time.perf_counter()
    while True:
        for start in range(0, len(texts), batch_size):
            predict(texts[start : start + batch_size])
        done += len(texts)
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return done / elapsed

"""Scores agree with scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest

from textdistill.evaluate import agreement, classification_scores, throughput


def test_scores_match_scikit_learn() -> None:
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    rng = np.random.default_rng(0)
    labels = ["a", "b", "c"]
    true = list(rng.choice(labels, 200))
    pred = list(rng.choice(["a", "b"], 200))  # "c" is never predicted
    scores = classification_scores(true, pred, labels)
    assert scores["accuracy"] == pytest.approx(accuracy_score(true, pred))
    assert scores["macro_f1"] == pytest.approx(
        f1_score(true, pred, labels=labels, average="macro", zero_division=0)
    )
    p, r, f, s = precision_recall_fscore_support(true, pred, labels=labels, zero_division=0)
    for i, label in enumerate(labels):
        row = scores["per_class"][label]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (p[i], r[i], f[i], s[i])
        )


def test_errors_are_explicit() -> None:
    with pytest.raises(ValueError, match="2 true labels but 1"):
        classification_scores(["a", "b"], ["a"], ["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        classification_scores([], [], ["a"])
    with pytest.raises(ValueError):
        agreement(["a"], [])
    with pytest.raises(ValueError):
        throughput(lambda texts: None, [])


def test_throughput_counts_documents() -> None:
    rate = throughput(lambda texts: None, ["x"] * 10, min_seconds=0.01)
    assert rate > 1000

"""Scores agree with scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest

from textdistill.evaluate import (
    agreement,
    classification_scores,
    label_agreement,
    multilabel_scores,
    throughput,
)


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


def _label_sets(
    rng: np.random.Generator, labels: list[str], n: int, p: float
) -> list[tuple[str, ...]]:
    """Random label sets, some of them empty."""
    return [tuple(label for label in labels if rng.random() < p) for _ in range(n)]


def test_multilabel_scores_match_scikit_learn() -> None:
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        hamming_loss,
        precision_recall_fscore_support,
    )
    from sklearn.preprocessing import MultiLabelBinarizer

    rng = np.random.default_rng(0)
    labels = ["a", "b", "c", "d"]
    true = _label_sets(rng, labels, 300, 0.3)
    pred = _label_sets(rng, labels[:3], 300, 0.4)  # "d" is never predicted
    scores = multilabel_scores(true, pred, labels)
    binarizer = MultiLabelBinarizer(classes=labels).fit([labels])
    t, p = binarizer.transform(true), binarizer.transform(pred)
    assert scores["subset_accuracy"] == scores["accuracy"] == pytest.approx(accuracy_score(t, p))
    assert scores["micro_f1"] == pytest.approx(f1_score(t, p, average="micro", zero_division=0))
    assert scores["macro_f1"] == pytest.approx(f1_score(t, p, average="macro", zero_division=0))
    assert scores["hamming_loss"] == pytest.approx(hamming_loss(t, p))
    micro = precision_recall_fscore_support(t, p, average="micro", zero_division=0)
    assert (scores["micro_precision"], scores["micro_recall"]) == pytest.approx(micro[:2])
    precision, recall, f1, support = precision_recall_fscore_support(t, p, zero_division=0)
    for i, label in enumerate(labels):
        row = scores["per_class"][label]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (precision[i], recall[i], f1[i], support[i])
        )
    assert scores["n"] == 300 and scores["multilabel"] is True


def test_multilabel_scores_refuse_unknown_labels() -> None:
    with pytest.raises(ValueError, match="'z'"):
        multilabel_scores([("a",)], [("z",)], ["a", "b"])
    with pytest.raises(ValueError, match="'z'"):
        multilabel_scores([("z",)], [("a",)], ["a", "b"])
    with pytest.raises(TypeError, match="string"):
        multilabel_scores(["ab"], [("a",)], ["a", "b"])
    with pytest.raises(ValueError, match="repeat"):
        multilabel_scores([("a",)], [("a",)], ["a", "a"])
    with pytest.raises(ValueError, match="empty"):
        multilabel_scores([], [], ["a"])


def test_agreement_compares_label_sets_whole() -> None:
    # Equal-length tuples must not become a 2-D array compared name by name (that gives 0.75).
    assert agreement([("a", "b"), ("a", "c")], [("a", "b"), ("a", "b")]) == 0.5
    # A set is a set: the order of its names does not matter, and empty sets agree.
    assert agreement([("a", "b"), ("a", "c"), ()], [("b", "a"), ("a",), ()]) == pytest.approx(2 / 3)


def test_label_agreement_is_one_minus_hamming_distance() -> None:
    from sklearn.metrics import hamming_loss
    from sklearn.preprocessing import MultiLabelBinarizer

    rng = np.random.default_rng(1)
    labels = ["a", "b", "c"]
    a, b = _label_sets(rng, labels, 100, 0.5), _label_sets(rng, labels, 100, 0.5)
    binarizer = MultiLabelBinarizer(classes=labels).fit([labels])
    expected = 1 - hamming_loss(binarizer.transform(a), binarizer.transform(b))
    assert label_agreement(a, b, labels) == pytest.approx(expected)
    assert label_agreement(a, a, labels) == 1.0
    with pytest.raises(ValueError):
        label_agreement(a, b[:-1], labels)


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


def test_throughput_is_the_fastest_pass_not_the_mean() -> None:
    """A neighbour taking the core during one pass must not lower the rate: the first pass
    here takes 0.3 s (as if preempted), every later one 0.01 s: about 11 passes in 0.4 s,
    whose mean rate (about 2,750/s) is under the bound below."""
    import time

    calls: list[int] = []

    def predict(texts: list[str]) -> None:
        calls.append(len(texts))
        time.sleep(0.3 if len(calls) == 1 else 0.01)

    rate = throughput(predict, ["x"] * 100, min_seconds=0.4, batch_size=100)
    assert len(calls) > 2
    assert 100 / 0.02 < rate <= 100 / 0.01

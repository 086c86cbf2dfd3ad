"""The streaming student reaches the in-memory student's model, in bounded memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from textdistill.runtime import load
from textdistill.students.linear import LinearStudent
from textdistill.students.streaming import StreamingLinearStudent

CLASSES = ["neg", "pos"]


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], np.ndarray]:
    """A few hundred toy reviews and smooth "teacher" logits that depend on their words."""
    from conftest import _make_toy_sentiment

    texts, labels = _make_toy_sentiment(n_per_class=150, seed=3)
    rng = np.random.default_rng(0)
    margin = np.array([2.0 if y == "pos" else -2.0 for y in labels]) + rng.normal(0, 0.5, 300)
    return texts, np.stack([-margin / 2, margin / 2], axis=1)


def _chunks(texts: list[str], logits: np.ndarray, size: int):  # type: ignore[no-untyped-def]
    def chunks() -> Iterator[tuple[list[str], np.ndarray]]:
        for start in range(0, len(texts), size):
            yield texts[start : start + size], logits[start : start + size]

    return chunks


def test_same_model_as_the_in_memory_student(
    corpus: tuple[list[str], np.ndarray], tmp_path: Path
) -> None:
    texts, logits = corpus
    in_memory = LinearStudent(loss="mse", min_df=1, max_features=500).fit(
        texts, logits, classes=CLASSES
    )
    streaming = StreamingLinearStudent(min_df=1, max_features=500, tol=1e-8).fit(
        _chunks(texts, logits, 64), classes=CLASSES
    )
    assert streaming.model_.featurizer.vocabulary == in_memory.model_.featurizer.vocabulary
    np.testing.assert_allclose(
        streaming.model_.featurizer.idf, in_memory.model_.featurizer.idf, rtol=1e-6
    )
    # Same held-out rows, so the same penalty, and the same ridge solution.
    assert streaming.selection_["penalty"] == in_memory.selection_["penalty"]
    assert streaming.selection_["n_validation"] == in_memory.selection_["n_validation"]
    probe = [*texts[:50], "a brand new text", ""]
    np.testing.assert_allclose(
        streaming.decision_function(probe),
        in_memory.decision_function(probe),
        atol=1e-3,
    )
    # The artifact is the usual numpy-only one.
    streaming.save(tmp_path / "student")
    assert load(tmp_path / "student").predict(probe) == in_memory.predict(probe)


def test_a_small_vocabulary_budget_still_keeps_the_frequent_ngrams(
    corpus: tuple[list[str], np.ndarray],
) -> None:
    texts, logits = corpus
    exact = StreamingLinearStudent(min_df=1, max_features=50, grid=(1.0,)).fit(
        _chunks(texts, logits, 32), classes=CLASSES
    )
    bounded = StreamingLinearStudent(
        min_df=1, max_features=50, grid=(1.0,), vocabulary_capacity=200
    ).fit(_chunks(texts, logits, 32), classes=CLASSES)
    kept = set(bounded.model_.featurizer.vocabulary)
    assert len(kept & set(exact.model_.featurizer.vocabulary)) >= 45
    # Whatever was kept has its exact idf (the second pass counts it).
    exact_f, bounded_f = exact.model_.featurizer, bounded.model_.featurizer
    exact_idf = dict(zip(exact_f.vocabulary, exact_f.idf, strict=True))
    for term, idf in zip(bounded_f.vocabulary, bounded_f.idf, strict=True):
        if term in exact_idf:
            assert idf == pytest.approx(exact_idf[term])


def test_bad_sources_are_refused(corpus: tuple[list[str], np.ndarray]) -> None:
    texts, logits = corpus
    student = StreamingLinearStudent(min_df=1, grid=(1.0,))
    with pytest.raises(ValueError, match="logits of shape"):
        student.fit(_chunks(texts, logits[:, :1], 64), classes=CLASSES)
    with pytest.raises(ValueError, match="min_df"):
        StreamingLinearStudent(min_df=5).fit(
            _chunks(["a b", "c d"], logits[:2], 1), classes=CLASSES
        )

    calls = []

    def growing() -> Iterator[tuple[list[str], np.ndarray]]:
        calls.append(1)
        n = 40 if len(calls) < 3 else 60  # the source changed between passes
        yield texts[:n], logits[:n]

    with pytest.raises(ValueError, match="more rows"):
        student.fit(growing, classes=CLASSES)

"""The linear student learns a teacher's logits; the same class builds the baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from textdistill.runtime import load
from textdistill.students.linear import LinearStudent

POSITIVE = ["great", "wonderful", "superb", "moving", "brilliant", "charming"]
NEGATIVE = ["awful", "boring", "dull", "terrible", "clumsy", "tedious"]
FILLER = ["film", "plot", "cast", "story", "ending", "script", "the", "a", "was", "really"]


def corpus(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Texts and 'teacher' logits whose margin grows with the count of polar words."""
    rng = np.random.default_rng(seed)
    texts, logits = [], []
    for _ in range(n):
        n_pos, n_neg = rng.integers(0, 3, size=2)
        words = (
            list(rng.choice(FILLER, 6))
            + list(rng.choice(POSITIVE, n_pos))
            + list(rng.choice(NEGATIVE, n_neg))
        )
        rng.shuffle(words)
        margin = float(n_pos - n_neg) * 1.5 + rng.normal(scale=0.2)
        texts.append(" ".join(words))
        logits.append([-margin / 2, margin / 2])
    return texts, np.array(logits)


@pytest.mark.parametrize("loss", ["mse", "soft_ce"])
def test_student_reproduces_teacher_labels(loss: str) -> None:
    texts, logits = corpus(400, seed=0)
    test_texts, test_logits = corpus(200, seed=1)
    student = LinearStudent(loss=loss).fit(texts, logits, classes=["neg", "pos"])
    teacher_says = np.array(["neg", "pos"])[test_logits.argmax(axis=1)]
    # Where the teacher is confident (no polar tie), the student must follow it.
    clear = np.abs(test_logits[:, 1]) > 0.5
    agreement = np.mean((np.array(student.predict(test_texts)) == teacher_says)[clear])
    assert agreement > 0.95
    assert student.selection_["loss"] == loss
    assert len(student.selection_["grid"]) > 1
    assert student.decision_function(test_texts).shape == (200, 2)


def test_mse_student_regresses_centred_logits() -> None:
    texts, logits = corpus(600, seed=2)
    student = LinearStudent(loss="mse", grid=[0.1]).fit(texts, logits + 5.0, classes=["neg", "pos"])
    predicted = student.decision_function(texts)
    centred = logits - logits.mean(axis=1, keepdims=True)
    assert np.corrcoef(predicted[:, 1], centred[:, 1])[0, 1] > 0.9
    assert abs(predicted.mean()) < 0.5  # the +5 shift is not learned


def test_gold_rows_count_and_unknown_gold_label_fails() -> None:
    texts, logits = corpus(100, seed=3)
    student = LinearStudent().fit(
        texts,
        logits,
        classes=["neg", "pos"],
        gold_texts=["great great", "awful awful"],
        gold_labels=["pos", "neg"],
    )
    assert (student.n_teacher_rows_, student.n_gold_rows_) == (100, 2)
    with pytest.raises(ValueError, match="not among the classes"):
        LinearStudent().fit(
            texts, logits, classes=["neg", "pos"], gold_texts=["x"], gold_labels=["meh"]
        )


def test_hard_labels_give_the_logistic_baseline_multiclass() -> None:
    words = {
        "sport": ["goal", "match", "team"],
        "tech": ["chip", "code", "robot"],
        "food": ["pasta", "bread", "soup"],
    }
    rng = np.random.default_rng(0)
    labels = list(rng.choice(list(words), 300))
    texts = [" ".join(rng.choice(words[label], 3)) + " today" for label in labels]
    baseline = LinearStudent(loss="soft_ce").fit(texts, labels)
    assert baseline.classes_ == ["food", "sport", "tech"]
    assert baseline.selection_["loss"] == "ce"
    assert baseline.predict(["goal team", "robot code", "soup"]) == ["sport", "tech", "food"]
    assert baseline.decision_function(["x"]).shape == (1, 3)


def test_save_load_predicts_identically_through_the_runtime(tmp_path: Path) -> None:
    texts, logits = corpus(200, seed=4)
    student = LinearStudent().fit(texts, logits, classes=["neg", "pos"])
    student.save(tmp_path / "student")
    runtime = load(str(tmp_path / "student"))
    np.testing.assert_array_equal(
        runtime.decision_function(texts), student.decision_function(texts)
    )
    reloaded = LinearStudent.load(tmp_path / "student")
    assert reloaded.predict(texts[:5]) == student.predict(texts[:5])
    assert reloaded.loss == "mse"
    assert runtime.metadata["selection"]["penalty"] == student.selection_["penalty"]


def test_input_errors_are_clear() -> None:
    texts, logits = corpus(30, seed=5)
    with pytest.raises(ValueError, match="need `classes`"):
        LinearStudent().fit(texts, logits)
    with pytest.raises(ValueError, match="do not match 3 classes"):
        LinearStudent().fit(texts, logits, classes=["a", "b", "c"])
    with pytest.raises(ValueError, match="30 texts but 29 targets"):
        LinearStudent().fit(texts, logits[:29], classes=["a", "b"])
    with pytest.raises(ValueError, match="at least two classes"):
        LinearStudent().fit(texts, ["pos"] * 30)
    with pytest.raises(ValueError, match="loss must be"):
        LinearStudent(loss="hinge").fit(texts, logits, classes=["a", "b"])  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="not fitted"):
        LinearStudent().predict(["x"])

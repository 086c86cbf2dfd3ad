"""DistilledClassifier behaves as a scikit-learn classifier: clone, Pipeline, CV, grid search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from conftest import _make_toy_sentiment
from textdistill import load
from textdistill.sklearn import DistilledClassifier


def _classifier(tiny_bert_dir: Path, **overrides: object) -> DistilledClassifier:
    options: dict[str, object] = {
        "teacher": str(tiny_bert_dir),
        "epochs": 8,
        "learning_rate": 3e-3,
        "max_length": 32,
        "batch_size": 8,
        "precision": "fp32",
        "min_df": 1,
        "student": "linear",  # the fastest to fit; test_the_default_student_is_chosen_as_in_a_run
    }
    return DistilledClassifier(**{**options, **overrides})  # type: ignore[arg-type]


@pytest.fixture
def data() -> tuple[list[str], list[str], list[str], list[str], list[str]]:
    texts, labels = _make_toy_sentiment(n_per_class=60, seed=0)
    unlabeled, _ = _make_toy_sentiment(n_per_class=60, seed=1)
    test, test_labels = _make_toy_sentiment(n_per_class=30, seed=2)
    return texts, labels, unlabeled, test, test_labels


def test_constructor_only_stores_and_clone_keeps_the_options(tiny_bert_dir: Path) -> None:
    classifier = _classifier(tiny_bert_dir, alpha=[0.0, 0.3])
    copy = clone(classifier)
    assert copy is not classifier
    assert copy.get_params() == classifier.get_params()
    assert copy.get_params()["alpha"] == [0.0, 0.3]
    assert copy.set_params(loss="soft_ce").loss == "soft_ce"
    with pytest.raises(NotFittedError):
        copy.predict(["good"])


def test_fit_predicts_through_the_runtime_and_saves(
    tiny_bert_dir: Path, tmp_path: Path, data: tuple[list[str], ...]
) -> None:
    texts, labels, unlabeled, test, test_labels = data
    classifier = _classifier(tiny_bert_dir).fit(texts, labels, X_unlabeled=unlabeled)
    assert classifier.classes_.tolist() == ["neg", "pos"]
    assert classifier.model_.classes_.tolist() == ["neg", "pos"]
    predicted = classifier.predict(test)
    assert classifier.score(test, test_labels) >= 0.8
    probabilities = classifier.predict_proba(test)
    assert probabilities.shape == (len(test), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-9)
    assert predicted.tolist() == classifier.classes_[probabilities.argmax(axis=1)].tolist()
    scores = classifier.decision_function(test)
    assert scores.shape == (len(test),)  # binary: one score per text, > 0 means classes_[1]
    assert predicted.tolist() == np.where(scores > 0, "pos", "neg").tolist()
    # the teacher labeled the unlabeled texts and the student's gold rows
    assert classifier.teacher_info_["n_labeled_by_teacher"] > len(set(unlabeled))
    classifier.save(tmp_path / "student")
    assert load(str(tmp_path / "student")).predict(test) == predicted.tolist()


def test_labels_keep_their_type_and_three_classes_give_three_scores(tiny_bert_dir: Path) -> None:
    texts, labels = _make_toy_sentiment(n_per_class=40, seed=3)
    neutral = [f"the film is on at {hour} tonight ." for hour in range(40)]
    x = texts + neutral
    y = [1 if label == "pos" else -1 for label in labels] + [0] * len(neutral)
    classifier = _classifier(tiny_bert_dir).fit(x, y)
    assert sorted(classifier.classes_.tolist()) == [-1, 0, 1]
    assert set(classifier.predict(x).tolist()) <= {-1, 0, 1}
    assert classifier.decision_function(x[:5]).shape == (5, 3)


def test_in_a_pipeline_with_cross_validation(
    tiny_bert_dir: Path, data: tuple[list[str], ...]
) -> None:
    texts, labels, unlabeled, _, _ = data
    pipeline = make_pipeline(
        FunctionTransformer(lambda column: [t.lower() for t in column]), _classifier(tiny_bert_dir)
    )
    scores = cross_val_score(
        pipeline,
        texts,
        labels,
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
        params={"distilledclassifier__X_unlabeled": unlabeled},
        error_score="raise",
    )
    assert scores.shape == (2,)
    assert scores.min() >= 0.7


def test_grid_search_chooses_among_options_and_refits(
    tiny_bert_dir: Path, data: tuple[list[str], ...]
) -> None:
    texts, labels, unlabeled, test, test_labels = data
    search = GridSearchCV(
        _classifier(tiny_bert_dir), {"alpha": [0.0, 0.5]}, cv=2, error_score="raise"
    ).fit(texts, labels, X_unlabeled=unlabeled)
    assert search.best_params_["alpha"] in (0.0, 0.5)
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert search.score(test, test_labels) >= 0.7


def test_the_default_student_is_chosen_as_in_a_run(
    tiny_bert_dir: Path, tmp_path: Path, data: tuple[list[str], ...]
) -> None:
    """``student="auto"`` (the default, as for ``textdistill run``) fits the linear and the
    dense student, whose word vectors come from the fitted teacher, and keeps one with the
    reason; ``"dense"`` fits that one alone. Either predicts through its runtime model."""
    texts, labels, unlabeled, test, test_labels = data
    assert DistilledClassifier().get_params()["student"] == "auto"
    auto = _classifier(tiny_bert_dir, student="auto").fit(texts, labels, X_unlabeled=unlabeled)
    assert auto.selection_["kind"] in ("linear", "dense", "blend")
    assert "held-out" in auto.selection_["kept_because"]
    dense = _classifier(tiny_bert_dir, student="dense").fit(texts, labels, X_unlabeled=unlabeled)
    assert dense.selection_["kind"] == "dense"
    assert dense.selection_["word_vectors"] == "teacher"
    assert type(dense.model_).__name__ == "DenseModel"
    assert dense.score(test, test_labels) >= 0.8
    dense.save(tmp_path / "dense")
    assert load(str(tmp_path / "dense")).predict(test) == dense.predict(test).tolist()


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        ("one text", ["pos"], "sequence of texts, got one string"),
        (["good", 3], ["pos", "neg"], r"X\[1\] is int"),
        (["good", "bad"], [["pos"], ["neg"]], "single-label"),
        (["good", "bad"], ["pos"], "2 texts but y has 1 labels"),
        (["good", "bad"], [1, "1"], "equal as text"),
        (["good", "bad"], ["pos", "neg"], "student kind must be one of"),
    ],
)
def test_bad_input_is_refused_before_any_training(
    tiny_bert_dir: Path, x: object, y: object, message: str
) -> None:
    student = "bogus" if "student kind" in message else "linear"
    with pytest.raises(ValueError, match=message):
        _classifier(tiny_bert_dir, student=student).fit(x, y)

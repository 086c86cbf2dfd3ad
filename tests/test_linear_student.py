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


def test_alpha_is_the_share_of_the_gold_rows() -> None:
    # The gold rows contradict the teacher on "great": alpha decides who wins.
    texts, logits = corpus(300, seed=6)
    gold_texts = ["great", "great film", "great plot", "great cast"] * 10
    gold_labels = ["neg"] * len(gold_texts)

    def says(alpha: float) -> str:
        student = LinearStudent(alpha=alpha, grid=[1.0]).fit(
            texts, logits, classes=["neg", "pos"], gold_texts=gold_texts, gold_labels=gold_labels
        )
        assert student.selection_["alpha"] == alpha
        return student.predict(["great"])[0]

    assert says(0.0) == "pos"  # the gold rows weigh nothing
    assert says(0.9) == "neg"  # the gold rows carry 90% of the weight


def test_temperature_and_alpha_are_searched_and_recorded() -> None:
    texts, logits = corpus(300, seed=7)
    gold_texts, gold_logits = corpus(60, seed=8)
    gold_labels = ["neg" if row[0] > row[1] else "pos" for row in gold_logits]
    student = LinearStudent(
        loss="soft_ce", grid=[1.0, 10.0], temperature=[1.0, 3.0], alpha=[0.0, 0.2]
    ).fit(texts, logits, classes=["neg", "pos"], gold_texts=gold_texts, gold_labels=gold_labels)
    selection = student.selection_
    tried = {(p["penalty"], p["temperature"], p["alpha"]) for p in selection["grid"]}
    # penalties at the first T and alpha (past the grid's top while the best sits there: C =
    # 10 was on the edge), then T, then alpha at the best so far
    beyond = sorted({p["penalty"] for p in selection["grid"] if p["penalty"] > 10.0})
    assert beyond == pytest.approx([10.0 ** (2 + i) for i in range(len(beyond))])
    assert len(selection["grid"]) == 4 + len(beyond) and len(tried) == 4 + len(beyond)
    assert {t for _, t, _ in tried} == {1.0, 3.0} and {a for _, _, a in tried} == {0.0, 0.2}
    assert selection["temperature"] in (1.0, 3.0) and selection["alpha"] in (0.0, 0.2)
    assert selection["n_validation"] == 30 and selection["n_validation_gold"] == 6
    assert all(p["accuracy"] is not None and p["agreement"] is not None for p in selection["grid"])
    best = max(selection["grid"], key=lambda p: (p["agreement"], -p["mse"]))
    assert (selection["penalty"], selection["temperature"], selection["alpha"]) == (
        best["penalty"],
        best["temperature"],
        best["alpha"],
    )
    # mse ignores the temperature: one value, recorded as not applicable
    mse = LinearStudent(temperature=[1.0, 3.0], grid=[1.0]).fit(
        texts, logits, classes=["neg", "pos"]
    )
    assert mse.selection_["temperature"] is None and len(mse.selection_["grid"]) <= 1


def test_character_ngrams_win_the_feature_search_on_unseen_inflections() -> None:
    # The teacher reads suffixes: "-ful" words are positive, "-less" words negative. Every
    # stem is different, so only character n-grams generalise to held-out rows.
    rng = np.random.default_rng(0)
    stems = ["".join(rng.choice(list("bcdfgkmnprstvz"), 5)) for _ in range(600)]
    texts, logits = [], []
    for i, stem in enumerate(stems):
        positive = i % 2 == 0
        texts.append(f"the {stem}{'ful' if positive else 'less'} one")
        logits.append([-2.0, 2.0] if positive else [2.0, -2.0])
    student = LinearStudent(
        min_df=1, grid=[1.0], feature_grid=[{"char_ngrams": (3, 5)}], random_state=1
    ).fit(texts, np.array(logits), classes=["neg", "pos"])
    by_features = {
        str(student.selection_["grid"][i]["features"]): student.selection_["grid"][i]["agreement"]
        for i in range(2)
    }
    assert by_features["1"] > 0.9 > by_features["0"]
    assert student.selection_["features"]["char_ngrams"] == (3, 5)
    assert student.model_.featurizer.char_ngrams == (3, 5)
    assert student.predict(["the qqqqqful one", "the wwwwwless one"]) == ["pos", "neg"]


def test_search_option_errors() -> None:
    texts, logits = corpus(40, seed=9)
    with pytest.raises(ValueError, match="unknown option"):
        LinearStudent(feature_grid=[{"ngram": 3}]).fit(texts, logits, classes=["a", "b"])
    with pytest.raises(ValueError, match="needs at least 20 gold rows"):
        LinearStudent(select_by="accuracy").fit(
            texts, logits, classes=["a", "b"], gold_texts=["x"], gold_labels=["a"]
        )
    with pytest.raises(ValueError, match="alpha must be in"):
        LinearStudent(alpha=1.0).fit(texts, logits, classes=["a", "b"])


def test_a_penalty_on_the_edge_of_its_grid_extends_the_grid() -> None:
    """C = 0.001 or 0.002 (a penalty far too strong): the best sits on the grid's top edge,
    so the search goes on to 0.004, 0.008, ... until a value is no longer the best."""
    rng = np.random.default_rng(0)
    texts = [
        f"{'good' if i % 2 else 'bad'} {rng.choice(['film', 'plot', 'cast'])}" for i in range(200)
    ]
    labels = ["pos" if i % 2 else "neg" for i in range(200)]
    student = LinearStudent(loss="soft_ce", grid=[0.001, 0.002], min_df=1).fit(texts, labels)
    tried = sorted({point["penalty"] for point in student.selection_["grid"]})
    assert tried[:3] == [0.001, 0.002, 0.004] and len(tried) > 3
    assert student.selection_["penalty"] > 0.002
    assert student.selection_["penalty"] < max(tried) or len(tried) == 2 + 8


def test_the_search_bar_names_a_gold_label_fit_apart_from_a_student(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The run's baseline is a gold-label fit of this class; its bar must not say student."""
    texts, logits = corpus(300, seed=0)
    labels = list(np.array(["neg", "pos"])[logits.argmax(axis=1)])
    LinearStudent(loss="soft_ce").fit(texts, labels, progress=True)
    gold_bar = capsys.readouterr().err
    LinearStudent().fit(texts, logits, classes=["neg", "pos"], progress=True)
    student_bar = capsys.readouterr().err
    assert "gold-label model hyperparameters" in gold_bar and "student" not in gold_bar
    assert "student hyperparameters" in student_bar

"""The cascade: curve, threshold, artifact, and the CLI/server that use it."""

from __future__ import annotations

import csv
import io
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from textdistill.cascade import (
    CASCADE_FILE,
    Cascade,
    at_threshold,
    cascade_curve,
    choose_threshold,
)
from textdistill.cli import main
from textdistill.data import TextDataset
from textdistill.pipeline import RunConfig, StudentConfig, prepare_splits, run_pipeline
from textdistill.teacher import TeacherConfig


def test_curve_goes_from_student_to_teacher() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    teacher = np.where(rng.uniform(size=400) < 0.9, y, 1 - y)
    confidence = rng.uniform(0.5, 1.0, 400)
    # The student is right exactly where it is confident.
    student = np.where(confidence > 0.7, y, 1 - y)
    curve = cascade_curve(confidence, student, teacher, y, 10_000.0, 10.0, steps=11)
    assert curve[0]["accuracy"] == pytest.approx(np.mean(student == y))
    assert curve[-1]["accuracy"] == pytest.approx(np.mean(teacher == y))
    assert curve[0]["docs_per_s"] == pytest.approx(10_000.0)
    assert curve[-1]["docs_per_s"] == pytest.approx(1 / (1 / 10_000 + 1 / 10))
    assert all(a["docs_per_s"] >= b["docs_per_s"] for a, b in itertools.pairwise(curve))
    point = at_threshold(0.7, confidence, student, teacher, y, 10_000.0, 10.0)
    assert point["accuracy"] >= np.mean(teacher == y)
    assert point["fraction_deferred"] == pytest.approx(np.mean(confidence < 0.7))


def test_threshold_reaches_the_teachers_expected_accuracy() -> None:
    rng = np.random.default_rng(1)
    student = rng.uniform(0.5, 1.0, 1000)
    teacher = np.full(1000, 0.85)
    threshold = choose_threshold(student, teacher)
    kept = student >= threshold
    expected = (student[kept].sum() + teacher[~kept].sum()) / 1000
    assert expected >= 0.85
    # One document fewer deferred would fall short.
    just_below = np.max(student[~kept])
    kept_more = student >= just_below
    assert (student[kept_more].sum() + teacher[~kept_more].sum()) / 1000 < 0.85
    # A student surer than its teacher never defers.
    assert choose_threshold(np.full(10, 0.95), np.full(10, 0.9)) == 0.95


def _inputs(tiny_bert_dir: Path, out: Path) -> tuple[TextDataset, TextDataset, RunConfig]:
    from conftest import NEGATIVE_WORDS, POSITIVE_WORDS, _make_toy_sentiment

    texts, labels = _make_toy_sentiment(60, seed=3)
    # Reviews with a word of each polarity, labeled by the first: what a student is unsure
    # of, so that the stored threshold defers some test texts and keeps others.
    rng = np.random.default_rng(3)
    for i in range(40):
        first, second = (
            (POSITIVE_WORDS, NEGATIVE_WORDS) if i % 2 else (NEGATIVE_WORDS, POSITIVE_WORDS)
        )
        texts.append(f"the plot is {rng.choice(first)} but the music is {rng.choice(second)} .")
        labels.append("pos" if i % 2 else "neg")
    config = RunConfig(
        out=out,
        progress=False,
        test_size=0.25,
        validation_size=0.2,
        # A tiny random teacher that learns the toy task (at 3 epochs of batch 8 and lr 1e-3
        # it stayed at chance, 0.5, and so did its student: a threshold then falls inside
        # the test texts' confidences only by luck), so the student is unsure of some texts.
        teacher=TeacherConfig(
            model=str(tiny_bert_dir),
            epochs=10,
            learning_rate=3e-3,
            max_length=32,
            batch_size=4,
        ),
        student=StudentConfig(min_df=1),
    )
    return (
        TextDataset(texts, labels, "toy"),
        TextDataset([t + " indeed" for t in texts], None, "toy-u"),
        config,
    )


@pytest.fixture(scope="module")
def run_dir(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cascade") / "run"
    labeled, unlabeled, config = _inputs(tiny_bert_dir, out)
    metrics = run_pipeline(labeled, unlabeled, None, config)
    # A teacher at chance (as this toy run's was at 3 epochs) makes every cascade check moot.
    assert metrics["systems"]["teacher"]["accuracy"] >= 0.75, metrics["teacher"]["history"]
    for name in ("calibration", "cascade", "fidelity"):
        assert name in metrics
    assert len(metrics["cascade"]["curve"]) == 101
    assert {"teacher", "student"} <= set(metrics["calibration"])
    for name in ("reliability.png", "cascade.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert "## Cascade" in (out / "report.md").read_text()
    return out


def test_cascade_artifact_defers_exactly_the_unsure(run_dir: Path) -> None:
    spec = json.loads((run_dir / "cascade" / CASCADE_FILE).read_text())
    assert spec["student"] == "../student" and spec["teacher"] == "../teacher"
    texts = ["a wonderful film", "the plot was dull", "i saw it", ""]
    everything = Cascade.load(run_dir / "cascade", threshold=1.01).predict_detailed(texts)
    nothing = Cascade.load(run_dir / "cascade", threshold=0.0).predict_detailed(texts)
    assert everything.sources == ["teacher"] * 4 and nothing.sources == ["student"] * 4
    from textdistill.teacher import Teacher

    teacher = Teacher.load(run_dir / "teacher")
    np.testing.assert_allclose(everything.logits, teacher.logits(texts), atol=1e-5)
    assert everything.labels == teacher.predict(texts)
    np.testing.assert_allclose(everything.probabilities.sum(axis=1), 1.0, atol=1e-6)


def test_the_stored_threshold_defers_the_unsure_and_its_speed_is_measured(
    run_dir: Path, tiny_bert_dir: Path
) -> None:
    """At the threshold the artifact stores (not only 0 and 1): exactly the test texts the
    calibrated student is unsure of go to the teacher, each answered by the model it names,
    and the operating point's docs/s, deferral and accuracy are those of a timed run."""
    from textdistill.runtime import load
    from textdistill.teacher import Teacher

    labeled, unlabeled, config = _inputs(tiny_bert_dir, run_dir)
    test = prepare_splits(labeled, unlabeled, None, config).test
    spec = json.loads((run_dir / "cascade" / CASCADE_FILE).read_text())
    cascade = Cascade.load(run_dir / "cascade")
    assert cascade.threshold == spec["threshold"]
    student = load(str(run_dir / "student"))
    unsure = student.predict_proba(test.texts).max(axis=1) < spec["threshold"]
    assert 0 < unsure.sum() < len(test), "the toy run's threshold should defer some, not all"
    got = cascade.predict_detailed(test.texts)
    assert got.sources == ["teacher" if u else "student" for u in unsure]
    by_teacher = Teacher.load(run_dir / "teacher").predict(test.texts)
    by_student = student.predict(test.texts)
    answers = zip(by_teacher, by_student, unsure, strict=True)
    assert got.labels == [t if u else s for t, s, u in answers]

    measured = spec["metrics"]["measured"]["operating_point"]
    assert measured["threshold"] == spec["threshold"] and measured["n_docs"] == len(test)
    assert measured["fraction_deferred"] == pytest.approx(unsure.mean())
    assert measured["accuracy"] == pytest.approx(np.mean(np.array(got.labels) == test.labels))
    assert measured["docs_per_s"] == pytest.approx(len(test) / measured["seconds"])
    computed = json.loads((run_dir / "metrics.json").read_text())["cascade"]["operating_point"]
    assert computed["fraction_deferred"] == pytest.approx(measured["fraction_deferred"])
    report = (run_dir / "report.md").read_text()
    assert f"{measured['docs_per_s']:,.0f} docs/s, measured" in report
    assert "docs/s (computed)" in report


def test_the_threshold_is_chosen_on_texts_no_fit_read_and_none_tested(
    run_dir: Path, tiny_bert_dir: Path
) -> None:
    """The texts the stored threshold was chosen on are held-out transfer texts that the
    student's fit never read under another row (a repeat, a gold text) and that are not test
    texts. The toy unlabeled set repeats texts, as real ones do, so that this can fail."""
    from collections import Counter

    from textdistill.runtime import load, softmax
    from textdistill.teacher import Teacher

    labeled, unlabeled, config = _inputs(tiny_bert_dir, run_dir)
    splits = prepare_splits(labeled, unlabeled, None, config)
    held_out = json.loads((run_dir / "student-validation.json").read_text())
    sample = held_out["texts"]
    transfer = Counter(splits.unlabeled.texts)
    assert max(transfer.values()) > 1, "the toy transfer set should repeat a text"
    assert len(sample) >= 10
    assert set(sample).isdisjoint(splits.test.texts)
    assert set(sample).isdisjoint(splits.teacher_train.texts)
    # every row of a sample text was held out, so none trained the fit that scored it
    assert all(transfer[text] == n for text, n in Counter(sample).items())
    # and the stored threshold is the one these texts give
    spec = json.loads((run_dir / "cascade" / CASCADE_FILE).read_text())
    student = load(str(run_dir / "student"))
    confidence = student.probabilities(np.asarray(held_out["logits"])).max(axis=1)
    teacher = Teacher.load(run_dir / "teacher").logits(sample)
    expected = choose_threshold(confidence, softmax(teacher, spec["teacher_temperature"]).max(1))
    assert spec["threshold"] == pytest.approx(expected)


def test_cascade_speed_is_timed_not_computed() -> None:
    """A teacher that takes 20 ms a text: the measured rate falls with what is deferred,
    whatever the rates the curve is computed from would say."""
    import time

    from textdistill.cascade import time_cascade
    from textdistill.runtime import LinearModel, NgramFeaturizer

    texts = [f"great film {i}" for i in range(10)] + [f"film {i}" for i in range(10)]
    featurizer = NgramFeaturizer.fit(texts, min_df=1)
    coef = np.zeros((featurizer.n_features, 2), dtype=np.float32)
    coef[featurizer.vocabulary.index("great")] = [-20.0, 20.0]  # sure of "great", unsure else
    cascade = Cascade(
        LinearModel(featurizer, coef, np.zeros(2), ["neg", "pos"]), Path("unused"), 0.9
    )

    class SlowTeacher:
        classes_ = ("neg", "pos")

        def logits(self, batch: list[str]) -> np.ndarray:
            time.sleep(0.02 * len(batch))
            return np.tile(np.array([[-2.0, 2.0]], dtype=np.float32), (len(batch), 1))

    cascade._teacher = SlowTeacher()
    labels = ["pos"] * 20  # the student ties (says "neg") where unsure; the teacher is right
    none, half, every = time_cascade(cascade, texts, labels, [0.0, 0.9, 1.01])
    assert cascade.threshold == 0.9  # restored
    assert (none["fraction_deferred"], half["fraction_deferred"], every["fraction_deferred"]) == (
        0.0,
        0.5,
        1.0,
    )
    assert none["accuracy"] == 0.5 and half["accuracy"] == 1.0 and every["accuracy"] == 1.0
    assert every["seconds"] >= 20 * 0.02 and half["seconds"] >= 10 * 0.02
    assert every["docs_per_s"] <= 50.0 < none["docs_per_s"]
    assert half["docs_per_s"] == pytest.approx(20 / half["seconds"])


def test_predict_and_serve_with_a_cascade(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "predict",
                str(run_dir / "cascade"),
                "great film",
                "awful film",
                "--cascade",
                "--threshold",
                "1.01",
            ]
        )
        == 0
    )
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][-1] == "source" and [row[-1] for row in rows[1:]] == ["teacher"] * 2
    assert main(["predict", str(run_dir / "student"), "x", "--threshold", "0.5"]) == 2
    assert main(["predict", str(run_dir / "student"), "x", "--cascade"]) == 1
    assert "not a cascade" in capsys.readouterr().err

    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from textdistill.serve import create_app

    client = TestClient(create_app(run_dir / "cascade", cascade=True))
    answer = client.post("/predict", json={"texts": ["great film", "awful"]})
    assert answer.status_code == 200
    assert {p["source"] for p in answer.json()["predictions"]} <= {"student", "teacher"}

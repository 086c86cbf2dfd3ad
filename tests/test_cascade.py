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
from textdistill.pipeline import RunConfig, StudentConfig, run_pipeline
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


@pytest.fixture(scope="module")
def run_dir(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import _make_toy_sentiment

    texts, labels = _make_toy_sentiment(60, seed=3)
    out = tmp_path_factory.mktemp("cascade") / "run"
    config = RunConfig(
        out=out,
        progress=False,
        test_size=0.25,
        validation_size=0.2,
        teacher=TeacherConfig(
            model=str(tiny_bert_dir), epochs=3, learning_rate=1e-3, max_length=32, batch_size=8
        ),
        student=StudentConfig(min_df=1),
    )
    metrics = run_pipeline(
        TextDataset(texts, labels, "toy"),
        TextDataset([t + " indeed" for t in texts], None, "toy-u"),
        None,
        config,
    )
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

"""Multilabel end to end: label sets in, sigmoid teacher, students with per-label thresholds,
numpy runtime, CLI, server and ONNX out.

The toy task: which aspects of a film (acting, music, story) a short review talks about; a
review may mention several or none. Its words are all in the tiny BERT's vocabulary.
"""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from textdistill.data import TextDataset
from textdistill.runtime import ArtifactError, LinearModel, load, read_manifest
from textdistill.students.linear import LinearStudent

ASPECTS = {
    "acting": ["acting", "actors", "cast"],
    "music": ["music"],
    "story": ["story", "plot", "script", "ending"],
}
OPINIONS = ["good", "great", "boring", "awful", "lovely", "weak", "superb", "dull"]
FILLERS = [
    "we watched it last night .",
    "i saw it in the cinema .",
    "my friends saw it on dvd .",
    "it was a long film .",
]


def _aspect_reviews(n: int, seed: int) -> tuple[list[str], list[tuple[str, ...]]]:
    """Reviews with 0-3 aspects each (about one in eight with none)."""
    rng = random.Random(seed)
    texts, label_sets = [], []
    for _ in range(n):
        chosen = sorted(a for a in ASPECTS if rng.random() < 0.45)
        parts = [rng.choice(FILLERS)]
        parts += [f"the {rng.choice(ASPECTS[a])} was {rng.choice(OPINIONS)} ." for a in chosen]
        rng.shuffle(parts)
        texts.append(" ".join(parts))
        label_sets.append(tuple(chosen))
    return texts, label_sets


@pytest.fixture
def reviews() -> TextDataset:
    texts, label_sets = _aspect_reviews(160, seed=0)
    return TextDataset(texts=texts, labels=None, source="aspects", label_sets=label_sets)


def _subset_accuracy(predicted: list[object], truth: list[tuple[str, ...]]) -> float:
    return float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))


# ------------------------------------------------------------------------ linear student


def test_linear_student_learns_label_sets_from_a_multilabel_teachers_logits() -> None:
    texts, sets = _aspect_reviews(400, seed=1)
    classes = sorted(ASPECTS)
    on = np.array([[c in s for c in classes] for s in sets], dtype=float)
    # A confident teacher with noise: +3 for a label that is on, -3 off.
    logits = 3 * (2 * on - 1) + np.random.default_rng(0).normal(0, 0.5, on.shape)
    for loss in ("mse", "soft_ce"):
        student = LinearStudent(loss=loss, min_df=1, alpha=[0.0, 0.2]).fit(
            texts[:300],
            logits[:300],
            classes=classes,
            gold_texts=texts[300:340],
            gold_labels=sets[300:340],
            multilabel=True,
        )
        predicted = student.predict(texts[340:])
        assert all(isinstance(p, tuple) for p in predicted)
        assert _subset_accuracy(predicted, sets[340:]) > 0.9, loss
        assert student.selection_["multilabel"] is True
        # probabilities are one sigmoid per label, not a distribution over labels
        probabilities = student.predict_proba(["the music was good ."])[0]
        assert probabilities[classes.index("music")] > 0.5 > probabilities[0]


def test_neural_student_learns_label_sets(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from textdistill.students.neural import NeuralStudent

    texts, sets = _aspect_reviews(400, seed=6)
    classes = sorted(ASPECTS)
    on = np.array([[c in s for c in classes] for s in sets], dtype=float)
    student = NeuralStudent(architecture="bag", min_df=1, epochs=30, random_state=0).fit(
        texts[:300],
        3 * (2 * on[:300] - 1),
        classes=classes,
        gold_texts=texts[300:340],
        gold_labels=sets[300:340],
        multilabel=True,
    )
    assert student.selection_["multilabel"] is True
    assert _subset_accuracy(student.predict(texts[340:]), sets[340:]) > 0.9
    student.save(tmp_path / "neural")
    loaded = load(str(tmp_path / "neural"))
    assert loaded.multilabel and loaded.predict(texts[340:]) == student.predict(texts[340:])


def test_hard_label_sets_give_one_vs_rest_logistic_regression() -> None:
    texts, sets = _aspect_reviews(300, seed=2)
    student = LinearStudent(loss="soft_ce", min_df=1).fit(texts[:240], sets[:240])
    assert student.model_.multilabel and student.classes_ == sorted(ASPECTS)
    assert _subset_accuracy(student.predict(texts[240:]), sets[240:]) > 0.9
    assert () in student.predict(["we watched it last night ."])


def test_label_sets_must_be_lists_of_names() -> None:
    logits = np.zeros((2, 2))
    with pytest.raises(TypeError, match="lists of names"):
        LinearStudent(min_df=1).fit(
            ["a b", "c d"],
            logits,
            classes=["x", "y"],
            gold_texts=["e"],
            gold_labels=["x"],
            multilabel=True,
        )
    with pytest.raises(ValueError, match="not among the classes"):
        LinearStudent(min_df=1).fit(
            ["a b", "c d"],
            logits,
            classes=["x", "y"],
            gold_texts=["e"],
            gold_labels=[("z",)],
            multilabel=True,
        )


# ----------------------------------------------------------------------------- runtime


def _multilabel_model(tmp_path: Path) -> tuple[LinearModel, Path]:
    texts, sets = _aspect_reviews(200, seed=3)
    model = LinearStudent(loss="soft_ce", min_df=1).fit(texts, sets).model_
    model.thresholds = np.array([-0.5, 0.0, 0.25])
    model.save(tmp_path / "student")
    return model, tmp_path / "student"


def test_multilabel_artifact_keeps_thresholds_and_is_refused_by_older_readers(
    tmp_path: Path,
) -> None:
    model, path = _multilabel_model(tmp_path)
    manifest = read_manifest(path)
    # format 2: a textdistill that reads only format 1 refuses it instead of answering one label
    assert manifest["format_version"] == 2 and manifest["task"] == "multilabel"
    loaded = load(str(path))
    assert loaded.multilabel and loaded.thresholds.tolist() == [-0.5, 0.0, 0.25]
    probes = ["the cast was good . the music was dull .", "it was a long film ."]
    assert loaded.predict(probes) == model.predict(probes)
    logits = loaded.decision_function(probes)
    expected = [
        tuple(name for j, name in enumerate(loaded.labels) if row[j] > loaded.thresholds[j])
        for row in logits
    ]
    assert loaded.predict(probes) == expected
    assert np.allclose(loaded.predict_proba(probes), 1 / (1 + np.exp(-logits)))


def test_single_label_artifacts_stay_format_1(tmp_path: Path) -> None:
    student = LinearStudent(min_df=1).fit(["good fun", "bad plot"] * 5, ["pos", "neg"] * 5)
    student.save(tmp_path / "s")
    manifest = read_manifest(tmp_path / "s")
    assert manifest["format_version"] == 1 and "task" not in manifest
    assert load(str(tmp_path / "s")).predict(["good fun"]) == ["pos"]


def test_thresholds_are_checked(tmp_path: Path) -> None:
    model, _ = _multilabel_model(tmp_path)
    with pytest.raises(ValueError, match="one finite threshold per label"):
        LinearModel(
            model.featurizer, model.coef, model.intercept, model.labels, multilabel=True,
            thresholds=[0.0, 1.0],
        )  # fmt: skip
    with pytest.raises(ValueError, match="multilabel models only"):
        LinearModel(
            model.featurizer, model.coef, model.intercept, model.labels, thresholds=[0.0] * 3
        )
    manifest_path = tmp_path / "student" / "model.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["task"] = "ranking"
    from textdistill.runtime.artifact import _manifest_checksum

    manifest["checksum"] = _manifest_checksum(manifest)
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="unknown task 'ranking'"):
        load(str(tmp_path / "student"))


def test_temperature_scaling_calibrates_each_labels_sigmoid() -> None:
    from textdistill.calibration import fit_temperature

    rng = np.random.default_rng(0)
    # calibrated logits: each label is on with probability sigmoid(logit)
    honest = rng.normal(scale=2.0, size=(5000, 4))
    truth = (rng.random(honest.shape) < 1 / (1 + np.exp(-honest))).astype(float)
    assert 2.5 < fit_temperature(3 * honest, truth) < 3.5  # made 3x overconfident
    assert 0.85 < fit_temperature(honest, truth) < 1.15


def test_a_cascade_refuses_a_multilabel_student(tmp_path: Path) -> None:
    from textdistill.cascade import Cascade

    model, _ = _multilabel_model(tmp_path)
    with pytest.raises(ValueError, match="single-label student"):
        Cascade(model, tmp_path / "teacher", threshold=0.5)


def test_onnx_export_of_a_multilabel_student(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from textdistill.export import OnnxStudent, export_onnx

    model, path = _multilabel_model(tmp_path)
    exported = OnnxStudent(export_onnx(path, tmp_path / "student.onnx"))
    probes = ["the cast was good . the music was dull .", "the plot was weak .", "it was ."]
    assert exported.multilabel and exported.predict(probes) == model.predict(probes)
    assert np.allclose(exported.predict_proba(probes), model.predict_proba(probes), atol=1e-5)


def test_server_answers_label_lists(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from textdistill.serve import create_app

    model, path = _multilabel_model(tmp_path)
    probes = ["the cast was good . the music was dull .", "it was a long film ."]
    with TestClient(create_app(path)) as client:
        answer = client.post("/predict", json={"texts": probes}).json()
        metadata = client.get("/metadata").json()
    assert [p["label"] for p in answer["predictions"]] == [list(p) for p in model.predict(probes)]
    assert answer["model"]["task"] == metadata["task"] == "multilabel"


# ----------------------------------------------------------------------------- teacher


def test_teacher_fine_tunes_with_binary_cross_entropy(
    tiny_bert_dir: Path, reviews: TextDataset, tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    from textdistill.teacher import Teacher

    assert reviews.label_sets is not None
    teacher = Teacher(
        model=str(tiny_bert_dir),
        epochs=6,
        learning_rate=2e-3,
        max_length=32,
        batch_size=8,
    )
    teacher.fit(
        reviews.texts[:120],
        reviews.label_sets[:120],
        val_texts=reviews.texts[120:],
        val_labels=reviews.label_sets[120:],
        progress=False,
    )
    assert teacher.multilabel_ and teacher.classes_ == sorted(ASPECTS)
    assert "val_micro_f1" in teacher.history_[-1]
    predicted = teacher.predict(reviews.texts[120:])
    assert all(isinstance(p, tuple) for p in predicted)
    # well above chance on unseen rows: a random head gets a micro-F1 near 0.5 at best
    assert max(h["val_micro_f1"] for h in teacher.history_) > 0.75
    probabilities = teacher.predict_proba(reviews.texts[:5])
    assert probabilities.shape == (5, 3) and not np.allclose(probabilities.sum(axis=1), 1.0)

    teacher.save(tmp_path / "teacher")
    loaded = Teacher.load(tmp_path / "teacher")
    assert loaded.multilabel_ and loaded.fingerprint == teacher.fingerprint
    assert loaded.predict(reviews.texts[:10]) == teacher.predict(reviews.texts[:10])
    with pytest.raises(ValueError, match="class names or both label sets"):
        Teacher(model=str(tiny_bert_dir), epochs=1, max_length=16).fit(
            ["a", "b"], [("x",), ("y",)], val_texts=["c"], val_labels=["x"], progress=False
        )


def test_a_new_head_starts_at_the_class_priors() -> None:
    torch = pytest.importorskip("torch")
    from textdistill.class_balance import class_counts, prior_biases, start_head_at

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    targets = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=np.float32)
    start_head_at(model, prior_biases(class_counts(targets, 3), 4, multilabel=True))
    prior = np.array([0.75, 0.25, 1e-3])  # a label never on is clipped, not -inf
    assert np.allclose(model[2].bias.detach().numpy(), np.log(prior / (1 - prior)), atol=1e-6)
    ids = np.array([0, 0, 0, 1])
    start_head_at(model, prior_biases(class_counts(ids, 3), 4, multilabel=False))
    log_prior = np.log([0.75, 0.25, 1e-3])
    assert np.allclose(model[2].bias.detach().numpy(), log_prior - log_prior.mean(), atol=1e-6)


def test_frozen_encoder_teacher_fits_one_head_per_label(
    tiny_bert_dir: Path, reviews: TextDataset
) -> None:
    pytest.importorskip("torch")
    from textdistill.teacher import Teacher

    assert reviews.label_sets is not None
    teacher = Teacher(model=str(tiny_bert_dir), method="frozen", max_length=32)
    teacher.fit(reviews.texts, [(*s, "always") for s in reviews.label_sets], progress=False)
    # a label on in every training row gets a constant "yes", not a failed fit
    assert all("always" in p for p in teacher.predict(reviews.texts[:20]))


# ---------------------------------------------------------------------------- pipeline


def _write_csv(path: Path, texts: list[str], sets: list[tuple[str, ...]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "tags"])
        for text, names in zip(texts, sets, strict=True):
            writer.writerow([text, "|".join(names) if names else "[]"])
    return path


@pytest.mark.slow
def test_cli_run_predict_and_report_on_multilabel_data(tiny_bert_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    texts, sets = _aspect_reviews(260, seed=4)
    labeled = _write_csv(tmp_path / "labeled.csv", texts[:160], sets[:160])
    test = _write_csv(tmp_path / "test.csv", texts[160:], sets[160:])
    unlabeled = tmp_path / "unlabeled.txt"
    # the generator repeats texts: those the test set also holds are left out of the transfer
    # set (176 of these 800), which must still be large enough to follow the teacher
    unlabeled.write_text("\n".join(_aspect_reviews(800, seed=5)[0]) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    cli = [sys.executable, "-m", "textdistill.cli"]
    finished = subprocess.run(
        [
            *cli, "run", "--labeled", str(labeled), "--test", str(test),
            "--unlabeled", str(unlabeled), "--label-column", "tags", "--multilabel",
            "--label-separator", "|", "--teacher", str(tiny_bert_dir), "--epochs", "6",
            "--learning-rate", "2e-3", "--max-length", "32", "--batch-size", "8",
            "--out", str(out), "--no-progress",
        ],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "multilabel"
    assert "calibration" not in metrics and not (out / "cascade").exists()
    assert metrics["data"]["labeled"]["labels_per_row"] > 1.0
    systems = metrics["systems"]
    for name in ("baseline", "teacher", "student"):
        assert {"micro_f1", "macro_f1", "subset_accuracy", "hamming_loss"} <= set(systems[name])
    # n-grams find the aspect words at once; the tiny random BERT learns them only roughly
    assert systems["baseline"]["micro_f1"] > 0.9 and systems["teacher"]["micro_f1"] > 0.6
    # the student follows its teacher, mistakes included
    assert systems["student"]["label_agreement_with_teacher"] > 0.85
    thresholds = metrics["student"]["thresholds"]
    assert sorted(thresholds) == sorted(ASPECTS)
    student = load(str(out / "student"))
    assert student.thresholds.tolist() == list(thresholds.values())
    # sigmoid probabilities calibrated on the validation split; decisions do not move
    assert student.temperature == metrics["student"]["temperature"] > 0
    assert sorted(metrics["teacher"]["thresholds"]) == sorted(ASPECTS)
    # the baseline trains on every labeled row: its thresholds come from out-of-fold logits
    assert metrics["baseline"]["threshold_rows"] == 160
    assert sorted(metrics["baseline"]["thresholds"]) == sorted(ASPECTS)
    report = (out / "report.md").read_text()
    assert "micro-F1" in report

    predicted = subprocess.run(
        [*cli, "predict", str(out / "student"), "the music was good .", "--format", "jsonl"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    record = json.loads(predicted.stdout.splitlines()[0])
    assert isinstance(record["label"], list) and "music" in record["label"]
    written = tmp_path / "predictions.csv"
    subprocess.run(
        [*cli, "predict", str(out / "student"), "the cast was good .", "-o", str(written)],
        check=True, timeout=120,
    )  # fmt: skip
    # the CSV's label cell is a JSON list, which --multilabel reads back
    with written.open(encoding="utf-8", newline="") as handle:
        row = next(csv.DictReader(handle))
    assert "acting" in json.loads(row["label"])


def test_label_separator_needs_multilabel(tmp_path: Path) -> None:
    from textdistill.cli import main

    labeled = _write_csv(tmp_path / "l.csv", ["a"], [("x",)])
    assert main(["run", "--labeled", str(labeled), "--label-separator", "|"]) == 2

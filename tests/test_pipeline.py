"""The whole pipeline with a tiny random BERT: outputs, caching, resumption."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from textdistill.data import TextDataset
from textdistill.pipeline import AugmentConfig, RunConfig, StudentConfig, run_pipeline
from textdistill.students.linear import LinearStudent
from textdistill.teacher import Teacher, TeacherConfig, logits_key
from textdistill.teacher_precision import LABELING_PRECISIONS


def _config(tiny_bert_dir: Path, out: Path, **student: object) -> RunConfig:
    return RunConfig(
        out=out,
        seed=0,
        progress=False,
        test_size=0.25,
        validation_size=0.2,
        teacher=TeacherConfig(
            model=str(tiny_bert_dir), epochs=2, learning_rate=1e-3, max_length=32, batch_size=8
        ),
        student=StudentConfig(min_df=1, **student),  # type: ignore[arg-type]
    )


@pytest.fixture
def datasets(toy_sentiment: tuple[list[str], list[str]]) -> tuple[TextDataset, TextDataset]:
    texts, labels = toy_sentiment
    labeled = TextDataset(texts=texts, labels=labels, source="toy")
    unlabeled = TextDataset(
        texts=[t + " indeed" for t in texts], labels=None, source="toy-unlabeled"
    )
    return labeled, unlabeled


def test_run_writes_metrics_report_plot_and_artifacts(
    tiny_bert_dir: Path, tmp_path: Path, datasets: tuple[TextDataset, TextDataset]
) -> None:
    labeled, unlabeled = datasets
    config = _config(tiny_bert_dir, tmp_path / "run")
    # Settings under which the tiny random BERT learns the toy task (at the other tests' 2
    # epochs of lr 1e-3 it answers one class for every text, 0.5), so that a floor on the
    # teacher and its student can fail; one thread, so the floors hold on any core count.
    config.teacher.epochs, config.teacher.learning_rate = 10, 3e-3
    config.teacher.num_threads = 1
    metrics = run_pipeline(labeled, unlabeled, None, config)
    run = tmp_path / "run"
    for name in (
        "metrics.json",
        "report.md",
        "accuracy_vs_throughput.png",
        "baseline/model.json",
        "student/model.json",
        "teacher/teacher.json",
    ):
        assert (run / name).exists(), name
    assert json.loads((run / "metrics.json").read_text())["systems"] == metrics["systems"]
    assert set(metrics["systems"]) == {"baseline", "teacher", "student"}
    for row in metrics["systems"].values():
        assert 0.0 <= row["accuracy"] <= 1.0
        assert row["docs_per_s"] > 0 and row["size_bytes"] > 0
        assert set(row["per_class"]) == {"neg", "pos"}
    # The toy labels are carried by sentiment words. On these 20 balanced test rows the TF-IDF
    # baseline gets 0.95, the teacher 0.90 and its student 0.85, agreeing with it on 0.95
    # (seeds 1 and 2: 0.85 and 0.95 for both, agreement 1.0). A teacher answering one class
    # gets 0.5; a student fit to the teacher's logits shuffled across texts still learns from
    # its 48 gold rows, to 0.75 with agreement 0.75, and fails the last two floors.
    systems = metrics["systems"]
    assert systems["baseline"]["accuracy"] >= 0.9
    assert systems["teacher"]["accuracy"] >= 0.8, metrics["teacher"]["history"]
    assert systems["student"]["accuracy"] >= 0.8
    assert systems["student"]["agreement_with_teacher"] >= 0.85
    # a quarter of the 80 labeled rows, less the held-out rows whose text a training row
    # repeats (the toy set repeats texts): those train instead
    from textdistill.data import stratified_split

    carved = stratified_split(labeled, 0.25, seed=0)[1]
    repeated = len(carved) - len(stratified_split(labeled, 0.25, seed=0, apart=True)[1])
    assert repeated > 0 and metrics["data"]["test"]["rows"] == 20 - repeated
    labeling = metrics["teacher"]["labeling"]
    assert labeling["n_scored"] == labeling["n_unique"] == len(set(unlabeled.texts))
    assert "| student |" in (run / "report.md").read_text()
    check = labeling["precision"]
    assert check["precision"] in LABELING_PRECISIONS and check["check_docs"] > 0
    key = logits_key(metrics["teacher"]["fingerprint"], check["precision"])
    assert (run / "logits" / key / "store.json").is_file()
    assert "Labeling precision" in (run / "report.md").read_text()


def test_a_forced_precision_labels_into_its_own_cache(
    tiny_bert_dir: Path, tmp_path: Path, datasets: tuple[TextDataset, TextDataset]
) -> None:
    labeled, unlabeled = datasets
    config = _config(tiny_bert_dir, tmp_path / "run")
    config.teacher.device = "cpu"  # int8 is CPU-only
    config.teacher.precision = "fp32"
    fp32 = run_pipeline(labeled, unlabeled, None, config)
    config.teacher.precision = "int8"  # labeling only: the teacher is not fine-tuned again
    int8 = run_pipeline(labeled, unlabeled, None, config)
    assert fp32["teacher"]["fingerprint"] == int8["teacher"]["fingerprint"]
    assert fp32["teacher"]["fit_seconds"] == int8["teacher"]["fit_seconds"]
    assert int8["teacher"]["labeling"]["precision"]["precision"] == "int8"
    assert int8["teacher"]["labeling"]["n_scored"] == len(set(unlabeled.texts))  # not reused
    fingerprint = int8["teacher"]["fingerprint"]
    assert (tmp_path / "run" / "logits" / f"{fingerprint}-int8").is_dir()


def test_rerun_skips_every_stage_and_never_loads_the_teacher(
    tiny_bert_dir: Path,
    tmp_path: Path,
    datasets: tuple[TextDataset, TextDataset],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    labeled, unlabeled = datasets
    config = _config(tiny_bert_dir, tmp_path / "run")
    first = run_pipeline(labeled, unlabeled, None, config)

    def forbidden(*args: object, **kwargs: object) -> Teacher:
        raise AssertionError("the teacher should not be loaded on an unchanged rerun")

    monkeypatch.setattr(Teacher, "load", forbidden)
    monkeypatch.setattr(Teacher, "fit", forbidden)
    second = run_pipeline(labeled, unlabeled, None, config)
    assert second["teacher"]["labeling"]["n_scored"] == 0
    for name in ("baseline", "teacher", "student"):
        assert second["systems"][name]["accuracy"] == first["systems"][name]["accuracy"]


def test_changing_the_student_refits_only_the_student(
    tiny_bert_dir: Path,
    tmp_path: Path,
    datasets: tuple[TextDataset, TextDataset],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    labeled, unlabeled = datasets
    run_pipeline(labeled, unlabeled, None, _config(tiny_bert_dir, tmp_path / "run"))
    monkeypatch.setattr(Teacher, "fit", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    metrics = run_pipeline(
        labeled, unlabeled, None, _config(tiny_bert_dir, tmp_path / "run", loss="soft_ce")
    )
    assert metrics["student"]["candidates"]["linear"]["selection"]["loss"] == "soft_ce"
    assert {"linear", "dense"} <= set(metrics["student"]["candidates"])
    # a fit of fewer kinds leaves none of the earlier fit's candidates behind to be scored
    metrics = run_pipeline(
        labeled, unlabeled, None, _config(tiny_bert_dir, tmp_path / "run", kind="linear")
    )
    assert set(metrics["student"]["candidates"]) == {"linear"}
    assert [p.name for p in (tmp_path / "run" / "candidates").iterdir()] == ["linear"]


def test_resumes_labeling_after_a_crash(
    tiny_bert_dir: Path,
    tmp_path: Path,
    datasets: tuple[TextDataset, TextDataset],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    labeled, unlabeled = datasets
    config = _config(tiny_bert_dir, tmp_path / "run")
    config.label_batch_size = 10
    real_logits = Teacher.logits
    calls: list[int] = []

    def crash_on_third_batch(self: Teacher, texts: list[str], **kwargs: object) -> np.ndarray:
        calls.append(len(texts))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_logits(self, texts, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Teacher, "logits", crash_on_third_batch)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(labeled, unlabeled, None, config)
    monkeypatch.setattr(Teacher, "logits", real_logits)
    metrics = run_pipeline(labeled, unlabeled, None, config)
    labeling = metrics["teacher"]["labeling"]
    assert (labeling["n_cached"], labeling["n_scored"]) == (20, len(set(unlabeled.texts)) - 20)


def test_without_unlabeled_data_the_labeled_texts_are_the_transfer_set(
    tiny_bert_dir: Path, tmp_path: Path, datasets: tuple[TextDataset, TextDataset]
) -> None:
    labeled, _ = datasets
    metrics = run_pipeline(labeled, None, None, _config(tiny_bert_dir, tmp_path / "run"))
    assert any("no unlabeled set" in note for note in metrics["notes"])
    # all labeled texts but the validation split, where the student is calibrated
    assert metrics["data"]["unlabeled"]["rows"] == metrics["data"]["teacher_train"]["rows"]


def test_a_frozen_encoder_teacher_runs_end_to_end(
    tiny_bert_dir: Path, tmp_path: Path, datasets: tuple[TextDataset, TextDataset]
) -> None:
    labeled, unlabeled = datasets
    config = _config(tiny_bert_dir, tmp_path / "run")
    config.teacher.method = "frozen"
    metrics = run_pipeline(labeled, unlabeled, None, config)
    assert metrics["teacher"]["history"][0]["train_loss"] is None
    assert metrics["systems"]["teacher"]["accuracy"] > 0.5
    assert "| 1 | - |" in (tmp_path / "run" / "report.md").read_text()


def test_augmented_texts_are_labeled_by_the_teacher_and_join_the_transfer_set(
    tiny_bert_dir: Path,
    tmp_path: Path,
    datasets: tuple[TextDataset, TextDataset],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    labeled, _ = datasets
    plain = run_pipeline(labeled, None, None, _config(tiny_bert_dir, tmp_path / "run"))
    config = _config(tiny_bert_dir, tmp_path / "run")
    config.augment = AugmentConfig(n_iter=4, tagger="shape")
    monkeypatch.setattr(Teacher, "fit", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    metrics = run_pipeline(labeled, None, None, config)
    info = metrics["augment"]
    assert info["mask_token"] == "[MASK]" and info["tagger_used"] == "shape"
    n_gold = metrics["data"]["teacher_train"]["rows"]
    assert 0 < info["n_synthetic"] <= 4 * n_gold
    # each scored once: a synthetic text the store already holds (a text of the first run
    # that augmentation happened to remake) is read back, not scored again
    labeling = info["labeling"]
    assert labeling["n_scored"] + labeling["n_cached"] == labeling["n_unique"]
    assert labeling["n_unique"] == info["n_synthetic"] and labeling["n_scored"] > 0
    n_transfer = plain["student"]["n_teacher_rows"]
    assert metrics["student"]["n_teacher_rows"] == n_transfer + info["n_synthetic"]
    again = run_pipeline(labeled, None, None, config)  # same seed: same texts, all cached
    assert again["augment"]["labeling"]["n_scored"] == 0


def test_a_synthetic_text_is_held_out_with_its_source(
    tiny_bert_dir: Path,
    tmp_path: Path,
    datasets: tuple[TextDataset, TextDataset],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Held-out rows decide epochs, penalties and the kept student; a held-out synthetic text
    whose siblings or source train the student is nearly a training row."""
    labeled, unlabeled = datasets
    config = _config(tiny_bert_dir, tmp_path / "run")
    config.augment = AugmentConfig(n_iter=4, tagger="shape")
    seen: dict[str, Any] = {}
    fit = LinearStudent.fit

    def spy(self: LinearStudent, texts: Any, *args: Any, **kwargs: Any) -> LinearStudent:
        seen["groups"] = kwargs.get("groups")
        out = fit(self, texts, *args, **kwargs)
        seen["held_out"] = self.validation_rows_
        return out

    monkeypatch.setattr(LinearStudent, "fit", spy)
    metrics = run_pipeline(labeled, unlabeled, None, config)
    groups, held_out = seen["groups"], seen["held_out"]
    n_real = metrics["data"]["unlabeled"]["rows"]
    assert groups is not None and len(groups) == n_real + metrics["augment"]["n_synthetic"]
    trained = np.setdiff1d(np.arange(len(groups)), held_out)
    assert len(held_out) and not set(groups[held_out]) & set(groups[trained])  # whole groups
    assert -1 not in set(groups[held_out])  # a gold text's children always train
    assert np.sum(groups[n_real:] == -1) > 0  # there are such children
    # each group is one real unlabeled text (and the synthetic ones made from it)
    assert sorted(set(groups[:n_real])) == sorted(set(groups[groups >= 0]))


@pytest.mark.parametrize("repeats", [False, True])
@pytest.mark.parametrize("given", ["nothing", "test", "unlabeled", "both"])
def test_splits_keep_what_is_measured_apart_from_what_is_learned(
    toy_sentiment: tuple[list[str], list[str]], given: str, repeats: bool
) -> None:
    """Calibration (the teacher's validation split) and every test score rest on rows no model
    trained on: the test set, the teacher's training rows, its validation rows and (without an
    unlabeled file) the student's transfer set, which falls back to the training rows only.
    With ``repeats``, every labeled text has several rows and the unlabeled file holds the
    labeled texts again (the given test set's too), as data nobody cleaned does: a random split
    alone would put the same text on both sides."""
    from textdistill.pipeline import prepare_splits

    texts, labels = toy_sentiment
    texts = [f"{text} row {i}" for i, text in enumerate(texts)]  # every row distinct
    if repeats:  # and 15 of them on 3 more rows each, with the same label
        texts, labels = texts + texts[20:35] * 3, labels + labels[20:35] * 3
    test = TextDataset(texts[:20], labels[:20], "t") if given in ("test", "both") else None
    pool = texts if repeats else [f"unlabeled {t}" for t in texts]
    unlabeled = TextDataset(pool, None, "u") if given in ("unlabeled", "both") else None
    labeled = TextDataset(texts[20:] if test else texts, labels[20:] if test else labels, "l")
    config = RunConfig(out=Path("unused"), test_size=0.25, validation_size=0.2)
    splits = prepare_splits(labeled, unlabeled, test, config)
    train, validation = set(splits.teacher_train.texts), set(splits.teacher_validation.texts)
    tested = set(splits.test.texts)
    assert train and validation and tested
    assert not train & validation
    if test is None:  # a test set carved here; a given one is the user's (its repeats are noted)
        assert not tested & (train | validation)
    assert train | validation == set(splits.labeled.texts)
    transfer = set(splits.unlabeled.texts)
    assert not transfer & validation
    if unlabeled is None:
        assert transfer == train
    else:  # even where the unlabeled file repeats test texts
        assert not transfer & tested
    carved = round(0.25 * len(texts))
    assert len(splits.test) == (20 if test else carved) if not repeats else len(splits.test) > 0


def test_the_validation_split_grows_to_400_rows_where_the_labels_allow_it() -> None:
    """A tenth of 1,000 labels (100 rows, accuracy to +-4 points), but 400 of 3,000 (+-2)."""
    from textdistill.pipeline import prepare_splits

    def split(n: int, **options: float) -> int:
        labeled = TextDataset([f"text {i}" for i in range(n)], ["a", "b"] * (n // 2), "l")
        test = TextDataset(["held out a", "held out b"], ["a", "b"], "t")
        config = RunConfig(out=Path("unused"), **options)
        return len(prepare_splits(labeled, None, test, config).teacher_validation)

    assert split(1000) == 100
    assert split(3000) == 400
    assert split(6000) == 600
    assert split(3000, validation_size=0.1) == 300  # a given size is kept


def test_a_teacher_of_the_plain_loop_keeps_its_stage_key() -> None:
    """Run directories fine-tuned before length buckets and early stopping existed are reused
    by the default (plain) loop; either economy makes a new teacher."""
    from dataclasses import asdict

    from textdistill.pipeline import teacher_options
    from textdistill.teacher_training import PLAIN_LOOP

    before = {**asdict(TeacherConfig()), "precision": False}
    for name in PLAIN_LOOP:
        del before[name]
    assert teacher_options(TeacherConfig(**PLAIN_LOOP)) == before
    assert teacher_options(TeacherConfig(**{**PLAIN_LOOP, "patience": 0})) == before
    assert teacher_options(TeacherConfig()) == before
    assert teacher_options(TeacherConfig(bucket_by_length=True)) != before
    assert teacher_options(TeacherConfig(patience=3))["patience"] == 3

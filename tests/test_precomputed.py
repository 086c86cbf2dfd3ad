"""A teacher given as a file of logits: the run trains and evaluates without any model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from textdistill.data import DataError, TextDataset
from textdistill.pipeline import RunConfig, StudentConfig, prepare_splits, run_pipeline
from textdistill.precomputed import MissingLogitsError, read_precomputed_logits


def _logits(texts: list[str]) -> np.ndarray:
    """A rule 'teacher': positive words push the second logit up."""
    positive = ("good", "great", "excellent", "wonderful", "brilliant", "superb", "fantastic")
    score = np.array([sum(w in t for w in positive) - 0.5 for t in texts], dtype=np.float32)
    return np.stack([-score, score], axis=1)


def _write_csv(path: Path, texts: list[str], logits: np.ndarray) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "neg", "pos"])
        for text, (neg, pos) in zip(texts, logits, strict=True):
            writer.writerow([text, neg, pos])


@pytest.fixture
def data(toy_sentiment: tuple[list[str], list[str]]) -> tuple[TextDataset, TextDataset]:
    texts, labels = toy_sentiment
    labeled = TextDataset(texts=texts, labels=labels, source="toy")
    unlabeled = TextDataset(texts=[t + " again" for t in texts], labels=None, source="toy-u")
    return labeled, unlabeled


def _config(out: Path, logits_file: Path) -> RunConfig:
    return RunConfig(
        out=out,
        progress=False,
        test_size=0.25,
        teacher_logits=logits_file,
        student=StudentConfig(min_df=1),
    )


def test_a_run_from_a_logits_file_needs_no_teacher_model(
    data: tuple[TextDataset, TextDataset], tmp_path: Path
) -> None:
    labeled, unlabeled = data
    every = unlabeled.texts + labeled.texts
    _write_csv(tmp_path / "l.csv", every, _logits(every))
    metrics = run_pipeline(labeled, unlabeled, None, _config(tmp_path / "run", tmp_path / "l.csv"))
    assert metrics["teacher"]["precomputed"] and not (tmp_path / "run" / "teacher").exists()
    teacher = metrics["systems"]["teacher"]
    assert teacher["docs_per_s"] is None and teacher["size_bytes"] is None
    config = _config(tmp_path / "run", tmp_path / "l.csv")
    test_set = prepare_splits(labeled, unlabeled, None, config).test
    rule = ["pos" if z[1] > z[0] else "neg" for z in _logits(test_set.texts)]
    assert teacher["accuracy"] == pytest.approx(np.mean(np.array(rule) == test_set.labels))
    assert metrics["teacher"]["labeling"]["n_scored"] == 0  # everything came from the file
    assert metrics["systems"]["student"]["agreement_with_teacher"] > 0.7
    report = (tmp_path / "run" / "report.md").read_text()
    assert "precomputed logits" in report and "| n/a |" in report
    # No teacher model was configured or fine-tuned: none is recorded, no epoch table shown.
    recorded = json.loads((tmp_path / "run" / "metrics.json").read_text())["config"]["teacher"]
    assert recorded == {"precomputed": True, "logits": str(tmp_path / "l.csv")}
    assert "| epoch |" not in report
    assert "cascade" not in metrics
    # Nothing to defer to, and nothing held back: every unlabeled text is a teacher row of the
    # student that was kept (its own held-out tenth is refit on afterwards).
    assert metrics["student"]["n_teacher_rows"] == len(unlabeled.texts)
    for candidate in metrics["student"]["candidates"].values():
        assert candidate["n_teacher_rows"] == len(unlabeled.texts)


def test_a_text_missing_from_the_file_is_named(
    data: tuple[TextDataset, TextDataset], tmp_path: Path
) -> None:
    labeled, unlabeled = data
    some = labeled.texts  # no unlabeled rows
    _write_csv(tmp_path / "l.csv", some, _logits(some))
    with pytest.raises(MissingLogitsError, match=r"l\.csv: no logits for \d+ text\(s\)"):
        run_pipeline(labeled, unlabeled, None, _config(tmp_path / "run", tmp_path / "l.csv"))


def test_bad_values_and_shapes_name_the_place(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("text,neg,pos\na,0.1,0.2\nb,0.3,oops\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.csv, row 2 \(line 3\), column 'pos'"):
        read_precomputed_logits(path, ["neg", "pos"], [])
    with pytest.raises(DataError, match="column 'positive' not found"):
        read_precomputed_logits(path, ["neg", "positive"], [])
    array = tmp_path / "l.npy"
    np.save(array, np.zeros((3, 2), dtype=np.float32))
    table = read_precomputed_logits(array, ["neg", "pos"], ["a", "b", "c"])
    assert table.texts == ["a", "b", "c"] and table.scores.shape == (3, 2)
    with pytest.raises(DataError, match=r"shape \(2, 2\)"):
        read_precomputed_logits(array, ["neg", "pos"], ["a", "b"])
    np.save(array, np.array([[0.0, np.nan]]))
    with pytest.raises(DataError, match="row 1: expected finite logits"):
        read_precomputed_logits(array, ["neg", "pos"], ["a"])

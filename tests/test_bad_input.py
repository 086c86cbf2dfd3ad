"""Malformed input, one row of a table per case, each with its outcome through the CLI.

``textdistill run`` reads and checks everything before the first stage, so each case runs the
real command line (``main(["run", ...])``) up to that point: the pipeline is replaced by
:func:`prepare_splits` alone, the same checks without the hours of work behind them. A case
either fails with exit 1 (exit 2 for a config mistake) and one line naming what is wrong, or
is accepted with a stated outcome (rows skipped and counted, a note about duplicates...).

Then the cases that need more than reading: a 10 MB document and a million one-word
documents through labeling and prediction, CSV-injection-looking text in ``predict``'s CSV,
and property-based tests (hypothesis) that any Unicode string predicts without error and
deterministically.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from textdistill.cli import main
from textdistill.data import read_unlabeled
from textdistill.logits_store import LogitsStore
from textdistill.pipeline import RunConfig, Splits, prepare_splits
from textdistill.runtime import LinearModel, NgramFeaturizer, load
from textdistill.runtime import featurizer as featurizer_module

GOOD = "text,label\na great film,pos\nan awful film,neg\nsuperb acting,pos\ndull plot,neg\n"
TEN_MB = "great " * (10 * 1024 * 1024 // 6)


@dataclass(frozen=True)
class Case:
    """One bad input: the files, the extra flags, and what must come out."""

    files: dict[str, str | bytes]
    code: int
    says: tuple[str, ...]  # in the error line (code != 0) or in stderr (code 0)
    flags: tuple[str, ...] = ()
    check: Callable[[Splits], None] | None = None
    labeled: str = "labeled.csv"


def _jsonl(*rows: dict[str, Any]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


def _rows_kept(n: int) -> Callable[[Splits], None]:
    def check(splits: Splits) -> None:
        assert len(splits.labeled) + len(splits.test) == n

    return check


def _has_ten_mb_text(splits: Splits) -> None:
    assert max(len(t) for t in splits.labeled.texts + splits.test.texts) == len(TEN_MB)


def _million_unlabeled(splits: Splits) -> None:
    assert len(splits.unlabeled) == 1_000_000


def _injection_verbatim(splits: Splits) -> None:
    texts = set(splits.labeled.texts + splits.test.texts)
    assert {'=HYPERLINK("http://evil.example","click")', "+1+1", "-2+3", "@SUM(A1:A9)"} <= texts


def _million_words_file() -> str:
    rng = random.Random(0)
    return "".join(f"word{rng.randrange(1000)}\n" for _ in range(1_000_000))


CASES: dict[str, Case] = {
    # ---------------------------------------------------------------- refused, one line
    "empty file": Case({"labeled.csv": ""}, 1, ("labeled.csv", "the file is empty", "header")),
    "header only": Case({"labeled.csv": "text,label\n"}, 1, ("at least one data row",)),
    "missing text column": Case(
        {"labeled.csv": "review,label\nx,pos\n"}, 1, ("column 'text' not found", "--text-column")
    ),
    "missing label column": Case(
        {"labeled.csv": "text,stars\nx,5\n"}, 1, ("column 'label' not found", "'stars'")
    ),
    "NaN text": Case(
        {"labeled.jsonl": _jsonl({"text": "ok", "label": "a"}) + '{"text": NaN, "label": "b"}\n'},
        1,
        ("labeled.jsonl", "line 2", "column 'text'", "NaN"),
        labeled="labeled.jsonl",
    ),
    "null text": Case(
        {"labeled.jsonl": _jsonl({"text": "ok", "label": "a"}, {"text": None, "label": "b"})},
        1,
        ("line 2", "null"),
        labeled="labeled.jsonl",
    ),
    "empty text": Case(
        {"labeled.csv": GOOD + ",pos\n"}, 1, ("row 5", "column 'text'", "non-empty text")
    ),
    "whitespace text": Case(
        {"labeled.csv": GOOD + '" \t ",pos\n'}, 1, ("row 5", "non-empty text", "' \\t '")
    ),
    "non-UTF-8 bytes": Case(
        {"labeled.csv": GOOD.encode() + b"caf\xe9 au lait,pos\n"},
        1,
        ("line 6", "0xe9", "UTF-8", "iconv"),
    ),
    "non-UTF-8 in the unlabeled file": Case(
        {"labeled.csv": GOOD, "unlabeled.txt": b"fine\n\xff\xfe broken\n"},
        1,
        ("unlabeled.txt", "line 2", "0xff"),
        flags=("--unlabeled", "{unlabeled.txt}"),
    ),
    "labels of mixed types": Case(
        {
            "labeled.jsonl": _jsonl(
                {"text": "a", "label": 1}, {"text": "b", "label": "1"}, {"text": "c", "label": 1.0}
            )
        },
        1,
        ("expected labels of one type", "integer (line 1: 1)", "number", "string"),
        labeled="labeled.jsonl",
    ),
    "a label that is a list": Case(
        {"labeled.jsonl": _jsonl({"text": "a", "label": ["pos"]})},
        1,
        ("line 1", "column 'label'", "a string or a number"),
        labeled="labeled.jsonl",
    ),
    "a label with a lone surrogate": Case(
        {"labeled.jsonl": '{"text": "a", "label": "\\ud800"}\n'},
        1,
        ("line 1", "valid Unicode text"),
        labeled="labeled.jsonl",
    ),
    "a missing label": Case({"labeled.csv": GOOD + "no label,\n"}, 1, ("row 5", "a label")),
    "a single class": Case(
        {"labeled.csv": "text,label\na,pos\nb,pos\nc,pos\n"}, 1, ("at least 2 classes", "'pos'")
    ),
    "unseen test labels": Case(
        {"labeled.csv": GOOD, "test.csv": "text,label\nok,pos\nmeh,neutral\n"},
        1,
        ("test.csv", "row 2", "'neutral'", "known labels: ['neg', 'pos']"),
        flags=("--test", "{test.csv}"),
    ),
    "a row with too many fields": Case(
        {"labeled.csv": GOOD + "a,b,c\n"}, 1, ("row 5", "2 fields", "3 fields")
    ),
    "an unterminated quote": Case({"labeled.csv": GOOD + '"never closed,pos\n'}, 1, ("quoting",)),
    "a config option from a newer textdistill": Case(
        {"labeled.csv": GOOD, "run.toml": "[student]\nfuture_option = 1\n"},
        2,
        ("[student]", "unknown option(s) ['future_option']", "known:"),
        flags=("--config", "{run.toml}"),
    ),
    # ------------------------------------------------------------- accepted, as stated
    "bad rows skipped on request": Case(
        {"labeled.csv": GOOD + ",pos\n   ,neg\nx,\n"},
        0,
        (
            "skipped 3 rows: 2 empty text (row 5 (line 6), row 6 (line 7)), "
            "1 missing label (row 7 (line 8))",
        ),
        flags=("--on-bad-row", "skip"),
        check=_rows_kept(4),
    ),
    "a 10 MB single document": Case(
        {"labeled.csv": GOOD + f"{TEN_MB},pos\n"}, 0, (), check=_has_ten_mb_text
    ),
    "1 million one-word documents": Case(
        {"labeled.csv": GOOD, "unlabeled.txt": _million_words_file()},
        0,
        (),
        flags=("--unlabeled", "{unlabeled.txt}"),
        check=_million_unlabeled,
    ),
    "duplicate ids, duplicate texts, conflicting labels, test rows in training": Case(
        {
            "labeled.csv": "id,text,label\n1,a great film,pos\n1,a great film,neg\n"
            "2,dull plot,neg\n2,superb,pos\n3,awful,neg\n",
            "test.csv": "id,text,label\n9,dull plot,neg\n9,lovely,pos\n",
        },
        0,
        (
            "1 distinct texts occur in",
            "with different labels",
            "1 distinct test texts also occur in the labeled training rows",
        ),
        flags=("--test", "{test.csv}"),
    ),
    "labels that differ only in case or spaces": Case(
        {"labeled.csv": GOOD + "fine,Pos \n"},
        0,
        ("labels ['Pos ', 'pos'] differ only in case or surrounding spaces",),
    ),
    "CSV-injection-looking text": Case(
        {
            "labeled.csv": _csv(
                [
                    ["text", "label"],
                    ['=HYPERLINK("http://evil.example","click")', "pos"],
                    ["+1+1", "neg"],
                    ["-2+3", "pos"],
                    ["@SUM(A1:A9)", "neg"],
                    ["fine", "pos"],
                    ["bad", "neg"],
                ]
            )
        },
        0,
        (),
        check=_injection_verbatim,
    ),
    "a NUL byte, BOM and CRLF line ends": Case(
        {"labeled.csv": "\ufefftext,label\r\na\x00b,pos\r\nc,neg\r\nd,pos\r\ne,neg\r\n"},
        0,
        (),
        check=_rows_kept(4),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_malformed_input_table(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = CASES[name]
    for file_name, content in case.files.items():
        path = tmp_path / file_name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
    validated: list[Splits] = []

    def validate_only(labeled: Any, unlabeled: Any, test: Any, config: RunConfig) -> dict:
        validated.append(prepare_splits(labeled, unlabeled, test, config))
        for note in validated[-1].notes:
            print(f"[textdistill] {note}", file=sys.stderr)
        return {}

    monkeypatch.setattr("textdistill.pipeline.run_pipeline", validate_only)
    flags = list(case.flags)
    for file_name in case.files:  # "{test.csv}" stands for the path of that file
        flags = [flag.replace("{" + file_name + "}", str(tmp_path / file_name)) for flag in flags]
    arguments = ["run", "--labeled", str(tmp_path / case.labeled), *flags]
    code = main([*arguments, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == case.code, err
    assert "Traceback" not in err
    if case.code:
        lines = [line for line in err.splitlines() if line.startswith("textdistill run: error:")]
        assert len(lines) == 1 and err.strip() == lines[0], err
        shown = lines[0]
        assert not validated  # refused before any stage could start
    else:
        shown = err
        assert len(validated) == 1
        if case.check is not None:
            case.check(validated[0])
    for fragment in case.says:
        assert fragment in shown, f"{fragment!r} not in {shown!r}"


# ------------------------------------------------------------------------ beyond reading
def test_a_million_one_word_documents_are_scored_once_per_distinct_text(tmp_path: Path) -> None:
    path = tmp_path / "million.txt"
    path.write_text(_million_words_file())
    texts = read_unlabeled(path).texts
    scored: list[str] = []

    def teacher(batch: list[str]) -> np.ndarray:
        scored.extend(batch)
        return np.array([[len(t), -len(t)] for t in batch], dtype=np.float32)

    store = LogitsStore(tmp_path / "logits", fingerprint="t", n_classes=2)
    stats = store.fill(texts, teacher, batch_size=256, progress=False)
    assert len(texts) == stats.n_texts == 1_000_000
    assert len(scored) == stats.n_unique == len(set(texts)) <= 1000
    logits = store.get(texts)
    assert logits.shape == (1_000_000, 2)
    np.testing.assert_array_equal(logits[:1000, 0], [len(t) for t in texts[:1000]])


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = ["a great and moving film", "dull, boring, awful", "great cast", "awful plot"]
    featurizer = NgramFeaturizer.fit(texts, min_df=1)
    coef = np.zeros((featurizer.n_features, 2), dtype=np.float32)
    for term, sign in (("great", 1.0), ("awful", -1.0), ("moving", 1.0), ("dull", -1.0)):
        coef[featurizer.vocabulary.index(term)] = [-sign, sign]
    path = tmp_path_factory.mktemp("bad_input") / "model"
    LinearModel(featurizer, coef, np.zeros(2), ["neg", "pos"]).save(path)
    return path


def test_a_10_mb_document_is_labeled_by_the_teacher_and_predicted_by_predict(
    tiny_bert_dir: Path, artifact: Path, tmp_path: Path, toy_sentiment: tuple[list, list]
) -> None:
    from textdistill.teacher import Teacher

    texts, labels = toy_sentiment
    teacher = Teacher(model=str(tiny_bert_dir), epochs=1, max_length=32).fit(
        texts, labels, progress=False
    )
    logits = teacher.logits([TEN_MB, "a short one"])
    assert logits.shape == (2, 2) and np.isfinite(logits).all()
    # It reads 32 of its tokens (head and tail, all "great" here): the logits of any text of
    # 32 or more "great"s, not a mangled or wrapped version of it.
    np.testing.assert_allclose(logits[0], teacher.logits(["great " * 40])[0], rtol=0, atol=1e-6)
    assert np.abs(logits[0] - logits[1]).max() > 1e-5  # and a text's logits do depend on it

    source = tmp_path / "big.csv"
    source.write_text(_csv([["text"], [TEN_MB], ["awful"]]))
    out = tmp_path / "out.csv"
    assert main(["predict", str(artifact), "-i", str(source), "-o", str(out)]) == 0
    rows = list(csv.reader(out.open()))
    assert [row[0] for row in rows] == ["label", "pos", "neg"]


def test_predict_never_echoes_input_text_into_its_csv(artifact: Path, tmp_path: Path) -> None:
    hostile = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1"]
    source = tmp_path / "in.jsonl"
    source.write_text(_jsonl(*({"text": t} for t in hostile)))
    out = tmp_path / "out.csv"
    assert main(["predict", str(artifact), "-i", str(source), "--logits", "-o", str(out)]) == 0
    rows = list(csv.reader(out.open()))
    assert len(rows) == len(hostile) + 1
    for row in rows[1:]:
        assert row[0] in {"neg", "pos"}
        for cell in row[1:]:
            float(cell)  # numbers only: no cell a spreadsheet would run as a formula


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"ok\n\xe9t\xe9\n", "line 2: expected UTF-8 text"),
        (b'{"text": "ok"}\n{"text": null}\n', "line 2: expected 'text' to be a string, found null"),
        (b'{"text": "ok"}\n{"body": "x"}\n', "line 2: expected a JSON object with 'text'"),
        (b'text\nok\n"never closed\n', "malformed CSV"),
    ],
    ids=["non-UTF-8", "null text", "missing key", "unterminated quote"],
)
def test_predict_refuses_bad_input_with_one_line_and_leaves_no_partial_output(
    artifact: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    says: str,
) -> None:
    suffix = ".jsonl" if content.startswith(b"{") else ".csv" if b"text\n" in content else ".txt"
    source = tmp_path / f"in{suffix}"
    source.write_bytes(content)
    out = tmp_path / "out.csv"
    assert main(["predict", str(artifact), "-i", str(source), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and str(source) in err, err
    assert list(tmp_path.iterdir()) == [source]  # no out.csv, no temporary file


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_bad_row_chunks_into_the_input_leaves_the_previous_output_whole(
    artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], jobs: str
) -> None:
    """The bad row comes after two full chunks have been scored and written: the output is
    replaced only by a complete file, so the one from before stays byte for byte."""
    from textdistill.batch_predict import CHUNK

    bad_line = 2 * CHUNK + 500
    lines = [b'{"text": "a great film %d"}' % i for i in range(bad_line - 1)]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join([*lines, b'{"text": 7}', b'{"text": "after"}']) + b"\n")
    out = tmp_path / "out.csv"
    out.write_text("label\nfrom an earlier run\n")
    before = out.read_bytes()
    argv = ["predict", str(artifact), "-i", str(source), "-o", str(out), "-j", jobs]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"line {bad_line}:" in err and err.count("\n") == 1, err
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.csv"]


# ------------------------------------------------------------------ property-based tests
ANY_TEXT = st.text(alphabet=st.characters(), max_size=400)  # surrogates, controls, NUL...


@pytest.fixture(scope="module")
def model() -> LinearModel:
    rng = random.Random(0)
    corpus = [
        " ".join(
            rng.choice(["great", "awful", "film", "plot", "é", "日本", "don't", "!"])
            for _ in range(rng.randrange(1, 12))
        )
        for _ in range(200)
    ]
    featurizer = NgramFeaturizer.fit(corpus, max_n=3, min_df=1)
    weights = np.random.default_rng(0).normal(size=(featurizer.n_features, 3))
    return LinearModel(featurizer, weights, np.array([0.1, 0.0, -0.1]), ["a", "b", "c"])


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(texts=st.lists(ANY_TEXT, min_size=1, max_size=8))
def test_any_unicode_predicts_without_error_deterministically_and_independently(
    model: LinearModel, texts: list[str]
) -> None:
    batch = model.decision_function(texts)
    assert batch.shape == (len(texts), 3) and np.isfinite(batch).all()
    np.testing.assert_array_equal(batch, model.decision_function(texts))  # deterministic
    for i, text in enumerate(texts):  # a row does not depend on its neighbours
        np.testing.assert_allclose(model.decision_function([text])[0], batch[i], rtol=0, atol=1e-6)
    probabilities = model.predict_proba(texts)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-9)
    assert set(model.predict(texts)) <= {"a", "b", "c"}


@settings(max_examples=60, deadline=None)
@given(
    corpus=st.lists(ANY_TEXT, min_size=1, max_size=12),
    labels=st.lists(
        st.text(alphabet=st.characters(), min_size=1, max_size=8),
        min_size=2,
        max_size=4,
        unique=True,
    ),
    probes=st.lists(ANY_TEXT, max_size=5),
)
@example(corpus=[""], labels=["0", "\ud800"], probes=[])  # once broke the model card's write
def test_any_corpus_and_label_names_survive_fit_save_and_load(
    tmp_path_factory: pytest.TempPathFactory,
    corpus: list[str],
    labels: list[str],
    probes: list[str],
) -> None:
    corpus = [*corpus, "anchor"]  # a corpus without any word cannot be fitted (a clear error)
    featurizer = NgramFeaturizer.fit(corpus, max_n=2, min_df=1)
    weights = np.random.default_rng(1).normal(size=(featurizer.n_features, len(labels)))
    model = LinearModel(featurizer, weights, np.zeros(len(labels)), labels)
    path = tmp_path_factory.mktemp("prop") / "model"
    model.save(path)
    loaded = load(str(path))
    assert loaded.labels == labels
    texts = corpus + probes
    np.testing.assert_array_equal(loaded.decision_function(texts), model.decision_function(texts))


_PREDICT_IN_A_FRESH_PROCESS = """
import json, sys
from textdistill.runtime import featurizer, load
texts = json.loads(sys.stdin.read())
model = load(sys.argv[1])
logits = model.decision_function(texts).tolist()
fast = featurizer._ngrams
c_path = fast is not None and isinstance(model.featurizer._fast, fast.Vocabulary)
print(json.dumps({"c_path": c_path, "logits": logits}))
"""


def test_predictions_do_not_depend_on_the_process_or_its_hash_seed(tmp_path: Path) -> None:
    """Dense random weights over a real vocabulary (words, bigrams and character n-grams),
    read on texts made of that vocabulary and of hostile characters: every logit depends on
    what was counted, so two processes, two hash seeds, or the C and Python paths agree only
    if they count the same n-grams."""
    from conftest import NEGATIVE_WORDS, NEUTRAL_WORDS, POSITIVE_WORDS, TEMPLATES

    words = NEUTRAL_WORDS + POSITIVE_WORDS + NEGATIVE_WORDS
    rng = random.Random(7)
    corpus = [t.format(s=rng.choice(words), s2=rng.choice(words)) for t in TEMPLATES * 20]
    featurizer = NgramFeaturizer.fit(corpus, max_n=2, char_ngrams=(2, 4), min_df=1)
    coef = np.random.default_rng(7).normal(size=(featurizer.n_features, 3)).astype(np.float32)
    artifact = tmp_path / "dense"
    LinearModel(featurizer, coef, np.array([0.1, -0.2, 0.0]), ["a", "b", "c"]).save(artifact)

    noise = "é日本!?'<>\u0130\u00df\x00\ud800 \n\t.,"
    texts = [
        "".join(
            rng.choice([rng.choice(words), rng.choice(words).upper(), rng.choice(noise)])
            + rng.choice([" ", "", "  "])
            for _ in range(rng.randrange(0, 30))
        )
        for _ in range(300)
    ]
    payload = json.dumps(texts)
    outputs = []
    for seed in ("0", "12345"):
        for pure in ("0", "1"):  # the C fast path and the pure-Python path
            finished = subprocess.run(
                [sys.executable, "-c", _PREDICT_IN_A_FRESH_PROCESS, str(artifact)],
                input=payload,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONHASHSEED": seed, "TEXTDISTILL_PURE_PYTHON": pure},
                check=True,
            )
            result = json.loads(finished.stdout)
            # Where the extension is built, the "0" runs must really have taken the C path.
            assert result["c_path"] == (pure == "0" and featurizer_module._ngrams is not None)
            outputs.append(json.dumps(result["logits"]))
    assert len(set(outputs)) == 1
    model = load(str(artifact))
    in_process = model.decision_function(texts)
    np.testing.assert_array_equal(np.array(json.loads(outputs[0]), dtype=np.float32), in_process)
    # Not agreement by emptiness: nearly every row counted something, and the rows differ.
    counted = np.abs(in_process - model.decision_function([""])).max(axis=1) > 1e-3
    assert counted.mean() > 0.9
    assert len({tuple(row) for row in in_process.round(4)}) > 250


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(texts=st.lists(ANY_TEXT, min_size=1, max_size=6))
def test_predict_from_a_file_agrees_with_the_runtime_on_any_text(
    artifact: Path, tmp_path_factory: pytest.TempPathFactory, texts: list[str]
) -> None:
    folder = tmp_path_factory.mktemp("predict_prop")
    source = folder / "in.jsonl"
    source.write_text(_jsonl(*({"text": t} for t in texts)), encoding="utf-8")  # \\u escapes
    out = folder / "out.jsonl"
    assert (
        main(["predict", str(artifact), "-i", str(source), "--format", "jsonl", "-o", str(out)])
        == 0
    )
    got = [json.loads(line)["label"] for line in out.read_text().splitlines()]
    assert got == load(str(artifact)).predict(texts)

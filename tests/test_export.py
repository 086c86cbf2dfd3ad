"""ONNX export: the exported graph reproduces the numpy runtime's logits."""

from __future__ import annotations

import csv
import gzip
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from textdistill.cli import main
from textdistill.export import OnnxStudent, default_output, export_onnx
from textdistill.runtime import LinearModel, NgramFeaturizer, load

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
IMDB = DATA / "imdb_train.csv.gz"

DOCS = [
    "A great movie, great cast! Loved it.",
    "Terrible plot<br />and the acting? Awful.",
    "Don't watch it: a great waste of time.",
    "great great great",
    "the the the plot",
    "Ünïcödé wörds, naïve café: great?",
]
PROBES = [
    *DOCS,
    "",
    "   ",
    "zzz qqq xyzzy",  # no known n-gram: logits are the intercept
    "great great great great great great plot plot",
    "<br /><br />",
    "GREAT Movie!!! ??",
]


def _three_class_model(
    tmp_path: Path, char_ngrams: tuple[int, int] | None = None
) -> tuple[LinearModel, Path]:
    featurizer = NgramFeaturizer.fit(DOCS, max_n=3, char_ngrams=char_ngrams, min_df=1)
    rng = np.random.default_rng(0)
    model = LinearModel(
        featurizer,
        rng.normal(size=(featurizer.n_features, 3)),
        np.array([0.3, -0.2, 0.05]),
        ["neg", "neutral", "pos"],
    )
    model.save(tmp_path / "student")
    return model, tmp_path / "student"


def test_ngram_ids_match_transform() -> None:
    featurizer = NgramFeaturizer.fit(DOCS, max_n=2, min_df=1)
    ids, offsets = featurizer.ngram_ids(PROBES)
    X = featurizer.transform(PROBES)
    assert ids.dtype == np.int64 and offsets.dtype == np.int64
    assert offsets[0] == 0 and offsets[-1] == len(ids) and len(offsets) == len(PROBES) + 1
    for d in range(len(PROBES)):
        distinct = np.unique(ids[offsets[d] : offsets[d + 1]])
        assert distinct.tolist() == X.indices[X.indptr[d] : X.indptr[d + 1]].tolist()
    # "great great great": three occurrences of "great", two of "great great"
    d = DOCS.index("great great great")
    terms = [featurizer.vocabulary[i] for i in ids[offsets[d] : offsets[d + 1]]]
    assert sorted(terms) == ["great"] * 3 + ["great great"] * 2


@pytest.mark.parametrize("char_ngrams", [None, (2, 4)])
def test_three_class_parity_edge_cases_and_metadata(
    tmp_path: Path, char_ngrams: tuple[int, int] | None
) -> None:
    model, artifact = _three_class_model(tmp_path, char_ngrams)
    assert load(artifact).featurizer.char_ngrams == char_ngrams  # through save and load
    path = export_onnx(artifact, tmp_path / "student.onnx")
    student = OnnxStudent(path)
    assert student.labels == ["neg", "neutral", "pos"]
    logits, probabilities = student.run(PROBES)
    expected = model.decision_function(PROBES)
    assert logits.dtype == np.float32 and logits.shape == (len(PROBES), 3)
    assert np.abs(logits - expected).max() <= 1e-5
    assert student.predict(PROBES) == model.predict(PROBES)
    np.testing.assert_allclose(probabilities, model.predict_proba(PROBES), atol=1e-6)
    for empty in ("", "   ", "zzz qqq xyzzy", "<br /><br />"):
        np.testing.assert_array_equal(student.decision_function([empty])[0], model.intercept)
    assert student.decision_function([]).shape == (0, 3)
    assert student.decision_function([""] * 4).shape == (4, 3)
    with pytest.raises(TypeError):
        student.predict("one string")


def test_graph_counts_occurrences_in_any_order(tmp_path: Path) -> None:
    model, artifact = _three_class_model(tmp_path)
    student = OnnxStudent(export_onnx(artifact, tmp_path / "m.onnx"))
    ids, offsets = student.featurizer.ngram_ids(PROBES)
    rng = np.random.default_rng(1)
    shuffled = np.concatenate(
        [rng.permutation(ids[offsets[d] : offsets[d + 1]]) for d in range(len(PROBES))]
    )
    (logits,) = student.session.run(["logits"], {"ngram_ids": shuffled, "offsets": offsets})
    assert np.abs(logits - model.decision_function(PROBES)).max() <= 1e-5


def test_cli_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, artifact = _three_class_model(tmp_path)
    assert (
        main(["export", str(artifact), "--format", "onnx", "--output", str(tmp_path / "x.onnx")])
        == 0
    )
    assert OnnxStudent(tmp_path / "x.onnx").predict(PROBES) == model.predict(PROBES)
    assert main(["export", str(artifact)]) == 0  # default: beside the artifact
    assert default_output(artifact) == (tmp_path / "student.onnx").resolve()
    assert (tmp_path / "student.onnx").is_file()
    assert main(["export", str(tmp_path / "missing")]) == 1
    assert "no such artifact" in capsys.readouterr().err


@pytest.mark.skipif(not IMDB.is_file(), reason=f"{IMDB} is not there")
def test_parity_on_1000_imdb_reviews(tmp_path: Path) -> None:
    from textdistill.students.linear import LinearStudent

    with gzip.open(IMDB, "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    order = np.random.default_rng(0).permutation(len(rows))
    train = [rows[i] for i in order[:2000]]
    test = [rows[i]["text"] for i in order[2000:3000]]
    LinearStudent(loss="soft_ce", grid=(16.0,)).fit(
        [r["text"] for r in train], [r["label"] for r in train]
    ).save(tmp_path / "imdb")
    runtime = load(str(tmp_path / "imdb"))
    student = OnnxStudent(export_onnx(tmp_path / "imdb", tmp_path / "imdb.onnx"))
    expected = runtime.decision_function(test)
    logits = student.decision_function(test)
    assert np.abs(logits - expected).max() <= 1e-4
    assert student.predict(test) == runtime.predict(test)


def test_missing_onnx_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, artifact = _three_class_model(tmp_path)
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes ``import onnx`` raise ImportError
    # run from a clone, the hint is the editable install of the checkout (tests/test_extras.py)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[onnx\]'"):
        export_onnx(artifact, tmp_path / "m.onnx")
    assert main(["export", str(artifact)]) == 2
    assert "pip install -e '.[onnx]'" in capsys.readouterr().err

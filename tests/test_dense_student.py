"""The dense student: word vectors from a teacher, pooled beside n-gram weights."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from textdistill.runtime import DenseModel, load
from textdistill.runtime import artifact as artifact_module
from textdistill.runtime.artifact import ArtifactError
from textdistill.runtime.dense import run_tables, strongest_runs
from textdistill.runtime.featurizer import NgramFeaturizer

pytest.importorskip("torch")

from textdistill.students import dense
from textdistill.students.dense import DenseStudent, _rare_words, is_word

POSITIVE = ["good", "great", "fine", "superb", "splendid"]
NEGATIVE = ["bad", "awful", "poor", "dreadful", "abysmal"]
SEEN = {"good", "great", "fine", "bad", "awful", "poor"}  # the others occur in no training text


class SentimentVectors:
    """A stand-in teacher encoder: positive words point one way, negative the other, every
    other word is noise. It knows words the training texts never use."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def vocabulary_words(self) -> list[str]:
        return [*POSITIVE, *NEGATIVE, "##ly", "the"]

    def continuation_pieces(self) -> list[str]:
        return ["ly", "ness"]

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.calls.append(list(texts))
        rng = np.random.default_rng(0)
        out = rng.normal(scale=0.1, size=(len(texts), 12))
        for i, word in enumerate(texts):
            out[i, 0] += 3.0 if word in POSITIVE else -3.0 if word in NEGATIVE else 0.0
        return out


def _toy(n: int = 120) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(1)
    texts, logits = [], []
    for i in range(n):
        positive = i % 2 == 0
        word = rng.choice(sorted(SEEN & set(POSITIVE if positive else NEGATIVE)))
        texts.append(f"the film was {word} {rng.choice(['today', 'again', 'indeed'])}")
        logits.append([-2.5, 2.5] if positive else [2.5, -2.5])
    return texts, np.array(logits)


def _fit(word_vectors: SentimentVectors | None, **options: object) -> DenseStudent:
    texts, logits = _toy()
    params = {"min_df": 1, "dim": 8, "hidden_units": 16, "max_epochs": 40, "batch_size": 16}
    params.update(options)
    return DenseStudent(**params).fit(  # type: ignore[arg-type]
        texts, logits, classes=["neg", "pos"], word_vectors=word_vectors
    )


def test_words_the_transfer_set_never_had_bring_their_teacher_vectors() -> None:
    source = SentimentVectors()
    student = _fit(source)
    unseen = ["the film was superb", "the film was splendid", "the film was dreadful"]
    assert student.predict(unseen) == ["pos", "pos", "neg"]
    # the teacher's whole words joined the vocabulary; its subword pieces did not
    vocabulary = student.model_.featurizer.vocabulary
    assert {"superb", "dreadful", "abysmal"} <= set(vocabulary) and "##ly" not in vocabulary
    assert student.selection_["word_vectors"] == "teacher"
    # without the teacher's vectors, those words are unknown: nothing to go on
    random_start = _fit(None)
    assert "superb" not in random_start.model_.featurizer.vocabulary


def test_a_word_of_one_training_text_gets_its_vector_and_rare_words_stop_at_the_cap() -> None:
    """A word too rare for an n-gram weight (min_df 2) is still read through its vector: the
    teacher knows it. Words of more texts come first when the vectors would pass the cap."""
    texts, logits = _toy()
    texts = [*texts, "the film was cinematic", "a marvel"]  # words of one text each
    logits = np.vstack([logits, [[-2.0, 2.0], [-2.0, 2.0]]])
    params = {"min_df": 2, "dim": 8, "hidden_units": 16, "max_epochs": 5, "batch_size": 16}
    student = DenseStudent(**params).fit(  # type: ignore[arg-type]
        texts, logits, classes=["neg", "pos"], word_vectors=SentimentVectors()
    )
    model = student.model_
    rows = dict(zip(model.featurizer.vocabulary, model.weights["embedding_rows"], strict=True))
    assert rows["cinematic"] >= 0 and rows["marvel"] >= 0
    # the n-gram part holds none of them: its terms are those of two or more texts
    assert "cinematic" not in model.featurizer.vocabulary[: len(model.weights["linear"])]
    few = ["a cinematic marvel", "a marvel", "a delight", "cinematic"]
    featurizer = NgramFeaturizer.fit(few, max_n=1, min_df=3)  # "a": the only term
    known = SentimentVectors().vocabulary_words()
    n_known = len(known)  # its words less "##ly", and "a"
    # marvel and cinematic are in two texts, delight in one; ties go in alphabetical order
    assert _rare_words(few, featurizer, known, most=n_known + 2) == ["cinematic", "marvel"]
    assert _rare_words(few, featurizer, known, most=n_known + 9) == [
        "cinematic",
        "marvel",
        "delight",
    ]
    assert _rare_words(few, featurizer, known, most=n_known) == []


def test_the_word_vectors_stay_within_their_byte_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """However many rare words a corpus has, the float16 word vectors take at most
    WORD_VECTOR_BYTES: the rarest words past the budget go without a vector."""
    texts, logits = _toy()
    texts = [*texts, "the film was cinematic", "a marvel"]  # two words of one text each
    logits = np.vstack([logits, [[-2.0, 2.0], [-2.0, 2.0]]])
    params = {"min_df": 2, "dim": 8, "hidden_units": 16, "max_epochs": 2, "batch_size": 16}

    def fit() -> DenseStudent:
        return DenseStudent(**params).fit(  # type: ignore[arg-type]
            texts, logits, classes=["neg", "pos"], word_vectors=SentimentVectors()
        )

    unbounded = fit().model_.weights["embedding"]
    monkeypatch.setattr(dense, "WORD_VECTOR_BYTES", 2 * 8 * (len(unbounded) - 1))
    bounded = fit().model_
    stored = bounded.weights["embedding"].astype(np.float16)  # as the artifact stores it
    assert stored.nbytes == dense.WORD_VECTOR_BYTES
    rows = dict(zip(bounded.featurizer.vocabulary, bounded.weights["embedding_rows"], strict=True))
    # one text each: the tie goes in alphabetical order, so "marvel" is the one left out
    assert rows["cinematic"] >= 0 and "marvel" not in rows


def test_refit_on_all_rows_after_choosing_the_epochs_on_held_out_ones() -> None:
    student = _fit(SentimentVectors())
    selection = student.selection_
    assert selection["n_validation"] == 12  # a tenth of the 120 teacher rows
    assert 1 <= selection["epochs"] <= len(selection["history"])
    mses = [h["validation_mse"] for h in selection["history"]]
    assert mses[selection["epochs"] - 1] == min(mses)
    assert student.validation_logits_.shape == (12, 2)
    assert selection["validation_agreement"] == pytest.approx(1.0)
    # the artifact is the refit on every row: its logits differ from the held-out fit's
    refit = student.decision_function([_toy()[0][i] for i in student.validation_rows_])
    assert not np.allclose(refit, student.validation_logits_)


@pytest.mark.parametrize(
    ("max_units", "window", "pieces", "version"),
    [(0, 1, True, 3), (8, 1, True, 6), (8, 3, False, 8), (8, 3, True, 9)],
)
def test_artifact_round_trip_is_exact_and_versioned(
    tmp_path: Path, max_units: int, window: int, pieces: bool, version: int
) -> None:
    """Format 3 without the max-pooled branch, 6 with it (what a reader of 3..5 cannot run),
    8 when its detectors read runs of words, 9 when those read unknown words as pieces."""
    options = {"max_units": max_units, "window": window, "word_pieces": pieces}
    student = _fit(SentimentVectors(), **options)
    student.save(tmp_path / "dense")
    loaded = load(str(tmp_path / "dense"))
    assert isinstance(loaded, DenseModel) and loaded.has_max_branch == bool(max_units)
    assert loaded.window == window
    assert loaded.pieces == (["ly", "ness"] if version == 9 else [])
    texts = ["the film was superb", "poor film", "", "unknown words only"]
    np.testing.assert_array_equal(loaded.decision_function(texts), student.decision_function(texts))
    manifest = json.loads((tmp_path / "dense" / "model.json").read_text())
    assert manifest["format_version"] == version and manifest["kind"] == "dense"
    assert np.load(tmp_path / "dense" / "embedding.npy").dtype == np.float16


@pytest.mark.parametrize(
    ("max_units", "window", "pieces", "reader", "version"),
    [(0, 1, True, 2, 3), (8, 1, True, 5, 6), (8, 2, False, 7, 8), (8, 2, True, 8, 9)],
)
def test_an_older_textdistill_refuses_a_dense_artifact(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    max_units: int,
    window: int,
    pieces: bool,
    reader: int,
    version: int,
) -> None:
    options = {"max_units": max_units, "window": window, "word_pieces": pieces}
    _fit(SentimentVectors(), **options).save(tmp_path / "dense")
    monkeypatch.setattr(artifact_module, "FORMAT_VERSION", reader)
    with pytest.raises(ArtifactError, match=rf"artifact format {version} .* upgrade textdistill"):
        load(str(tmp_path / "dense"))


def test_the_max_pooled_branch_reads_each_words_strongest_detector() -> None:
    """The max-pooled branch is what a text's strongest word detectors say: the same word
    twice changes nothing there, and the logits hold exactly that branch's share."""
    from textdistill.runtime.dense import pool_rows, strongest

    student = _fit(SentimentVectors(), max_units=8, window=1)
    model = student.model_
    assert model.detectors is not None and model.detectors.min() >= 0.0
    rows = model.featurizer.transform(["great", "great great", "the film was great"])
    pool = pool_rows(rows, model.weights["embedding_rows"])
    peaks = strongest(pool, model.detectors)
    great = model.weights["embedding_rows"][model.featurizer.vocabulary.index("great")]
    np.testing.assert_array_equal(peaks[0], model.detectors[great])
    np.testing.assert_array_equal(peaks[0], peaks[1])
    assert (peaks[2] >= peaks[0]).all()
    # without the branch, the same weights give other logits: it is read
    weights = {k: v for k, v in model.weights.items() if not k.startswith("max_")}
    plain = DenseModel(model.featurizer, weights, model.labels)
    texts = ["the film was superb", "the film was dreadful"]
    branch = strongest(
        pool_rows(model.featurizer.transform(texts), model.weights["embedding_rows"]),
        model.detectors,
    )
    np.testing.assert_allclose(
        model.decision_function(texts) - plain.decision_function(texts),
        branch @ model.weights["max_output"],
        atol=1e-5,
    )


def test_a_damaged_dense_artifact_is_refused(tmp_path: Path) -> None:
    student = _fit(SentimentVectors())
    model = student.model_
    weights = dict(model.weights)
    weights["embedding_rows"] = np.full_like(weights["embedding_rows"], model.n_vectors)
    window = model.window
    with pytest.raises(ValueError, match="embedding_rows must lie in"):
        DenseModel(model.featurizer, weights, model.labels, window=window)
    weights = dict(model.weights)
    weights["hidden"] = weights["hidden"][:, :3]
    with pytest.raises(ValueError, match="hidden has shape"):
        DenseModel(model.featurizer, weights, model.labels, window=window)
    with pytest.raises(ValueError, match="max_hidden has shape"):  # runs read as single words
        DenseModel(model.featurizer, dict(model.weights), model.labels, window=1)


def test_soft_cross_entropy_and_bad_options() -> None:
    student = _fit(SentimentVectors(), loss="soft_ce", temperature=2.0)
    assert student.predict(["the film was great", "the film was awful"]) == ["pos", "neg"]
    with pytest.raises(ValueError, match="loss must be one of"):
        _fit(None, loss="hinge")
    with pytest.raises(ValueError, match="dim must be a positive integer"):
        _fit(None, dim=0)
    texts, logits = _toy()
    with pytest.raises(ValueError, match="do not match"):
        DenseStudent().fit(texts, logits[:5], classes=["neg", "pos"])


def test_multilabel_dense_student() -> None:
    texts, logits = _toy()
    # two independent labels: "pos" as the toy's, "film" always on
    multi = np.stack([logits[:, 1], np.full(len(texts), 3.0)], axis=1)
    student = DenseStudent(min_df=1, dim=8, hidden_units=16, max_epochs=40).fit(
        texts, multi, classes=["pos", "film"], multilabel=True
    )
    assert student.predict(["the film was great", "the film was awful"]) == [
        ("pos", "film"),
        ("film",),
    ]


@pytest.mark.parametrize("window", [1, 3])
def test_onnx_export_matches_the_numpy_runtime(tmp_path: Path, window: int) -> None:
    pytest.importorskip("onnxruntime")
    from textdistill.export import OnnxStudent, export_onnx

    student = _fit(SentimentVectors(), window=window)
    assert student.model_.has_max_branch  # the default student: both branches in the graph
    student.save(tmp_path / "dense")
    probes = [
        "the film was superb",
        "the film was awful again and again",
        "",
        "zzz qqq",  # no known word: the linear part's bias and the hidden layer at zero input
        "Ünïcödé wörds, naïve café: great?",
        "great",  # a text shorter than a run
        "the film was greatly poorness",  # unknown words, read as their pieces
        "superb dreadful superb the film was poor again and again and again",
        *_toy()[0][:20],
    ]
    onnx_student = OnnxStudent(export_onnx(tmp_path / "dense", tmp_path / "dense.onnx"))
    logits, probabilities = onnx_student.run(probes)
    expected = student.decision_function(probes)
    assert np.abs(logits - expected).max() <= 1e-5
    assert onnx_student.predict(probes) == student.predict(probes)
    np.testing.assert_allclose(probabilities, student.predict_proba(probes), atol=1e-6)


def test_the_runs_of_words_read_an_unknown_word_as_its_pieces() -> None:
    """ "poorly" was in no training text and is no teacher word: the runs of words read it as
    "poor" and "##ly", the teacher's pieces, so it moves the logits as "poor" does; a word
    with no split ("zzz") is read as nothing, as before."""
    student = _fit(SentimentVectors(), window=3)
    model = student.model_
    assert model.pieces == ["ly", "ness"] and student.selection_["n_word_pieces"] == 2
    rows = dict(zip(model.featurizer.vocabulary, model.weights["embedding_rows"], strict=True))
    ly = model.n_vectors - 2  # the pieces' rows follow the words'
    order = model.words_in_order(["the film was poorly", "zzz"])
    assert order.indices.tolist() == [rows["the"], rows["film"], rows["was"], rows["poor"], ly]
    assert order.indptr.tolist() == [0, 5, 5]
    plain = _fit(SentimentVectors(), window=3, word_pieces=False).model_
    assert plain.pieces == [] and plain.word_pieces is None
    assert plain.words_in_order(["the film was poorly"]).indices.tolist() == [
        plain.weights["embedding_rows"][plain.featurizer.vocabulary.index(w)]
        for w in ("the", "film", "was")
    ]
    # the pieces reach the logits: "poorly" reads as negative, where "zzz" says nothing
    logits = model.decision_function(["the film was poorly", "the film was zzz"])
    assert logits[0, 0] - logits[0, 1] > logits[1, 0] - logits[1, 1]


def test_training_goes_on_while_the_held_out_error_still_falls_at_max_epochs() -> None:
    student = _fit(SentimentVectors(), max_epochs=2, learning_rate=1e-4)
    history = student.selection_["history"]
    assert len(history) > 2  # the cap of 2 epochs was the edge of the search, not its end
    assert student.selection_["epochs"] > 2


def test_predict_with_jobs_and_serve_read_a_dense_artifact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from textdistill.cli import main

    student = _fit(SentimentVectors())
    student.save(tmp_path / "dense")
    texts = [f"the film was {word} today" for word in ["good", "awful", "superb", "poor"] * 50]
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    outputs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}.csv"
        assert (
            main(
                ["predict", str(tmp_path / "dense"), "-i", str(source), "-j", jobs, "-o", str(out)]
            )
            == 0
        )
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1]
    assert [line.split(",")[0] for line in outputs[0].splitlines()[1:5]] == [
        "pos",
        "neg",
        "pos",
        "neg",
    ]

    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from textdistill.serve import create_app

    with TestClient(create_app(tmp_path / "dense")) as client:
        answer = client.post("/predict", json={"texts": ["the film was superb", "poor"]})
        assert answer.status_code == 200, answer.text
        assert [p["label"] for p in answer.json()["predictions"]] == ["pos", "neg"]


@pytest.mark.parametrize("window", [1, 3])
def test_a_blend_of_the_linear_and_dense_students_is_one_exact_dense_artifact(
    tmp_path: Path, window: int
) -> None:
    """Runs of words included: a blend once lost the window and was refused as reading
    different n-grams, so ``auto`` silently dropped it."""
    from textdistill.students.choice import BlendedStudent
    from textdistill.students.linear import LinearStudent

    texts, logits = _toy()
    dense = _fit(SentimentVectors(), window=window)
    linear = LinearStudent(min_df=1).fit(texts, logits, classes=["neg", "pos"])
    blend = BlendedStudent(linear, dense, 0.25)
    probes = ["the film was superb", "poor film again", "", "zzz", *texts[:10]]
    expected = 0.25 * dense.decision_function(probes) + 0.75 * linear.decision_function(probes)
    np.testing.assert_allclose(blend.decision_function(probes), expected, atol=1e-5)
    np.testing.assert_allclose(
        blend.validation_logits_,
        0.25 * dense.validation_logits_ + 0.75 * linear.validation_logits_,
    )
    blend.save(tmp_path / "blend")
    np.testing.assert_allclose(
        load(str(tmp_path / "blend")).decision_function(probes), expected, atol=1e-5
    )
    other = LinearStudent(min_df=1, max_n=1).fit(texts, logits, classes=["neg", "pos"])
    with pytest.raises(ValueError, match="different n-grams"):
        BlendedStudent(other, dense, 0.5)


def test_small_transfer_sets_take_smaller_steps_and_bad_rates_are_refused() -> None:
    """About 100 steps an epoch by default, so the n-gram weights of a few thousand rows get
    somewhere before the held-out error stops the fit (TREC: 3,262 rows, 13 steps at 256)."""
    student = DenseStudent()
    assert [student.rows_per_step(n) for n in (1_000, 3_262, 5_820, 110_000)] == [32, 32, 58, 256]
    assert DenseStudent(batch_size=16).rows_per_step(110_000) == 16
    with pytest.raises(ValueError, match="ngram_learning_rate must be positive"):
        _fit(None, ngram_learning_rate=0.0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        _fit(None, batch_size=0)


def _random_twin(word_terms: Sequence[str], n_features: int, **options: object) -> tuple:
    """The torch twin with random weights (n-gram ones too, which start at zero in training)
    over ``word_terms`` (the featurizer's, or a pair featurizer's sides'), and the row of
    each term in its word vectors (-1 for an n-gram of several words)."""
    import torch

    from textdistill.students.dense import build_network

    words = [i for i, term in enumerate(word_terms) if " " not in term]
    embedding_rows = np.full(len(word_terms), -1, dtype=np.int32)
    embedding_rows[words] = np.arange(len(words), dtype=np.int32)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(words), 6)).astype(np.float16).astype(np.float32)
    torch.manual_seed(0)
    network = build_network(n_features, vectors, 2, 5, 0.0, **options)  # type: ignore[arg-type]
    with torch.no_grad():  # n-gram weights start at zero: make them count
        network.linear.weight.normal_()
    return network, embedding_rows


@pytest.mark.parametrize(("max_units", "window"), [(0, 1), (8, 1), (8, 2), (8, 3)])
def test_the_numpy_runtime_computes_what_the_torch_network_trained(
    max_units: int, window: int
) -> None:
    """The torch twin and the runtime, given the same (random, untrained) weights, give the
    same logits on texts of every length, including one with no known word (with runs of
    words too: texts shorter than a run, repeated words, words without a vector between)."""
    from textdistill.runtime.dense import leading_terms, pool_rows, reading_order
    from textdistill.runtime.featurizer import NgramFeaturizer
    from textdistill.students.dense import _Data, _predict, to_weights

    texts, _ = _toy()
    featurizer = NgramFeaturizer.fit(texts, max_n=2, min_df=1)
    network, embedding_rows = _random_twin(
        featurizer.vocabulary, featurizer.n_features, max_units=max_units, window=window
    )
    probes = ["the film was good again", "zzz", "", "bad bad bad film", "good", *texts[:30]]
    rows = featurizer.transform(probes)
    pooled = pool_rows(rows, embedding_rows)
    n_vectors = int(embedding_rows.max()) + 1
    words = reading_order(probes, featurizer, embedding_rows, n_vectors) if window > 1 else pooled
    data = _Data(
        leading_terms(rows, featurizer.n_features),
        [pooled],
        np.zeros((len(probes), 2), np.float32),
        max_pooled=max_units > 0,
        words=words,
    )
    expected = _predict(network, data, np.arange(len(probes)))
    weights = to_weights(network, embedding_rows)
    model = DenseModel(featurizer, weights, ["neg", "pos"], window=window)
    np.testing.assert_allclose(model.decision_function(probes), expected, atol=1e-5)


def test_runs_of_words_read_word_order_which_single_words_cannot() -> None:
    """Detectors over runs of two words tell "superb dreadful" from "dreadful superb"; over
    single words the two texts are one bag and get the same logits (the n-gram part does not
    know these words, which no training text has: only their teacher vectors)."""
    single = _fit(SentimentVectors(), max_units=8, window=1)
    runs = _fit(SentimentVectors(), max_units=8, window=2)
    flipped = ["superb dreadful", "dreadful superb"]
    assert np.allclose(*single.decision_function(flipped), atol=1e-6)
    assert not np.allclose(*runs.decision_function(flipped), atol=1e-4)
    assert runs.selection_["window"] == 2


@pytest.mark.parametrize("window", [1, 2, 3, 5])
def test_runs_of_words_in_c_are_bit_identical_to_numpy(
    window: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The C path of strongest_runs (built here, as CI builds it) gives numpy's float32 bits:
    texts without words, shorter than a run, repeated words, detectors that never fire."""
    from textdistill.runtime import dense as runtime_dense
    from textdistill.runtime.featurizer import SparseRows

    assert runtime_dense._kernels is not None, "the C extension _dense is not built"
    rng = np.random.default_rng(window)
    seen_empty = seen_off = False
    for _ in range(25):
        n_words, m = int(rng.integers(1, 60)), int(rng.integers(1, 70))
        tables = run_tables(rng.normal(size=(window, n_words, m)).astype(np.float32))
        lengths = rng.integers(0, 3 * window + 2, size=int(rng.integers(1, 40)))
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        ids = rng.integers(0, n_words, size=int(indptr[-1])).astype(np.int32)
        words = SparseRows(np.ones(len(ids), np.float32), ids, indptr, n_words)
        bias = rng.normal(size=m).astype(np.float32) - 1.0
        fast = strongest_runs(words, tables, bias)
        with monkeypatch.context() as numpy_only:
            numpy_only.setattr(runtime_dense, "_kernels", None)
            slow = strongest_runs(words, tables, bias)
        assert fast.dtype == slow.dtype == np.float32 and fast.shape == slow.shape
        assert np.array_equal(fast.view(np.uint32), slow.view(np.uint32))
        assert (fast[lengths == 0] == 0).all()
        seen_empty |= bool((lengths == 0).any())
        seen_off |= bool((fast[lengths > 0] == 0).any())
    assert seen_empty and seen_off  # both edges were exercised
    beyond = np.array([n_words], np.int32)  # a row index past the words: the padding rows
    bad = SparseRows(np.ones(1, np.float32), beyond, np.array([0, 1], np.int64), n_words)
    with pytest.raises(ValueError, match="outside the"):
        strongest_runs(bad, tables, bias)


# ------------------------------------------------------------------------------- text pairs
def _toy_pairs(n: int = 160) -> tuple[list[str], np.ndarray]:
    """Two reviews per row, "same" when they agree in polarity: a pair question that neither
    side answers alone, nor the words they share ("the film was")."""
    from textdistill.runtime.pairs import join_pair

    rng = np.random.default_rng(2)
    texts, logits = [], []
    for _ in range(n):
        polarities = rng.integers(0, 2, size=2)
        sides = [
            f"the film was {rng.choice(sorted(SEEN & set(POSITIVE if p else NEGATIVE)))}"
            for p in polarities
        ]
        texts.append(join_pair(*sides))
        logits.append([-2.5, 2.5] if polarities[0] == polarities[1] else [2.5, -2.5])
    return texts, np.array(logits)


def _fit_pairs(**options: object) -> DenseStudent:
    texts, logits = _toy_pairs()
    params = {"min_df": 1, "dim": 8, "hidden_units": 16, "max_epochs": 60, "batch_size": 16}
    params.update(options)
    return DenseStudent(**params).fit(  # type: ignore[arg-type]
        texts, logits, classes=["different", "same"], word_vectors=SentimentVectors()
    )


def test_a_dense_pair_student_compares_the_sides_words_it_never_saw_included() -> None:
    """The layer over both sides' pooled vectors: two words of the same polarity agree even
    when no training pair held either of them; the n-gram part alone could not say so."""
    student = _fit_pairs()
    assert student.model_.pairs and not student.model_.has_max_branch
    assert student.selection_["pairs"] and not student.selection_["max_pooling"]
    unseen = [
        ("the film was superb", "the film was splendid"),
        ("the film was dreadful", "the film was abysmal"),
        ("the film was superb", "the film was abysmal"),
        ("the film was dreadful", "the film was splendid"),
    ]
    assert student.predict(unseen) == ["same", "same", "different", "different"]


def test_a_dense_pair_artifact_round_trips_and_older_readers_refuse_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    student = _fit_pairs(max_epochs=3)
    student.save(tmp_path / "pairs")
    manifest = json.loads((tmp_path / "pairs" / "model.json").read_text())
    assert manifest["format_version"] == 7 and manifest["featurizer"]["type"] == "text_pair"
    loaded = load(str(tmp_path / "pairs"))
    probes = [("the film was good", "the film was superb"), ("", "zzz"), ("bad", "bad")]
    assert isinstance(loaded, DenseModel) and loaded.pairs
    np.testing.assert_array_equal(
        loaded.decision_function(probes), student.decision_function(probes)
    )
    with pytest.raises(ValueError, match="text pair"):
        loaded.predict(["a single text"])
    monkeypatch.setattr(artifact_module, "FORMAT_VERSION", 6)
    with pytest.raises(ArtifactError, match=r"artifact format 7 .* upgrade textdistill"):
        load(str(tmp_path / "pairs"))


def test_the_numpy_runtime_computes_what_the_torch_network_trained_on_pairs() -> None:
    """Random weights, the same in both: the runtime's siamese pooling is the network's, on
    pairs with an empty side, no known word, or the same text twice."""
    from textdistill.runtime.dense import pool_rows
    from textdistill.runtime.pair_features import PairFeaturizer
    from textdistill.runtime.pairs import join_pair
    from textdistill.students.dense import _Data, _predict, to_weights

    texts, _ = _toy_pairs()
    featurizer = PairFeaturizer.fit(texts, max_n=2, min_df=1)
    network, embedding_rows = _random_twin(
        featurizer.side.vocabulary, featurizer.n_features, pairs=True
    )
    probes = [
        join_pair("the film was good", "the film was bad"),
        join_pair("", "the film"),
        join_pair("zzz", "qqq"),
        join_pair("bad bad film", "bad bad film"),
        *texts[:30],
    ]
    rows, first, second = featurizer.transform_with_sides(probes)
    data = _Data(
        rows,
        [pool_rows(first, embedding_rows), pool_rows(second, embedding_rows)],
        np.zeros((len(probes), 2), np.float32),
        max_pooled=False,
    )
    expected = _predict(network, data, np.arange(len(probes)))
    model = DenseModel(featurizer, to_weights(network, embedding_rows), ["no", "yes"])
    np.testing.assert_allclose(model.decision_function(probes), expected, atol=1e-5)


def test_onnx_export_of_a_dense_pair_student_matches_the_numpy_runtime(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from textdistill.export import OnnxStudent, export_onnx

    student = _fit_pairs(max_epochs=3)
    student.save(tmp_path / "pairs")
    probes = [
        ("the film was superb", "the film was awful"),
        ("", "the film was good"),
        ("zzz", "qqq"),
        ("Ünïcödé wörds, naïve café: great?", "great"),
        *[tuple(t.split("\x1f")) for t in _toy_pairs()[0][:20]],
    ]
    onnx_student = OnnxStudent(export_onnx(tmp_path / "pairs", tmp_path / "pairs.onnx"))
    logits, probabilities = onnx_student.run(probes)  # type: ignore[arg-type]
    expected = student.decision_function(probes)  # type: ignore[arg-type]
    assert np.abs(logits - expected).max() <= 1e-5
    np.testing.assert_allclose(probabilities, student.predict_proba(probes), atol=1e-6)  # type: ignore[arg-type]


def test_the_teachers_word_vectors_are_embedded_once_and_read_back(tmp_path: Path) -> None:
    """A second fit of the same teacher's student reads every word vector from the store:
    nothing is embedded again, and the student is the same."""
    from textdistill.word_vectors import CachedWordVectors

    source = SentimentVectors()
    first = _fit(CachedWordVectors(lambda: source, tmp_path, "teacher"))
    embedded = [word for call in source.calls for word in call]
    assert len(embedded) == len(set(embedded))  # no word twice ...
    words = [t for t in first.model_.featurizer.vocabulary if is_word(t)]
    assert set(words) <= set(embedded)  # ... and every word of the student
    calls = len(source.calls)
    second = _fit(CachedWordVectors(lambda: source, tmp_path, "teacher"))
    assert len(source.calls) == calls  # read back, not embedded
    probes = ["the film was superb", "poor film", ""]
    np.testing.assert_array_equal(second.decision_function(probes), first.decision_function(probes))
    assert (tmp_path / "teacher-word-vectors" / "store.json").is_file()

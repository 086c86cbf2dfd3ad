"""The C fast path counts exactly what the pure-Python path counts."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textdistill.runtime import featurizer as featurizer_module
from textdistill.runtime.featurizer import NgramFeaturizer

pytestmark = pytest.mark.skipif(
    featurizer_module._ngrams is None, reason="the C extension is not built"
)
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TRICKY = [
    "Don't<br />STOP!! it's 'quoted' o'neil's rock'n'roll",
    "a_b __ _x_ snake_case",
    "<a very long tag that is definitely more than forty characters long> after",
    "<<b>> <b <i>x</i> unclosed < tag",
    "ÉCOLE naïve Straße İstanbul ǅemal ﬁne",
    "数字123 ٣٤٥ x²  ½ Ⅻ",
    "emoji 😀 ok!? ?!",
    "",
    "   ",
    "'",
    "a'",
    "'a",
    "a''b",
    "a'b'c",
    "tab\tnew\nline\r\nend",
    "x" * 5000,
    "<" * 50 + ">" + "word",
]


def _both(featurizer: NgramFeaturizer, texts: list[str]) -> tuple[tuple, tuple]:
    """The C path's counts and the pure-Python path's; fails unless the C path really ran
    (``TEXTDISTILL_PURE_PYTHON`` set, or a refused vocabulary, would compare Python with
    itself)."""
    fast = featurizer.counts(texts)
    assert isinstance(featurizer._fast, featurizer_module._ngrams.Vocabulary), "C path inactive"
    slow = featurizer._counts_python(texts)
    return fast, slow


def _vocabulary_from(
    texts: list[str], max_n: int, char_ngrams: tuple[int, int] | None = None
) -> NgramFeaturizer:
    return NgramFeaturizer.fit(
        texts, max_n=max_n, char_ngrams=char_ngrams, min_df=1, max_features=None
    )


@pytest.mark.parametrize("char_ngrams", [None, (1, 1), (2, 5), (3, 3)])
@pytest.mark.parametrize("max_n", [1, 2, 3])
def test_tricky_texts(max_n: int, char_ngrams: tuple[int, int] | None) -> None:
    featurizer = _vocabulary_from(TRICKY, max_n, char_ngrams)
    fast, slow = _both(featurizer, TRICKY)
    assert featurizer._fast  # the C path really counted
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)


def test_character_ngrams_are_counted_and_kept_apart_from_words() -> None:
    # "ab" is a word; "#ab" is the character bigram inside "<ab>" and "<cab>": never mixed up.
    featurizer = _vocabulary_from(["ab cab", "ab"], 1, (2, 2))
    ids, counts, lengths = featurizer.counts(["ab cab ab"])
    found = {featurizer.vocabulary[i]: int(c) for i, c in zip(ids, counts, strict=True)}
    assert found == {
        "ab": 2, "cab": 1, "#<a": 2, "#ab": 3, "#b>": 3, "#<c": 1, "#ca": 1,
    }  # fmt: skip
    assert lengths.tolist() == [len(found)]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(alphabet=st.characters(), max_size=60), min_size=1, max_size=6),
    st.lists(st.text(alphabet="ab'<>!? _\u00e9\u0130x", max_size=40), min_size=1, max_size=6),
)
def test_any_unicode_counts_identically(texts: list[str], small: list[str]) -> None:
    corpus = texts + small
    for char_ngrams in (None, (2, 4)):
        featurizer = _vocabulary_from([*corpus, "a b", "ab"], 2, char_ngrams)
        fast, slow = _both(featurizer, corpus)
        for a, b in zip(fast, slow, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not (DATA / "imdb_train.csv.gz").exists(), reason="shared data absent")
def test_real_reviews_give_identical_features() -> None:
    with gzip.open(DATA / "imdb_train.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        texts = [row["text"] for _, row in zip(range(600), csv.DictReader(handle), strict=False)]
    for char_ngrams in (None, (2, 5)):
        featurizer = NgramFeaturizer.fit(texts[:400], max_n=3, char_ngrams=char_ngrams, min_df=2)
        fast, slow = _both(featurizer, texts[400:])
        for a, b in zip(fast, slow, strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_vocabulary_the_c_path_refuses_falls_back_to_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Refusing:
        def __init__(self, terms: list[str], max_n: int, **char_range: int) -> None:
            raise ValueError("terms 0 and 1 share a 96-bit hash")

    monkeypatch.setattr(featurizer_module, "_ngrams", type("M", (), {"Vocabulary": Refusing}))
    featurizer = _vocabulary_from(TRICKY, 2)
    fast, slow = featurizer.counts(TRICKY), featurizer._counts_python(TRICKY)
    assert featurizer._fast is False
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)

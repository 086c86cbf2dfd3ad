"""The C fast path counts exactly what the pure-Python path counts."""

from __future__ import annotations

import concurrent.futures
import csv
import gzip
import itertools
import threading
import time
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


# ------------------------------------------------------------ the fused path to logits
def _reference(featurizer: NgramFeaturizer) -> NgramFeaturizer:
    """The same featurizer (every setting, through its spec) on the pure-Python path: today's
    definition of the features."""
    reference = NgramFeaturizer.from_spec(featurizer.spec(), featurizer.vocabulary, featurizer.idf)
    reference._fast = False
    return reference


def _assert_same_bits(fast: np.ndarray, slow: np.ndarray) -> None:
    """Equal as bit patterns: -0.0 is not 0.0 here, and a NaN must be the same NaN."""
    assert fast.dtype == slow.dtype and fast.shape == slow.shape
    np.testing.assert_array_equal(fast.view(np.uint32), slow.view(np.uint32))


def _assert_fused_path_matches(
    featurizer: NgramFeaturizer, texts: list[str], n_classes: int, seed: int = 0
) -> None:
    """The C path's rows and logits against the pure-Python counts with numpy's weighting,
    for dense random weights (every counted n-gram moves every logit)."""
    rng = np.random.default_rng(seed)
    coef = rng.normal(size=(featurizer.n_features, n_classes)).astype(np.float32)
    bias = rng.normal(size=n_classes).astype(np.float32)
    reference = _reference(featurizer)
    rows, expected_rows = featurizer.transform(texts), reference.transform(texts)
    assert isinstance(featurizer._fast, featurizer_module._ngrams.Vocabulary), "C path inactive"
    _assert_same_bits(rows.data, expected_rows.data)
    np.testing.assert_array_equal(rows.indices, expected_rows.indices)
    np.testing.assert_array_equal(rows.indptr, expected_rows.indptr)
    expected = reference.transform(texts).matmul(coef) + bias
    _assert_same_bits(featurizer.linear(texts, coef, bias), expected)


@pytest.mark.parametrize("char_ngrams", [None, (2, 5)])
@pytest.mark.parametrize("max_n", [1, 3])
def test_fused_logits_are_bit_identical_on_tricky_texts(
    max_n: int, char_ngrams: tuple[int, int] | None
) -> None:
    featurizer = _vocabulary_from(TRICKY, max_n, char_ngrams)
    for n_classes in (1, 2, 8, 11):  # 11: more classes than one pass of the C sums holds
        _assert_fused_path_matches(featurizer, [*TRICKY, *TRICKY[::-1]], n_classes)


@pytest.mark.skipif(not (DATA / "imdb_train.csv.gz").exists(), reason="shared data absent")
def test_fused_logits_are_bit_identical_on_real_reviews() -> None:
    with gzip.open(DATA / "imdb_train.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        texts = [row["text"] for _, row in zip(range(1500), csv.DictReader(handle), strict=False)]
    assert any(not text.isascii() for text in texts[500:])  # both lower-casing routes run
    for char_ngrams in (None, (2, 5)):
        featurizer = NgramFeaturizer.fit(texts[:500], max_n=2, char_ngrams=char_ngrams, min_df=2)
        _assert_fused_path_matches(featurizer, texts[500:], 2)
        _assert_fused_path_matches(featurizer, texts[500:900], 6, seed=1)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(alphabet=st.characters(), max_size=60), min_size=1, max_size=6),
    st.lists(st.text(alphabet="aAbB'<>!? _\u00e9\u00c9\u0130\u03a3x", max_size=40), max_size=6),
    st.integers(1, 10),
    st.integers(0, 2**16),
)
def test_fused_logits_match_on_any_unicode(
    texts: list[str], small: list[str], n_classes: int, seed: int
) -> None:
    corpus = texts + small
    for char_ngrams in (None, (1, 3)):
        featurizer = _vocabulary_from([*corpus, "a b", "ab", "σ"], 2, char_ngrams)
        _assert_fused_path_matches(featurizer, corpus, n_classes, seed)


def test_counts_beyond_the_tf_table_grow_it() -> None:
    """1 + log(count) comes from a numpy-made table; a document with a larger count makes the
    C call ask for a longer one instead of computing the logarithm itself."""
    featurizer = _vocabulary_from(["good film", "bad"], 2, (2, 3))
    first = len(featurizer._tf)
    texts = ["good film " * (first + 500), "bad " * 3 * first, "good"]
    _assert_fused_path_matches(featurizer, texts, 3)
    assert len(featurizer._tf) > 3 * first


def test_ascii_texts_are_lowercased_as_str_lower_does() -> None:
    """ASCII texts are lower-cased inside the C path; a str subclass keeps its own lower()."""

    class Shouting(str):
        def lower(self) -> str:
            return "bad bad bad"

    featurizer = _vocabulary_from(["good film", "bad"], 2)
    coef = np.arange(featurizer.n_features * 2, dtype=np.float32).reshape(-1, 2)
    bias = np.zeros(2, np.float32)
    texts = ["GOOD Film", "good film", "GoOd FILM!", Shouting("good film")]
    logits = featurizer.linear(texts, coef, bias)
    _assert_same_bits(logits, _reference(featurizer).transform(texts).matmul(coef) + bias)
    assert logits[0].tolist() == logits[1].tolist() != logits[3].tolist()


def test_the_c_path_refuses_bad_arguments_with_their_name() -> None:
    featurizer = _vocabulary_from(["good film", "bad"], 1)
    fast = featurizer._vocabulary()
    coef = np.zeros((featurizer.n_features, 2), np.float32)
    bias, out = np.zeros(2, np.float32), np.zeros((2, 2), np.float32)
    with pytest.raises(TypeError, match="text 1 is not a str"):
        featurizer.linear(["good", 3], coef, bias)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="coef must be"):
        fast.logits(["a", "b"], featurizer.idf, featurizer._tf, coef[1:], bias, out)
    with pytest.raises(ValueError, match="out must be"):
        fast.logits(["a"], featurizer.idf, featurizer._tf, coef, bias, out)
    with pytest.raises(ValueError, match="idf must be"):
        fast.logits(["a", "b"], featurizer.idf.astype(np.float64), featurizer._tf, coef, bias, out)
    # The table survives a failed call: the next one counts from zero.
    _assert_fused_path_matches(featurizer, ["good good film", "bad"], 2)


def _long_batch() -> tuple[NgramFeaturizer, list[str]]:
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(3000)]
    texts = [" ".join(rng.choice(words, size=200)) for _ in range(600)]
    return NgramFeaturizer.fit(texts, max_n=2, min_df=1, max_features=50_000), texts


def test_the_c_path_lets_other_threads_run() -> None:
    """While one thread is inside the C path, another runs Python code: the GIL is released
    for the work. The main thread's longest pause during the call would be the whole call if
    the GIL were held."""
    featurizer, texts = _long_batch()
    coef = np.ones((featurizer.n_features, 2), np.float32)
    bias = np.zeros(2, np.float32)
    batch = texts * 20
    span: list[float] = []

    def predict() -> None:
        span.append(time.perf_counter())
        featurizer.linear(batch, coef, bias)
        span.append(time.perf_counter())

    featurizer.linear(texts[:10], coef, bias)  # build the table first
    worker = threading.Thread(target=predict)
    ticks = []
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
    worker.join()
    started, ended = span
    inside = [started, *(t for t in ticks if started < t < ended), ended]
    longest_pause = max(b - a for a, b in itertools.pairwise(inside))
    assert ended - started > 0.05, "the call is too short to tell"
    assert longest_pause < 0.5 * (ended - started), (longest_pause, ended - started)


def test_threads_sharing_one_model_get_the_logits_they_would_get_alone() -> None:
    featurizer, texts = _long_batch()
    coef = np.random.default_rng(4).normal(size=(featurizer.n_features, 3)).astype(np.float32)
    bias = np.zeros(3, np.float32)
    batches = [texts[i::4] for i in range(4)]
    alone = [featurizer.linear(batch, coef, bias) for batch in batches]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            together = list(pool.map(lambda b: featurizer.linear(b, coef, bias), batches))
            for a, b in zip(alone, together, strict=True):
                _assert_same_bits(a, b)


UNSPACED_TEXTS = [
    "这个手机很好用,电池也耐用!", "质量太差了,不推荐购买。", "iPhone很好,但是价格贵?",
    "この映画はとても面白かった!", "サービスが悪い。二度と行かない", "ｶﾀｶﾅ半角とひらがな",
    "อาหารอร่อยมาก บริการดีเยี่ยม", "ไม่ชอบเลย แพงเกินไป", "정말 좋은 제품입니다!",
    "배송이 너무 늦어요", "葛󠄀城 variation selector 々〆〇", "mixed 中文 english 日本語 ไทย",
]  # fmt: skip


@pytest.mark.parametrize("char_ngrams", [None, (1, 2)])
def test_fused_logits_match_on_scripts_without_spaces(
    char_ngrams: tuple[int, int] | None,
) -> None:
    """Chinese, Japanese, Thai and Korean, however the featurizer fit on them tokenizes
    scripts without spaces: the fused path and the Python path give the same bits."""
    featurizer = _vocabulary_from(UNSPACED_TEXTS, 2, char_ngrams)
    for n_classes in (2, 5):
        _assert_fused_path_matches(featurizer, [*UNSPACED_TEXTS, *UNSPACED_TEXTS[::-3]], n_classes)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet="中文很好日本語のテストｶﾀ々อาหารไม่่้정말좋 aB'!?<>\u0e31\u0e48\u3099\ufe00",
            max_size=40,
        ),
        min_size=1,
        max_size=6,
    ),
    st.integers(1, 4),
)
def test_fused_logits_match_on_any_mix_of_scripts(texts: list[str], n_classes: int) -> None:
    featurizer = _vocabulary_from([*texts, *UNSPACED_TEXTS], 2)
    _assert_fused_path_matches(featurizer, texts, n_classes)


def _assert_words_match(featurizer: NgramFeaturizer, texts: list[str]) -> None:
    """The C path's words in reading order (what a dense student with runs of words reads)
    and token counts (which tell it the texts with unknown words) are the pure-Python
    path's, id for id."""
    fast = featurizer.words_and_token_counts(texts)
    assert isinstance(featurizer._fast, featurizer_module._ngrams.Vocabulary), "C path inactive"
    c_path = featurizer._fast
    featurizer._fast = False  # the "cannot use C" state: words() takes the Python path
    try:
        slow = featurizer.words_and_token_counts(texts)
    finally:
        featurizer._fast = c_path
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)
    assert fast[0].dtype == np.int32 and fast[1].dtype == fast[2].dtype == np.int64
    assert int(fast[1].sum()) == len(fast[0]) and len(fast[1]) == len(fast[2]) == len(texts)
    assert (fast[2] >= fast[1]).all()


@pytest.mark.parametrize("char_ngrams", [None, (2, 5)])
@pytest.mark.parametrize("max_n", [1, 2, 3])
def test_words_in_reading_order_match_on_tricky_texts(
    max_n: int, char_ngrams: tuple[int, int] | None
) -> None:
    featurizer = _vocabulary_from(TRICKY[::2], max_n, char_ngrams)  # some tokens unknown
    _assert_words_match(featurizer, [*TRICKY, *TRICKY[::-1], ""])


def test_words_in_reading_order_match_on_scripts_without_spaces() -> None:
    featurizer = _vocabulary_from(UNSPACED_TEXTS, 2)
    assert featurizer.unspaced == "characters"
    _assert_words_match(featurizer, [*UNSPACED_TEXTS, *UNSPACED_TEXTS[::-3]])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(alphabet=st.characters(), max_size=60), min_size=1, max_size=6),
    st.lists(
        st.text(alphabet="中文很好อาหาร정말 aB'!?<>_\u00e9\u0130\u0e31\u3099", max_size=40),
        min_size=1,
        max_size=6,
    ),
)
def test_words_in_reading_order_match_on_any_unicode(texts: list[str], small: list[str]) -> None:
    corpus = texts + small
    _assert_words_match(_vocabulary_from([*corpus[::2], "a b", "ab"], 2), corpus)


@pytest.mark.skipif(not (DATA / "sst2_dev.csv.gz").exists(), reason="shared data absent")
def test_words_in_reading_order_match_on_real_sentences() -> None:
    with gzip.open(DATA / "sst2_dev.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    _assert_words_match(NgramFeaturizer.fit(texts[:400], max_n=2, min_df=2), texts[400:])

"""Word n-gram (and optional character n-gram) TF-IDF features with numpy alone.

This featurizer is the only one in textdistill: students are trained on its output and the
deployed artifact runs the very same code, so what is measured is what is served.

The Python part of the hot path is a regex scan and dictionary look-ups done in C by the
interpreter; counting, weighting and normalising are vectorised over a whole batch.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from textdistill.runtime.native import PURE_PYTHON, extension

# The interface of the C code this file calls (_ngrams.c's NGRAMS_VERSION).
C_VERSION = 5
_ngrams = extension("_ngrams", C_VERSION)
# Whether this file uses its pure-Python path (TEXTDISTILL_PURE_PYTHON; tests switch it).
_PURE_PYTHON = PURE_PYTHON

# Words (letters and digits, with inner apostrophes: "don't" stays one token) plus "!" and "?",
# which carry sentiment and intent in short texts.
TOKEN_PATTERN = r"[^\W_]+(?:'[^\W_]+)*|[!?]"

# Scripts written without spaces between words: Thai, kana, CJK ideographs (with bopomofo and
# the ideographic iteration marks) and hangul, by Unicode block. Only their letters and digits
# count (a block's punctuation stays a separator). Hangul does use spaces, but its words glue
# endings to stems, so character n-grams serve it as they serve Chinese.
UNSPACED_BLOCKS = (
    (0x0E00, 0x0E7F),  # Thai
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x3000, 0x31FF),  # CJK symbols (々〆〇), hiragana, katakana, bopomofo, compatibility jamo
    (0x3400, 0x4DBF),  # CJK Unified Ideographs Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xA960, 0xA97F),  # Hangul Jamo Extended-A
    (0xAC00, 0xD7FF),  # Hangul Syllables, Hangul Jamo Extended-B
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0xFF66, 0xFFDC),  # halfwidth katakana and hangul
    (0x1AFF0, 0x1B16F),  # kana supplements and extensions
    (0x20000, 0x323AF),  # CJK Unified Ideographs Extensions B-H, compatibility supplement
)
# Combining marks that belong to the letter before them: Thai vowel and tone marks, the kana
# voicing marks, and variation selectors (ideographic variants).
UNSPACED_MARKS = (
    (0x0E31, 0x0E31),
    (0x0E34, 0x0E3A),
    (0x0E47, 0x0E4E),
    (0x3099, 0x309A),
    (0xFE00, 0xFE0F),
    (0xE0100, 0xE01EF),
)


def _char_class(blocks: Sequence[tuple[int, int]]) -> str:
    """A regex character class of code point ranges, written with escapes (ASCII only)."""

    def escape(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"

    return "".join(f"{escape(low)}-{escape(high)}" for low, high in blocks)


_UNSPACED = _char_class(UNSPACED_BLOCKS)
# In "characters" mode a letter of those scripts is a token of its own (with its combining
# marks), and words of other scripts stop where one begins: "iPhone很好" is "iphone 很 好".
UNSPACED_TOKEN_PATTERN = (
    rf"[^\W_{_UNSPACED}]+(?:'[^\W_{_UNSPACED}]+)*"
    rf"|(?=[^\W_])[{_UNSPACED}][{_char_class(UNSPACED_MARKS)}]*|[!?]"
)
# How text of scripts without spaces is read: as words of the word regex (a whole clause is
# then one "word"), or as characters, whose 1..max_n grams are character unigrams, bigrams...
TOKEN_PATTERNS = {"words": TOKEN_PATTERN, "characters": UNSPACED_TOKEN_PATTERN}
# What ``fit`` accepts: a mode, or "auto" to choose one from the training texts.
UNSPACED_CHOICES = ("auto", *TOKEN_PATTERNS)
# ``fit(unspaced="auto")`` reads characters when at least this share of the training texts
# holds a letter of those scripts: a stray one in an English corpus keeps the word tokenizer.
UNSPACED_SHARE = 0.01
# The artifact format that introduced the "characters" mode (see runtime/artifact.py).
UNSPACED_FORMAT_VERSION = 4
# IMDB-style markup such as "<br />" is noise, not words.
_MARKUP = re.compile(r"<[^>]{0,40}>")
_TOKENS = {mode: re.compile(pattern) for mode, pattern in TOKEN_PATTERNS.items()}
_UNSPACED_LETTER = re.compile(rf"(?=[^\W_])[{_UNSPACED}]")


def check_unspaced(mode: str) -> str:
    """``mode`` if it is a tokenizer mode of :data:`TOKEN_PATTERNS`: the one check of it."""
    if mode not in TOKEN_PATTERNS:
        raise ValueError(f"unspaced must be one of {sorted(TOKEN_PATTERNS)}, got {mode!r}")
    return mode


def choose_unspaced(texts: Iterable[str]) -> str:
    """``"characters"`` if at least :data:`UNSPACED_SHARE` of ``texts`` hold a letter of a
    script written without spaces, else ``"words"``.

    >>> choose_unspaced(["很好", "good"]), choose_unspaced(["good"] * 200 + ["很好"])
    ('characters', 'words')
    """
    n_texts = n_unspaced = 0
    for text in texts:
        n_texts += 1
        n_unspaced += _UNSPACED_LETTER.search(text) is not None
    return "characters" if n_unspaced and n_unspaced >= UNSPACED_SHARE * n_texts else "words"


def tokenize(text: str, unspaced: str = "words") -> list[str]:
    """Lower-case tokens of ``text`` with markup removed; ``unspaced="characters"`` splits
    scripts written without spaces into characters.

    >>> tokenize("Great film!<br />Don't miss it.")
    ['great', 'film', '!', "don't", 'miss', 'it']
    >>> tokenize("iPhone很好!"), tokenize("iPhone很好!", "characters")
    (['iphone很好', '!'], ['iphone', '很', '好', '!'])
    """
    return _TOKENS[unspaced].findall(_MARKUP.sub(" ", text.lower()))


def ngrams(tokens: Sequence[str], max_n: int) -> Iterator[str]:
    """All 1..max_n grams of ``tokens``, joined by a space (a character no token contains).

    >>> list(ngrams(["a", "b", "c"], 2))
    ['a', 'b', 'c', 'a b', 'b c']
    """
    yield from tokens
    for n in range(2, max_n + 1):
        for start in range(len(tokens) - n + 1):
            yield " ".join(tokens[start : start + n])


# Character n-grams are taken inside each token, padded with "<" and ">" (fastText's subwords),
# and stored in the vocabulary with this prefix: no token contains "#", "<" or ">", so a
# character term can never be mistaken for a word n-gram ("#<go" is not the word "go").
CHAR_PREFIX = "#"


def token_char_ngrams(token: str, low: int, high: int) -> list[str]:
    """The character ``low..high``-grams of ``<token>``, each prefixed by :data:`CHAR_PREFIX`.

    Why inside tokens: they add spelling variants, inflections and typos ("boooring",
    "worst"/"worse") without crossing word boundaries, which word n-grams already cover.

    >>> token_char_ngrams("ok", 2, 3)
    ['#<o', '#ok', '#k>', '#<ok', '#ok>']
    """
    padded = f"<{token}>"
    return [
        CHAR_PREFIX + padded[start : start + n]
        for n in range(low, high + 1)
        for start in range(len(padded) - n + 1)
    ]


def check_char_range(char_range: Sequence[int] | None) -> tuple[int, int] | None:
    """``(low, high)`` with ``1 <= low <= high``, or None: the one check of the option."""
    if char_range is None:
        return None
    if len(char_range) != 2:
        raise ValueError(f"char_ngrams must be (low, high), got {char_range!r}")
    low, high = (int(n) for n in char_range)
    if not 1 <= low <= high:
        raise ValueError(f"char_ngrams must satisfy 1 <= low <= high, got {char_range!r}")
    return low, high


# Counts whose sublinear tf the C path takes from a table at first; a document with a larger
# count grows it.
_TF_TABLE = 1024


def sublinear_tf(n: int) -> np.ndarray:
    """``float32(1 + log(c))`` for ``c < n`` (0 for ``c = 0``, which never occurs), computed
    by numpy as :meth:`NgramFeaturizer.transform` computes it, so a table look-up in C gives
    the very same bits (C's ``log`` may differ from numpy's in the last place).

    >>> sublinear_tf(3).tolist()
    [0.0, 1.0, 1.6931471824645996]
    """
    counts = np.arange(1, max(n, 1), dtype=np.int32)
    return np.concatenate([[0.0], (1.0 + np.log(counts)).astype(np.float32)]).astype(np.float32)


@dataclass(frozen=True)
class SparseRows:
    """A CSR matrix in plain numpy, so the runtime needs no scipy.

    ``to_scipy`` is for training code only, where scipy is present.
    """

    data: np.ndarray  # float32 [nnz]
    indices: np.ndarray  # int32 [nnz]
    indptr: np.ndarray  # int64 [n_rows + 1]
    n_features: int

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def row_ids(self) -> np.ndarray:
        """Row index of every stored value."""
        return np.repeat(np.arange(self.n_rows), np.diff(self.indptr))

    def matmul(self, weights: np.ndarray) -> np.ndarray:
        """``self @ weights`` for a dense ``[n_features, k]`` matrix, as float32 ``[n_rows, k]``."""
        rows = self.row_ids()
        out = np.empty((self.n_rows, weights.shape[1]), dtype=np.float32)
        for j in range(weights.shape[1]):
            contrib = self.data * weights[self.indices, j]
            out[:, j] = np.bincount(rows, weights=contrib, minlength=self.n_rows)
        return out

    def to_scipy(self) -> Any:
        import scipy.sparse

        return scipy.sparse.csr_matrix(
            (self.data, self.indices, self.indptr), shape=(self.n_rows, self.n_features)
        )


class NgramFeaturizer:
    """Sublinear TF-IDF over word 1..``max_n`` grams, L2-normalised per document.

    With ``char_ngrams=(low, high)``, the character n-grams of every token (see
    :func:`token_char_ngrams`) join the word n-grams in one vocabulary, weighted the same way.
    With ``unspaced="characters"``, each letter of a script written without spaces (Chinese,
    Japanese, Thai, Korean) is a token, so its 1..``max_n`` grams are character unigrams and
    bigrams, as Chinese text classifiers commonly use; words of other scripts are unchanged.

    The weighting matches scikit-learn's ``TfidfVectorizer(sublinear_tf=True)`` (smoothed idf),
    which is the well-tuned baseline people compare against.

    >>> f = NgramFeaturizer.fit(["good movie", "bad movie", "good plot"], max_n=2, min_df=1)
    >>> X = f.transform(["good good movie", "unknown words"])
    >>> X.n_rows, X.n_features
    (2, 7)
    >>> float(np.round((X.data[X.indptr[0]:X.indptr[1]] ** 2).sum(), 5))
    1.0
    >>> int(X.indptr[2] - X.indptr[1])  # a document with no known n-gram is an empty row
    0
    """

    def __init__(
        self,
        vocabulary: Sequence[str],
        idf: np.ndarray,
        max_n: int = 2,
        char_ngrams: Sequence[int] | None = None,
        unspaced: str = "words",
    ) -> None:
        if len(vocabulary) != len(idf):
            raise ValueError(
                f"vocabulary has {len(vocabulary)} terms but idf has {len(idf)} weights"
            )
        self.vocabulary = list(vocabulary)
        self.idf = np.asarray(idf, dtype=np.float32)
        self.max_n = int(max_n)
        self.char_ngrams = check_char_range(char_ngrams)
        self.unspaced = check_unspaced(unspaced)
        self._index = {term: i for i, term in enumerate(self.vocabulary)}
        # The C vocabulary: None until first use, False where it cannot serve this vocabulary.
        self._fast: Any = None
        self._tf = sublinear_tf(_TF_TABLE)

    @property
    def n_features(self) -> int:
        return len(self.vocabulary)

    @property
    def format_version(self) -> int:
        """The oldest artifact format that describes this featurizer: an older reader would
        tokenise Chinese or Thai as words and silently compute other features."""
        return UNSPACED_FORMAT_VERSION if self.unspaced == "characters" else 1

    @classmethod
    def fit(
        cls,
        texts: Iterable[str],
        *,
        max_n: int = 2,
        char_ngrams: Sequence[int] | None = None,
        min_df: int = 2,
        max_features: int | None = 200_000,
        unspaced: str = "auto",
    ) -> NgramFeaturizer:
        """Learn the vocabulary (the ``max_features`` most frequent n-grams by document
        frequency, ties broken alphabetically so the result is deterministic) and idf.

        ``unspaced="auto"`` chooses the tokenizer mode from the scripts of ``texts``
        (:func:`choose_unspaced`); ``"words"`` or ``"characters"`` impose one."""
        if max_n < 1:
            raise ValueError(f"max_n must be at least 1, got {max_n}")
        char_range = check_char_range(char_ngrams)
        if unspaced == "auto":
            texts = texts if isinstance(texts, Sequence) else list(texts)
            unspaced = choose_unspaced(texts)
        check_unspaced(unspaced)
        doc_freq: Counter[str] = Counter()
        n_docs = 0
        subwords: dict[str, list[str]] = {}
        for text in texts:
            tokens = tokenize(text, unspaced)
            terms = set(ngrams(tokens, max_n))
            if char_range is not None:
                for token in set(tokens):
                    found = subwords.get(token)
                    if found is None:
                        found = subwords[token] = token_char_ngrams(token, *char_range)
                    terms.update(found)
            doc_freq.update(terms)
            n_docs += 1
        kept = [(term, df) for term, df in doc_freq.items() if df >= min_df]
        kept.sort(key=lambda item: (-item[1], item[0]))
        if max_features is not None:
            kept = kept[:max_features]
        if not kept:
            raise ValueError(
                f"no n-gram occurs in at least min_df={min_df} of the {n_docs} documents; "
                "lower min_df or give more text"
            )
        vocabulary = [term for term, _ in kept]
        df = np.array([count for _, count in kept], dtype=np.float64)
        idf = np.log((1.0 + n_docs) / (1.0 + df)) + 1.0
        return cls(vocabulary, idf, max_n=max_n, char_ngrams=char_range, unspaced=unspaced)

    def _vocabulary(self) -> Any:
        """The C vocabulary, built on first use; None where the Python path must count (no
        extension, ``TEXTDISTILL_PURE_PYTHON``, or two terms sharing a 96-bit hash)."""
        if self._fast is None and _ngrams is not None and not _PURE_PYTHON:
            low, high = self.char_ngrams or (0, 0)
            try:
                self._fast = _ngrams.Vocabulary(
                    self.vocabulary,
                    self.max_n,
                    char_min=low,
                    char_max=high,
                    unspaced=self.unspaced == "characters",
                )
            except ValueError:  # two terms share a 96-bit hash: count them exactly in Python
                self._fast = False
        return self._fast or None

    @property
    def uses_c_path(self) -> bool:
        """Whether this featurizer computes with the C extension (which releases the GIL)."""
        return self._vocabulary() is not None

    def _tf_call(self, method: Callable[..., Any], texts: Sequence[str], *args: Any) -> Any:
        """``method(texts, idf, tf, *args)`` of the C vocabulary, with a tf table long enough
        for every count (the C code says how long when it meets a larger count)."""
        while True:
            result = method(texts, self.idf, self._tf, *args)
            if not isinstance(result, int):
                return result
            self._tf = sublinear_tf(max(result, 2 * len(self._tf)))

    def counts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per document, the sorted distinct vocabulary ids of its n-grams and their counts.

        Returns ``(ids int32 [nnz], counts int32 [nnz], row_lengths int64 [n_docs])``. This is
        the one place where text becomes integers: the C extension when it is built, else
        pure Python; both give the same integers, so everything downstream is identical.
        """
        fast = self._vocabulary()
        if fast is not None:
            ids, counts, lengths = fast.count(texts)
            return (
                np.frombuffer(ids, dtype=np.int32),
                np.frombuffer(counts, dtype=np.int32),
                np.frombuffer(lengths, dtype=np.int64),
            )
        return self._counts_python(texts)

    def words(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per document, the vocabulary id of each of its tokens in reading order, repeats
        kept, a token that is no term left out: ``(ids int32 [n], row_lengths int64
        [n_docs])``. What a model reading runs of consecutive words takes; the C extension
        when it is built, else pure Python, with the same integers.

        >>> f = NgramFeaturizer.fit(["good movie", "bad movie"], max_n=1, min_df=1)
        >>> ids, lengths = f.words(["Movie, good MOVIE!", "", "unknown bad"])
        >>> [f.vocabulary[i] for i in ids], lengths.tolist()
        (['movie', 'good', 'movie', 'bad'], [3, 0, 1])
        """
        ids, lengths, _ = self.words_and_token_counts(texts)
        return ids, lengths

    def words_and_token_counts(
        self, texts: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`words` and how many tokens each document has in all (``int64 [n_docs]``):
        where the two counts differ, the document has a token that is no term.

        >>> f = NgramFeaturizer.fit(["good movie"], max_n=1, min_df=1)
        >>> _, lengths, tokens = f.words_and_token_counts(["good movie", "good plot!"])
        >>> lengths.tolist(), tokens.tolist()
        ([2, 1], [2, 3])
        """
        fast = self._vocabulary()
        if fast is not None:
            ids, lengths, tokens = fast.words(texts)
            return (
                np.frombuffer(ids, dtype=np.int32),
                np.frombuffer(lengths, dtype=np.int64),
                np.frombuffer(tokens, dtype=np.int64),
            )
        index_get = self._index.get
        found: list[int] = []
        row_lengths = np.zeros(len(texts), dtype=np.int64)
        n_tokens = np.zeros(len(texts), dtype=np.int64)
        for row, text in enumerate(texts):
            tokens = tokenize(text, self.unspaced)
            known = [i for i in map(index_get, tokens) if i is not None]
            found.extend(known)
            row_lengths[row] = len(known)
            n_tokens[row] = len(tokens)
        return np.asarray(found, dtype=np.int32), row_lengths, n_tokens

    def ngram_ids(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The vocabulary id of every n-gram occurrence of ``texts``: ``(ids, offsets)``.

        ``ids`` int64 ``[n_occurrences]`` (repeats kept, sorted within a document) and
        ``offsets`` int64 ``[n_docs + 1]``: document ``d`` owns ``ids[offsets[d]:offsets[d+1]]``,
        the input of the exported ONNX model. Built from :meth:`counts`, so the ids are the
        very ones :meth:`transform` weighs.

        >>> f = NgramFeaturizer.fit(["good movie", "bad movie"], max_n=1, min_df=1)
        >>> ids, offsets = f.ngram_ids(["movie good movie", "", "unknown"])
        >>> [f.vocabulary[i] for i in ids], offsets.tolist()
        (['movie', 'movie', 'good'], [0, 3, 3, 3])
        """
        ids, counts, lengths = self.counts(texts)
        row_ends = np.cumsum(lengths)
        occurrences = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        offsets = occurrences[np.concatenate([[0], row_ends]).astype(np.int64)]
        return np.repeat(ids.astype(np.int64), counts), offsets.astype(np.int64)

    def _counts_python(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        index_get = self._index.get
        found: list[int] = []
        lengths = np.zeros(len(texts), dtype=np.int64)
        subword_ids: dict[str, list[int]] = {}  # per token: the ids of its character n-grams
        for row, text in enumerate(texts):
            tokens = tokenize(text, self.unspaced)
            ids = [i for i in map(index_get, ngrams(tokens, self.max_n)) if i is not None]
            if self.char_ngrams is not None:
                for token in tokens:
                    known = subword_ids.get(token)
                    if known is None:
                        terms = token_char_ngrams(token, *self.char_ngrams)
                        known = subword_ids[token] = [
                            i for i in map(index_get, terms) if i is not None
                        ]
                    ids.extend(known)
            found.extend(ids)
            lengths[row] = len(ids)
        rows = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        keys, counts = np.unique(
            rows * self.n_features + np.asarray(found, dtype=np.int64), return_counts=True
        )
        key_rows = keys // self.n_features
        ids_out = (keys - key_rows * self.n_features).astype(np.int32)
        return ids_out, counts.astype(np.int32), np.bincount(key_rows, minlength=len(texts))

    def transform(self, texts: Sequence[str]) -> SparseRows:
        """Features of ``texts`` as a :class:`SparseRows` with sorted column indices per row.

        The C path computes the rows in one pass with the operations of
        :meth:`_transform_numpy`, bit for bit.
        """
        fast = self._vocabulary()
        if fast is None:
            return self._transform_numpy(texts)
        ids, values, lengths = self._tf_call(fast.tfidf, texts)
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.frombuffer(lengths, dtype=np.int64), out=indptr[1:])
        return SparseRows(
            np.frombuffer(values, dtype=np.float32),
            np.frombuffer(ids, dtype=np.int32),
            indptr,
            self.n_features,
        )

    def _transform_numpy(self, texts: Sequence[str]) -> SparseRows:
        """The definition of the features: sublinear tf times idf, L2-normalised, from
        :meth:`counts`."""
        indices, counts, lengths = self.counts(texts)
        key_rows = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        values = (1.0 + np.log(counts)).astype(np.float32) * self.idf[indices]
        norms = np.sqrt(
            np.bincount(key_rows, weights=values.astype(np.float64) ** 2, minlength=len(texts))
        )
        values /= np.maximum(norms[key_rows], 1e-12).astype(np.float32)
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        return SparseRows(values.astype(np.float32), indices, indptr, self.n_features)

    def linear(self, texts: Sequence[str], weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """``transform(texts).matmul(weights) + bias``, float32 ``[n, k]``: a linear model's
        logits. The C path goes from text to logits in one pass, without the GIL and without
        building the feature rows, bit-identical to the numpy composition."""
        fast = self._vocabulary()
        weights = np.ascontiguousarray(weights, dtype=np.float32)
        bias = np.ascontiguousarray(bias, dtype=np.float32)
        if fast is None or weights.ndim != 2 or bias.shape != weights.shape[1:]:
            return self.transform(texts).matmul(weights) + bias
        out = np.empty((len(texts), len(bias)), dtype=np.float32)
        self._tf_call(fast.logits, texts, weights, bias, out)
        return out

    @classmethod
    def from_spec(
        cls, spec: dict[str, Any], vocabulary: Sequence[str], idf: np.ndarray
    ) -> NgramFeaturizer:
        """The featurizer that :meth:`spec` described (an artifact's or an ONNX export's).

        A spec written before character n-grams existed has no ``char_ngrams``: word n-grams
        only; one written before ``unspaced_scripts`` existed reads words. One whose character
        terms use another prefix, or that tokenises otherwise, was written by another version.
        """
        if spec.get("char_ngrams") is not None and spec.get("char_prefix") != CHAR_PREFIX:
            raise ValueError(
                f"character n-grams marked with {spec.get('char_prefix')!r}, this textdistill "
                f"marks them with {CHAR_PREFIX!r}"
            )
        unspaced = check_unspaced(spec.get("unspaced_scripts", "words"))
        pattern = spec.get("token_pattern", TOKEN_PATTERN)
        if pattern != TOKEN_PATTERNS[unspaced]:
            raise ValueError(
                f"tokenised with {pattern!r}; this textdistill reads {unspaced} with "
                f"{TOKEN_PATTERNS[unspaced]!r}"
            )
        return cls(
            vocabulary,
            idf,
            max_n=spec["max_n"],
            char_ngrams=spec.get("char_ngrams"),
            unspaced=unspaced,
        )

    def spec(self) -> dict[str, Any]:
        """What the artifact stores besides the vocabulary and idf arrays.

        The word mode writes exactly what textdistill wrote before ``unspaced_scripts``
        existed, so English artifacts are unchanged and older readers keep loading them."""
        spec: dict[str, Any] = {
            "type": "word_ngram_tfidf",
            "max_n": self.max_n,
            "char_ngrams": None if self.char_ngrams is None else list(self.char_ngrams),
            "char_prefix": CHAR_PREFIX,
            "token_pattern": TOKEN_PATTERNS[self.unspaced],
            "lowercase": True,
            "strip_markup": True,
            "tf": "sublinear",
            "norm": "l2",
        }
        if self.unspaced != "words":
            spec["unspaced_scripts"] = self.unspaced
        return spec

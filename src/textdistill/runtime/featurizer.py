"""Word n-gram (and optional character n-gram) TF-IDF features with numpy alone.

This featurizer is the only one in textdistill: students are trained on its output and the
deployed artifact runs the very same code, so what is measured is what is served.

The Python part of the hot path is a regex scan and dictionary look-ups done in C by the
interpreter; counting, weighting and normalising are vectorised over a whole batch.
"""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

try:  # the optional C fast path (setup.py builds it where a compiler exists)
    from textdistill.runtime import _ngrams  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on the build
    _ngrams = None
# The interface of the C code this file calls. A build left over from an older source (a
# checkout whose extension was not rebuilt) is not used: the Python path gives the same
# results, and a warning says how to get the fast one back.
C_VERSION = 2
if _ngrams is not None and getattr(_ngrams, "VERSION", 1) != C_VERSION:  # pragma: no cover
    warnings.warn(
        f"{_ngrams.__file__} is a stale build of textdistill's C extension; using the "
        "pure-Python path. Rebuild it: python setup.py build_ext --inplace",
        RuntimeWarning,
        stacklevel=1,
    )
    _ngrams = None
# TEXTDISTILL_PURE_PYTHON=1 forces the pure-Python path (to compare, or to debug).
_PURE_PYTHON = os.environ.get("TEXTDISTILL_PURE_PYTHON", "") not in {"", "0"}

# Words (letters and digits, with inner apostrophes: "don't" stays one token) plus "!" and "?",
# which carry sentiment and intent in short texts.
TOKEN_PATTERN = r"[^\W_]+(?:'[^\W_]+)*|[!?]"
# IMDB-style markup such as "<br />" is noise, not words.
_MARKUP = re.compile(r"<[^>]{0,40}>")
_TOKENS = re.compile(TOKEN_PATTERN)


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens of ``text`` with markup removed.

    >>> tokenize("Great film!<br />Don't miss it.")
    ['great', 'film', '!', "don't", 'miss', 'it']
    """
    return _TOKENS.findall(_MARKUP.sub(" ", text.lower()))


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
    ) -> None:
        if len(vocabulary) != len(idf):
            raise ValueError(
                f"vocabulary has {len(vocabulary)} terms but idf has {len(idf)} weights"
            )
        self.vocabulary = list(vocabulary)
        self.idf = np.asarray(idf, dtype=np.float32)
        self.max_n = int(max_n)
        self.char_ngrams = check_char_range(char_ngrams)
        self._index = {term: i for i, term in enumerate(self.vocabulary)}
        # The C vocabulary: None until first use, False where it cannot serve this vocabulary.
        self._fast: Any = None
        self._tf = sublinear_tf(_TF_TABLE)

    @property
    def n_features(self) -> int:
        return len(self.vocabulary)

    @classmethod
    def fit(
        cls,
        texts: Iterable[str],
        *,
        max_n: int = 2,
        char_ngrams: Sequence[int] | None = None,
        min_df: int = 2,
        max_features: int | None = 200_000,
    ) -> NgramFeaturizer:
        """Learn the vocabulary (the ``max_features`` most frequent n-grams by document
        frequency, ties broken alphabetically so the result is deterministic) and idf."""
        if max_n < 1:
            raise ValueError(f"max_n must be at least 1, got {max_n}")
        char_range = check_char_range(char_ngrams)
        doc_freq: Counter[str] = Counter()
        n_docs = 0
        subwords: dict[str, list[str]] = {}
        for text in texts:
            tokens = tokenize(text)
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
        return cls(vocabulary, idf, max_n=max_n, char_ngrams=char_range)

    def _vocabulary(self) -> Any:
        """The C vocabulary, built on first use; None where the Python path must count (no
        extension, ``TEXTDISTILL_PURE_PYTHON``, or two terms sharing a 96-bit hash)."""
        if self._fast is None and _ngrams is not None and not _PURE_PYTHON:
            low, high = self.char_ngrams or (0, 0)
            try:
                self._fast = _ngrams.Vocabulary(
                    self.vocabulary, self.max_n, char_min=low, char_max=high
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
            tokens = tokenize(text)
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
        only. One whose character terms use another prefix was written by another version.
        """
        if spec.get("char_ngrams") is not None and spec.get("char_prefix") != CHAR_PREFIX:
            raise ValueError(
                f"character n-grams marked with {spec.get('char_prefix')!r}, this textdistill "
                f"marks them with {CHAR_PREFIX!r}"
            )
        return cls(vocabulary, idf, max_n=spec["max_n"], char_ngrams=spec.get("char_ngrams"))

    def spec(self) -> dict[str, Any]:
        """What the artifact stores besides the vocabulary and idf arrays."""
        return {
            "type": "word_ngram_tfidf",
            "max_n": self.max_n,
            "char_ngrams": None if self.char_ngrams is None else list(self.char_ngrams),
            "char_prefix": CHAR_PREFIX,
            "token_pattern": TOKEN_PATTERN,
            "lowercase": True,
            "strip_markup": True,
            "tf": "sublinear",
            "norm": "l2",
        }

"""Features of a text pair for a linear model, numpy only: what each side says and how the
two sides relate.

A linear model over one bag of n-grams cannot compare two texts: "a man is sleeping" /
"nobody is sleeping" and "a man is sleeping" / "a man is sleeping" share most of their words
and differ in what matters, which only an interaction shows. So a pair's feature vector is
five blocks, each a fixed range of columns:

* ``first`` and ``second``: each side's TF-IDF n-grams (:class:`NgramFeaturizer`, one
  vocabulary fit on both sides), so the model can weigh a word by the side it is on;
* ``shared``: the n-grams both sides contain, each at its idf, divided by the idf norm of
  the union of both sides' n-grams (the block's length is the idf-weighted overlap);
* ``cross``: hashed pairs (word of the first side, word of the second) of the words that
  are on one side only: what was substituted for what ("man" -> "woman", "bought" ->
  "acquired"). Each side's rarest :data:`CROSS_WORDS` such words (highest idf) take part, so a
  long text cannot blow up the count; the pairs are hashed on vocabulary ids into
  ``cross_buckets`` columns (by default about as many as the vocabulary has terms);
* ``stats``: length and overlap statistics over all tokens (:data:`STATS`), out-of-vocabulary
  ones included, because names and numbers are often both rare and decisive.

The n-gram counting is :meth:`NgramFeaturizer.counts` (the C fast path where it is built),
and everything after it is the same numpy code on either path, so both give identical
features.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from textdistill.runtime.featurizer import CHAR_PREFIX, NgramFeaturizer, SparseRows, tokenize
from textdistill.runtime.pairs import are_pairs, as_pair_texts, split_pairs

SPEC_TYPE = "text_pair"
# The artifact format that first describes pair features: an older reader refuses the
# artifact instead of reading its spec as a single text's n-grams.
PAIR_FORMAT_VERSION = 5
# The cross block's width when fitting: the vocabulary's size rounded up to a power of two,
# within these bounds (wider than that buys few fewer collisions and costs fitting time).
CROSS_BUCKETS_RANGE = (1 << 10, 1 << 18)
CROSS_WORDS = 24
# The statistics block, in column order: each in [0, 1] (lengths squashed by log).
STATS = (
    "word_jaccard",  # distinct shared words / distinct words of both sides
    "first_covered",  # share of the first side's distinct words that the second has
    "second_covered",  # and the other way round
    "length_difference",  # |len(a) - len(b)| / max(len(a), len(b))
    "first_length",  # log(1 + words) / log(1 + 256), at most 1
    "second_length",
    "number_agreement",  # shared numbers ("3.5", "1,000") / numbers of both sides, else 1
    "identical",  # 1 when the sides have the same tokens in the same order
)
_LENGTH_SCALE = math.log1p(256)
_NUMBERS = re.compile(r"\d+(?:[.,]\d+)*").findall
# Odd 64-bit multipliers of the cross pairs' hash (splitmix64's), for a fixed, portable hash.
_MIX_FIRST = np.uint64(0x9E3779B97F4A7C15)
_MIX_SECOND = np.uint64(0xBF58476D1CE4E5B9)


class PairFeaturizer:
    """The five blocks of a pair's features (see the module docstring) as one sparse row.

    >>> f = PairFeaturizer.fit(["good movie\\x1fgood film", "bad movie\\x1fa dull film"],
    ...                        max_n=1, min_df=1, cross_buckets=16)
    >>> X = f.transform([("good movie", "good movie")])
    >>> f.block_of(int(X.indices[-1])), float(X.data[-1])  # the last column: "identical"
    ('stats', 1.0)
    """

    def __init__(
        self,
        side: NgramFeaturizer,
        *,
        cross_buckets: int,
        cross_words: int = CROSS_WORDS,
    ) -> None:
        if cross_buckets < 1 or cross_words < 0:
            raise ValueError(
                f"cross_buckets must be >= 1 and cross_words >= 0, got {cross_buckets} and "
                f"{cross_words}"
            )
        self.side = side
        self.cross_buckets = int(cross_buckets)
        self.cross_words = int(cross_words)
        v = side.n_features
        self._starts = {
            "first": 0,
            "second": v,
            "shared": 2 * v,
            "cross": 3 * v,
            "stats": 3 * v + self.cross_buckets,
        }
        self._is_word = np.array(
            [" " not in term and not term.startswith(CHAR_PREFIX) for term in side.vocabulary],
            dtype=bool,
        )

    @property
    def vocabulary(self) -> list[str]:
        """The sides' n-gram vocabulary (what an artifact stores)."""
        return self.side.vocabulary

    @property
    def idf(self) -> np.ndarray:
        return self.side.idf

    @property
    def n_features(self) -> int:
        return self._starts["stats"] + len(STATS)

    @property
    def format_version(self) -> int:
        """The oldest artifact format that describes these features."""
        return max(PAIR_FORMAT_VERSION, self.side.format_version)

    @property
    def uses_c_path(self) -> bool:
        """False: the statistics and the blocks' assembly hold the GIL, even where the sides'
        n-grams are counted in C, so ``predict --jobs`` uses processes for a pair model."""
        return False

    def block_of(self, column: int) -> str:
        """The name of the block that ``column`` belongs to (for reading weights)."""
        name = "first"
        for block, start in self._starts.items():
            if column >= start:
                name = block
        return name

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        *,
        max_n: int = 2,
        char_ngrams: Sequence[int] | None = None,
        min_df: int = 2,
        max_features: int | None = 200_000,
        unspaced: str = "auto",
        cross_buckets: int | None = None,
        cross_words: int = CROSS_WORDS,
    ) -> PairFeaturizer:
        """Learn the sides' vocabulary and idf, each side of each pair counting as a document;
        ``cross_buckets`` defaults to the vocabulary's size rounded up to a power of two (see
        :data:`CROSS_BUCKETS_RANGE`)."""
        firsts, seconds = split_pairs(texts)
        side = NgramFeaturizer.fit(
            firsts + seconds,
            max_n=max_n,
            char_ngrams=char_ngrams,
            min_df=min_df,
            max_features=max_features,
            unspaced=unspaced,
        )
        if cross_buckets is None:
            low, high = CROSS_BUCKETS_RANGE
            cross_buckets = min(max(1 << (side.n_features - 1).bit_length(), low), high)
        return cls(side, cross_buckets=cross_buckets, cross_words=cross_words)

    def transform(self, texts: Sequence[str] | Sequence[Sequence[str]]) -> SparseRows:
        """Features of joined pairs (or ``(text, text_pair)`` tuples), sorted columns per row."""
        return self.transform_with_sides(texts)[0]

    def transform_with_sides(
        self, texts: Sequence[str] | Sequence[Sequence[str]]
    ) -> tuple[SparseRows, SparseRows, SparseRows]:
        """The pairs' features and each side's own n-gram rows (the ``first`` and ``second``
        blocks before their offsets), for a model that also reads each side on its own (the
        dense student pools each side's word vectors) without tokenizing the sides twice."""
        if isinstance(texts, str):
            raise TypeError("expected a sequence of text pairs, got one str: wrap it in a list")
        firsts, seconds = split_pairs(as_pair_texts(texts))
        n, v = len(firsts), self.side.n_features
        xa, xb = self.side.transform(firsts), self.side.transform(seconds)
        rows_a, rows_b = xa.row_ids(), xb.row_ids()
        keys_a, keys_b = rows_a * v + xa.indices, rows_b * v + xb.indices
        a_in_b, b_in_a = _member(keys_a, keys_b), _member(keys_b, keys_a)
        idf2 = self.side.idf.astype(np.float64) ** 2
        union = np.bincount(rows_a, weights=idf2[xa.indices], minlength=n) + np.bincount(
            rows_b[~b_in_a], weights=idf2[xb.indices[~b_in_a]], minlength=n
        )
        shared_rows, shared_ids = rows_a[a_in_b], xa.indices[a_in_b]
        shared_values = self.side.idf[shared_ids] / np.sqrt(np.maximum(union[shared_rows], 1e-12))
        cross_rows, cross_columns, cross_values = self._cross(
            n,
            self._rarest(rows_a, xa.indices, self._is_word[xa.indices] & ~a_in_b),
            self._rarest(rows_b, xb.indices, self._is_word[xb.indices] & ~b_in_a),
        )
        stats = _statistics(firsts, seconds, self.side.unspaced)
        stats_rows, stats_columns = np.nonzero(stats)
        blocks = [
            (rows_a, xa.indices, xa.data),
            (rows_b, xb.indices + self._starts["second"], xb.data),
            (shared_rows, shared_ids + self._starts["shared"], shared_values),
            (cross_rows, cross_columns + self._starts["cross"], cross_values),
            (stats_rows, stats_columns + self._starts["stats"], stats[stats_rows, stats_columns]),
        ]
        rows = np.concatenate([block[0].astype(np.int64) for block in blocks])
        # Each block is sorted by (row, column) and the blocks' columns ascend, so a stable
        # sort by row alone leaves every row's columns sorted.
        order = np.argsort(rows, kind="stable")
        columns = np.concatenate([block[1].astype(np.int64) for block in blocks])[order]
        values = np.concatenate([block[2].astype(np.float32) for block in blocks])[order]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        return SparseRows(values, columns.astype(np.int32), indptr, self.n_features), xa, xb

    def linear(self, texts: Sequence[str], weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """``transform(texts).matmul(weights) + bias``, float32 ``[n, k]``: a linear model's
        logits (the interface :class:`NgramFeaturizer` offers its linear models)."""
        return self.transform(texts).matmul(np.asarray(weights, dtype=np.float32)) + bias

    def _rarest(
        self, rows: np.ndarray, ids: np.ndarray, eligible: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The eligible ``(rows, ids)`` entries, at most ``cross_words`` per row: the highest
        idf ones (ties: the lower id), grouped by row."""
        rows, ids = rows[eligible], ids[eligible]
        order = np.lexsort((ids, -self.side.idf[ids], rows))
        rows, ids = rows[order], ids[order]
        starts = np.searchsorted(rows, rows, side="left")
        keep = np.arange(len(rows)) - starts < self.cross_words
        return rows[keep], ids[keep]

    def _cross(
        self, n: int, first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (first-side word, second-side word) pair of a row, hashed to a bucket; a
        row's values are the bucket counts over the square root of its number of pairs."""
        rows_a, ids_a = first
        rows_b, ids_b = second
        count_b = np.bincount(rows_b, minlength=n)
        start_b = np.concatenate([[0], np.cumsum(count_b)[:-1]]).astype(np.int64)
        per_a = count_b[rows_a]  # pairs that each first-side word takes part in
        total = int(per_a.sum())
        if total == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, np.empty(0, dtype=np.float32)
        left = np.repeat(np.arange(len(rows_a)), per_a)
        group_start = np.repeat(np.cumsum(per_a) - per_a, per_a)
        right = start_b[rows_a[left]] + (np.arange(total) - group_start)
        pair_rows = rows_a[left].astype(np.int64)
        with np.errstate(over="ignore"):
            mixed = (ids_a[left].astype(np.uint64) + np.uint64(1)) * _MIX_FIRST
            mixed ^= (ids_b[right].astype(np.uint64) + np.uint64(1)) * _MIX_SECOND
            mixed ^= mixed >> np.uint64(31)
        buckets = (mixed % np.uint64(self.cross_buckets)).astype(np.int64)
        keys, counts = np.unique(pair_rows * self.cross_buckets + buckets, return_counts=True)
        key_rows = keys // self.cross_buckets
        n_pairs = np.bincount(pair_rows, minlength=n).astype(np.float64)
        values = counts / np.sqrt(n_pairs[key_rows])
        return key_rows, keys - key_rows * self.cross_buckets, values.astype(np.float32)

    def spec(self) -> dict[str, Any]:
        """What an artifact stores besides the sides' vocabulary and idf."""
        return {
            "type": SPEC_TYPE,
            "side": self.side.spec(),
            "cross_buckets": self.cross_buckets,
            "cross_words": self.cross_words,
            "cross_hash": "splitmix64-v1",
            "stats": list(STATS),
        }

    @classmethod
    def from_spec(
        cls, spec: dict[str, Any], vocabulary: Sequence[str], idf: np.ndarray
    ) -> PairFeaturizer:
        if spec.get("stats") != list(STATS) or spec.get("cross_hash") != "splitmix64-v1":
            raise ValueError(
                "the pair features were written by another textdistill version (statistics "
                f"{spec.get('stats')}, hash {spec.get('cross_hash')!r})"
            )
        side = NgramFeaturizer.from_spec(spec["side"], vocabulary, idf)
        return cls(side, cross_buckets=spec["cross_buckets"], cross_words=spec["cross_words"])


def _member(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """``np.isin(keys, sorted_keys)`` for an ascending ``sorted_keys`` (each side's keys
    ascend: rows in order, ids sorted within a row), by binary search instead of a sort."""
    if not len(sorted_keys):
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[at] == keys


def featurizer_from_spec(
    spec: dict[str, Any], vocabulary: Sequence[str], idf: np.ndarray
) -> NgramFeaturizer | PairFeaturizer:
    """The featurizer an artifact's spec describes: single texts' n-grams, or pairs'."""
    if spec.get("type") == SPEC_TYPE:
        return PairFeaturizer.from_spec(spec, vocabulary, idf)
    return NgramFeaturizer.from_spec(spec, vocabulary, idf)


def _statistics(firsts: Sequence[str], seconds: Sequence[str], unspaced: str) -> np.ndarray:
    """The :data:`STATS` columns of each pair, float32 ``[n, len(STATS)]``.

    The per-pair work is a few C-level calls (regex scans, set operations): in a pair model
    this loop, not the n-gram counting, sets the speed.
    """
    rows = []
    for first, second in zip(firsts, seconds, strict=True):
        a, b = tokenize(first, unspaced), tokenize(second, unspaced)
        set_a, set_b = set(a), set(b)
        shared = len(set_a & set_b)
        numbers_a, numbers_b = set(_NUMBERS(first)), set(_NUMBERS(second))
        numbers = len(numbers_a | numbers_b)
        rows.append(
            (
                shared / max(len(set_a | set_b), 1),
                shared / max(len(set_a), 1),
                shared / max(len(set_b), 1),
                abs(len(a) - len(b)) / max(len(a), len(b), 1),
                len(a),
                len(b),
                len(numbers_a & numbers_b) / numbers if numbers else 1.0,
                a == b,
            )
        )
    out = np.array(rows, dtype=np.float32).reshape(len(firsts), len(STATS))
    out[:, 4:6] = np.minimum(np.log1p(out[:, 4:6]) / _LENGTH_SCALE, 1.0)
    return out


def fit_featurizer(texts: Sequence[str], **options: Any) -> NgramFeaturizer | PairFeaturizer:
    """The featurizer for ``texts``: pair features when they are text pairs, else n-grams
    (``options`` are :meth:`NgramFeaturizer.fit`'s)."""
    if are_pairs(texts):
        return PairFeaturizer.fit(texts, **options)
    return NgramFeaturizer.fit(texts, **options)

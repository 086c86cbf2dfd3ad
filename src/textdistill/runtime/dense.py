"""The dense student, run with numpy alone: word vectors, pooled, beside n-gram weights.

A linear model over n-grams cannot know a word it never saw in its transfer set, and on
sentences most words are seen a handful of times: trained on all 6,920 gold SST-2 labels it
stops near 0.81. The dense student adds what the teacher knows about words:

``logits = tfidf(text) @ linear + bias + relu(pool(text) @ hidden + hidden_bias) @ output
+ max_w(relu(vector(w) @ max_hidden + max_hidden_bias)) @ max_output``

* ``tfidf(text)`` is the very :class:`NgramFeaturizer` output the linear student reads
  (word 1..n-grams, sublinear TF-IDF, L2-normalised) on the vocabulary's first ``L`` terms,
  those of the transfer set (:func:`leading_terms`), so order-aware bigrams are kept;
* ``pool(text)`` is the TF-IDF-weighted mean of the word vectors of the text's words (an
  inverse-frequency weighting like SIF's): each unigram feature of the vocabulary may own a row
  of ``embedding`` (``embedding_rows[feature]``, -1 for none). The rows start as the fine-tuned
  teacher's vectors of each word read alone (model2vec's recipe) and are tuned in training;
  the vocabulary also holds the teacher's own whole-word tokens, so a word the transfer set
  never had still brings its teacher vector;
* a ReLU layer reads the pooled vector, because a linear map of a mean is still a bag of
  per-word scores;
* the optional max-pooled branch (artifact format 6) runs detectors over each word's vector
  alone and keeps, per detector, the strongest word of the text: one telling word ("crooner"
  in a question about a person, "dreadful" in a review) is not diluted by the mean of the
  other ten. A detector's output depends on the word only, so the runtime computes it once
  per vocabulary word at load (``detectors``) and a text costs a gather and a maximum.
  With ``window`` > 1 (artifact format 8) a detector reads a run of that many consecutive
  words, the text padded with zero vectors at both ends: a convolution over the words in
  reading order, which a bag of words cannot be ("not good", "how many", "far from
  perfect"). Its input is linear in the vectors, so the runtime computes once per word and
  offset in the run that word's share (``window_tables``), and a run costs ``window``
  gathers, a sum and a ReLU. That branch reads a word it has no vector for as the teacher's
  WordPiece pieces (artifact format 9, :mod:`textdistill.runtime.word_pieces`): the pieces'
  rows follow the words' in ``embedding``.

A dense student of text pairs compares the two sides as Tang et al.'s siamese BiLSTM does:
``u`` and ``v``, the pooled vectors of each side, are read together as ``[u, v, u * v,
|u - v|]`` (what each side says, where they agree, how far apart they are) by the ReLU layer,
beside the pair features of :mod:`textdistill.runtime.pair_features` in the n-gram part's
place. Its featurizer's sides hold the teacher's words, so ``embedding_rows`` indexes the
sides' vocabulary. It has no max-pooled branch: the siamese layer is where the sides meet.

Stored as float16 (the embedding, where the bytes are) and float32 arrays in the usual
checksummed artifact; computed in float32. Artifact format 3 (6 with the max-pooled branch, 7
for pairs): a textdistill that reads only older formats refuses it with an "upgrade
textdistill" message instead of misreading it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textdistill.runtime.artifact import (
    ArtifactError,
    artifact_root,
    load_artifact,
    save_artifact,
)
from textdistill.runtime.featurizer import NgramFeaturizer, SparseRows
from textdistill.runtime.linear import _as_texts
from textdistill.runtime.native import PURE_PYTHON, extension
from textdistill.runtime.outputs import LabelOutputs
from textdistill.runtime.pair_features import PairFeaturizer, featurizer_from_spec
from textdistill.runtime.word_pieces import WordPieces, reading_order_with_pieces

KIND = "dense"
# The artifact format that introduced dense students (runtime/artifact.py).
DENSE_FORMAT_VERSION = 3
# The format that introduced the max-pooled branch: older readers refuse such an artifact.
MAX_BRANCH_FORMAT_VERSION = 6
# The format that introduced dense students of text pairs.
PAIR_DENSE_FORMAT_VERSION = 7
# The format whose max-pooled branch may read runs of consecutive words (``window`` > 1).
WINDOW_FORMAT_VERSION = 8
# The format whose max-pooled branch reads unknown words as WordPiece pieces.
PIECES_FORMAT_VERSION = 9
# The arrays and their shapes: "F" features, "L" of them n-gram terms of the linear part,
# "W" terms that may own a word vector (the features, or for pairs the sides' terms), "V"
# embedding rows, "d" vector width, "c" the ReLU layer's input (d, or 4 d for a pair's
# [u, v, u * v, |u - v|]), "h" hidden units, "k" labels.
WEIGHTS: dict[str, tuple[str, ...]] = {
    "linear": ("L", "k"),
    "bias": ("k",),
    "embedding_rows": ("W",),
    "embedding": ("V", "d"),
    "hidden": ("c", "h"),
    "hidden_bias": ("h",),
    "output": ("h", "k"),
}
# The optional max-pooled branch, present all together or not at all: "m" detectors, each
# reading a run of ``window`` consecutive word vectors ("r": window * d).
MAX_WEIGHTS: dict[str, tuple[str, ...]] = {
    "max_hidden": ("r", "m"),
    "max_hidden_bias": ("m",),
    "max_output": ("m", "k"),
}
# Texts per block in decision_function, and at most this many (text, word) slots per gather
# in weighted_mean: small gathers of texts of about the same length waste little padding and
# stay in cache (on SST-2 sentences, 1,024 slots predicted about twice as fast as 32,768).
_BLOCK = 4096
_SLOTS = 1024
# strongest_runs in C, where it was built: numpy's gathers write and reread a [texts, runs,
# detectors] block per offset, C keeps one run's sums in cache. C_VERSION is the interface
# this file calls (_dense.c's DENSE_VERSION); TEXTDISTILL_PURE_PYTHON=1 turns it off.
C_VERSION = 1
_kernels = None if PURE_PYTHON else extension("_dense", C_VERSION)


def leading_terms(rows: SparseRows, n_terms: int) -> SparseRows:
    """The entries of ``rows`` on the first ``n_terms`` features, L2-normalised again: the
    n-gram part's features, as if the words after them (the teacher's, which only carry a
    vector) were not in the vocabulary. So the n-gram part of a dense student reads exactly
    what a linear student fit on the same texts reads.

    >>> rows = SparseRows(np.array([0.6, 0.8], np.float32), np.array([0, 1], np.int32),
    ...                   np.array([0, 2]), 2)
    >>> leading_terms(rows, 1).data.tolist()
    [1.0]
    """
    if n_terms >= rows.n_features:
        return rows
    keep = rows.indices < n_terms
    kept_rows = rows.row_ids()[keep]
    values = rows.data[keep].astype(np.float64)
    norms = np.sqrt(np.bincount(kept_rows, weights=values**2, minlength=rows.n_rows))
    data = (values / np.maximum(norms[kept_rows], 1e-12)).astype(np.float32)
    indptr = np.zeros(rows.n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(kept_rows, minlength=rows.n_rows), out=indptr[1:])
    return SparseRows(data, rows.indices[keep], indptr, n_terms)


def pool_rows(rows: SparseRows, embedding_rows: np.ndarray) -> SparseRows:
    """The entries of ``rows`` that are words with a vector, re-indexed to embedding rows and
    re-weighted to sum to 1 per text: ``pooled = pool_rows(...) @ embedding``.

    >>> rows = SparseRows(np.array([0.6, 0.8], np.float32), np.array([0, 1], np.int32),
    ...                   np.array([0, 2]), 2)
    >>> pooled = pool_rows(rows, np.array([-1, 0], np.int32))
    >>> pooled.indices.tolist(), pooled.data.tolist()
    ([0], [1.0])
    """
    mapped = embedding_rows[rows.indices]
    keep = mapped >= 0
    kept_rows = rows.row_ids()[keep]
    lengths = np.bincount(kept_rows, minlength=rows.n_rows)
    weights = rows.data[keep]
    totals = np.bincount(kept_rows, weights=weights, minlength=rows.n_rows)
    weights = weights / np.maximum(totals[kept_rows], 1e-12).astype(np.float32)
    indptr = np.zeros(rows.n_rows + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    n_vectors = int(embedding_rows.max(initial=-1)) + 1
    return SparseRows(weights.astype(np.float32), mapped[keep], indptr, n_vectors)


def reading_order(
    texts: Sequence[str],
    words: NgramFeaturizer,
    embedding_rows: np.ndarray,
    n_vectors: int,
    pieces: WordPieces | None = None,
) -> SparseRows:
    """Each text's words in reading order, repeats kept, as embedding rows (``embedding_rows``
    indexes the terms of ``words``; a word without a vector is left out, so its neighbours
    become adjacent, or with ``pieces`` read as its pieces' rows): what a branch reading runs
    of consecutive words takes. Values are 1. Without pieces the tokens are looked up by
    :meth:`NgramFeaturizer.words` (in C when it is built).

    >>> f = NgramFeaturizer.fit(["good movie", "bad movie"], max_n=1, min_df=1)
    >>> rows = np.arange(f.n_features, dtype=np.int32)
    >>> order = reading_order(["movie good movie", "unknown bad"], f, rows, 3)
    >>> bounds = zip(order.indptr, order.indptr[1:])
    >>> [[f.vocabulary[i] for i in order.indices[a:b]] for a, b in bounds]
    [['movie', 'good', 'movie'], ['bad']]
    """
    if pieces is not None:
        return reading_order_with_pieces(texts, words, embedding_rows, pieces, n_vectors)
    ids, lengths = words.words(texts)
    mapped = embedding_rows[ids]
    keep = mapped >= 0
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    if len(ids):
        row_of = np.repeat(np.arange(len(lengths)), lengths)
        np.cumsum(np.bincount(row_of[keep], minlength=len(lengths)), out=indptr[1:])
    flat = mapped[keep].astype(np.int32)
    return SparseRows(np.ones(len(flat), dtype=np.float32), flat, indptr, n_vectors)


def _gathered(pool: SparseRows, table: np.ndarray) -> Iterator[tuple[np.ndarray, Any, Any]]:
    """Texts of ``pool`` in groups of about the same length, each as (text positions,
    ``[n, L]`` weights with 0 for padding, ``[n, L, d]`` rows of ``table``, the padding being its
    last row). Texts with no entry are left out."""
    lengths = np.diff(pool.indptr)
    order = np.argsort(lengths, kind="stable")
    order = order[lengths[order] > 0]
    zero_row = table.shape[0] - 1
    start = 0
    while start < len(order):
        longest = int(lengths[order[min(len(order), start + _SLOTS) - 1]])
        end = min(len(order), start + max(1, _SLOTS // longest))
        chosen = order[start:end]
        longest = int(lengths[chosen[-1]])
        slot = np.arange(longest)[None, :]
        present = slot < lengths[chosen][:, None]
        where = np.where(present, pool.indptr[chosen][:, None] + slot, 0)
        ids = np.where(present, pool.indices[where], zero_row)
        weights = np.where(present, pool.data[where], 0.0).astype(np.float32)
        yield chosen, weights, table[ids]
        start = end


def weighted_mean(pool: SparseRows, table: np.ndarray) -> np.ndarray:
    """``pool @ table[:-1]`` for a ``table`` whose last row is zeros: float32 ``[n, d]``.

    Texts are padded to the longest among similar lengths and gathered as one ``[n, L, d]``
    block, which numpy reduces several times faster than ``np.add.reduceat`` over rows.

    >>> pool = SparseRows(np.array([0.5, 0.5, 1.0], np.float32), np.array([0, 1, 1]),
    ...                   np.array([0, 2, 2, 3]), 2)
    >>> weighted_mean(pool, np.array([[2.0, 0.0], [0.0, 4.0], [0.0, 0.0]], np.float32))
    array([[1., 2.],
           [0., 0.],
           [0., 4.]], dtype=float32)
    """
    out = np.zeros((pool.n_rows, table.shape[1]), dtype=np.float32)
    for chosen, weights, rows in _gathered(pool, table):
        out[chosen] = np.einsum("nl,nld->nd", weights, rows)
    return out


def siamese(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The pair's pooled vectors side by side with their product and distance, ``[u, v,
    u * v, |u - v|]``: float32 ``[n, 4 d]``. A layer reading only ``u`` and ``v`` would have to
    learn their comparison from few pairs; the product and the distance hand it over.

    >>> siamese(np.array([[1.0, 2.0]]), np.array([[3.0, 2.0]])).tolist()
    [[1.0, 2.0, 3.0, 2.0, 3.0, 4.0, 2.0, 0.0]]
    """
    return np.concatenate([first, second, first * second, np.abs(first - second)], axis=1).astype(
        np.float32
    )


def strongest(pool: SparseRows, table: np.ndarray) -> np.ndarray:
    """The column-wise maximum of the rows of a non-negative ``table`` (last row zeros) that
    each text of ``pool`` holds, 0 for a text with none: float32 ``[n, m]``.

    >>> pool = SparseRows(np.array([0.5, 0.5, 1.0], np.float32), np.array([0, 1, 1]),
    ...                   np.array([0, 2, 2, 3]), 2)
    >>> strongest(pool, np.array([[2.0, 0.0], [1.0, 4.0], [0.0, 0.0]], np.float32))
    array([[2., 4.],
           [0., 0.],
           [1., 4.]], dtype=float32)
    """
    out = np.zeros((pool.n_rows, table.shape[1]), dtype=np.float32)
    for chosen, _, rows in _gathered(pool, table):
        out[chosen] = rows.max(axis=1)
    return out


def strongest_runs(words: SparseRows, tables: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Per text of ``words`` (embedding rows in reading order, :func:`reading_order`) and per
    detector, the largest ``relu(bias + sum_k tables[k, word at i + k])`` over the runs of
    ``window = len(tables)`` consecutive slots that touch the text, which is padded at both
    ends with the zero row (the tables' second-to-last); 0 for a text without words: float32
    ``[n, m]``. The tables' last row is ``-inf`` (:func:`run_tables`): the slots after a
    shorter text's padding read it, so a run that touches none of the text's words never wins.

    ``relu(bias + x)`` rises with ``x``, so the maximum is taken over the sums and the bias and
    ReLU applied once per text, not once per run.

    >>> words = SparseRows(np.ones(3, np.float32), np.array([0, 1, 1]), np.array([0, 2, 2, 3]), 2)
    >>> tables = run_tables(np.array([[[1.0], [-2.0]], [[0.5], [3.0]]], np.float32))
    >>> strongest_runs(words, tables, np.array([0.0], np.float32)).ravel().tolist()
    [4.0, 0.0, 3.0]
    """
    window, m = len(tables), tables.shape[2]
    if _kernels is not None:  # the same sums in C, run by run (bit-identical)
        out = np.empty((words.n_rows, m), dtype=np.float32)
        _kernels.strongest_runs(
            np.ascontiguousarray(words.indices, dtype=np.int32),
            np.ascontiguousarray(words.indptr, dtype=np.int64),
            np.ascontiguousarray(tables, dtype=np.float32),
            window,
            tables.shape[1],
            np.ascontiguousarray(bias, dtype=np.float32),
            out,
        )
        return out
    pad, never = tables.shape[1] - 2, tables.shape[1] - 1
    out = np.zeros((words.n_rows, m), dtype=np.float32)
    lengths = np.diff(words.indptr)
    order = np.argsort(lengths, kind="stable")
    order = order[lengths[order] > 0]
    start = 0
    while start < len(order):  # texts of about the same length together, as _gathered
        longest = int(lengths[order[min(len(order), start + _SLOTS) - 1]])
        chosen = order[start : min(len(order), start + max(1, _SLOTS // longest))]
        longest = int(lengths[chosen[-1]])
        n_runs = longest + window - 1
        slot = np.arange(n_runs + window - 1)[None, :] - (window - 1)  # slot of each id
        length = lengths[chosen][:, None]
        present = (slot >= 0) & (slot < length)
        where = np.where(present, words.indptr[chosen][:, None] + slot, 0)
        ids = np.where(
            present, words.indices[where], np.where(slot < length + window - 1, pad, never)
        )
        total = tables[0][ids[:, :n_runs]]
        for k in range(1, window):
            total += tables[k][ids[:, k : k + n_runs]]
        out[chosen] = total.max(axis=1)
        start += len(chosen)
    out[order] += bias
    return np.maximum(out, 0.0, out=out)


def run_tables(shares: np.ndarray) -> np.ndarray:
    """Per offset in a run, each embedding row's share of every detector's input (``[window,
    V, m]``), with the padding row (zeros) and the row read beyond a text's padding (``-inf``)
    appended: the tables :func:`strongest_runs` reads.

    >>> run_tables(np.ones((2, 1, 1), np.float32))[:, :, 0].tolist()
    [[1.0, 0.0, -inf], [1.0, 0.0, -inf]]
    """
    window, _, m = shares.shape
    padding = np.zeros((window, 1, m), np.float32)
    beyond = np.full((window, 1, m), -np.inf, np.float32)
    return np.concatenate([shares.astype(np.float32), padding, beyond], axis=1)


class DenseModel(LabelOutputs):
    """A trained dense student: the same interface as :class:`LinearModel` (``predict``,
    ``predict_proba``, ``decision_function``, ``probabilities``, ``labels``, ``temperature``,
    ``multilabel``, ``thresholds``, ``featurizer``), so ``predict``, ``serve``, calibration
    and the cascade use it unchanged. With a :class:`PairFeaturizer` it reads text pairs
    (joined pairs or ``(text, text_pair)`` tuples), as :class:`LinearModel` does."""

    def __init__(
        self,
        featurizer: NgramFeaturizer | PairFeaturizer,
        weights: dict[str, np.ndarray],
        labels: Sequence[str],
        *,
        temperature: float = 1.0,
        multilabel: bool = False,
        thresholds: Sequence[float] | np.ndarray | None = None,
        metadata: dict[str, Any] | None = None,
        window: int = 1,
        pieces: Sequence[str] = (),
    ) -> None:
        self.featurizer = featurizer
        self._set_outputs(labels, temperature, multilabel, thresholds)
        if not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be a positive integer, got {window!r}")
        self.window = window
        # The WordPiece continuation pieces (without "##") that own the last rows of the
        # embedding, in order: how the runs of words read a word without a vector.
        self.pieces = list(pieces)
        # C order, as a loaded artifact's arrays are: BLAS sums a transposed view (what
        # training hands over) in another order, and the model must compute what it saves.
        self.weights = {
            name: np.ascontiguousarray(
                w, dtype=np.int32 if name == "embedding_rows" else np.float32
            )
            for name, w in weights.items()
        }
        if "embedding" in self.weights:  # what is computed here is what is stored (float16)
            self.weights["embedding"] = (
                self.weights["embedding"].astype(np.float16).astype(np.float32)
            )
        if self.pairs and self.has_max_branch:
            raise ValueError("a dense student of text pairs has no max-pooled branch")
        if window > 1 and not self.has_max_branch:
            raise ValueError(f"window {window} needs the max-pooled branch, which it widens")
        if self.pieces and window == 1:
            raise ValueError("word pieces are read by runs of words: they need a window > 1")
        self._check_shapes()
        embedding = self.weights["embedding"]
        self._table = np.vstack([embedding, np.zeros((1, embedding.shape[1]), np.float32)])
        # A single text's mean is read only through the hidden layer, which is linear before
        # its ReLU: mean(vectors) @ hidden = mean(vectors @ hidden). Each word's hidden input
        # is computed once, so a text gathers h numbers per word instead of d and skips the
        # product (pairs combine the means themselves, siamese, and keep the vectors).
        self._hidden_table = None if self.pairs else self._table @ self.weights["hidden"]
        # Each word's detector outputs of the max-pooled branch, computed once per model; the
        # last row, the zero row, is what a padding slot reads (outputs are never negative).
        self.detectors: np.ndarray | None = None
        # With runs of words: per offset in the run, every word's share of each detector's
        # input, ``[window, V + 2, m]`` (then the padding row, zeros, and the -inf row read
        # beyond a text's padding: run_tables).
        self.window_tables: np.ndarray | None = None
        if self.has_max_branch:
            w = self.weights
            if window == 1:
                self.detectors = np.maximum(self._table @ w["max_hidden"] + w["max_hidden_bias"], 0)
                self.detectors[-1] = 0.0
            else:
                blocks = w["max_hidden"].reshape(window, embedding.shape[1], -1)
                self.window_tables = run_tables(np.stack([embedding @ block for block in blocks]))
                assert isinstance(featurizer, NgramFeaturizer)  # pairs have no max branch
        self.word_pieces = (
            WordPieces.of_model(
                self._word_terms,
                self.weights["embedding_rows"],
                self.pieces,
                self.n_vectors - len(self.pieces),
            )
            if self.pieces
            else None
        )
        self.metadata = dict(metadata or {})

    @property
    def pairs(self) -> bool:
        """Whether the model reads text pairs."""
        return isinstance(self.featurizer, PairFeaturizer)

    @property
    def _word_terms(self) -> NgramFeaturizer:
        """The featurizer whose terms ``embedding_rows`` indexes: the pair featurizer's sides,
        or the featurizer itself."""
        if isinstance(self.featurizer, PairFeaturizer):
            return self.featurizer.side
        return self.featurizer

    @property
    def has_max_branch(self) -> bool:
        """Whether the model has the max-pooled branch (:data:`MAX_WEIGHTS`)."""
        return "max_hidden" in self.weights

    def _expected(self) -> dict[str, tuple[str, ...]]:
        return WEIGHTS | (MAX_WEIGHTS if self.has_max_branch else {})

    def _check_shapes(self) -> None:
        expected_names = self._expected()
        if set(self.weights) != set(expected_names):
            raise ValueError(f"weights {sorted(self.weights)} are not {sorted(expected_names)}")
        embedding = self.weights["embedding"]
        width = embedding.shape[1] if embedding.ndim == 2 else -1
        sizes = {
            "F": self.featurizer.n_features,
            "L": self.weights["linear"].shape[0],
            "W": self._word_terms.n_features,
            "k": len(self.labels),
            "V": embedding.shape[0],
            "d": width,
            "c": 4 * width if self.pairs else width,
            "h": self.weights["hidden_bias"].shape[0],
            "m": self.weights["max_hidden_bias"].shape[0] if self.has_max_branch else 0,
            "r": self.window * width,
        }
        if sizes["L"] > sizes["F"]:
            raise ValueError(f"linear has {sizes['L']} rows for {sizes['F']} features")
        for name, dims in expected_names.items():
            expected = tuple(sizes[d] for d in dims)
            if self.weights[name].shape != expected:
                raise ValueError(
                    f"{name} has shape {self.weights[name].shape}, expected {expected} ({dims})"
                )
        rows = self.weights["embedding_rows"]
        word_rows = sizes["V"] - len(self.pieces)  # the pieces' rows come last
        if rows.size and not -1 <= rows.min() <= rows.max() < word_rows:
            raise ValueError(f"embedding_rows must lie in [-1, {word_rows})")

    @property
    def n_vectors(self) -> int:
        return int(self.weights["embedding"].shape[0])

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Raw logits, float32 ``[n, k]``."""
        texts = _as_texts(texts)
        out = np.empty((len(texts), len(self.labels)), dtype=np.float32)
        for start in range(0, len(texts), _BLOCK):
            block = texts[start : start + _BLOCK]
            out[start : start + len(block)] = self._block_logits(block)
        return out

    def _block_logits(self, texts: Sequence[str]) -> np.ndarray:
        w = self.weights
        pool: SparseRows | None = None  # a single text's words, which the max branch reads
        if isinstance(self.featurizer, PairFeaturizer):
            rows, first, second = self.featurizer.transform_with_sides(texts)
            hidden_input = siamese(self.pooled(first), self.pooled(second)) @ w["hidden"]
        else:
            assert self._hidden_table is not None  # built for single texts
            rows = self.featurizer.transform(texts)
            pool = pool_rows(rows, w["embedding_rows"])
            hidden_input = weighted_mean(pool, self._hidden_table)
        hidden = np.maximum(hidden_input + w["hidden_bias"], 0.0)
        linear = leading_terms(rows, self.n_terms).matmul(w["linear"])
        logits = linear + hidden @ w["output"] + w["bias"]
        if self.detectors is not None and pool is not None:  # pairs have no max branch
            logits += strongest(pool, self.detectors) @ w["max_output"]
        elif self.window_tables is not None:  # single texts only, as the max branch
            words = self.words_in_order(texts)
            runs = strongest_runs(words, self.window_tables, w["max_hidden_bias"])
            logits += runs @ w["max_output"]
        return logits

    def words_in_order(self, texts: Sequence[str]) -> SparseRows:
        """What the runs of words read: each text's words as embedding rows in reading order
        (:func:`reading_order`), unknown words as their pieces when the model has them."""
        rows = self.weights["embedding_rows"]
        return reading_order(texts, self._word_terms, rows, self.n_vectors, self.word_pieces)

    def pooled(self, rows: SparseRows) -> np.ndarray:
        """The TF-IDF-weighted mean word vector of each row of ``rows`` (terms of
        :attr:`featurizer`, or for pairs of one side): float32 ``[n, d]``."""
        return weighted_mean(pool_rows(rows, self.weights["embedding_rows"]), self._table)

    @property
    def n_terms(self) -> int:
        """How many of the features (the first ones) the n-gram part weighs."""
        return int(self.weights["linear"].shape[0])

    # -------------------------------------------------------------- artifact
    def save(self, path: str | Path) -> None:
        arrays = dict(self.weights)
        arrays["embedding"] = arrays["embedding"].astype(np.float16)
        arrays["idf"] = self.featurizer.idf
        save_artifact(
            path,
            kind=KIND,
            arrays=arrays,
            documents={
                "vocabulary": self.featurizer.vocabulary,
                **({"pieces": self.pieces} if self.pieces else {}),
            },
            meta={
                **self._outputs_meta(),
                "featurizer": self.featurizer.spec(),
                "metadata": self.metadata,
                **({"window": self.window} if self.window > 1 else {}),
            },
            format_version=(
                PIECES_FORMAT_VERSION
                if self.pieces
                else PAIR_DENSE_FORMAT_VERSION
                if self.pairs
                else WINDOW_FORMAT_VERSION
                if self.window > 1
                else MAX_BRANCH_FORMAT_VERSION
                if self.has_max_branch
                else DENSE_FORMAT_VERSION
            ),
        )

    @classmethod
    def load(cls, path: str | Path) -> DenseModel:
        manifest, arrays, documents = load_artifact(path)
        if manifest.get("kind") != KIND:
            raise ArtifactError(f"{path}: a {manifest.get('kind')!r} artifact, not {KIND!r}")
        try:
            featurizer = featurizer_from_spec(
                manifest["featurizer"], documents["vocabulary"], arrays.pop("idf")
            )
            model = cls(
                featurizer,
                arrays,
                manifest["labels"],
                **cls._outputs_from_manifest(manifest),
                metadata=manifest.get("metadata"),
                window=manifest.get("window", 1),
                pieces=documents.get("pieces", ()),
            )
        except (KeyError, ValueError, TypeError, AttributeError) as error:
            raise ArtifactError(f"{path}: inconsistent artifact ({error!r})") from None
        model.source = artifact_root(path)
        return model

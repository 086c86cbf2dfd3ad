"""Words the dense student never saw, read as the teacher's WordPiece pieces.

A dense student holds a vector for every word of its transfer set and for the teacher's
whole-word tokens; a sentence to classify still brings words it has none for ("conceited",
"lethargically"), and on sentences those are often the words that carry the label. A
WordPiece teacher reads such a word as pieces: "conceited" as "con", "##ceit", "##ed". The
student does the same in the branch that reads words in order (the max-pooled detectors over
runs of words): an unknown word becomes its pieces, each with a vector that starts as the
teacher's, so "##ed" and "##ly" still say something where the whole word is new.

The split is BERT's greedy longest-match-first: the longest prefix of the word that is a
word the student has a vector for, then repeatedly the longest continuation piece (one of the
teacher's ``##`` tokens) of what is left. A word that cannot be split to its end, or longer
than :data:`MAX_CHARS`, brings nothing, as BERT's ``[UNK]`` says nothing. Words are the
runtime tokenizer's (lower-cased; :func:`~textdistill.runtime.featurizer.tokenize`), so the
pieces of a word are the same at training and at inference, in every process.

Measured on 1,000 sentences or questions of each training file that no fit used (their gold
labels known, the test sets unused), DenseStudent on the benchmark runs' teacher logits,
pieces against none, means over seeds (2-core AMD EPYC, one probe at a time): the small SST-2
pool (1,500 unlabeled) agreement with the teacher 0.827 against 0.809 and accuracy 0.763
against 0.752 (4 seeds); SST-2 0.847 against 0.847 and 0.788 against 0.790 (8 seeds); TREC
0.890 against 0.888, 0.868 against 0.867 (4 seeds); the demo corpus 0.826 against 0.829,
0.737 against 0.738 (4 seeds). Pieces help where the transfer set is small, so that more of
the words to classify are new, and cost nothing measurable elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from textdistill.runtime.featurizer import NgramFeaturizer, SparseRows, tokenize

# How the teacher's tokenizer marks a piece that continues a word.
CONTINUATION = "##"
# BERT's max_input_chars_per_word: a longer token is one [UNK].
MAX_CHARS = 100
# Split words remembered per model; past this the memory starts again (a stream of new
# words must not grow it without bound).
_CACHE_SIZE = 200_000


class WordPieces:
    """The pieces an unknown word is read as, as embedding rows.

    ``first``: the words that may start a word (each with its embedding row); ``continuation``:
    the continuation pieces without their ``##`` and their rows.

    >>> pieces = WordPieces({"con": 0, "un": 1}, {"ceit": 2, "ed": 3, "c": 4})
    >>> pieces.split("conceited"), pieces.split("unc"), pieces.split("xyz")
    ((0, 2, 3), (1, 4), ())
    """

    def __init__(self, first: Mapping[str, int], continuation: Mapping[str, int]) -> None:
        self.first = dict(first)
        self.continuation = dict(continuation)
        self._longest = max(map(len, [*self.first, *self.continuation]), default=0)
        self._splits: dict[str, tuple[int, ...]] = {}

    def split(self, word: str) -> tuple[int, ...]:
        """The embedding rows of ``word``'s pieces in order; empty when it has no split."""
        known = self._splits.get(word)
        if known is not None:
            return known
        rows: list[int] = []
        if len(word) <= MAX_CHARS:
            start, table = 0, self.first
            while start < len(word):
                end = min(len(word), start + self._longest)
                while end > start and word[start:end] not in table:
                    end -= 1
                if end == start:  # no piece fits here: the word says nothing
                    rows = []
                    break
                rows.append(table[word[start:end]])
                start, table = end, self.continuation
        if len(self._splits) >= _CACHE_SIZE:
            self._splits.clear()
        split = self._splits[word] = tuple(rows)
        return split

    @classmethod
    def of_model(
        cls,
        words: NgramFeaturizer,
        embedding_rows: np.ndarray,
        pieces: Sequence[str],
        first_row: int,
    ) -> WordPieces:
        """The pieces of a model whose terms ``words`` own ``embedding_rows`` (-1: none), and
        whose continuation ``pieces`` own the rows from ``first_row`` on, in order."""
        first = {
            term: int(row)
            for term, row in zip(words.vocabulary, embedding_rows, strict=True)
            if row >= 0 and " " not in term
        }
        continuation = {piece: first_row + i for i, piece in enumerate(pieces)}
        return cls(first, continuation)


def continuation_pieces(vocabulary: Sequence[str]) -> list[str]:
    """A WordPiece vocabulary's continuation pieces without their ``##``, sorted; empty for a
    tokenizer of another kind (SentencePiece, byte-level BPE), which has none.

    >>> continuation_pieces(["[CLS]", "con", "##ceit", "##ed", "#", "##"])
    ['ceit', 'ed']
    """
    n = len(CONTINUATION)
    return sorted({t[n:] for t in vocabulary if t.startswith(CONTINUATION) and len(t) > n})


def reading_order_with_pieces(
    texts: Sequence[str],
    words: NgramFeaturizer,
    embedding_rows: np.ndarray,
    pieces: WordPieces,
    n_vectors: int,
) -> SparseRows:
    """Each text's words in reading order as embedding rows, an unknown word as the rows of
    its pieces (:meth:`WordPieces.split`): :func:`textdistill.runtime.dense.reading_order`
    for a model with pieces. Values are 1.

    A text whose tokens are all terms is read as it is without pieces (by the C extension
    when it is built); only the texts with an unknown word are tokenized again here.

    >>> f = NgramFeaturizer.fit(["good movie", "bad movie"], max_n=1, min_df=1)
    >>> rows = np.arange(3, dtype=np.int32)
    >>> pieces = WordPieces.of_model(f, rows, ["ly"], 3)  # "##ly" owns row 3
    >>> order = reading_order_with_pieces(["badly good", "zzz movie", "good"], f, rows, pieces, 4)
    >>> names = [*f.vocabulary, "##ly"]
    >>> [names[i] for i in order.indices], order.indptr.tolist()
    (['bad', '##ly', 'good', 'movie', 'good'], [0, 3, 4, 5])
    """
    ids, lengths, n_tokens = words.words_and_token_counts(texts)
    known_rows = embedding_rows[ids]
    ends = np.cumsum(lengths)
    first, split = pieces.first, pieces.split
    parts: list[np.ndarray] = []
    done = 0  # known_rows up to here are in parts
    lengths = lengths.copy()
    for row in np.flatnonzero(lengths != n_tokens).tolist():
        start = int(ends[row] - lengths[row])
        parts.append(known_rows[done:start])
        read: list[int] = []
        for token in tokenize(texts[row], words.unspaced):
            known = first.get(token)
            if known is not None:
                read.append(known)
            else:
                read.extend(split(token))
        parts.append(np.asarray(read, dtype=np.int32))
        lengths[row] = len(read)
        done = int(ends[row])
    parts.append(known_rows[done:])
    indices = np.concatenate(parts).astype(np.int32)
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return SparseRows(np.ones(len(indices), dtype=np.float32), indices, indptr, n_vectors)

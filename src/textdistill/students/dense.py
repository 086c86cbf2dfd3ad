"""Training the dense student (:mod:`textdistill.runtime.dense`) with torch.

Why this shape. Probes on SST-2 with 1,000 labels found the linear n-gram student at its
ceiling (about 0.81 even on all gold labels), static word vectors taken from the fine-tuned
teacher worth about 4 points to a dense student over random ones, and a network on the
transfer set alone overfitting. So the student keeps the n-gram weights (jointly trained, not
replaced), adds a pooled mean of word vectors that *start* at the teacher's (each word read
alone by the fine-tuned encoder, reduced by PCA, as model2vec does) and are then tuned, and
reads that mean through one ReLU layer, and runs 256 ReLU detectors over each word's vector
whose strongest activation in the text feeds a second linear output (max pooling, as SWEM's
"max" variant does). Measured on 1,000 texts of the training files kept from every fit
(agreement with the teacher, without -> with the max branch, 128 units after the mean):
SST-2 0.819 -> 0.838 (x0) and 0.844/0.853 (two seeds) -> 0.870 (x20), the small SST-2 pool
0.760-0.782 (four fits, two seeds) -> 0.814/0.822 (two seeds), TREC 0.843 -> 0.859 (x0),
0.861 -> 0.856 (x20). It is meant to be trained on a large transfer set: the unlabeled texts
and Tang et al.'s augmentation of them, all labeled by the teacher.

Training: mean squared error to the teacher's logits (centred per row; gold rows as one-hot
logits at the teacher's typical margin, :func:`textdistill.students.targets.regression_targets`)
or soft cross-entropy at temperature ``T``; lazy (sparse) Adam on the n-gram and word tables,
Adam on the rest. The n-gram weights start at zero and must travel as far as a ridge
solution's, so their learning rate is ten times the others' and a step reads at most a
hundredth of the rows (at least 32): on TREC (1,000 labels, 2,362 unlabeled questions, 1,000
other questions of trec_train as the judge) that lifted the dense student from 0.776 to 0.834,
on SST-2 it changed nothing (0.767 both, x0; x20: 0.758 both). The number of epochs is chosen on
held-out teacher rows (:func:`~textdistill.students.targets.held_out_rows`; lowest MSE, with
a patience), then the student is **refit on all rows** for that many epochs, so no row is
lost to the choice. The held-out rows' logits from the first fit are kept
(``validation_logits_``): honest confidences for a cascade threshold.

Text pairs: the n-gram part reads the pair features (:mod:`textdistill.runtime.
pair_features`), each side's words are pooled on their own and the ReLU layer reads the two
pooled vectors as ``[u, v, u * v, |u - v|]`` (:func:`textdistill.runtime.dense.siamese`),
Tang et al.'s siamese combination. The sides share one vocabulary and one embedding, so a word
means the same on either side. There is no max-pooled branch for pairs (``max_units`` is not
used): the layer that compares the sides reads their means.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from textdistill.extras import install_hint
from textdistill.runtime.dense import (
    DenseModel,
    leading_terms,
    pool_rows,
    reading_order,
)
from textdistill.runtime.featurizer import (
    CHAR_PREFIX,
    TOKEN_PATTERN,
    NgramFeaturizer,
    SparseRows,
    tokenize,
)
from textdistill.runtime.pair_features import PairFeaturizer, fit_featurizer
from textdistill.runtime.pairs import as_pair_texts
from textdistill.runtime.word_pieces import WordPieces
from textdistill.students.fitted import FittedModelMethods
from textdistill.students.targets import (
    answers,
    encode_labels,
    held_out_rows,
    regression_targets,
    same_answers,
)

TRAIN_HINT = f"the dense student needs the train extra: {install_hint('train')}"
LOSSES = ("mse", "soft_ce")
# Rows per step by default (DenseStudent.rows_per_step). With 256 rows a step, the 3,262
# TREC rows of 1,000 labels and 2,362 unlabeled questions made 13 steps an epoch, and the
# n-gram weights (from zero, each step moving them by about the learning rate) were still
# far from their fit when the held-out error stopped improving.
MIN_BATCH, MAX_BATCH = 32, 256
# Held-out MSE still falling at ``max_epochs``: training goes on, up to this many times as long.
MAX_EPOCH_FACTOR = 4
_WORD = re.compile(TOKEN_PATTERN)
# Consecutive words each max-pooled detector reads. Three, because on held-out teacher rows
# (each student's own tenth, the test sets unused) runs of three agreed more with the teacher
# than single words on all three sentence protocols of benchmarks/short_text.py: SST-2 0.856
# against 0.840, the small SST-2 pool 0.856 against 0.844, TREC 0.912 against 0.886.
DEFAULT_WINDOW = 3
# Words too rare for an n-gram weight get a vector only while all vectors (the WordPiece
# pieces' too), stored as float16, take at most this many bytes (39,062 vectors at 256
# dimensions): sentences stay far below it (SST-2's 6,920 add about 5,300 words to the
# teacher's 23,504: 28,852 vectors, and 5,828 pieces), while tens of thousands of reviews add
# tens of thousands of words seen once. On IMDB (1,000 labels and 5,000 reviews) a cap of
# 50,000 vectors made the dense student 31.2 MB, over the 30 MB an artifact may take; this
# cap bounds it at about 26 MB whatever the corpus.
WORD_VECTOR_BYTES = 20_000_000
# Which words get a starting vector (_rare_words); part of the student stage's key, so a run
# made before a new rule refits its dense student.
WORD_VECTOR_RULE = (
    "the teacher's whole words and every word of the training texts, "
    f"at most {WORD_VECTOR_BYTES} bytes of float16 vectors; runs of words read unknown words "
    "as the teacher's WordPiece pieces"
)


def word_vector_cap(dim: int) -> int:
    """How many ``dim``-wide float16 word vectors fit in :data:`WORD_VECTOR_BYTES`.

    >>> word_vector_cap(256), word_vector_cap(384)
    (39062, 26041)
    """
    return WORD_VECTOR_BYTES // (2 * dim)


class WordVectorSource(Protocol):
    """Where the starting word vectors come from: a fitted :class:`~textdistill.teacher.Teacher`
    (its encoder reads each word alone) or anything with the same two methods."""

    def vocabulary_words(self) -> list[str]: ...

    def continuation_pieces(self) -> list[str]: ...

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray: ...


def _torch() -> Any:
    try:
        import torch
    except ImportError as error:
        raise ImportError(f"{TRAIN_HINT} ({error})") from None
    return torch


def is_word(term: str) -> bool:
    """Whether a vocabulary term is a single word of the runtime's tokenizer (not an n-gram of
    several words, nor a character n-gram).

    >>> is_word("good"), is_word("not good"), is_word(CHAR_PREFIX + "<go"), is_word("!")
    (True, False, False, True)
    """
    return _WORD.fullmatch(term) is not None and not term.startswith(CHAR_PREFIX)


def principal_components(vectors: np.ndarray, dim: int) -> np.ndarray:
    """``vectors`` centred and projected on their ``dim`` first principal axes, scaled so the
    mean row norm is 1 (the ReLU layer's initialisation expects inputs of about that size).

    >>> x = np.random.default_rng(0).normal(size=(50, 8)) * np.arange(1, 9)
    >>> reduced = principal_components(x, 3)
    >>> reduced.shape, round(float(np.linalg.norm(reduced, axis=1).mean()), 6)
    ((50, 3), 1.0)
    """
    centred = vectors - vectors.mean(axis=0)
    if dim < centred.shape[1]:
        _, _, axes = np.linalg.svd(centred, full_matrices=False)
        centred = centred @ axes[:dim].T
    norms = np.linalg.norm(centred, axis=1)
    return (centred / max(float(norms.mean()), 1e-12)).astype(np.float32)


def _with_words(featurizer: NgramFeaturizer, words: Sequence[str], n_docs: int) -> NgramFeaturizer:
    """``featurizer`` with ``words`` it lacks added, at the idf of a term no document had."""
    known = set(featurizer.vocabulary)
    extra = sorted({w for w in words if is_word(w) and w not in known})
    if not extra:
        return featurizer
    unseen_idf = np.log(1.0 + n_docs) + 1.0
    return NgramFeaturizer(
        [*featurizer.vocabulary, *extra],
        np.concatenate([featurizer.idf, np.full(len(extra), unseen_idf, dtype=np.float32)]),
        max_n=featurizer.max_n,
        char_ngrams=featurizer.char_ngrams,
        unspaced=featurizer.unspaced,
    )


def _rare_words(
    texts: Sequence[str],
    featurizer: NgramFeaturizer | PairFeaturizer,
    known: Sequence[str],
    most: int,
) -> list[str]:
    """The words of ``texts`` (as the runtime tokenizes them) that neither ``featurizer`` nor
    ``known`` holds, those of more texts first, as many as keep the vectors at ``most``: words
    too rare for an n-gram weight (``min_df``) still get the teacher's vector, since a word seen
    once is still a word the teacher knows, and on sentences most words are rare. Measured on
    1,000 sentences or questions of the training files kept from every fit, four seeds each,
    agreement with the teacher and accuracy, every word against words of two or more texts
    (commit 6197e6e, 2-core AMD EPYC, one experiment at a time): SST-2 0.849 against 0.841,
    0.793 against 0.790; the small SST-2 pool (1,500 unlabeled) 0.809 against 0.799, 0.752
    against 0.746; TREC 0.888 against 0.883, 0.867 against 0.865; the demo corpus (the rule
    fixed beforehand, 2eb3661 against 6197e6e) 0.829 against 0.823, 0.738 against 0.739.

    >>> f = NgramFeaturizer.fit(["good film", "good plot"], max_n=1, min_df=2)
    >>> _rare_words(["good film", "good plot", "a film"], f, ["plot"], most=4)
    ['film', 'a']
    """
    side = featurizer.side if isinstance(featurizer, PairFeaturizer) else featurizer
    have = {*side.vocabulary, *known}
    counts = Counter(w for text in texts for w in set(tokenize(text, side.unspaced)))
    room = max(0, most - sum(is_word(w) for w in have))
    rare = sorted(
        (w for w in counts if w not in have and is_word(w)), key=lambda w: (-counts[w], w)
    )
    return rare[:room]


def _with_teacher_words(
    featurizer: NgramFeaturizer | PairFeaturizer, words: Sequence[str], n_docs: int
) -> NgramFeaturizer | PairFeaturizer:
    """``featurizer`` with the teacher's ``words`` it lacks (for pairs, in its sides, whose
    blocks then move: a pair's cross-word buckets stay as fit)."""
    if isinstance(featurizer, PairFeaturizer):
        return PairFeaturizer(
            _with_words(featurizer.side, words, 2 * n_docs),
            cross_buckets=featurizer.cross_buckets,
            cross_words=featurizer.cross_words,
        )
    return _with_words(featurizer, words, n_docs)


def build_network(
    n_features: int,
    vectors: np.ndarray,
    n_classes: int,
    hidden_units: int,
    dropout: float,
    max_units: int = 0,
    pairs: bool = False,
    window: int = 1,
) -> Any:
    """The torch twin of :class:`DenseModel`; :func:`to_weights` reads its weights back. With
    ``pairs``, ``forward`` takes each side's pooling bag and the ReLU layer reads the siamese
    ``[u, v, u * v, |u - v|]``."""
    torch = _torch()
    nn = torch.nn

    class Dense(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            # Sparse gradients: a step touches only the rows of its batch's n-grams and words,
            # not all of them (5x faster per step, measured), and lazy Adam moments.
            self.linear = nn.EmbeddingBag(n_features, n_classes, mode="sum", sparse=True)
            nn.init.zeros_(self.linear.weight)
            self.embedding = nn.EmbeddingBag(*vectors.shape, mode="sum", sparse=True)
            with torch.no_grad():
                self.embedding.weight.copy_(torch.from_numpy(vectors))
            self.pairs = pairs
            self.hidden = nn.Linear(vectors.shape[1] * (4 if pairs else 1), hidden_units)
            self.output = nn.Linear(hidden_units, n_classes, bias=False)
            self.bias = nn.Parameter(torch.zeros(n_classes))
            self.dropout = nn.Dropout(dropout)
            self.max_units = max_units
            self.window = window
            if max_units:
                self.max_hidden = nn.Linear(vectors.shape[1] * window, max_units)
                self.max_output = nn.Linear(max_units, n_classes, bias=False)

        def forward(
            self, rows: tuple[Any, Any, Any], pooled: list[tuple[Any, Any, Any]], words: Any
        ) -> Any:
            ids, offsets, weights = rows
            means = [self.embedding(i, o, per_sample_weights=w) for i, o, w in pooled]
            if self.pairs:
                u, v = means
                mean = torch.cat([u, v, u * v, (u - v).abs()], dim=1)
            else:
                [mean] = means
            hidden = torch.relu(self.hidden(self.dropout(mean)))
            linear = self.linear(ids, offsets, per_sample_weights=weights)
            out = linear + self.output(self.dropout(hidden)) + self.bias
            if self.max_units:
                word_ids, present = words
                vectors = nn.functional.embedding(word_ids, self.embedding.weight, sparse=True)
                if self.window > 1:
                    vectors, present = _windows(vectors * present.unsqueeze(-1), present, window)
                detectors = torch.relu(self.max_hidden(self.dropout(vectors)))
                strongest = (detectors * present.unsqueeze(-1)).amax(dim=1)
                out = out + self.max_output(self.dropout(strongest))
            return out

    return Dense()


def _windows(vectors: Any, present: Any, window: int) -> tuple[Any, Any]:
    """Every run of ``window`` consecutive word vectors of each text, concatenated: ``[n, L +
    window - 1, window * d]``, the text padded with zero vectors on both sides, and which runs
    touch at least one of its words."""
    import torch

    n, length, d = vectors.shape
    pad = vectors.new_zeros(n, window - 1, d)
    padded = torch.cat([pad, vectors, pad], dim=1)
    runs = length + window - 1
    stacked = torch.cat([padded[:, k : k + runs] for k in range(window)], dim=2)
    lengths = present.sum(dim=1, keepdim=True)
    touches = (torch.arange(runs).unsqueeze(0) < lengths + window - 1) & (lengths > 0)
    return stacked, touches.to(vectors.dtype)


def to_weights(network: Any, embedding_rows: np.ndarray) -> dict[str, np.ndarray]:
    """The network's weights under the runtime's names (``runtime.dense.WEIGHTS``)."""

    def arr(tensor: Any) -> np.ndarray:
        return np.asarray(tensor.detach().cpu().numpy(), dtype=np.float32)

    branch = (
        {
            "max_hidden": arr(network.max_hidden.weight).T,
            "max_hidden_bias": arr(network.max_hidden.bias),
            "max_output": arr(network.max_output.weight).T,
        }
        if network.max_units
        else {}
    )
    return branch | {
        "linear": arr(network.linear.weight),
        "bias": arr(network.bias),
        "embedding_rows": embedding_rows,
        "embedding": arr(network.embedding.weight),
        "hidden": arr(network.hidden.weight).T,
        "hidden_bias": arr(network.hidden.bias),
        "output": arr(network.output.weight).T,
    }


def _bag(rows: SparseRows, chosen: np.ndarray, torch: Any) -> tuple[Any, Any, Any]:
    """Rows ``chosen`` of a CSR matrix as the (ids, offsets, weights) of an EmbeddingBag."""
    starts, ends = rows.indptr[chosen], rows.indptr[chosen + 1]
    lengths = ends - starts
    offsets = np.zeros(len(chosen), dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    take = np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))
    return (
        torch.from_numpy(rows.indices[take].astype(np.int64)),
        torch.from_numpy(offsets),
        torch.from_numpy(rows.data[take]),
    )


class DenseStudent(FittedModelMethods):
    """scikit-learn-style estimator whose fitted state is a runtime :class:`DenseModel`.

    >>> texts = ["good fun", "great fun", "bad plot", "awful plot"] * 10
    >>> logits = np.array([[-2.0, 2.0], [-3.0, 3.0], [2.0, -2.0], [3.0, -3.0]] * 10)
    >>> student = DenseStudent(min_df=1, dim=8, hidden_units=8, max_epochs=30).fit(
    ...     texts, logits, classes=["neg", "pos"])
    >>> student.predict(["good fun", "awful plot"])
    ['pos', 'neg']
    """

    def __init__(
        self,
        *,
        loss: str = "mse",
        temperature: float = 1.0,
        max_n: int = 2,
        min_df: int = 2,
        max_features: int | None = 200_000,
        dim: int = 256,
        hidden_units: int = 128,
        max_units: int = 256,
        window: int = DEFAULT_WINDOW,
        dropout: float = 0.2,
        learning_rate: float = 2e-3,
        ngram_learning_rate: float = 2e-2,
        batch_size: int | None = None,
        max_epochs: int = 20,
        patience: int = 3,
        validation_fraction: float = 0.1,
        word_pieces: bool = True,
        random_state: int = 0,
    ) -> None:
        self.loss = loss
        self.temperature = temperature
        self.max_n = max_n
        self.min_df = min_df
        self.max_features = max_features
        self.dim = dim
        self.hidden_units = hidden_units
        self.max_units = max_units
        self.window = window
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.ngram_learning_rate = ngram_learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.word_pieces = word_pieces
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters (fitted state ends in ``_`` and is left out)."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def _check_options(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature!r}")
        counts = ("dim", "hidden_units", "max_epochs", "patience", "window")
        for name in (*counts, *(("batch_size",) if self.batch_size is not None else ())):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.max_units, int) or self.max_units < 0:
            raise ValueError(
                f"max_units must be 0 (no max pooling) or more, got {self.max_units!r}"
            )
        for name in ("learning_rate", "ngram_learning_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")

    def fit(
        self,
        texts: Sequence[str],
        logits: np.ndarray,
        *,
        classes: Sequence[str],
        gold_texts: Sequence[str] = (),
        gold_labels: Sequence[str] | Sequence[Sequence[str]] = (),
        multilabel: bool = False,
        word_vectors: WordVectorSource | None = None,
        groups: np.ndarray | None = None,
        progress: bool = False,
    ) -> DenseStudent:
        """Fit to the teacher's ``logits`` (float ``[n, k]``, a column per name in
        ``classes``) and optional gold rows (label sets when ``multilabel``). The word vectors
        start from ``word_vectors`` (normally the fine-tuned teacher), or at random without
        one. ``groups`` (an int per teacher row,
        :func:`~textdistill.students.targets.held_out_rows`) holds a group's rows out together,
        as augmented texts with their source. ``progress`` shows a bar per epoch."""
        started = time.perf_counter()
        self._check_options()
        classes_ = [str(c) for c in classes]
        teacher_logits = np.asarray(logits, dtype=np.float64)
        if teacher_logits.ndim != 2 or teacher_logits.shape != (len(texts), len(classes_)):
            raise ValueError(
                f"logits of shape {teacher_logits.shape} do not match {len(texts)} texts and "
                f"{len(classes_)} classes"
            )
        if len(gold_texts) != len(gold_labels):
            raise ValueError(f"{len(gold_texts)} gold texts but {len(gold_labels)} gold labels")
        if multilabel and self.loss != "mse":
            raise ValueError("a multilabel dense student is trained with loss='mse'")
        gold = encode_labels(gold_labels, classes_, multilabel)
        texts_all = as_pair_texts([*texts, *gold_texts])
        targets = regression_targets(teacher_logits, gold, len(classes_)).astype(np.float32)

        featurizer = fit_featurizer(
            texts_all, max_n=self.max_n, min_df=self.min_df, max_features=self.max_features
        )
        n_terms = featurizer.n_features  # the n-gram part's; the teacher's words follow them
        pairs = isinstance(featurizer, PairFeaturizer)
        max_pooled = self.max_units > 0 and not pairs
        runs = max_pooled and self.window > 1
        # The teacher's continuation pieces, for the runs of words to read unknown words by;
        # each piece's starting vector is the teacher's for its letters read alone.
        pieces = (
            word_vectors.continuation_pieces()
            if runs and self.word_pieces and word_vectors is not None
            else []
        )
        if word_vectors is not None:
            teacher_words = word_vectors.vocabulary_words()
            room = word_vector_cap(self.dim) - len(pieces)  # the pieces' vectors count too
            featurizer = _with_teacher_words(
                featurizer,
                [*teacher_words, *_rare_words(texts_all, featurizer, teacher_words, room)],
                len(texts_all),
            )
        if pairs:  # the sides' new words move the blocks: the n-gram part reads them all
            n_terms = featurizer.n_features
        word_terms = featurizer.side if isinstance(featurizer, PairFeaturizer) else featurizer
        words = [i for i, term in enumerate(word_terms.vocabulary) if is_word(term)]
        embedding_rows = np.full(word_terms.n_features, -1, dtype=np.int32)
        embedding_rows[words] = np.arange(len(words), dtype=np.int32)
        vectors = self._starting_vectors(
            [*(word_terms.vocabulary[i] for i in words), *pieces], word_vectors, progress
        )
        n_vectors = len(words) + len(pieces)

        if isinstance(featurizer, PairFeaturizer):
            rows, *sides = featurizer.transform_with_sides(texts_all)
        else:
            rows = featurizer.transform(texts_all)
            sides = [rows]
        pooled = [pool_rows(side, embedding_rows) for side in sides]
        word_pieces = (
            WordPieces.of_model(word_terms, embedding_rows, pieces, len(words)) if pieces else None
        )
        data = _Data(
            leading_terms(rows, n_terms),
            pooled,
            targets,
            max_pooled=max_pooled,
            words=(
                reading_order(texts_all, word_terms, embedding_rows, n_vectors, word_pieces)
                if runs
                else None
            ),
        )
        rng = np.random.default_rng(self.random_state)
        held_out = held_out_rows(len(texts), self.validation_fraction, rng, groups)
        train = np.setdiff1d(np.arange(len(texts_all)), held_out)
        history: list[dict[str, Any]] = []
        epochs = self.max_epochs
        self.validation_rows_ = held_out
        self.validation_logits_ = np.empty((0, len(classes_)), dtype=np.float32)
        if len(held_out):
            network, history, epochs = self._train(
                n_terms, vectors, data, train, held_out, None, progress
            )
            self.validation_logits_ = _predict(network, data, held_out)
            answer = answers(self.validation_logits_, multilabel)
            best = history[epochs - 1]
            best["agreement"] = same_answers(answer, answers(teacher_logits[held_out], multilabel))
        everything = np.arange(len(texts_all))
        network, _, _ = self._train(n_terms, vectors, data, everything, None, epochs, progress)

        self.classes_ = classes_
        self.selection_ = {
            "loss": self.loss,
            "temperature": self.temperature if self.loss == "soft_ce" else None,
            "epochs": epochs,
            "history": history,
            "n_validation": len(held_out),
            "validation_agreement": history[epochs - 1]["agreement"] if history else None,
            "validation_mse": history[epochs - 1]["validation_mse"] if history else None,
            "word_vectors": "teacher" if word_vectors is not None else "random",
            "pairs": pairs,
            "max_pooling": data.max_pooled,
            "window": self.window if data.max_pooled else None,
            "n_word_vectors": len(words),
            "n_word_pieces": len(pieces),
            "multilabel": multilabel,
        }
        self.n_teacher_rows_ = len(texts)
        self.n_gold_rows_ = len(gold)
        self.fit_seconds_ = time.perf_counter() - started
        self.model_ = DenseModel(
            featurizer,
            to_weights(network, embedding_rows),
            classes_,
            multilabel=multilabel,
            window=self.window if data.max_pooled else 1,
            pieces=pieces,
            metadata={
                "selection": {k: v for k, v in self.selection_.items() if k != "history"},
                "n_teacher_rows": len(texts),
                "n_gold_rows": len(gold),
                "params": self.get_params(),
            },
        )
        return self

    def _starting_vectors(
        self, words: list[str], source: WordVectorSource | None, progress: bool
    ) -> np.ndarray:
        if source is None or not words:
            rng = np.random.default_rng(self.random_state)
            return (rng.normal(size=(len(words), self.dim)) / np.sqrt(self.dim)).astype(np.float32)
        vectors = np.asarray(source.embed(words, progress=progress), dtype=np.float64)
        if vectors.shape[1] < self.dim:  # a narrow encoder: its width is the vectors' width
            return principal_components(vectors, vectors.shape[1])
        return principal_components(vectors, self.dim)

    def _train(
        self,
        n_terms: int,
        vectors: np.ndarray,
        data: _Data,
        train: np.ndarray,
        held_out: np.ndarray | None,
        epochs: int | None,
        progress: bool,
    ) -> tuple[Any, list[dict[str, Any]], int]:
        """One fit from the same start: with ``held_out``, until its MSE stops improving for
        ``patience`` epochs, returning the best epoch's network; else for ``epochs`` epochs."""
        torch = _torch()
        from tqdm.auto import tqdm

        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        k = data.targets.shape[1]
        network = build_network(
            n_terms,
            vectors,
            k,
            self.hidden_units,
            self.dropout,
            self.max_units if data.max_pooled else 0,
            pairs=len(data.pooled) == 2,
            window=self.window,
        )
        tables = [network.linear.weight, network.embedding.weight]
        dense = [p for p in network.parameters() if all(p is not t for t in tables)]
        optimizers = [
            torch.optim.SparseAdam([network.linear.weight], lr=self.ngram_learning_rate),
            torch.optim.SparseAdam([network.embedding.weight], lr=self.learning_rate),
            torch.optim.Adam(dense, lr=self.learning_rate),
        ]
        y = torch.from_numpy(data.targets)
        history: list[dict[str, Any]] = []
        best: tuple[float, int, dict[str, Any]] | None = None
        n_epochs = epochs or self.max_epochs
        bar = tqdm(
            total=n_epochs,
            desc="dense student" + (" (refit on all rows)" if held_out is None else ""),
            unit="epoch",
            disable=not progress,
        )
        epoch = -1
        while epoch + 1 < n_epochs:
            epoch += 1
            bar.update(1)
            network.train()
            losses = []
            for chosen in _batches(rng.permutation(train), self.rows_per_step(len(train))):
                for optimizer in optimizers:
                    optimizer.zero_grad()
                loss = self._loss(network(*data.batch(chosen, torch)), y[chosen], torch)
                loss.backward()
                for optimizer in optimizers:
                    optimizer.step()
                losses.append(float(loss.detach()))
            record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": float(np.mean(losses))}
            if held_out is not None:
                predicted = _predict(network, data, held_out)
                mse = float(np.mean((predicted - data.targets[held_out]) ** 2))
                record["validation_mse"] = mse
                bar.set_postfix(validation_mse=f"{mse:.4f}", refresh=False)
                if best is None or mse < best[0]:
                    best = (mse, epoch + 1, {k: v.clone() for k, v in network.state_dict().items()})
                    # still improving at the last epoch allowed: the optimum may lie further
                    if epoch + 1 == n_epochs and n_epochs < MAX_EPOCH_FACTOR * self.max_epochs:
                        n_epochs += self.max_epochs
                        bar.total = n_epochs
                elif epoch + 1 - best[1] >= self.patience:
                    history.append(record)
                    break
            history.append(record)
        bar.close()
        if best is None:
            return network, history, n_epochs
        network.load_state_dict(best[2])
        return network, history, best[1]

    def rows_per_step(self, n_rows: int) -> int:
        """``batch_size``, or by default a hundredth of the training rows between
        :data:`MIN_BATCH` and :data:`MAX_BATCH`: at least about 100 steps an epoch."""
        if self.batch_size is not None:
            return self.batch_size
        return int(np.clip(n_rows // 100, MIN_BATCH, MAX_BATCH))

    def _loss(self, predicted: Any, target: Any, torch: Any) -> Any:
        if self.loss == "mse":
            return torch.nn.functional.mse_loss(predicted, target)
        t = self.temperature
        soft = torch.softmax(target / t, dim=1)
        return -(soft * torch.log_softmax(predicted / t, dim=1)).sum(dim=1).mean() * t * t


class _Data:
    """Every training text featurized once: n-gram rows, pooling rows (one per side of a
    pair) and targets."""

    def __init__(
        self,
        rows: SparseRows,
        pooled: list[SparseRows],
        targets: np.ndarray,
        max_pooled: bool,
        words: SparseRows | None = None,
    ) -> None:
        self.rows = rows
        self.pooled = pooled
        self.targets = targets
        self.max_pooled = max_pooled  # whether batches carry padded word ids for max pooling
        # the embedding rows the max-pooled branch reads per text: in reading order for runs
        # of words, else the text's set of words
        self.words = pooled[0] if words is None else words

    def batch(self, chosen: np.ndarray, torch: Any) -> tuple[Any, Any, Any]:
        words = _padded(self.words, chosen, torch) if self.max_pooled else None
        bags = [_bag(side, chosen, torch) for side in self.pooled]
        return _bag(self.rows, chosen, torch), bags, words


def _padded(rows: SparseRows, chosen: np.ndarray, torch: Any) -> tuple[Any, Any]:
    """Rows ``chosen`` of a CSR matrix as a ``[n, longest]`` id matrix and its 0/1 mask."""
    starts, lengths = rows.indptr[chosen], np.diff(rows.indptr)[chosen]
    slot = np.arange(max(int(lengths.max(initial=0)), 1))[None, :]
    present = slot < lengths[:, None]
    where = np.where(present, starts[:, None] + slot, 0)
    ids = np.where(present, rows.indices[where], 0) if len(rows.indices) else np.zeros_like(where)
    return torch.from_numpy(ids.astype(np.int64)), torch.from_numpy(present.astype(np.float32))


def _batches(order: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(order), size):
        yield order[start : start + size]


def _predict(network: Any, data: _Data, rows: np.ndarray) -> np.ndarray:
    torch = _torch()
    network.eval()
    with torch.no_grad():
        parts = [network(*data.batch(chosen, torch)).numpy() for chosen in _batches(rows, 1024)]
    return np.concatenate(parts) if parts else np.empty((0, data.targets.shape[1]), np.float32)

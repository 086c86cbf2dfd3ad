"""The linear student on more teacher-labeled rows than fit in memory.

:class:`~textdistill.students.linear.LinearStudent` holds the whole TF-IDF matrix and the
n-gram counts of every text; at millions of documents neither fits. This student fits the
*same* model (the ``mse`` loss: ridge on row-centred teacher logits, same featurizer, same
artifact) with memory bounded by one chunk of rows:

1. **Vocabulary** by streaming lossy counting: document frequencies in a dictionary of at
   most ``vocabulary_capacity`` n-grams; when full, the rarest half is dropped (an n-gram that
   is frequent overall cannot be dropped for long). When the corpus never fills it, this is
   exactly :meth:`NgramFeaturizer.fit`.
2. **Exact document frequencies** of the kept n-grams (a second pass), hence the same idf.
3. **Features cached on disk** as CSR chunks (``.npy``), one chunk in memory at a time.
4. **Ridge by conjugate gradients on the normal equations**, streaming the cached chunks once
   per iteration: the very method scikit-learn's ``Ridge(solver="sparse_cg")`` uses in memory
   (the intercept by implicit centring, the same relative tolerance), so both reach the same
   solution. Every penalty of the grid, on the training rows and on all rows, is one column
   of a single block of CG systems: one pass over the data serves them all, and the penalty
   is chosen by agreement with the teacher on held-out rows, as the in-memory student does.

Measured in ``benchmarks/streaming_student.py`` (peak memory on 1,000,000 documents, accuracy
against the in-memory fit).
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textdistill.runtime.featurizer import NgramFeaturizer, ngrams, tokenize
from textdistill.runtime.linear import LinearModel
from textdistill.runtime.outputs import Prediction
from textdistill.students.linear import DEFAULT_GRID, MAX_EXTENSIONS, edge_step
from textdistill.students.targets import held_out_rows

Chunks = Callable[[], Iterable[tuple[Sequence[str], np.ndarray]]]
"""A re-iterable source of ``(texts, teacher logits [n, k])`` chunks (read once per pass)."""


class StreamingLinearStudent:
    """Ridge (``mse``) student fit from chunks; its ``model_`` is a runtime :class:`LinearModel`.

    Single-label only: targets are centred per row and agreement is scored by the top class,
    both of which assume a softmax teacher; a multilabel run uses :class:`LinearStudent`.

    >>> texts = ["good fun", "great fun", "bad plot", "awful plot"] * 10
    >>> logits = np.array([[-2.0, 2.0], [-3.0, 3.0], [2.0, -2.0], [3.0, -3.0]] * 10)
    >>> chunks = lambda: ((texts[i : i + 8], logits[i : i + 8]) for i in range(0, 40, 8))
    >>> student = StreamingLinearStudent(min_df=1).fit(chunks, classes=["neg", "pos"])
    >>> student.predict(["good fun", "awful plot"])
    ['pos', 'neg']
    """

    def __init__(
        self,
        *,
        max_n: int = 2,
        min_df: int = 2,
        max_features: int | None = 200_000,
        grid: Sequence[float] | None = None,
        validation_fraction: float = 0.1,
        vocabulary_capacity: int = 2_000_000,
        tol: float = 1e-4,
        max_iter: int = 1000,
        random_state: int = 0,
        workdir: str | Path | None = None,
    ) -> None:
        self.max_n = max_n
        self.min_df = min_df
        self.max_features = max_features
        self.grid = grid
        self.validation_fraction = validation_fraction
        self.vocabulary_capacity = vocabulary_capacity
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.workdir = workdir

    def fit(
        self, chunks: Chunks, *, classes: Sequence[str], progress: bool = False
    ) -> StreamingLinearStudent:
        """Fit to the teacher logits of every chunk; ``classes`` names the logit columns."""
        started = time.perf_counter()
        classes_ = [str(c) for c in classes]
        featurizer, n_rows = self._featurizer(chunks, progress)
        # The rows that choose the penalty: the very ones LinearStudent holds out (one bit a row).
        rng = np.random.default_rng(self.random_state)
        held_out = np.zeros(n_rows, dtype=bool)
        held_out[held_out_rows(n_rows, self.validation_fraction, rng)] = True
        with tempfile.TemporaryDirectory(prefix="textdistill-stream-", dir=self.workdir) as tmp:
            cache = _FeatureCache.build(
                Path(tmp), chunks, featurizer, len(classes_), held_out, progress
            )
            grid = tuple(self.grid or DEFAULT_GRID["mse"])
            # A best penalty on the grid's edge: solve again with the next one past it, as the
            # in-memory student's search does (the same rows, so the same choice).
            for extension in range(MAX_EXTENSIONS + 1):
                coef, intercept, scores, best, iterations = cache.solve(
                    grid, self.tol, self.max_iter
                )
                step = edge_step(grid, best)
                if step is None or extension == MAX_EXTENSIONS:
                    break
                grid = tuple(sorted({*grid, best * step}))
        self.classes_ = classes_
        self.selection_ = {
            "loss": "mse",
            "penalty": best,
            "penalty_name": "alpha",
            "grid": scores,
            "n_validation": cache.n_held_out,
            "solver": "streaming conjugate gradients",
            "cg_iterations": iterations,
        }
        self.n_teacher_rows_ = cache.n_rows
        self.fit_seconds_ = time.perf_counter() - started
        self.model_ = LinearModel(
            featurizer,
            coef.astype(np.float32),
            intercept.astype(np.float32),
            classes_,
            metadata={
                "selection": self.selection_,
                "n_teacher_rows": cache.n_rows,
                "n_gold_rows": 0,
                "params": {
                    "loss": "mse",
                    "max_n": self.max_n,
                    "min_df": self.min_df,
                    "max_features": self.max_features,
                    "random_state": self.random_state,
                },
            },
        )
        return self

    # Inference goes through the runtime model, as for LinearStudent.
    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        return self.model_.decision_function(texts)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.model_.predict_proba(texts)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        return self.model_.predict(texts)

    def save(self, path: str | Path) -> None:
        self.model_.save(path)

    # ------------------------------------------------------------------ vocabulary
    def _featurizer(self, chunks: Chunks, progress: bool) -> tuple[NgramFeaturizer, int]:
        """Passes 1 and 2: the vocabulary by lossy counting, then its exact idf; and the
        number of rows."""
        doc_freq: Counter[str] = Counter()
        n_docs = 0
        for texts, _ in _progress(chunks(), "student vocabulary", progress):
            for text in texts:
                doc_freq.update(set(ngrams(tokenize(text), self.max_n)))
            n_docs += len(texts)
            if len(doc_freq) > self.vocabulary_capacity:
                counts = np.fromiter(doc_freq.values(), dtype=np.int64, count=len(doc_freq))
                floor = np.partition(counts, len(counts) // 2)[len(counts) // 2]
                doc_freq = Counter({t: c for t, c in doc_freq.items() if c > floor})
        kept = sorted(
            ((t, c) for t, c in doc_freq.items() if c >= self.min_df),
            key=lambda item: (-item[1], item[0]),
        )[: self.max_features]
        if not kept:
            raise ValueError(
                f"no n-gram occurs in at least min_df={self.min_df} of the {n_docs} documents"
            )
        del doc_freq
        probe = NgramFeaturizer([t for t, _ in kept], np.ones(len(kept)), max_n=self.max_n)
        df = np.zeros(len(kept), dtype=np.int64)
        for texts, _ in _progress(chunks(), "student document frequencies", progress):
            ids, _, _ = probe.counts(list(texts))
            df += np.bincount(ids, minlength=len(kept))
        idf = np.log((1.0 + n_docs) / (1.0 + df)) + 1.0
        return NgramFeaturizer(probe.vocabulary, idf, max_n=self.max_n), n_docs


class _FeatureCache:
    """TF-IDF rows and centred targets of every chunk as ``.npy`` files, read back one by one."""

    def __init__(self, directory: Path, n_features: int, k: int) -> None:
        self.directory = directory
        self.n_features = n_features
        self.k = k
        self.n_chunks = 0
        self.n_rows = 0
        self.n_held_out = 0

    @classmethod
    def build(
        cls,
        directory: Path,
        chunks: Chunks,
        featurizer: NgramFeaturizer,
        k: int,
        held_out_rows: np.ndarray,
        progress: bool,
    ) -> _FeatureCache:
        cache = cls(directory, featurizer.n_features, k)
        for texts, logits in _progress(chunks(), "student features", progress):
            targets = np.asarray(logits, dtype=np.float64)
            if targets.shape != (len(texts), k):
                raise ValueError(f"logits of shape {targets.shape} for {len(texts)} texts, k={k}")
            X = featurizer.transform(list(texts))
            held_out = held_out_rows[cache.n_rows : cache.n_rows + len(texts)]
            if len(held_out) != len(texts):
                raise ValueError("the chunks gave more rows on this pass than on the first")
            arrays = {
                "data": X.data,
                "indices": X.indices,
                "indptr": X.indptr,
                "targets": targets - targets.mean(axis=1, keepdims=True),
                "teacher_class": targets.argmax(axis=1),
                "held_out": held_out,
            }
            for name, array in arrays.items():
                np.save(directory / f"{cache.n_chunks:06d}-{name}.npy", array, allow_pickle=False)
            cache.n_chunks += 1
            cache.n_rows += len(texts)
            cache.n_held_out += int(held_out.sum())
        if cache.n_rows == 0:
            raise ValueError("no rows to fit: every chunk was empty")
        return cache

    def _chunks(self) -> Iterable[tuple[Any, dict[str, np.ndarray]]]:
        import scipy.sparse

        for i in range(self.n_chunks):
            part = {
                name: np.load(self.directory / f"{i:06d}-{name}.npy", allow_pickle=False)
                for name in ("data", "indices", "indptr", "targets", "teacher_class", "held_out")
            }
            X = scipy.sparse.csr_matrix(
                (part["data"], part["indices"], part["indptr"]),
                shape=(len(part["indptr"]) - 1, self.n_features),
            )
            yield X, part

    def solve(
        self, grid: tuple[float, ...], tol: float, max_iter: int
    ) -> tuple[np.ndarray, np.ndarray, list[dict[str, float]], float, int]:
        """Block CG over (training rows | all rows) x penalties x classes; pick on held-out."""
        choose = len(grid) > 1 and self.n_held_out > 0
        splits = ("train", "all") if choose else ("all",)
        # Column c of the block: split, penalty and class of one independent ridge system.
        columns = [(s, a, j) for s in splits for a in grid for j in range(self.k)]
        on_train = np.array([s == "train" for s, _, _ in columns])
        alphas = np.array([a for _, a, _ in columns])
        target_of = np.array([j for _, _, j in columns])

        # Means of features and targets over each split: the intercept, by implicit centring.
        sums = {s: np.zeros(self.n_features) for s in splits}
        target_sums = {s: np.zeros(self.k) for s in splits}
        counts = dict.fromkeys(splits, 0)
        for X, part in self._chunks():
            for s in splits:
                rows = ~part["held_out"] if s == "train" else slice(None)
                sums[s] += np.asarray(X[rows].sum(axis=0)).ravel()
                target_sums[s] += part["targets"][rows].sum(axis=0)
                counts[s] += X[rows].shape[0]
        mu = np.stack([sums[s] / counts[s] for s, _, _ in columns], axis=1)  # [d, m]
        y_mean = np.array([target_sums[s][j] / counts[s] for s, _, j in columns])  # [m]

        def row_mask(part: dict[str, np.ndarray]) -> np.ndarray:
            """Rows x columns: 1 where a row belongs to the column's split."""
            keep = np.ones((len(part["held_out"]), len(columns)))
            keep[np.ix_(part["held_out"], on_train)] = 0.0
            return keep

        def normal(V: np.ndarray) -> np.ndarray:
            """(Xc^T Xc + alpha) V, one pass over the cache for every column at once."""
            out = np.zeros_like(V)
            u_sums = np.zeros(V.shape[1])
            offsets = np.einsum("dm,dm->m", mu, V)
            for X, part in self._chunks():
                u = (np.asarray(X @ V) - offsets) * row_mask(part)
                out += np.asarray(X.T @ u)
                u_sums += u.sum(axis=0)
            return out - mu * u_sums + alphas * V

        b = np.zeros((self.n_features, len(columns)))
        for X, part in self._chunks():
            centred = (part["targets"][:, target_of] - y_mean) * row_mask(part)
            b += np.asarray(X.T @ centred)
        W, iterations = _block_cg(normal, b, tol, max_iter)
        intercepts = y_mean - np.einsum("dm,dm->m", mu, W)

        scores: list[dict[str, float]] = []
        best = grid[0]
        if choose:
            agree = np.zeros(len(grid))
            squared = np.zeros(len(grid))
            train = np.flatnonzero(on_train)
            for X, part in self._chunks():
                rows = part["held_out"]
                predicted = np.asarray(X[rows] @ W[:, train]) + intercepts[train]
                for g in range(len(grid)):
                    block = predicted[:, g * self.k : (g + 1) * self.k]
                    agree[g] += (block.argmax(axis=1) == part["teacher_class"][rows]).sum()
                    squared[g] += ((block - part["targets"][rows]) ** 2).sum()
            n = self.n_held_out
            scores = [
                {"penalty": a, "agreement": agree[g] / n, "mse": squared[g] / (n * self.k)}
                for g, a in enumerate(grid)
            ]
            best = max(scores, key=lambda s: (s["agreement"], -s["mse"]))["penalty"]
        final = [c for c, (s, a, _) in enumerate(columns) if s == "all" and a == best]
        return W[:, final], intercepts[final], scores, best, iterations


def _block_cg(
    apply: Callable[[np.ndarray], np.ndarray], b: np.ndarray, tol: float, max_iter: int
) -> tuple[np.ndarray, int]:
    """Conjugate gradients on independent SPD systems, one per column, sharing each product.

    A column stops changing once ``||r|| <= tol * ||b||`` (scipy's ``cg`` criterion, which
    scikit-learn's sparse_cg ridge uses); the loop ends when every column has.
    """
    x = np.zeros_like(b)
    r = b.copy()
    p = r.copy()
    rr = np.einsum("dm,dm->m", r, r)
    limit = tol**2 * np.maximum(rr, 1e-300)
    active = rr > limit
    iterations = 0
    while active.any() and iterations < max_iter:
        Ap = apply(p)
        step = np.where(active, rr / np.maximum(np.einsum("dm,dm->m", p, Ap), 1e-300), 0.0)
        x += step * p
        r -= step * Ap
        rr_new = np.einsum("dm,dm->m", r, r)
        p = r + np.where(active, rr_new / np.maximum(rr, 1e-300), 0.0) * p
        rr = rr_new
        active &= rr > limit
        iterations += 1
    return x, iterations


def _progress(items: Iterable[Any], description: str, enabled: bool) -> Iterable[Any]:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=description, unit="chunk")

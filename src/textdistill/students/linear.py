"""The linear student: n-gram TF-IDF features, weights fit to a teacher's logits.

Two losses, both over the runtime's own featurizer:

* ``"mse"`` — ridge regression on the teacher's logits (Tang et al. 2019 use MSE on logits;
  the reference article fits least squares to one logit). Logits are centred per row first:
  softmax ignores a shift, so the regression should not spend capacity on it.
* ``"soft_ce"`` — multinomial logistic regression on the teacher's softmax at temperature
  ``T`` (Hinton et al. 2015). scikit-learn has no soft-label solver, so each row enters once
  per class with that class as its label and the teacher's probability as its weight: the
  weighted log-loss is exactly the soft cross-entropy.

Gold labels (the user's labeled set) enter beside the teacher-labeled rows: as one-hot
targets for ``soft_ce``, and for ``mse`` as one-hot logits scaled to the teacher's typical
margin, so a gold row pulls as hard as a confident teacher row.

The regularisation strength is chosen on held-out teacher-labeled rows by agreement with the
teacher (no gold label is spent on it) and recorded in ``selection_``.

Hard labels alone (``fit(texts, labels)``) give the classic TF-IDF + logistic regression,
which is how the baseline is built: same featurizer, same artifact, so they compare fairly.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from textdistill.runtime.featurizer import NgramFeaturizer, SparseRows
from textdistill.runtime.linear import LinearModel, softmax

Loss = Literal["mse", "soft_ce"]
DEFAULT_GRID: dict[str, tuple[float, ...]] = {
    # ridge alpha (larger = stronger penalty)
    "mse": (0.1, 0.3, 1.0, 3.0, 10.0),
    # inverse penalty C of logistic regression (larger = weaker penalty)
    "soft_ce": (1.0, 4.0, 16.0, 64.0, 256.0),
}


class LinearStudent:
    """scikit-learn-style estimator whose fitted state is a runtime :class:`LinearModel`.

    >>> texts = ["good fun", "great fun", "bad plot", "awful plot"] * 5
    >>> logits = np.array([[-2.0, 2.0], [-3.0, 3.0], [2.0, -2.0], [3.0, -3.0]] * 5)
    >>> student = LinearStudent(min_df=1).fit(texts, logits, classes=["neg", "pos"])
    >>> student.predict(["good fun", "awful plot"])
    ['pos', 'neg']
    """

    def __init__(
        self,
        *,
        loss: Loss = "mse",
        max_n: int = 2,
        min_df: int = 2,
        max_features: int | None = 200_000,
        grid: Sequence[float] | None = None,
        temperature: float = 1.0,
        gold_weight: float = 1.0,
        validation_fraction: float = 0.1,
        random_state: int = 0,
    ) -> None:
        self.loss = loss
        self.max_n = max_n
        self.min_df = min_df
        self.max_features = max_features
        self.grid = grid
        self.temperature = temperature
        self.gold_weight = gold_weight
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        texts: Sequence[str],
        targets: np.ndarray | Sequence[str],
        *,
        classes: Sequence[str] | None = None,
        gold_texts: Sequence[str] = (),
        gold_labels: Sequence[str] = (),
        progress: bool = False,
    ) -> LinearStudent:
        """Fit to teacher logits (float ``[n, k]``, needs ``classes``) or to label names.

        ``gold_texts``/``gold_labels`` add labeled rows to teacher-logit training;
        ``progress`` shows a bar over the penalty grid (a minute or more on 20,000+ texts).
        """
        started = time.perf_counter()
        if self.loss not in DEFAULT_GRID:
            raise ValueError(f"loss must be one of {sorted(DEFAULT_GRID)}, got {self.loss!r}")
        if len(texts) != len(targets):
            raise ValueError(f"{len(texts)} texts but {len(targets)} targets")
        if len(gold_texts) != len(gold_labels):
            raise ValueError(f"{len(gold_texts)} gold texts but {len(gold_labels)} gold labels")
        hard = not isinstance(targets, np.ndarray) or targets.dtype.kind in "OUS"
        if hard:
            labels = [str(label) for label in targets] + [str(g) for g in gold_labels]
            classes_ = sorted(set(labels))
            texts_all = list(texts) + list(gold_texts)
            if len(classes_) < 2:
                raise ValueError(f"need at least two classes, got {classes_}")
            teacher_logits = None
        else:
            if classes is None:
                raise ValueError("teacher logits need `classes`, the label name of each column")
            classes_ = [str(c) for c in classes]
            teacher_logits = np.asarray(targets, dtype=np.float64)
            if teacher_logits.ndim != 2 or teacher_logits.shape[1] != len(classes_):
                raise ValueError(
                    f"logits of shape {teacher_logits.shape} do not match {len(classes_)} classes"
                )
            unknown = sorted(set(map(str, gold_labels)) - set(classes_))
            if unknown:
                raise ValueError(f"gold labels {unknown} are not among the classes {classes_}")
            texts_all = list(texts) + list(gold_texts)
            labels = [str(g) for g in gold_labels]

        featurizer = NgramFeaturizer.fit(
            texts_all, max_n=self.max_n, min_df=self.min_df, max_features=self.max_features
        )
        features = featurizer.transform(texts_all)
        class_index = {name: i for i, name in enumerate(classes_)}
        gold = np.array([class_index[label] for label in labels], dtype=np.int64)
        n_teacher = 0 if teacher_logits is None else len(teacher_logits)
        problem = _Problem(features, teacher_logits, gold, len(classes_), self)

        # Choose the penalty on held-out teacher rows (or, with labels only, held-out gold).
        rng = np.random.default_rng(self.random_state)
        pool = np.arange(n_teacher) if n_teacher else np.arange(len(gold))
        n_val = max(1, round(self.validation_fraction * len(pool)))
        held_out = np.sort(rng.permutation(pool)[:n_val]) if len(pool) >= 20 else np.array([], int)
        grid = tuple(self.grid or DEFAULT_GRID[self.loss])
        scores: list[dict[str, float]] = []
        if len(grid) > 1 and len(held_out):
            from tqdm.auto import tqdm

            for value in tqdm(grid, desc="student penalty grid", unit="fit", disable=not progress):
                coef, intercept = problem.solve(value, exclude=held_out)
                scores.append({"penalty": value, **problem.score(coef, intercept, held_out)})
            best = max(scores, key=lambda s: (s["agreement"], -s["mse"]))["penalty"]
        else:
            best = grid[0]
        coef, intercept = problem.solve(best, exclude=np.array([], dtype=np.int64))

        self.classes_ = classes_
        self.selection_ = {
            "loss": self.loss if not hard else "ce",
            "penalty": best,
            "penalty_name": "alpha" if self.loss == "mse" and not hard else "C",
            "grid": scores,
            "n_validation": len(held_out),
        }
        self.n_teacher_rows_ = n_teacher
        self.n_gold_rows_ = len(gold)
        self.fit_seconds_ = time.perf_counter() - started
        self.model_ = LinearModel(
            featurizer,
            coef.astype(np.float32),
            intercept.astype(np.float32),
            classes_,
            metadata={
                "selection": self.selection_,
                "n_teacher_rows": n_teacher,
                "n_gold_rows": self.n_gold_rows_,
                "params": self.get_params(),
            },
        )
        return self

    def get_params(self) -> dict[str, Any]:
        return {
            "loss": self.loss,
            "max_n": self.max_n,
            "min_df": self.min_df,
            "max_features": self.max_features,
            "temperature": self.temperature,
            "gold_weight": self.gold_weight,
            "random_state": self.random_state,
        }

    # --------------------------------------------------------------- inference
    def _fitted(self) -> LinearModel:
        if not hasattr(self, "model_"):
            raise RuntimeError("LinearStudent is not fitted; call fit() or LinearStudent.load()")
        return self.model_

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        return self._fitted().decision_function(texts)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self._fitted().predict_proba(texts)

    def predict(self, texts: Sequence[str]) -> list[str]:
        return self._fitted().predict(texts)

    def save(self, path: str | Path) -> None:
        self._fitted().save(path)

    @classmethod
    def load(cls, path: str | Path) -> LinearStudent:
        model = LinearModel.load(path)
        student = cls(**{k: v for k, v in model.metadata.get("params", {}).items()})
        student.model_ = model
        student.classes_ = model.labels
        return student


class _Problem:
    """The design matrix and targets of one fit, solved for any penalty value."""

    def __init__(
        self,
        features: SparseRows,
        teacher_logits: np.ndarray | None,
        gold: np.ndarray,
        n_classes: int,
        params: LinearStudent,
    ) -> None:
        self.X = features.to_scipy()
        self.k = n_classes
        self.params = params
        self.n_teacher = 0 if teacher_logits is None else len(teacher_logits)
        self.teacher_logits = teacher_logits
        onehot = np.eye(n_classes)[gold]
        if teacher_logits is None:
            self.hard = True
            self.soft = onehot
            self.reg_targets = onehot
            return
        self.hard = False
        centred = teacher_logits - teacher_logits.mean(axis=1, keepdims=True)
        # One-hot logits scaled so that their winning margin equals the teacher's average one.
        scale = float(centred.max(axis=1).mean()) * n_classes / max(n_classes - 1, 1)
        gold_logits = scale * (onehot - 1.0 / n_classes)
        self.reg_targets = np.vstack([centred, gold_logits])
        self.soft = np.vstack([softmax(teacher_logits, params.temperature), onehot])
        self.weights = np.concatenate(
            [np.ones(self.n_teacher), np.full(len(gold), params.gold_weight)]
        )

    def _rows(self, exclude: np.ndarray) -> np.ndarray:
        keep = np.ones(self.X.shape[0], dtype=bool)
        keep[exclude] = False
        return np.flatnonzero(keep)

    def solve(self, penalty: float, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weights ``[n_features, k]`` and intercept ``[k]`` for one penalty value."""
        rows = self._rows(exclude)
        X = self.X[rows]
        weights = None if self.hard else self.weights[rows]
        if self.params.loss == "mse" and not self.hard:
            from sklearn.linear_model import Ridge

            ridge = Ridge(alpha=penalty, solver="sparse_cg", random_state=self.params.random_state)
            ridge.fit(X, self.reg_targets[rows], sample_weight=weights)
            return ridge.coef_.T, np.asarray(ridge.intercept_)
        return self._logistic(X, self.soft[rows], weights, penalty)

    def _logistic(
        self, X: Any, soft: np.ndarray, weights: np.ndarray | None, C: float
    ) -> tuple[np.ndarray, np.ndarray]:
        import scipy.sparse
        from sklearn.linear_model import LogisticRegression

        n = X.shape[0]
        base = np.ones(n) if weights is None else weights
        # Each row once per class, weighted by the target probability of that class.
        stacked = scipy.sparse.vstack([X] * self.k, format="csr")
        labels = np.repeat(np.arange(self.k), n)
        sample_weight = (soft.T * base).ravel()
        nonzero = sample_weight > 1e-8
        model = LogisticRegression(C=C, max_iter=1000, random_state=self.params.random_state)
        model.fit(stacked[nonzero], labels[nonzero], sample_weight=sample_weight[nonzero])
        if self.k == 2:
            # scikit-learn keeps one column for two classes: logits (0, z) give the same softmax.
            half = model.coef_[0] / 2
            coef = np.stack([-half, half], axis=1)
            intercept = np.array([-model.intercept_[0] / 2, model.intercept_[0] / 2])
            return coef, intercept
        return model.coef_.T, model.intercept_

    def score(self, coef: np.ndarray, intercept: np.ndarray, rows: np.ndarray) -> dict[str, float]:
        """Agreement with the reference (teacher argmax, or gold) and logit MSE on ``rows``."""
        predicted = np.asarray(self.X[rows] @ coef) + intercept
        if self.teacher_logits is None:
            reference = self.soft[rows].argmax(axis=1)
            mse = float(np.mean((softmax(predicted) - self.soft[rows]) ** 2))
        else:
            reference = self.teacher_logits[rows].argmax(axis=1)
            mse = float(np.mean((predicted - self.reg_targets[rows]) ** 2))
        return {"agreement": float(np.mean(predicted.argmax(axis=1) == reference)), "mse": mse}

"""textdistill as a scikit-learn classifier: teacher, labeling and student inside ``fit``.

:class:`DistilledClassifier` is for code that already speaks scikit-learn: pipelines, cross
validation, grid searches. ``fit(X, y, X_unlabeled=None)`` fine-tunes the teacher on ``X``,
lets it label ``X_unlabeled`` (and ``X`` itself), and fits the student; prediction goes
through the student's numpy runtime model, exactly what ``save`` writes and
``textdistill.load`` reads back. There is no run directory, report or cache here: use
``textdistill run`` for long jobs that must resume after a crash.

Needs the train extra (``pip install 'textdistill[train]'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from textdistill.calibration import fit_temperature
from textdistill.data import TextDataset, stratified_split
from textdistill.pipeline import StudentConfig, make_student
from textdistill.runtime import Model
from textdistill.students.choice import Fittable, candidate_kinds, fit_candidates
from textdistill.teacher import DEFAULT_TEACHER, Teacher, TeacherConfig

# Texts on which the labeling precision is checked against fp32, as ``textdistill run`` does.
PRECISION_CHECK_DOCS = 500


def _texts(values: Any, what: str) -> list[str]:
    """A 1-D sequence of strings (list, tuple, numpy array, pandas Series) as a list."""
    if isinstance(values, str):
        raise ValueError(f"{what} must be a sequence of texts, got one string")
    array = np.asarray(values, dtype=object)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]  # a one-column frame, as ColumnTransformer hands it over
    if array.ndim != 1:
        raise ValueError(f"{what} must be one text per row, got an array of shape {array.shape}")
    texts = array.tolist()
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"{what}[{i}] is {type(text).__name__} ({text!r:.60}); expected str")
    return texts


class DistilledClassifier(ClassifierMixin, BaseEstimator):
    """A transformer teacher distilled into a numpy student, as a scikit-learn classifier.

    The constructor only stores its options (scikit-learn's rule), so ``clone`` and grid
    searches work: teacher options (``teacher``, the model name or a local path, then
    ``method``, ``epochs``, ``max_length``, ``truncation``, ``learning_rate``,
    ``batch_size``, ``precision``) are those of :class:`~textdistill.teacher.TeacherConfig`;
    student options (``student``, ``loss``, ``alpha``, ``temperature``, ``max_n``,
    ``char_ngrams``, ``min_df``, ``max_features``) those of ``textdistill run``: ``student``
    is ``"auto"`` by default, as there (the linear and the dense student, whose word vectors
    start from the fine-tuned teacher's, and their blend; the one that agrees most with the
    teacher on held-out rows is kept), or ``"linear"``, ``"dense"``, ``"neural"``; ``loss``,
    ``alpha`` and ``temperature`` are the linear student's.
    ``validation_size`` of the labeled rows pick the teacher's best epoch and calibrate the
    student's probabilities (one temperature), as in a run; the student's gold rows are the
    others, so the temperature is fitted on labels it did not learn.

    After ``fit``: ``classes_`` (sorted class names), ``model_`` (the runtime model that
    predicts), ``teacher_info_`` (the teacher's fingerprint, best epoch, labeling precision
    and the number of texts it labeled) and ``selection_`` (what the student's search
    chose, with ``kind`` and ``kept_because`` for the kept student). The teacher itself is
    not kept: it is large, and prediction never needs it.

    Single-label only; for label sets use ``textdistill run --multilabel``.
    """

    def __init__(
        self,
        *,
        teacher: str = DEFAULT_TEACHER,
        method: str = "fine-tune",
        epochs: int = 8,
        max_length: int = 512,
        truncation: str = "head+tail",
        learning_rate: float = 5e-5,
        batch_size: int = 16,
        precision: str = "auto",
        student: str = "auto",
        loss: str = "mse",
        alpha: float | Sequence[float] = 0.1,
        temperature: float | Sequence[float] = 1.0,
        max_n: int = 2,
        char_ngrams: Sequence[int] | None = None,
        min_df: int = 2,
        max_features: int | None = 200_000,
        validation_size: float = 0.1,
        random_state: int = 0,
        progress: bool = False,
    ) -> None:
        self.teacher = teacher
        self.method = method
        self.epochs = epochs
        self.max_length = max_length
        self.truncation = truncation
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.precision = precision
        self.student = student
        self.loss = loss
        self.alpha = alpha
        self.temperature = temperature
        self.max_n = max_n
        self.char_ngrams = char_ngrams
        self.min_df = min_df
        self.max_features = max_features
        self.validation_size = validation_size
        self.random_state = random_state
        self.progress = progress

    # ------------------------------------------------------------------------- fitting
    def _teacher(self) -> Teacher:
        return Teacher(
            TeacherConfig(
                model=self.teacher,
                method=self.method,
                epochs=self.epochs,
                max_length=self.max_length,
                truncation=self.truncation,
                learning_rate=self.learning_rate,
                batch_size=self.batch_size,
                precision=self.precision,
                seed=self.random_state,
            )
        )

    def _student(self, kind: str) -> Fittable:
        options = StudentConfig(
            loss=self.loss,
            max_n=self.max_n,
            char_ngrams=None if self.char_ngrams is None else list(self.char_ngrams),
            min_df=self.min_df,
            max_features=self.max_features,
            alpha=self.alpha,  # type: ignore[arg-type]
            temperature=self.temperature,  # type: ignore[arg-type]
        )
        return make_student(kind, options, self.random_state)

    def fit(self, X: Any, y: Any, X_unlabeled: Any = None) -> DistilledClassifier:
        """Fine-tune the teacher on ``X``/``y``, label ``X_unlabeled`` and fit the student.

        ``X`` and ``X_unlabeled`` are sequences of texts; ``y`` holds one label per text
        (any values: they become names, ``str(label)``, and ``classes_`` keeps them sorted).
        Without ``X_unlabeled`` the student learns the teacher's logits on the labeled texts
        alone, which makes a weaker student: unlabeled text is what distillation feeds on.
        """
        candidate_kinds(self.student)  # an unknown kind fails here, before the teacher's fit
        texts = _texts(X, "X")
        labels_in = np.asarray(y, dtype=object)
        if labels_in.ndim != 1:
            raise ValueError(
                f"y must hold one label per text (shape (n,)), got shape {labels_in.shape}; "
                "DistilledClassifier is single-label"
            )
        if len(labels_in) != len(texts):
            raise ValueError(f"X has {len(texts)} texts but y has {len(labels_in)} labels")
        label_of = {str(v): v for v in labels_in.tolist()}
        if len(label_of) != len(set(labels_in.tolist())):
            raise ValueError("y has labels that are equal as text (such as 1 and '1')")
        labeled = TextDataset(texts, [str(v) for v in labels_in.tolist()], source="X")
        gold, validation = stratified_split(labeled, self.validation_size, seed=self.random_state)
        unlabeled = [] if X_unlabeled is None else _texts(X_unlabeled, "X_unlabeled")
        transfer = list(dict.fromkeys([*unlabeled, *gold.texts]))
        gold_labels, validation_labels = gold.labels or [], validation.labels or []

        teacher = self._teacher().fit(
            gold.texts,
            gold_labels,
            val_texts=validation.texts,
            val_labels=validation_labels,
            progress=self.progress,
        )
        if self.precision == "auto":
            teacher.select_precision((validation.texts + unlabeled)[:PRECISION_CHECK_DOCS])
        elif self.precision != "fp32":
            teacher.use_precision(self.precision)
        logits = teacher.logits(transfer, progress=self.progress)
        _, kept, reason = fit_candidates(
            candidate_kinds(self.student, transfer),
            self._student,
            transfer,
            logits,
            word_vectors=lambda: teacher,
            log=lambda message: None,
            asked=self.student,
            classes=teacher.classes_,
            gold_texts=gold.texts,
            gold_labels=gold_labels,
            progress=self.progress,
        )
        student = kept.student
        classes = list(teacher.classes_)
        truth = np.array([classes.index(label) for label in validation_labels])
        model = student.model_
        model.temperature = fit_temperature(model.decision_function(validation.texts), truth)
        self.model_: Model = model
        self.classes_ = np.array([label_of[c] for c in classes], dtype=object)
        self.selection_ = {**student.selection_, "kind": kept.kind, "kept_because": reason}
        self.teacher_info_ = {
            "fingerprint": teacher.fingerprint,
            "best_epoch": teacher.best_epoch_,
            "precision": teacher.precision,
            "n_labeled_by_teacher": len(transfer),
        }
        return self

    # ----------------------------------------------------------------------- predicting
    def decision_function(self, X: Any) -> np.ndarray:
        """The student's logits, ``[n, k]``; for two classes, as scikit-learn expects, one
        score per text (``logit[1] - logit[0]``: positive means ``classes_[1]``)."""
        check_is_fitted(self, "model_")
        logits = self.model_.decision_function(_texts(X, "X"))
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated class probabilities, ``[n, k]``, columns in the order of ``classes_``."""
        check_is_fitted(self, "model_")
        return self.model_.predict_proba(_texts(X, "X"))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each text, as the values ``y`` held."""
        check_is_fitted(self, "model_")
        logits = self.model_.decision_function(_texts(X, "X"))
        return self.classes_[np.argmax(logits, axis=1)]

    def save(self, path: str | Path) -> None:
        """Write the student artifact: ``textdistill predict``/``serve``/``load`` take it."""
        check_is_fitted(self, "model_")
        self.model_.save(path)

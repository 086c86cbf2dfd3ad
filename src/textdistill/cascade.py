"""A cascade: the student answers the documents it is sure of, the teacher settles the rest.

With calibrated probabilities, the student's confidence says how likely it is to be right, so
deferring the least confident few to the teacher buys most of the teacher's accuracy for a
fraction of its cost. The curve (accuracy and throughput against the fraction deferred) is
measured on the test set; the threshold stored in the cascade artifact is chosen from the
calibrated confidences of both models on the unlabeled transfer set, never on the test set.

A cascade artifact is a directory holding ``cascade.json``: the threshold, the teacher's
calibration temperature, the curve, and the paths (relative to the directory) of a student
artifact and of a saved teacher.

Two kinds of docs/s live here, and they are kept apart. The curve's are *computed*, from the
student's and the teacher's measured rates (``1 / (1/student + f/teacher)``): cheap for a
hundred points, but blind to what running both costs together. :func:`time_cascade`
*measures* the artifact itself, ``Cascade.predict_detailed`` on real texts at a threshold,
teacher and all; that is the number to quote for an operating point.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from textdistill.extras import install_hint
from textdistill.runtime import Model, load, softmax
from textdistill.runtime.atomic import write_file_atomically

CASCADE_FILE = "cascade.json"
FORMAT_VERSION = 1


def cascade_curve(
    confidence: np.ndarray,
    student_pred: np.ndarray,
    teacher_pred: np.ndarray,
    y_true: np.ndarray,
    student_docs_per_s: float,
    teacher_docs_per_s: float,
    steps: int = 21,
) -> list[dict[str, float]]:
    """Accuracy and docs/s when the least confident ``f`` of documents go to the teacher.

    Every document is scored by the student; a deferred one costs a teacher call on top, so
    throughput is *computed* as ``1 / (1/student + f/teacher)`` (see :func:`time_cascade` for
    a measured rate).

    >>> conf = np.array([0.99, 0.6, 0.9, 0.55])
    >>> curve = cascade_curve(conf, np.array([1, 0, 1, 0]), np.array([1, 1, 1, 1]),
    ...                       np.array([1, 1, 1, 1]), 1000.0, 10.0, steps=3)
    >>> [(row["fraction_deferred"], row["accuracy"]) for row in curve]
    [(0.0, 0.5), (0.5, 1.0), (1.0, 1.0)]
    """
    order = np.argsort(confidence, kind="stable")  # least confident first
    n = len(order)
    rows = []
    for step in range(steps):
        deferred = round(step / (steps - 1) * n)
        final = student_pred.copy()
        final[order[:deferred]] = teacher_pred[order[:deferred]]
        fraction = deferred / n
        rows.append(
            {
                "fraction_deferred": fraction,
                "threshold": float(confidence[order[deferred]]) if deferred < n else 1.0 + 1e-9,
                "accuracy": float(np.mean(final == y_true)),
                "agreement_with_teacher": float(np.mean(final == teacher_pred)),
                "docs_per_s": 1.0 / (1.0 / student_docs_per_s + fraction / teacher_docs_per_s),
            }
        )
    return rows


def choose_threshold(student_confidence: np.ndarray, teacher_confidence: np.ndarray) -> float:
    """The lowest threshold (defer when student confidence < threshold) at which the cascade
    is expected to be as accurate as the teacher alone, judged by calibrated confidences on
    unlabeled documents: a calibrated model with confidence 0.8 is right 80% of the time, so
    the cascade's expected accuracy is the mean of the student's confidence where it answers
    and the teacher's where it defers. No gold label is spent, so thousands of documents can
    be used instead of a small labeled split.

    >>> choose_threshold(np.array([0.99, 0.6, 0.95, 0.55]), np.array([0.9, 0.9, 0.9, 0.9]))
    0.95
    """
    order = np.argsort(student_confidence, kind="stable")
    target = float(np.mean(teacher_confidence))
    # expected[m]: expected accuracy when the m least confident documents are deferred.
    kept = np.concatenate([[0.0], np.cumsum(student_confidence[order][::-1])])[::-1]
    deferred = np.concatenate([[0.0], np.cumsum(teacher_confidence[order])])
    expected = (kept + deferred) / len(order)
    reaching = np.flatnonzero(expected >= target - 1e-12)
    m = int(reaching[0]) if len(reaching) else len(order)
    return float(student_confidence[order[m]]) if m < len(order) else 1.0 + 1e-9


def at_threshold(
    threshold: float,
    confidence: np.ndarray,
    student_pred: np.ndarray,
    teacher_pred: np.ndarray,
    y_true: np.ndarray,
    student_docs_per_s: float,
    teacher_docs_per_s: float,
) -> dict[str, float]:
    """What the cascade does on these documents with this threshold; docs/s computed from
    the two rates, as in :func:`cascade_curve`."""
    deferred = confidence < threshold
    final = np.where(deferred, teacher_pred, student_pred)
    fraction = float(deferred.mean())
    return {
        "threshold": threshold,
        "fraction_deferred": fraction,
        "accuracy": float(np.mean(final == y_true)),
        "agreement_with_teacher": float(np.mean(final == teacher_pred)),
        "docs_per_s": 1.0 / (1.0 / student_docs_per_s + fraction / teacher_docs_per_s),
    }


def save_cascade(
    directory: str | Path,
    *,
    student: str | Path,
    teacher: str | Path,
    threshold: float,
    teacher_temperature: float,
    metrics: dict[str, Any],
) -> Path:
    """Write ``cascade.json`` with paths relative to ``directory`` (so a run directory can be
    moved as a whole)."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    content = {
        "format_version": FORMAT_VERSION,
        "student": os.path.relpath(Path(student).resolve(), root.resolve()),
        "teacher": os.path.relpath(Path(teacher).resolve(), root.resolve()),
        "threshold": threshold,
        "teacher_temperature": teacher_temperature,
        "metrics": metrics,
    }
    write_file_atomically(root / CASCADE_FILE, json.dumps(content, indent=2).encode())
    return root / CASCADE_FILE


@dataclass
class CascadePrediction:
    """Per document: the label, calibrated probabilities, raw logits and who answered."""

    labels: list[str]
    probabilities: np.ndarray
    logits: np.ndarray
    sources: list[str]


class Cascade:
    """Student first; below ``threshold`` confidence, the teacher (loaded on first need)."""

    def __init__(
        self,
        student: Model,
        teacher_path: Path,
        threshold: float,
        teacher_temperature: float = 1.0,
    ) -> None:
        if student.multilabel:  # the deferral rule reads one confidence per text
            raise ValueError("a cascade needs a single-label student; this one is multilabel")
        self.student = student
        self.teacher_path = teacher_path
        self.threshold = threshold
        self.teacher_temperature = teacher_temperature
        self._teacher: Any = None

    @classmethod
    def load(cls, directory: str | Path, *, threshold: float | None = None) -> Cascade:
        root = Path(directory)
        path = root / CASCADE_FILE
        if not path.is_file():
            raise ValueError(
                f"{root}: not a cascade ({CASCADE_FILE} is missing); "
                "`textdistill run` writes one into RUN/cascade"
            )
        spec = json.loads(path.read_text())
        if spec.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(
                f"{path}: cascade format {spec['format_version']} is newer than "
                f"this textdistill reads ({FORMAT_VERSION}): upgrade textdistill"
            )
        student = load(str(root / spec["student"]))
        return cls(
            student,
            root / spec["teacher"],
            spec["threshold"] if threshold is None else threshold,
            spec.get("teacher_temperature", 1.0),
        )

    @property
    def labels(self) -> list[str]:
        return self.student.labels

    def teacher(self) -> Any:
        if self._teacher is None:
            try:
                from textdistill.teacher import Teacher
            except ImportError as error:
                raise ImportError(
                    f"a cascade's teacher needs the training extra: {install_hint('train')}"
                ) from error
            self._teacher = Teacher.load(self.teacher_path)
            if list(self._teacher.classes_) != self.labels:
                raise ValueError(
                    f"{self.teacher_path}: teacher classes "
                    f"{self._teacher.classes_} differ from the student's "
                    f"{self.labels}"
                )
        return self._teacher

    def predict_detailed(self, texts: Sequence[str]) -> CascadePrediction:
        logits = np.asarray(self.student.decision_function(texts), dtype=np.float32)
        probabilities = self.student.probabilities(logits)
        deferred = np.flatnonzero(probabilities.max(axis=1) < self.threshold).tolist()
        sources = ["student"] * len(texts)
        if len(deferred):
            teacher_logits = self.teacher().logits([texts[i] for i in deferred])
            logits[deferred] = teacher_logits
            probabilities[deferred] = softmax(teacher_logits, self.teacher_temperature)
            for i in deferred:
                sources[i] = "teacher"
        labels = [self.labels[i] for i in probabilities.argmax(axis=1)]
        return CascadePrediction(labels, probabilities, logits, sources)

    def predict(self, texts: Sequence[str]) -> list[str]:
        return self.predict_detailed(texts).labels


def time_cascade(
    cascade: Cascade, texts: Sequence[str], labels: Sequence[str], thresholds: Sequence[float]
) -> list[dict[str, Any]]:
    """Run the cascade on ``texts`` at each threshold and time it: measured docs/s.

    Each point is one timed ``predict_detailed`` over all of ``texts`` (student on every text,
    the teacher on those it defers), so accuracy, the fraction deferred and docs/s all come
    from that run, with the threads the process has. The teacher is loaded and warmed up
    before timing, as a server holding the artifact would have it. The cascade's own
    threshold is restored afterwards.
    """
    if not texts:
        raise ValueError("timing a cascade needs at least one text")
    cascade.teacher()
    cascade.teacher().logits(list(texts[:8]))  # first-call costs (allocations, kernels) off
    stored, rows = cascade.threshold, []
    try:
        for threshold in thresholds:
            cascade.threshold = threshold
            started = time.perf_counter()
            prediction = cascade.predict_detailed(texts)
            seconds = time.perf_counter() - started
            rows.append(
                {
                    "threshold": threshold,
                    "fraction_deferred": prediction.sources.count("teacher") / len(texts),
                    "accuracy": float(np.mean(np.array(prediction.labels) == np.array(labels))),
                    "docs_per_s": len(texts) / seconds,
                    "seconds": seconds,
                    "n_docs": len(texts),
                }
            )
    finally:
        cascade.threshold = stored
    return rows

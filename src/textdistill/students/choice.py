"""Which student to keep: fit each kind asked for, keep the one that agrees more with the
teacher on held-out teacher-labeled rows.

``"auto"`` fits the linear and the dense student. Neither wins everywhere: on long reviews
with tens of thousands of teacher-labeled texts the n-gram model reads the whole review and
passes its teacher, while on sentences it stops near its ceiling and the dense student's
teacher-initialised word vectors carry what it cannot. The choice is made on rows that
neither candidate trained on in the fit that scored them (each student holds out the same
tenth of the teacher rows, :func:`textdistill.students.targets.held_out_rows`), never on the
test set; each candidate is then refit on all rows by its own ``fit``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from textdistill.students.dense import DenseStudent, WordVectorSource
from textdistill.students.linear import LinearStudent
from textdistill.students.neural import NeuralStudent

Student = LinearStudent | DenseStudent | NeuralStudent
KINDS = ("auto", "linear", "dense", "neural")
AUTO_CANDIDATES = ("linear", "dense")


@dataclass
class Candidate:
    """A fitted student and its agreement with the teacher on the held-out teacher rows."""

    kind: str
    student: Student
    validation_agreement: float | None


def candidate_kinds(kind: str) -> tuple[str, ...]:
    """The kinds to fit for ``kind``.

    >>> candidate_kinds("auto"), candidate_kinds("dense")
    (('linear', 'dense'), ('dense',))
    """
    if kind not in KINDS:
        raise ValueError(f"student kind must be one of {KINDS}, got {kind!r}")
    return AUTO_CANDIDATES if kind == "auto" else (kind,)


def validation_agreement(student: Student) -> float | None:
    """Held-out agreement with the teacher of a fitted student, from its own selection."""
    value: Any = student.selection_.get("validation_agreement")
    return None if value is None else float(value)


def fit_candidates(
    kinds: Sequence[str],
    make: Callable[[str], Student],
    texts: Sequence[str],
    logits: np.ndarray,
    *,
    word_vectors: Callable[[], WordVectorSource | None],
    log: Callable[[str], None],
    **fit_options: Any,
) -> tuple[list[Candidate], Candidate, str]:
    """Fit every kind (``make(kind)`` builds the estimator), return the candidates, the kept
    one and a sentence saying why it was kept."""
    candidates = []
    for kind in kinds:
        student = make(kind)
        log(f"student: fitting the {kind} student on {len(texts)} teacher-labeled texts")
        if isinstance(student, DenseStudent):
            student.fit(texts, logits, word_vectors=word_vectors(), **fit_options)
        else:
            student.fit(texts, logits, **fit_options)
        candidates.append(Candidate(kind, student, validation_agreement(student)))
    if len(candidates) == 1:
        return candidates, candidates[0], f"the {kinds[0]} student was asked for"
    scored = [c for c in candidates if c.validation_agreement is not None]
    if not scored:
        kept = candidates[0]
        return candidates, kept, f"too few rows to hold out: the {kept.kind} student by default"
    kept = max(scored, key=lambda c: c.validation_agreement or 0.0)  # first wins ties
    others = ", ".join(f"{c.kind} {c.validation_agreement:.4f}" for c in scored if c is not kept)
    reason = (
        f"the {kept.kind} student agrees more with the teacher on "
        f"{len(_validation_rows(kept.student))} held-out teacher-labeled rows: "
        f"{kept.validation_agreement:.4f} against {others}"
    )
    return candidates, kept, reason


def _validation_rows(student: Student) -> np.ndarray:
    return np.asarray(getattr(student, "validation_rows_", []))

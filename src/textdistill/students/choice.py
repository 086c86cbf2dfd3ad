"""Which student to keep: fit each kind asked for, keep the one that agrees more with the
teacher on held-out teacher-labeled rows.

``"auto"`` fits the linear and the dense student. Neither wins everywhere: on long reviews
with tens of thousands of teacher-labeled texts the n-gram model reads the whole review and
passes its teacher, while on sentences it stops near its ceiling and the dense student's
teacher-initialised word vectors carry what it cannot. The choice is made on rows that
neither candidate trained on in the fit that scored them (each student holds out the same
tenth of the teacher rows, :func:`textdistill.students.targets.held_out_rows`), never on the
test set; each candidate is then refit on all rows by its own ``fit``. A larger student is
kept only when it agrees more by more than one standard error of the margin (:data:`RULE`).
Agreement counts rows, so on a few hundred held-out rows two candidates often tie exactly
(SST-2 without augmentation: the dense student and the blend, 497 of 592 each); the tie goes
to the one whose logits are nearer the teacher's on those rows, the quantity the students
were fit to, rather than to whichever was fitted first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from textdistill.runtime.dense import DenseModel
from textdistill.runtime.featurizer import tokenize
from textdistill.students.dense import DenseStudent, WordVectorSource
from textdistill.students.linear import LinearStudent
from textdistill.students.neural import NeuralStudent
from textdistill.students.targets import answers, same_answers

KINDS = ("auto", "linear", "dense", "neural")
AUTO_CANDIDATES = ("linear", "dense")
# How the kept student is chosen (part of the student stage's cache key).
RULE = (
    "held-out agreement, exact ties to the lower held-out squared error to the teacher's "
    "logits, one-standard-error rule towards the first (simplest) candidate"
)
# "auto" fits the dense student only beside texts of at most this many tokens (the median),
# and how many texts that median is taken over (too_long_for_dense).
DENSE_MAX_MEDIAN_TOKENS = 64
MEDIAN_SAMPLE = 2_000
# Shares of the dense student in a blend of the two, chosen on the held-out rows.
BLEND_WEIGHTS = (0.25, 0.5, 0.75)


class BlendedStudent:
    """The mean of a linear and a dense student's logits, weighted, as one dense artifact.

    The two read the same n-gram features (the dense student's n-gram part has the linear
    student's terms, fit on the same texts with the same options), so ``w * dense + (1 - w) *
    linear`` is itself a :class:`DenseModel`: its n-gram weights are the weighted sum of both,
    its ReLU layers' outputs are scaled by ``w``. It costs no more to run than the dense student.
    Two students that err differently average out some of their errors: measured on SST-2 with
    a 20x augmented transfer set, the blend agreed more with the teacher than either.
    """

    def __init__(self, linear: LinearStudent, dense: DenseStudent, weight: float) -> None:
        lin, den = linear.model_, dense.model_
        n_terms = lin.featurizer.n_features
        if den.featurizer.vocabulary[:n_terms] != lin.featurizer.vocabulary or not np.array_equal(
            den.featurizer.idf[:n_terms], lin.featurizer.idf
        ):
            raise ValueError("the linear and dense students read different n-grams")
        weights: dict[str, np.ndarray] = dict(den.weights)
        if den.n_terms != n_terms:
            raise ValueError("the linear and dense students read different n-grams")
        weights["linear"] = weight * weights["linear"] + (1.0 - weight) * lin.coef
        for layer in ("output", "max_output"):  # the dense student's output layers
            if layer in weights:
                weights[layer] = weight * weights[layer]
        weights["bias"] = weight * weights["bias"] + (1.0 - weight) * lin.intercept
        self.weight = weight
        self.validation_rows_ = dense.validation_rows_
        self.validation_logits_ = (
            weight * dense.validation_logits_ + (1.0 - weight) * linear.validation_logits_
        )
        self.n_teacher_rows_ = dense.n_teacher_rows_
        self.n_gold_rows_ = dense.n_gold_rows_
        self.fit_seconds_ = linear.fit_seconds_ + dense.fit_seconds_
        self.selection_: dict[str, Any] = {
            "dense_weight": weight,
            "n_validation": len(self.validation_rows_),
            "multilabel": den.multilabel,
        }
        self.model_ = DenseModel(
            den.featurizer,
            weights,
            den.labels,
            multilabel=den.multilabel,
            window=den.window,
            metadata={
                **den.metadata,
                "blend": {"dense_weight": weight, "linear": lin.metadata.get("selection")},
            },
        )

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        return self.model_.decision_function(texts)

    def save(self, path: str | Path) -> None:
        self.model_.save(path)


Fittable = LinearStudent | DenseStudent | NeuralStudent
Student = Fittable | BlendedStudent


@dataclass
class Candidate:
    """A fitted student and its agreement with the teacher on the held-out teacher rows."""

    kind: str
    student: Student
    validation_agreement: float | None


def candidate_kinds(kind: str, texts: Sequence[Any] = ()) -> tuple[str, ...]:
    """The kinds to fit for ``kind``; ``"auto"`` leaves the dense student out for long
    ``texts`` (:func:`too_long_for_dense`).

    >>> candidate_kinds("auto", ["a short sentence"]), candidate_kinds("dense")
    (('linear', 'dense'), ('dense',))
    >>> candidate_kinds("auto", ["word " * 100])
    ('linear',)
    """
    if kind not in KINDS:
        raise ValueError(f"student kind must be one of {KINDS}, got {kind!r}")
    if kind != "auto":
        return (kind,)
    return ("linear",) if too_long_for_dense(texts) else AUTO_CANDIDATES


def median_tokens(texts: Sequence[Any], sample: int = MEDIAN_SAMPLE) -> float:
    """The median number of runtime tokens per text (a pair: both sides) over at most
    ``sample`` texts spread evenly through ``texts``; 0 for none.

    >>> median_tokens(["one two", "one two three", ("a b", "c")])
    3.0
    """
    if not len(texts):
        return 0.0
    step = max(1, len(texts) // sample)
    counts = [
        sum(len(tokenize(side)) for side in (text if isinstance(text, tuple) else (text,)))
        for text in texts[::step]
    ]
    return float(np.median(counts))


def too_long_for_dense(texts: Sequence[Any]) -> str | None:
    """Why ``"auto"`` fits no dense student for ``texts``, or None when it does.

    The dense student costs work per word, the linear one little more than a look-up. On the
    IMDB protocol (``python benchmarks/seed_protocol.py --data ../shared/data --more-unlabeled
    0``, commit 2709a34, an idle 2-core AMD EPYC) the dense candidate ran 14,888 reviews/s on
    one core against the linear one's 177,123 and took 25.4 MB against 3.6 MB; it agreed more
    with the teacher on held-out rows (0.890 against 0.850), yet was no more accurate on the
    test reviews (0.877 against 0.885): a long text gives the n-gram model enough words of
    its own. Past :data:`DENSE_MAX_MEDIAN_TOKENS` tokens a text the dense student would run
    under about 50,000 texts/s (an estimate, from that rate and SST-2's 150,000 and more
    sentences/s at about 20 tokens). ``--student dense`` still fits it.
    """
    median = median_tokens(texts)
    if median <= DENSE_MAX_MEDIAN_TOKENS:
        return None
    return (
        f"the texts are long (median {median:.0f} tokens, over {DENSE_MAX_MEDIAN_TOKENS}): the "
        f"n-gram model reads enough words of each, and a dense student would cost several "
        f"times more per text ('dense' fits one anyway)"
    )


def validation_agreement(student: Student) -> float | None:
    """Held-out agreement with the teacher of a fitted student, from its own selection."""
    value: Any = student.selection_.get("validation_agreement")
    return None if value is None else float(value)


def fit_candidates(
    kinds: Sequence[str],
    make: Callable[[str], Fittable],
    texts: Sequence[str],
    logits: np.ndarray,
    *,
    word_vectors: Callable[[], WordVectorSource | None],
    log: Callable[[str], None],
    asked: str = "",
    **fit_options: Any,
) -> tuple[list[Candidate], Candidate, str]:
    """Fit every kind (``make(kind)`` builds the estimator), return the candidates, the kept
    one and a sentence saying why it was kept (``asked``: the kind the user asked for, which
    ``kinds`` came from). With the linear and the dense student, their best blend on the
    held-out rows is a candidate too."""
    multilabel = bool(fit_options.get("multilabel", False))

    def teacher_answers(rows: np.ndarray) -> np.ndarray:
        return answers(np.asarray(logits)[rows], multilabel)

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
        alone = too_long_for_dense(texts) if asked == "auto" else None
        return candidates, candidates[0], alone or f"the {kinds[0]} student was asked for"
    candidates += _blends(candidates, teacher_answers)
    scored = [c for c in candidates if c.validation_agreement is not None]
    if not scored:
        kept = candidates[0]
        return candidates, kept, f"too few rows to hold out: the {kept.kind} student by default"
    teacher_logits = np.asarray(logits)
    best = max(
        scored,
        key=lambda c: (
            c.validation_agreement or 0.0,
            -held_out_error(c.student, teacher_logits, multilabel),
        ),
    )
    others = ", ".join(f"{c.kind} {c.validation_agreement:.4f}" for c in scored if c is not best)
    n_rows = len(_validation_rows(best.student))
    simplest = scored[0]
    margin, error = _paired_margin(best, simplest, teacher_answers, multilabel)
    if best is not simplest and margin <= error:
        reason = (
            f"no other student agrees with the teacher by more than one standard error more "
            f"on {n_rows} held-out teacher-labeled rows ({best.kind} "
            f"{best.validation_agreement:.4f}, {margin:+.4f} ± {error:.4f} over "
            f"{simplest.kind}), so the simpler one is kept"
        )
        return candidates, simplest, reason
    tied = [
        c for c in scored if c is not best and c.validation_agreement == best.validation_agreement
    ]
    tie_break = "".join(
        f"; it ties the {c.kind} student and is nearer the teacher's logits (held-out squared "
        f"error {held_out_error(best.student, teacher_logits, multilabel):.4f} against "
        f"{held_out_error(c.student, teacher_logits, multilabel):.4f})"
        for c in tied
    )
    reason = (
        f"the {best.kind} student agrees most with the teacher on {n_rows} held-out "
        f"teacher-labeled rows: {best.validation_agreement:.4f} against {others} "
        f"({margin:+.4f} ± {error:.4f} over {simplest.kind}){tie_break}"
    )
    return candidates, best, reason


def held_out_error(student: Student, teacher_logits: np.ndarray, multilabel: bool) -> float:
    """Mean squared difference between a student's logits on its held-out rows and the
    teacher's logits there (``teacher_logits`` holds every teacher row), per row centred for a
    softmax, whose answers ignore a shift; infinite without held-out rows or their logits.

    >>> class Held:
    ...     validation_rows_ = np.array([1])
    ...     validation_logits_ = np.array([[1.0, 3.0]])
    >>> held_out_error(Held(), np.array([[0.0, 0.0], [0.0, 1.0]]), multilabel=False)
    0.25
    """
    rows = _validation_rows(student)
    given = np.asarray(getattr(student, "validation_logits_", []), dtype=np.float64)
    if not len(rows) or given.shape[0] != len(rows):
        return float("inf")
    truth = np.asarray(teacher_logits, dtype=np.float64)[rows]
    if not multilabel:
        given = given - given.mean(axis=1, keepdims=True)
        truth = truth - truth.mean(axis=1, keepdims=True)
    return float(np.mean((given - truth) ** 2))


def _paired_margin(
    best: Candidate,
    simplest: Candidate,
    teacher_answers: Callable[[np.ndarray], np.ndarray],
    multilabel: bool,
) -> tuple[float, float]:
    """How much more often ``best`` agrees with the teacher than ``simplest`` on their common
    held-out rows, and the standard error of that margin (paired: the rows are the same).

    The one-standard-error rule (Breiman et al. 1984): a difference smaller than its noise is
    no reason to deploy a larger, slower model. On SST-2 without augmentation a 1.8-point
    margin on 592 held-out rows kept a blend that the test set then put below the linear
    student.
    """
    rows = _validation_rows(best.student)
    if best is simplest or not len(rows):
        return 0.0, 0.0
    truth = teacher_answers(rows)

    def agrees(candidate: Candidate) -> np.ndarray:
        given = answers(
            np.asarray(getattr(candidate.student, "validation_logits_", [])), multilabel
        )
        equal = given == truth
        return (equal.all(axis=1) if equal.ndim == 2 else equal).astype(np.float64)

    difference = agrees(best) - agrees(simplest)
    return float(difference.mean()), float(difference.std() / np.sqrt(len(rows)))


def _blends(
    candidates: list[Candidate], teacher_answers: Callable[[np.ndarray], np.ndarray]
) -> list[Candidate]:
    """The best blend of the linear and the dense candidate on their common held-out rows."""
    by_kind = {c.kind: c.student for c in candidates}
    linear, dense = by_kind.get("linear"), by_kind.get("dense")
    if not isinstance(linear, LinearStudent) or not isinstance(dense, DenseStudent):
        return []
    rows = dense.validation_rows_
    if not len(rows) or not np.array_equal(linear.validation_rows_, rows):
        return []
    try:
        blends = [BlendedStudent(linear, dense, weight) for weight in BLEND_WEIGHTS]
    except ValueError:  # different n-grams: no exact blend
        return []
    truth = teacher_answers(rows)
    multilabel = dense.model_.multilabel
    scored = []
    for blend in blends:
        agreement = same_answers(answers(blend.validation_logits_, multilabel), truth)
        blend.selection_["validation_agreement"] = agreement
        scored.append(Candidate("blend", blend, agreement))
    return [max(scored, key=lambda c: c.validation_agreement or 0.0)]


def _validation_rows(student: Student) -> np.ndarray:
    return np.asarray(getattr(student, "validation_rows_", []))

"""Which student ``auto`` keeps (:mod:`textdistill.students.choice`), on stand-in students whose
held-out answers and logits are set by hand, so each rule is seen deciding."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from textdistill.students.choice import fit_candidates, held_out_error

N_ROWS = 100
# The teacher answers class 1 on every held-out row, with a margin of 2.
TEACHER = np.tile([0.0, 2.0], (N_ROWS, 1))


class StandIn:
    """A fitted student as the choice sees it: its held-out rows' logits and agreement."""

    def __init__(self, n_wrong: int, margin: float, first_wrong: int = 0) -> None:
        logits = np.tile([0.0, margin], (N_ROWS, 1))
        logits[first_wrong : first_wrong + n_wrong] = [margin, 0.0]  # class 0: disagree
        self.validation_rows_ = np.arange(N_ROWS)
        self.validation_logits_ = logits
        self.selection_ = {"validation_agreement": 1.0 - n_wrong / N_ROWS}

    def fit(self, texts: Any, logits: Any, **options: Any) -> StandIn:
        return self


def _choose(students: dict[str, StandIn]) -> tuple[str, str]:
    _, kept, reason = fit_candidates(
        list(students),
        lambda kind: students[kind],  # type: ignore[arg-type, return-value]
        ["a text"] * N_ROWS,
        TEACHER,
        word_vectors=lambda: None,
        log=lambda message: None,
    )
    return kept.kind, reason


@pytest.mark.parametrize("nearer", ["dense", "neural"])
def test_an_exact_tie_in_agreement_goes_to_the_student_nearer_the_teachers_logits(
    nearer: str,
) -> None:
    """Dense and neural agree on the same 90 of 100 rows; the one whose margins match the
    teacher's is kept, whichever was fitted first (the old rule kept the first)."""
    farther = "neural" if nearer == "dense" else "dense"
    students = {
        "linear": StandIn(n_wrong=50, margin=2.0),
        nearer: StandIn(n_wrong=10, margin=2.0),
        farther: StandIn(n_wrong=10, margin=0.5),
    }
    kept, reason = _choose({k: students[k] for k in ("linear", "dense", "neural")})
    assert kept == nearer
    assert f"ties the {farther} student and is nearer the teacher's logits" in reason


def test_a_margin_within_one_standard_error_keeps_the_simplest_student() -> None:
    """One row in 100 more, with 21 rows where the two differ, is no reason for the larger
    student; twenty more is."""
    close = {
        "linear": StandIn(n_wrong=11, margin=2.0),
        "dense": StandIn(n_wrong=10, margin=2.0, first_wrong=50),
    }
    kept, reason = _choose(close)
    assert kept == "linear" and "the simpler one is kept" in reason
    clear = {"linear": StandIn(n_wrong=30, margin=2.0), "dense": StandIn(n_wrong=10, margin=2.0)}
    kept, reason = _choose(clear)
    assert kept == "dense" and "agrees most with the teacher on 100 held-out" in reason


def test_held_out_error_ignores_a_shift_of_a_softmax_row_but_not_of_label_scores() -> None:
    shifted = StandIn(n_wrong=0, margin=2.0)
    shifted.validation_logits_ = TEACHER + 5.0
    assert held_out_error(shifted, TEACHER, multilabel=False) == 0.0
    assert held_out_error(shifted, TEACHER, multilabel=True) == 25.0


def test_auto_fits_no_dense_student_beside_long_texts_and_says_why() -> None:
    """Sentences get both candidates; reviews of 200 words get the linear student alone, and
    the reason names their length, not a choice the user never made."""
    from textdistill.students.choice import DENSE_MAX_MEDIAN_TOKENS, candidate_kinds

    short, long = ["a fine short film"] * 50, ["word " * (DENSE_MAX_MEDIAN_TOKENS + 1)] * 50
    assert candidate_kinds("auto", short) == ("linear", "dense")
    assert candidate_kinds("auto", long) == ("linear",)
    assert candidate_kinds("dense", long) == ("dense",)  # asked for: fitted anyway
    # the median decides: a few long texts among sentences do not turn the dense student off
    assert candidate_kinds("auto", [*short, *long[:20]]) == ("linear", "dense")
    linear = StandIn(n_wrong=10, margin=2.0)

    def choose(asked: str) -> str:
        _, _, reason = fit_candidates(
            candidate_kinds(asked, long),
            lambda kind: linear,  # type: ignore[arg-type, return-value]
            long,
            TEACHER[:50],
            word_vectors=lambda: None,
            log=lambda message: None,
            asked=asked,
        )
        return reason

    assert choose("auto").startswith(f"the texts are long (median {DENSE_MAX_MEDIAN_TOKENS + 1}")
    assert choose("linear") == "the linear student was asked for"

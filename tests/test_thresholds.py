"""Per-label thresholds: the best F1 on held-out rows, as close to 0.0 as that allows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textdistill.thresholds import choose_thresholds


def _f1(logits: np.ndarray, positive: np.ndarray, threshold: float) -> float:
    predicted = logits > threshold
    true_positives = np.sum(predicted & positive)
    return float(2 * true_positives / (np.sum(predicted) + np.sum(positive)))


def test_finds_a_threshold_far_from_zero() -> None:
    # The model is right about the order but shifted: every positive has a logit in [-3, -2],
    # every negative in [-6, -5]; at 0.0 nothing is predicted.
    rng = np.random.default_rng(0)
    truth = (rng.random(200) < 0.3).astype(int)
    logits = np.where(truth == 1, rng.uniform(-3, -2, 200), rng.uniform(-6, -5, 200))
    (threshold,) = choose_thresholds(logits[:, None], truth[:, None])
    assert -5 < threshold < -3
    assert _f1(logits, truth == 1, threshold) == 1.0


def test_ties_go_to_the_threshold_closest_to_zero() -> None:
    # Both 1.0 and 0.0 separate the positives from the negatives: F1 is 1 at each.
    logits = np.array([[4.0], [3.0], [-1.0], [-4.0]])
    truth = np.array([[1], [1], [0], [0]])
    assert choose_thresholds(logits, truth, min_positives=1).tolist() == [0.0]
    # By logit: positive, negative, negative, positive, negative. F1 is 2/3 just below the
    # first row (3.5) and just below the fourth (0.75), less at 0.0 and elsewhere.
    truth = np.array([[1], [0], [0], [1], [0]])
    logits = np.array([[4.0], [3.0], [2.0], [1.0], [0.5]])
    assert choose_thresholds(logits, truth, min_positives=2).tolist() == [0.75]
    # Shifted below zero the tie is between -1.0 and -3.75.
    assert choose_thresholds(logits - 4.5, truth, min_positives=2).tolist() == [-1.0]


def test_a_label_without_positives_keeps_zero() -> None:
    logits = np.array([[5.0, 1.0], [-5.0, 2.0], [0.5, 3.0]])
    truth = np.array([[1, 0], [0, 0], [1, 0]])
    thresholds = choose_thresholds(logits, truth, min_positives=1)
    assert thresholds[1] == 0.0 and -5 < thresholds[0] < 0.5


def test_a_label_with_too_few_positives_keeps_zero() -> None:
    # Four positives, all below 0: the F1-best threshold would move, but four rows are noise.
    logits = np.array([[-1.0], [-1.5], [-2.0], [-2.5], [-6.0], [-7.0]])
    truth = np.array([[1], [1], [1], [1], [0], [0]])
    assert choose_thresholds(logits, truth).tolist() == [0.0]
    assert choose_thresholds(logits, truth, min_positives=4).tolist() == [-4.25]


def test_shapes_and_values_are_checked() -> None:
    with pytest.raises(ValueError, match="matrix"):
        choose_thresholds(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        choose_thresholds(np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="0 and 1"):
        choose_thresholds(np.zeros((2, 1)), np.array([[2], [0]]))
    with pytest.raises(ValueError, match="finite"):
        choose_thresholds(np.array([[np.nan]]), np.array([[1]]))


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 40),
    labels=st.integers(1, 4),
    grid=st.sampled_from([4, 10, 0]),
)
def test_f1_at_the_chosen_threshold_is_the_best_candidate(
    seed: int, rows: int, labels: int, grid: int
) -> None:
    rng = np.random.default_rng(seed)
    # Coarse grids give many repeated logits, grid 0 continuous ones.
    logits = (
        rng.integers(-grid, grid + 1, (rows, labels)) / 2
        if grid
        else rng.normal(size=(rows, labels))
    )
    truth = (rng.random((rows, labels)) < 0.4).astype(float)
    thresholds = choose_thresholds(logits, truth, min_positives=1)
    for j in range(labels):
        positive = truth[:, j] == 1
        if not positive.any():
            assert thresholds[j] == 0.0
            continue
        # Brute force, O(n²): every candidate against every row.
        values = np.unique(logits[:, j])
        brute = [0.0, *((values[:-1] + values[1:]) / 2)]
        f1 = {t: _f1(logits[:, j], positive, t) for t in brute}
        best = max(f1.values())
        assert _f1(logits[:, j], positive, thresholds[j]) == best
        assert abs(thresholds[j]) == min(abs(t) for t in f1 if f1[t] == best)

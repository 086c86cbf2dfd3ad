"""Keeping small classes alive when a teacher is fine-tuned on a few labels.

With 1,000 TREC questions, 17 of them ABBR, a plainly fine-tuned teacher never predicted
ABBR on any of ~5,000 texts (its highest ABBR probability was 0.106): the class is cheap to
write off, and the best epoch, chosen by accuracy, does not notice. Its student then inherits
F1 0.00 on a class the n-gram baseline gets at 0.80. Weighting ABBR's rows by the square root
of its rarity (about 3.8) was measured not to be enough: the teacher still never predicted it.
So, for single-label teachers with imbalanced classes:

* the loss is the logit-adjusted cross-entropy of Menon et al. (2021): the model's logits
  plus each class's log-prior are fitted to the labels, and the logits alone are used
  afterwards, so they score classes as if all were equally frequent (the adjustment that
  minimises the balanced error) and a small class is not written off;
* the best epoch is the one with the best macro-F1, which a class at F1 0 pulls down, where
  accuracy barely moves.

A new head starts where the adjusted loss wants it: at zero (the prior is in the adjustment);
with balanced classes, where the adjustment is a constant and left out, at the log-priors
(Lin et al. 2017). Multilabel teachers start each label at its log-odds and weigh a label's
positive rows by the square root of its negatives per positive (measured on TREC-derived
multilabel data: a label on 3% of rows was never predicted without it).

torch is imported lazily: this module is part of the training layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Largest over smallest class count from which a labeled set counts as imbalanced, so that the
# best epoch is chosen by macro-F1. SST-2 (1.09) and IMDB (1.0) stay on accuracy; TREC's
# 1,000 labels (about 13 ENTY/HUM per ABBR) do not.
IMBALANCE_RATIO = 1.5


def class_counts(targets: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows per class: of class ids ``int [n]``, or of a 0/1 label matrix ``[n, k]``."""
    if targets.ndim == 2:
        return targets.sum(axis=0).astype(np.float64)
    return np.bincount(targets, minlength=n_classes).astype(np.float64)


def is_imbalanced(counts: np.ndarray) -> bool:
    """Whether the largest class outnumbers the smallest by :data:`IMBALANCE_RATIO` or more.

    >>> is_imbalanced(np.array([480.0, 520.0])), is_imbalanced(np.array([17.0, 230.0]))
    (False, True)
    """
    return bool(counts.max() >= IMBALANCE_RATIO * max(counts.min(), 1.0))


def prior_biases(counts: np.ndarray, n_rows: int, multilabel: bool) -> np.ndarray:
    """Each class's log-prior (centred: softmax ignores a shift), or for independent labels
    each label's log-odds. Frequencies are clipped to [1e-3, 1 - 1e-3] so that a label never
    seen is very unlikely, not impossible.

    >>> prior_biases(np.array([1.0, 3.0]), 4, multilabel=False).round(3)
    array([-0.549,  0.549])
    >>> prior_biases(np.array([3.0, 1.0, 0.0]), 4, multilabel=True).round(3)
    array([ 1.099, -1.099, -6.907])
    """
    prior = np.clip(counts / max(n_rows, 1), 1e-3, 1 - 1e-3)
    if multilabel:
        return np.log(prior / (1 - prior))
    log_prior = np.log(prior)
    return log_prior - log_prior.mean()


def logit_adjustment(counts: np.ndarray, n_rows: int) -> np.ndarray:
    """What a single-label teacher's loss adds to its logits: the centred log-priors when the
    classes are imbalanced (Menon et al. 2021, with their tau = 1), else zeros.

    >>> logit_adjustment(np.array([17.0, 230.0]), 247).round(3)
    array([-1.302,  1.302])
    >>> logit_adjustment(np.array([480.0, 520.0]), 1000)
    array([0., 0.])
    """
    if not is_imbalanced(counts):
        return np.zeros(len(counts))
    return prior_biases(counts, n_rows, multilabel=False)


def head_biases(counts: np.ndarray, n_rows: int, multilabel: bool) -> np.ndarray:
    """A new head's starting biases: the priors, less what the loss's adjustment adds."""
    priors = prior_biases(counts, n_rows, multilabel)
    return priors if multilabel else priors - logit_adjustment(counts, n_rows)


def positive_weights(counts: np.ndarray, n_rows: int) -> np.ndarray:
    """A multilabel teacher's weight of each label's positive rows in the binary
    cross-entropy: the square root of its negatives per positive, at least 1.

    >>> positive_weights(np.array([1.0, 3.0]), 4).round(3)
    array([1.732, 1.   ], dtype=float32)
    """
    ratio = np.maximum(n_rows - counts, 1.0) / np.maximum(counts, 1.0)
    return np.sqrt(ratio).clip(min=1.0).astype(np.float32)


def start_head_at(model: Any, biases: np.ndarray) -> None:
    """Set the bias of the model's head (its last linear layer with one output per class)."""
    import torch

    k = len(biases)
    heads = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == k]
    if not heads or heads[-1].bias is None:
        return
    with torch.no_grad():
        heads[-1].bias.copy_(torch.from_numpy(np.asarray(biases, dtype=np.float32)))


def macro_f1(logits: np.ndarray, targets: np.ndarray) -> float:
    """Macro-F1 of the arg-max of ``logits`` against class ids ``targets`` (a class that is
    neither present nor predicted is left out; one present but never predicted counts 0).

    >>> macro_f1(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.array([0, 1, 1]))
    0.6666666666666666
    """
    predicted = logits.argmax(axis=1)
    scores = []
    for c in np.union1d(predicted, targets):
        tp = float(np.sum((predicted == c) & (targets == c)))
        denominator = float(np.sum(predicted == c) + np.sum(targets == c))
        scores.append(2 * tp / denominator)
    return float(np.mean(scores))

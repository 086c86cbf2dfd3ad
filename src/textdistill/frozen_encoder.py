"""A teacher without backpropagation: a frozen sentence encoder and a logistic-regression head.

Fine-tuning a transformer on a CPU takes many minutes; embedding the labeled texts once with
a frozen sentence encoder (mean pooling, as sentence-transformers models are trained to be
used) and fitting a multinomial logistic regression on those embeddings takes seconds. It is
usually a weaker teacher than a fine-tuned one, but a cheap one, and it labels at the same
speed. The head becomes an ``nn.Linear`` after the pooling, so the result is one torch module
that the :class:`~textdistill.teacher.Teacher` runs, quantizes, fingerprints and saves like a
fine-tuned model.

torch, transformers and scikit-learn belong to the ``train`` extra; this module is imported
only by the teacher's code paths that need it.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

HEAD_FILE = "head.safetensors"
"""The logistic-regression head, saved beside the encoder's own files."""

PENALTIES = (0.01, 0.1, 1.0, 10.0, 100.0)
"""Inverse L2 strengths (scikit-learn's ``C``) tried on the validation set."""


class MeanPoolClassifier(torch.nn.Module):
    """Encoder -> attention-masked mean of the last hidden states -> linear layer.

    Called like a transformers classification model (``model(input_ids=..,
    attention_mask=..).logits``) so the teacher's batching, autocast and quantization apply
    unchanged.
    """

    def __init__(self, encoder: Any, n_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.classifier = torch.nn.Linear(encoder.config.hidden_size, n_classes)

    @property
    def config(self) -> Any:
        """The encoder's config (position limit, hidden size), as the teacher expects."""
        return self.encoder.config

    @property
    def n_outputs(self) -> int:
        """Number of classes the head scores."""
        return int(self.classifier.out_features)

    def embed(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean of the token states where ``attention_mask`` is 1 (padding excluded); a text
        pair's token types are passed on to the encoder."""
        types = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **types)
        hidden = states.last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> SimpleNamespace:
        """Class scores under ``.logits``, like a transformers model output."""
        pooled = self.embed(input_ids, attention_mask, token_type_ids)
        return SimpleNamespace(logits=self.classifier(pooled))

    def save_pretrained(self, directory: str | Path) -> None:
        """The encoder's files (safetensors) plus the head in :data:`HEAD_FILE`."""
        self.encoder.save_pretrained(directory)
        head = {k: v.detach().cpu().contiguous() for k, v in self.classifier.state_dict().items()}
        save_file(head, str(Path(directory) / HEAD_FILE))

    @classmethod
    def from_saved(cls, directory: str | Path, encoder: Any) -> MeanPoolClassifier:
        """Rebuild from :meth:`save_pretrained`'s files; ``encoder`` is already loaded."""
        head = load_file(str(Path(directory) / HEAD_FILE))
        model = cls(encoder, int(head["weight"].shape[0]))
        model.classifier.load_state_dict(head)
        return model


def fit_head(
    model: MeanPoolClassifier,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray] | None,
    seed: int,
) -> dict[str, Any]:
    """Fit the head on (embeddings, targets); ``C`` picked by validation accuracy.

    Targets are class ids, or a 0/1 matrix with one column per label (multilabel: one
    logistic regression per label, each logit its own yes/no; scored by subset accuracy).
    Embeddings are standardised with the training mean and scale, which is folded into the
    linear layer afterwards, so inference needs nothing but the layer. Binary problems get the
    logits ``[0, w.x + b]``, whose softmax is the logistic regression's probability.
    """
    x, y = train
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    fit = _fit_per_label if y.ndim == 2 else _fit_multinomial
    best: tuple[float, float, np.ndarray, np.ndarray] | None = None
    for penalty in PENALTIES if validation is not None else (1.0,):
        coef, intercept = fit((x - mean) / scale, y, penalty, seed)
        score = 1.0 if validation is None else _accuracy(coef, intercept, validation, mean, scale)
        if best is None or score > best[0]:
            best = (score, penalty, coef, intercept)
    assert best is not None
    score, penalty, coef, intercept = best
    weight = coef / scale
    bias = intercept - weight @ mean
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(weight.astype(np.float32)))
        model.classifier.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
    return {"C": penalty, "validation_accuracy": None if validation is None else score}


def _fit_multinomial(
    x: np.ndarray, y: np.ndarray, penalty: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``[k, d]`` and biases ``[k]`` of a logistic regression on class ids."""
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(C=penalty, max_iter=2000, random_state=seed).fit(x, y)
    coef, intercept = fitted.coef_, fitted.intercept_
    if coef.shape[0] == 1:  # binary: scikit-learn keeps one row, the teacher has two logits
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    return coef, intercept


# The logit of a label seen always on (or never) in training: certain, but not infinite.
_CONSTANT_LOGIT = 10.0


def _fit_per_label(
    x: np.ndarray, y: np.ndarray, penalty: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``[k, d]`` and biases ``[k]`` of one logistic regression per label column."""
    from sklearn.linear_model import LogisticRegression

    coef, intercept = np.zeros((y.shape[1], x.shape[1])), np.zeros(y.shape[1])
    for j in range(y.shape[1]):
        column = y[:, j] > 0.5
        if column.all() or not column.any():
            intercept[j] = _CONSTANT_LOGIT if column.all() else -_CONSTANT_LOGIT
            continue
        fitted = LogisticRegression(C=penalty, max_iter=2000, random_state=seed).fit(x, column)
        coef[j], intercept[j] = fitted.coef_[0], fitted.intercept_[0]
    return coef, intercept


def _accuracy(
    coef: np.ndarray,
    intercept: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray],
    mean: np.ndarray,
    scale: np.ndarray,
) -> float:
    """Validation accuracy (multilabel: subset accuracy) of the head on standardised
    embeddings."""
    x, y = validation
    logits = ((x - mean) / scale) @ coef.T + intercept
    if y.ndim == 2:
        return float(np.mean(np.all((logits > 0) == (y > 0.5), axis=1)))
    return float(np.mean(logits.argmax(axis=1) == y))

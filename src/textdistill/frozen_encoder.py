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

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean of the token states where ``attention_mask`` is 1 (padding excluded)."""
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        hidden = states.last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        """Class scores under ``.logits``, like a transformers model output."""
        return SimpleNamespace(logits=self.classifier(self.embed(input_ids, attention_mask)))

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
    """Fit the head on (embeddings, class ids); ``C`` picked by validation accuracy.

    Embeddings are standardised with the training mean and scale, which is folded into the
    linear layer afterwards, so inference needs nothing but the layer. Binary problems get the
    logits ``[0, w.x + b]``, whose softmax is the logistic regression's probability.
    """
    from sklearn.linear_model import LogisticRegression

    x, y = train
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    k = model.n_outputs
    best: tuple[float, float, Any] | None = None
    for penalty in PENALTIES if validation is not None else (1.0,):
        fitted = LogisticRegression(C=penalty, max_iter=2000, random_state=seed)
        fitted.fit((x - mean) / scale, y)
        score = 1.0 if validation is None else _accuracy(fitted, validation, mean, scale)
        if best is None or score > best[0]:
            best = (score, penalty, fitted)
    assert best is not None
    score, penalty, fitted = best
    coef, intercept = fitted.coef_, fitted.intercept_
    if k == 2 and coef.shape[0] == 1:
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    weight = coef / scale
    bias = intercept - weight @ mean
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(weight.astype(np.float32)))
        model.classifier.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
    return {"C": penalty, "validation_accuracy": None if validation is None else score}


def _accuracy(
    fitted: Any, validation: tuple[np.ndarray, np.ndarray], mean: np.ndarray, scale: np.ndarray
) -> float:
    """Validation accuracy of a scikit-learn classifier on standardised embeddings."""
    x, y = validation
    return float(np.mean(fitted.predict((x - mean) / scale) == y))

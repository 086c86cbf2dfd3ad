"""The neural student: a small network fit with torch to the teacher's logits.

Following Tang et al. (2019), the loss is the mean squared error between the student's and
the teacher's logits (centred per row, as for the linear student: softmax ignores a shift).
Gold-labeled rows join as one-hot logits scaled to the teacher's average margin (multilabel:
raw logits, gold sets as +/- the teacher's mean absolute logit; see
:func:`textdistill.students.targets.regression_targets`). Training
stops early on held-out teacher-labeled rows (a tenth; no gold label is spent), and the
epoch with the lowest held-out MSE is kept.

The fitted network is converted to a numpy :class:`NeuralModel` (the deployable artifact),
whose inputs are made by the runtime's own featurizers: the same integers in training and in
production. torch is imported lazily, only here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from textdistill.extras import install_hint
from textdistill.runtime.featurizer import NgramFeaturizer, SparseRows
from textdistill.runtime.neural import ARCHITECTURES, NeuralModel, TokenSequencer
from textdistill.students.fitted import FittedModelMethods
from textdistill.students.targets import (
    answers,
    encode_labels,
    held_out_rows,
    regression_targets,
    same_answers,
)

TRAIN_HINT = f"the neural student needs the train extra: {install_hint('train')}"


def _torch() -> Any:
    try:
        import torch
    except ImportError as error:
        raise ImportError(f"{TRAIN_HINT} ({error})") from None
    return torch


def build_network(
    architecture: str,
    n_features: int,
    n_classes: int,
    *,
    embedding_dim: int,
    lstm_units: int,
    hidden_units: int,
    dropout: float,
) -> Any:
    """The torch module of ``architecture``; :func:`to_numpy` reads its weights back."""
    torch = _torch()
    nn = torch.nn

    class Bag(nn.Module):  # type: ignore[name-defined]
        """TF-IDF-weighted sum of n-gram embeddings, ReLU, dropout, linear."""

        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.EmbeddingBag(n_features, hidden_units, mode="sum")
            nn.init.normal_(self.embedding.weight, std=0.1)
            self.embedding_bias = nn.Parameter(torch.zeros(hidden_units))
            self.dropout = nn.Dropout(dropout)
            self.output = nn.Linear(hidden_units, n_classes)

        def forward(self, ids: Any, offsets: Any, weights: Any) -> Any:
            summed = self.embedding(ids, offsets, per_sample_weights=weights)
            return self.output(self.dropout(torch.relu(summed + self.embedding_bias)))

    class BiLSTM(nn.Module):  # type: ignore[name-defined]
        """Tang et al.: embeddings, BiLSTM, last states of both directions, ReLU layer."""

        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(n_features, embedding_dim, padding_idx=0)
            self.lstm = nn.LSTM(embedding_dim, lstm_units, batch_first=True, bidirectional=True)
            self.dropout = nn.Dropout(dropout)
            self.hidden = nn.Linear(2 * lstm_units, hidden_units)
            self.output = nn.Linear(hidden_units, n_classes)

        def forward(self, ids: Any, lengths: Any) -> Any:
            packed = nn.utils.rnn.pack_padded_sequence(
                self.dropout(self.embedding(ids)), lengths, batch_first=True, enforce_sorted=False
            )
            _, (last, _) = self.lstm(packed)
            states = torch.cat([last[0], last[1]], dim=1)
            return self.output(self.dropout(torch.relu(self.hidden(self.dropout(states)))))

    return Bag() if architecture == "bag" else BiLSTM()


def to_numpy(network: Any, architecture: str) -> dict[str, np.ndarray]:
    """The module's weights under the runtime's names (see ``runtime.neural.WEIGHTS``)."""

    def arr(tensor: Any) -> np.ndarray:
        return np.asarray(tensor.detach().cpu().numpy(), dtype=np.float32)

    head = {
        "output": arr(network.output.weight).T,
        "output_bias": arr(network.output.bias),
    }
    if architecture == "bag":
        return {
            "embedding": arr(network.embedding.weight),
            "embedding_bias": arr(network.embedding_bias),
            **head,
        }
    lstm = network.lstm
    weights = {"embedding": arr(network.embedding.weight)}
    for direction, suffix in (("forward", ""), ("backward", "_reverse")):
        weights[f"lstm_input_{direction}"] = arr(getattr(lstm, f"weight_ih_l0{suffix}"))
        weights[f"lstm_hidden_{direction}"] = arr(getattr(lstm, f"weight_hh_l0{suffix}"))
        weights[f"lstm_bias_{direction}"] = arr(getattr(lstm, f"bias_ih_l0{suffix}")) + arr(
            getattr(lstm, f"bias_hh_l0{suffix}")
        )
    weights["hidden"] = arr(network.hidden.weight).T
    weights["hidden_bias"] = arr(network.hidden.bias)
    return {**weights, **head}


class _Inputs:
    """Every training text encoded once by the runtime featurizer; batches as tensors."""

    def __init__(self, featurizer: NgramFeaturizer | TokenSequencer, texts: Sequence[str]):
        self.torch = _torch()
        self.rows: SparseRows | None = None
        if isinstance(featurizer, NgramFeaturizer):
            self.rows = featurizer.transform(texts)
        else:
            self.ids, self.lengths = featurizer.encode(texts)

    def batch(self, rows: np.ndarray) -> tuple[Any, ...]:
        torch = self.torch
        if self.rows is not None:
            starts, ends = self.rows.indptr[rows], self.rows.indptr[rows + 1]
            take = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)])
            offsets = np.concatenate([[0], np.cumsum(ends - starts)[:-1]])
            return (
                torch.from_numpy(self.rows.indices[take].astype(np.int64)),
                torch.from_numpy(offsets.astype(np.int64)),
                torch.from_numpy(self.rows.data[take]),
            )
        lengths = self.lengths[rows]
        ids = self.ids[rows, : int(lengths.max())]
        return torch.from_numpy(np.ascontiguousarray(ids)), torch.from_numpy(lengths)


class NeuralStudent(FittedModelMethods):
    """scikit-learn-style estimator whose fitted state is a runtime :class:`NeuralModel`.

    >>> texts = ["good fun", "great fun", "bad plot", "awful plot"] * 10
    >>> logits = np.array([[-2.0, 2.0], [-3.0, 3.0], [2.0, -2.0], [3.0, -3.0]] * 10)
    >>> student = NeuralStudent(min_df=1, hidden_units=8, learning_rate=1e-2).fit(
    ...     texts, logits, classes=["neg", "pos"])
    >>> student.predict(["good fun", "awful plot"])
    ['pos', 'neg']
    """

    def __init__(
        self,
        *,
        architecture: str = "bag",
        max_n: int = 2,
        min_df: int = 2,
        max_features: int | None = 100_000,
        max_length: int = 256,
        embedding_dim: int = 300,
        lstm_units: int = 150,
        hidden_units: int = 64,
        dropout: float = 0.2,
        learning_rate: float = 1e-3,
        batch_size: int = 64,
        epochs: int = 20,
        patience: int = 3,
        validation_fraction: float = 0.1,
        random_state: int = 0,
    ) -> None:
        self.architecture = architecture
        self.max_n = max_n
        self.min_df = min_df
        self.max_features = max_features
        self.max_length = max_length
        self.embedding_dim = embedding_dim
        self.lstm_units = lstm_units
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters (fitted state ends in ``_`` and is left out)."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def _featurizer(self, texts: Sequence[str]) -> NgramFeaturizer | TokenSequencer:
        if self.architecture == "bag":
            return NgramFeaturizer.fit(
                texts, max_n=self.max_n, min_df=self.min_df, max_features=self.max_features
            )
        return TokenSequencer.fit(
            texts, min_count=self.min_df, max_words=self.max_features, max_length=self.max_length
        )

    def fit(
        self,
        texts: Sequence[str],
        logits: np.ndarray,
        *,
        classes: Sequence[str],
        gold_texts: Sequence[str] = (),
        gold_labels: Sequence[str] | Sequence[Sequence[str]] = (),
        multilabel: bool = False,
        groups: np.ndarray | None = None,
        progress: bool = False,
    ) -> NeuralStudent:
        """Fit to the teacher's ``logits`` (float ``[n, k]``, one column per name in
        ``classes``), plus optional gold-labeled rows (label sets when ``multilabel``: the
        logits are then a multilabel teacher's); ``groups`` (an int per teacher row,
        :func:`~textdistill.students.targets.held_out_rows`) holds a group's rows out together,
        as augmented texts with their source; ``progress`` shows a bar per epoch."""
        started = time.perf_counter()
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}"
            )
        classes_ = [str(c) for c in classes]
        teacher_logits = np.asarray(logits, dtype=np.float64)
        if teacher_logits.ndim != 2 or teacher_logits.shape != (len(texts), len(classes_)):
            raise ValueError(
                f"logits of shape {teacher_logits.shape} do not match {len(texts)} texts and "
                f"{len(classes_)} classes"
            )
        if len(gold_texts) != len(gold_labels):
            raise ValueError(f"{len(gold_texts)} gold texts but {len(gold_labels)} gold labels")
        gold = encode_labels(gold_labels, classes_, multilabel)
        texts_all = list(texts) + list(gold_texts)
        targets = regression_targets(teacher_logits, gold, len(classes_)).astype(np.float32)

        torch = _torch()
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        # not refit on all rows afterwards: no floor, every held-out row is lost to training
        held_out = held_out_rows(len(texts), self.validation_fraction, rng, groups, floor=False)
        train = np.setdiff1d(np.arange(len(texts_all)), held_out)

        featurizer = self._featurizer(texts_all)
        inputs = _Inputs(featurizer, texts_all)
        network = build_network(
            self.architecture,
            featurizer.n_features,
            len(classes_),
            embedding_dim=self.embedding_dim,
            lstm_units=self.lstm_units,
            hidden_units=self.hidden_units,
            dropout=self.dropout,
        )
        optimizer = torch.optim.Adam(network.parameters(), lr=self.learning_rate)
        y = torch.from_numpy(targets)
        history: list[dict[str, float]] = []
        best: tuple[float, int, dict[str, np.ndarray]] | None = None
        from tqdm.auto import tqdm

        bar = tqdm(
            range(self.epochs),
            desc=f"neural student ({self.architecture})",
            unit="epoch",
            disable=not progress,
        )
        for epoch in bar:
            network.train()
            losses = []
            for rows in self._batches(rng.permutation(train)):
                optimizer.zero_grad()
                loss = torch.nn.functional.mse_loss(network(*inputs.batch(rows)), y[rows])
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
            record = {"epoch": epoch + 1, "train_mse": float(np.mean(losses))}
            if len(held_out):
                predicted = self._predict(network, inputs, held_out)
                record["validation_mse"] = float(np.mean((predicted - targets[held_out]) ** 2))
                record["validation_agreement"] = same_answers(
                    answers(predicted, multilabel), answers(teacher_logits[held_out], multilabel)
                )
            history.append(record)
            bar.set_postfix({k: round(v, 4) for k, v in record.items() if k != "epoch"})
            score = record.get("validation_mse", record["train_mse"])
            if best is None or score < best[0]:
                best = (score, epoch + 1, to_numpy(network, self.architecture))
            elif epoch + 1 - best[1] >= self.patience:
                break
        assert best is not None
        self.classes_ = classes_
        self.history_ = history
        self.best_epoch_ = best[1]
        self.n_teacher_rows_ = len(texts)
        self.n_gold_rows_ = len(gold)
        self.selection_ = {
            "loss": "mse",
            "architecture": self.architecture,
            "best_epoch": best[1],
            # Early stopping is this student's regularisation: named like the linear
            # student's penalty, so reports read "epoch=N chosen on M held-out rows".
            "penalty_name": "epoch",
            "penalty": best[1],
            "validation_mse": best[0],
            "n_validation": len(held_out),
            "multilabel": multilabel,
            "history": history,
        }
        self.fit_seconds_ = time.perf_counter() - started
        self.model_ = NeuralModel(
            self.architecture,
            featurizer,
            best[2],
            classes_,
            multilabel=multilabel,
            metadata={
                "selection": {k: v for k, v in self.selection_.items() if k != "history"},
                "n_teacher_rows": len(texts),
                "n_gold_rows": len(gold),
                "params": self.get_params(),
            },
        )
        return self

    def _batches(self, order: np.ndarray) -> Iterator[np.ndarray]:
        for start in range(0, len(order), self.batch_size):
            yield order[start : start + self.batch_size]

    def _predict(self, network: Any, inputs: _Inputs, rows: np.ndarray) -> np.ndarray:
        torch = _torch()
        network.eval()
        with torch.no_grad():
            parts = [network(*inputs.batch(b)).numpy() for b in self._batches(rows)]
        return np.concatenate(parts)

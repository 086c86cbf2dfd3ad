"""How a model's logits become probabilities and labels.

Two tasks share every runtime model (linear, neural, ONNX):

* **single-label** ("multiclass", binary included): one class per text, probabilities are
  ``softmax(logits / T)`` and the label is the largest logit;
* **multilabel**: any number of labels per text, even none. Each logit is its own yes/no:
  probabilities are ``sigmoid(logits / T)`` and label ``j`` is predicted when its logit is
  above ``thresholds[j]``. The thresholds are on the logit scale (so ``T`` never moves a
  decision) and are chosen per label on held-out labels at training time: one common 0.5
  cut-off is poor for rare labels, whose best cut-off is usually lower.

Keeping this in one place means a model trained for one task cannot be read as the other:
the artifact says ``task``, and multilabel artifacts carry a newer format version, so a
textdistill that predates them refuses them instead of answering with one label.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np

MULTICLASS, MULTILABEL = "multiclass", "multilabel"
TASKS = (MULTICLASS, MULTILABEL)

Prediction: TypeAlias = str | tuple[str, ...]
"""What ``predict`` gives per text: a label name, or for a multilabel model a tuple of them."""


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``, stable for large values.

    >>> softmax(np.array([[0.0, 0.0], [1000.0, 0.0]])).round(3).tolist()
    [[0.5, 0.5], [1.0, 0.0]]
    """
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    np.exp(scaled, out=scaled)
    scaled /= scaled.sum(axis=1, keepdims=True)
    return scaled


def sigmoid(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Element-wise logistic function of ``logits / temperature``, without overflow.

    >>> sigmoid(np.array([[0.0, 1000.0, -1000.0]])).tolist()
    [[0.5, 1.0, 0.0]]
    """
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    # exp of a non-positive number only: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) below.
    e = np.exp(-np.abs(scaled))
    return np.where(scaled >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


class LabelOutputs:
    """The labels, task, temperature and thresholds of a model, and what follows from them.

    A mixin: a model class provides ``decision_function(texts) -> logits`` and calls
    :meth:`_set_outputs` in its constructor; it then has ``probabilities``,
    ``predict_proba`` and ``predict`` with the task's meaning, and writes and reads the
    task's part of its manifest with :meth:`_outputs_meta` / :meth:`_outputs_from_manifest`.
    """

    labels: list[str]
    temperature: float
    multilabel: bool
    thresholds: np.ndarray
    source: Path | None = None
    """The artifact folder the model was loaded from (None when built in memory): a run's
    metrics lie beside it, for :meth:`push_to_hub`'s model card."""

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def save(self, path: str | Path) -> None:
        raise NotImplementedError

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool = False,
        token: str | None = None,
        commit_message: str | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> str:
        """Save this model and upload it to the Hugging Face Hub model repository
        ``repo_id`` (``OWNER/NAME``); return the repository's URL. Needs the hub extra.

        The model card states the test set's numbers of ``metrics`` (a run's parsed
        ``metrics.json``), by default those of the run this model was loaded from when it is
        still the student that run scored.
        """
        import tempfile

        from textdistill.hub import push, run_metrics
        from textdistill.runtime.artifact import read_manifest

        with tempfile.TemporaryDirectory() as tmp:
            artifact = Path(tmp) / "artifact"
            self.save(artifact)
            if metrics is None and self.source is not None:
                metrics = run_metrics(self.source, read_manifest(artifact)["checksum"])
            return push(
                artifact,
                repo_id,
                private=private,
                token=token,
                commit_message=commit_message,
                metrics=metrics,
            )

    def _set_outputs(
        self,
        labels: Sequence[str],
        temperature: float,
        multilabel: bool,
        thresholds: Sequence[float] | np.ndarray | None,
    ) -> None:
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.labels = [str(label) for label in labels]
        self.temperature = float(temperature)
        self.multilabel = bool(multilabel)
        if thresholds is not None and not self.multilabel:
            raise ValueError("thresholds belong to multilabel models only")
        if thresholds is None:
            thresholds = np.zeros(len(self.labels))
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        if self.thresholds.shape != (len(self.labels),) or not np.all(np.isfinite(self.thresholds)):
            raise ValueError(
                f"expected one finite threshold per label ({len(self.labels)}), "
                f"got {self.thresholds.tolist()!r:.80}"
            )

    @property
    def task(self) -> str:
        """``"multilabel"`` (any number of labels per text) or ``"multiclass"`` (one)."""
        return MULTILABEL if self.multilabel else MULTICLASS

    @property
    def classes_(self) -> np.ndarray:
        """The label names as scikit-learn names them: column ``j`` of the logits and
        probabilities is ``classes_[j]``.

        >>> LabelOutputs.from_manifest({"labels": ["neg", "pos"]}).classes_.tolist()
        ['neg', 'pos']
        """
        return np.array(self.labels, dtype=object)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of raw ``logits`` at the fitted temperature (1.0 if never
        calibrated): a softmax over labels, or for a multilabel model one sigmoid per label."""
        if self.multilabel:
            return sigmoid(logits, self.temperature)
        return softmax(logits, self.temperature)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities of ``texts``, one row per text, columns as ``labels``."""
        return self.probabilities(self.decision_function(texts))

    def labels_of(self, logits: np.ndarray) -> list[Prediction]:
        """The prediction for each row of raw ``logits``: the top label, or for a multilabel
        model the tuple of labels above their thresholds (in label order, maybe empty)."""
        logits = np.asarray(logits)
        if not self.multilabel:
            return [self.labels[i] for i in logits.argmax(axis=1)]
        chosen = logits > self.thresholds
        return [tuple(self.labels[j] for j in np.flatnonzero(row)) for row in chosen]

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """The label of each text (for a multilabel model, the tuple of its labels)."""
        return self.labels_of(self.decision_function(texts))

    @property
    def _format_version(self) -> int:
        """Multilabel artifacts are format 2: older readers would take them for single-label."""
        return 2 if self.multilabel else 1

    def _outputs_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "labels": self.labels,
            "calibration": {"method": "temperature", "temperature": self.temperature},
        }
        if self.multilabel:
            meta["task"] = MULTILABEL
            meta["thresholds"] = self.thresholds.tolist()
        return meta

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> LabelOutputs:
        """The output rule alone, from an artifact's manifest: enough to turn logits computed
        elsewhere (worker processes, ONNX) into labels without loading the weights."""
        outputs = cls()
        outputs._set_outputs(manifest["labels"], **cls._outputs_from_manifest(manifest))
        return outputs

    @staticmethod
    def _outputs_from_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
        """Constructor arguments from a manifest; artifacts without ``task`` are single-label."""
        task = manifest.get("task", MULTICLASS)
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
        return {
            "temperature": manifest.get("calibration", {}).get("temperature", 1.0),
            "multilabel": task == MULTILABEL,
            "thresholds": manifest.get("thresholds") if task == MULTILABEL else None,
        }

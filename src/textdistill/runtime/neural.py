"""Small neural students, run with numpy alone.

Two architectures, both trained with torch by :mod:`textdistill.students.neural` and run here
without it:

* ``"bag"`` — an embedding bag over the runtime's TF-IDF word n-grams (fastText-like, but
  with a ReLU hidden layer so that it is not just a low-rank linear model): ``hidden =
  relu(tfidf(text) @ embedding + bias)``, ``logits = hidden @ output + output_bias``. Its
  input is the very :class:`NgramFeaturizer` output the linear student reads.
* ``"bilstm"`` — Tang et al. (2019)'s student: word embeddings, one bidirectional LSTM layer,
  the last hidden state of each direction concatenated, a ReLU layer, then the logits. Words
  come from the runtime's own :func:`tokenize`, so no Hugging Face tokenizer is needed.

Weights are float32 ``.npy`` files in the usual artifact (no pickle, checksummed), named as
in :data:`WEIGHTS`; the LSTM's follow torch's layout (gates in the order input, forget, cell,
output) so that export from torch is a plain copy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np

from textdistill.runtime.artifact import ArtifactError, artifact_root, load_artifact, save_artifact
from textdistill.runtime.featurizer import TOKEN_PATTERN, NgramFeaturizer, SparseRows, tokenize
from textdistill.runtime.linear import _as_texts
from textdistill.runtime.outputs import LabelOutputs

KIND = "neural"
ARCHITECTURES = ("bag", "bilstm")
# The arrays of each architecture, with the shape each must have ("V" vocabulary, "E"
# embedding width, "H" LSTM units per direction, "D" hidden ReLU units, "k" classes).
WEIGHTS: dict[str, dict[str, tuple[str, ...]]] = {
    "bag": {
        "embedding": ("V", "D"),
        "embedding_bias": ("D",),
        "output": ("D", "k"),
        "output_bias": ("k",),
    },
    "bilstm": {
        "embedding": ("V", "E"),
        "lstm_input_forward": ("4H", "E"),
        "lstm_hidden_forward": ("4H", "H"),
        "lstm_bias_forward": ("4H",),
        "lstm_input_backward": ("4H", "E"),
        "lstm_hidden_backward": ("4H", "H"),
        "lstm_bias_backward": ("4H",),
        "hidden": ("2H", "D"),
        "hidden_bias": ("D",),
        "output": ("D", "k"),
        "output_bias": ("k",),
    },
}
PAD, UNKNOWN = 0, 1
# Texts are run in batches of similar length, so padding costs little.
_BATCH = 256


class TokenSequencer:
    """Texts to padded word-id sequences: id 0 pads, id 1 is any word not in the vocabulary.

    >>> s = TokenSequencer.fit(["a good film", "a bad film"], min_count=1)
    >>> ids, lengths = s.encode(["good film !", ""])
    >>> [s.vocabulary[i] for i in ids[0]], lengths.tolist()
    (['good', 'film', '<unk>'], [3, 1])
    """

    def __init__(self, vocabulary: Sequence[str], max_length: int = 256) -> None:
        if list(vocabulary[:2]) != ["<pad>", "<unk>"]:
            raise ValueError("a token vocabulary starts with '<pad>', '<unk>'")
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {max_length}")
        self.vocabulary = list(vocabulary)
        self.max_length = int(max_length)
        self._index = {word: i for i, word in enumerate(self.vocabulary)}

    @property
    def n_features(self) -> int:
        return len(self.vocabulary)

    @classmethod
    def fit(
        cls,
        texts: Iterable[str],
        *,
        min_count: int = 2,
        max_words: int | None = 50_000,
        max_length: int = 256,
    ) -> TokenSequencer:
        """The ``max_words`` most frequent words (ties alphabetical, so deterministic)."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(tokenize(text))
        kept = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        return cls(["<pad>", "<unk>", *kept[:max_words]], max_length=max_length)

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(ids int64 [n, T], lengths int64 [n])``: the first ``max_length`` words of each
        text, padded on the right. An empty text is one padding token (length 1), so every
        sequence has a last state."""
        get = self._index.get
        rows = [[get(w, UNKNOWN) for w in tokenize(t)[: self.max_length]] for t in texts]
        lengths = np.array([max(len(r), 1) for r in rows], dtype=np.int64)
        ids = np.zeros((len(rows), int(lengths.max(initial=1))), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        return ids, lengths

    def spec(self) -> dict[str, Any]:
        return {
            "type": "word_ids",
            "max_length": self.max_length,
            "token_pattern": TOKEN_PATTERN,
            "lowercase": True,
            "strip_markup": True,
        }


Featurizer: TypeAlias = NgramFeaturizer | TokenSequencer


def segment_sum(rows: SparseRows, table: np.ndarray) -> np.ndarray:
    """``rows @ table`` for a dense ``table [n_features, d]``: the weighted embedding bag,
    float32 ``[n_rows, d]`` (an empty row sums to zero)."""
    out = np.zeros((rows.n_rows, table.shape[1]), dtype=np.float32)
    if len(rows.data) == 0:
        return out
    contributions = table[rows.indices]  # a fresh array: scaled in place, no second copy
    contributions *= rows.data[:, None]
    lengths = np.diff(rows.indptr)
    present = lengths > 0
    out[present] = np.add.reduceat(contributions, rows.indptr[:-1][present], axis=0)
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # no overflow warning for large |x|


def _lstm_last_state(
    inputs: np.ndarray,
    lengths: np.ndarray,
    w_in: np.ndarray,
    w_hidden: np.ndarray,
    bias: np.ndarray,
) -> np.ndarray:
    """Hidden state of one LSTM direction after each sequence's last real step.

    ``inputs [n, T, E]`` left-aligned; steps at or past a sequence's length leave its state
    unchanged, so the state after ``T`` steps is the one after ``lengths[i]`` steps.
    """
    n, steps, _ = inputs.shape
    units = w_hidden.shape[1]
    projected = inputs @ w_in.T + bias  # [n, T, 4H]: the input half of every gate at once
    h = np.zeros((n, units), dtype=np.float32)
    c = np.zeros((n, units), dtype=np.float32)
    for t in range(steps):
        gates = projected[:, t] + h @ w_hidden.T
        i, f, g, o = np.split(gates, 4, axis=1)
        c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h_new = _sigmoid(o) * np.tanh(c_new)
        live = (t < lengths)[:, None]
        c = np.where(live, c_new, c)
        h = np.where(live, h_new, h)
    return h


def _reverse_within_length(ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each row's first ``lengths[i]`` ids in reverse order, padding left where it was."""
    steps = ids.shape[1]
    positions = lengths[:, None] - 1 - np.arange(steps)[None, :]
    return np.where(positions >= 0, np.take_along_axis(ids, np.maximum(positions, 0), 1), PAD)


class NeuralModel(LabelOutputs):
    """A trained neural student: same interface as :class:`LinearModel` (``predict``,
    ``predict_proba``, ``decision_function``, ``probabilities``, ``labels``, ``temperature``,
    ``multilabel``, ``thresholds``, ``featurizer``), so ``predict``, ``serve`` and the cascade
    use it unchanged."""

    def __init__(
        self,
        architecture: str,
        featurizer: Featurizer,
        weights: dict[str, np.ndarray],
        labels: Sequence[str],
        *,
        temperature: float = 1.0,
        multilabel: bool = False,
        thresholds: Sequence[float] | np.ndarray | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
        expected_featurizer = NgramFeaturizer if architecture == "bag" else TokenSequencer
        if not isinstance(featurizer, expected_featurizer):
            raise ValueError(f"a {architecture!r} model reads a {expected_featurizer.__name__}")
        self.architecture = architecture
        self.featurizer: Featurizer = featurizer
        self._set_outputs(labels, temperature, multilabel, thresholds)
        self.weights = {name: np.asarray(w, dtype=np.float32) for name, w in weights.items()}
        self._check_shapes()
        self.metadata = dict(metadata or {})

    def _check_shapes(self) -> None:
        spec = WEIGHTS[self.architecture]
        if set(self.weights) != set(spec):
            raise ValueError(f"weights {sorted(self.weights)} are not {sorted(spec)}")
        sizes = {"V": self.featurizer.n_features, "k": len(self.labels)}
        sizes["D"] = self.weights["output"].shape[0]
        if self.architecture == "bilstm":
            sizes["E"] = self.weights["embedding"].shape[1]
            sizes["H"] = self.weights["lstm_hidden_forward"].shape[1]
            sizes["4H"], sizes["2H"] = 4 * sizes["H"], 2 * sizes["H"]
        for name, dims in spec.items():
            expected = tuple(sizes[d] for d in dims)
            if self.weights[name].shape != expected:
                raise ValueError(
                    f"{name} has shape {self.weights[name].shape}, expected {expected} ({dims})"
                )

    # --------------------------------------------------------------- inference
    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Raw logits, float32 ``[n, k]``."""
        texts = _as_texts(texts)
        if self.architecture == "bag":
            assert isinstance(self.featurizer, NgramFeaturizer)
            return self._bag(self.featurizer.transform(texts))
        return self._bilstm(texts)

    def _bag(self, rows: SparseRows) -> np.ndarray:
        w = self.weights
        hidden = np.maximum(segment_sum(rows, w["embedding"]) + w["embedding_bias"], 0.0)
        return (hidden @ w["output"] + w["output_bias"]).astype(np.float32)

    def _bilstm(self, texts: Sequence[str]) -> np.ndarray:
        assert isinstance(self.featurizer, TokenSequencer)
        w = self.weights
        out = np.empty((len(texts), len(self.labels)), dtype=np.float32)
        sizes = np.array([len(t) for t in texts])
        order = np.argsort(sizes, kind="stable")  # similar lengths together: little padding
        for start in range(0, len(texts), _BATCH):
            chosen = order[start : start + _BATCH]
            ids, lengths = self.featurizer.encode([texts[i] for i in chosen])
            ids = ids[:, : int(lengths.max())]
            states = [
                _lstm_last_state(
                    w["embedding"][sequence],
                    lengths,
                    w[f"lstm_input_{direction}"],
                    w[f"lstm_hidden_{direction}"],
                    w[f"lstm_bias_{direction}"],
                )
                for direction, sequence in (
                    ("forward", ids),
                    ("backward", _reverse_within_length(ids, lengths)),
                )
            ]
            hidden = np.maximum(np.concatenate(states, axis=1) @ w["hidden"] + w["hidden_bias"], 0)
            out[chosen] = hidden @ w["output"] + w["output_bias"]
        return out

    # -------------------------------------------------------------- artifact
    def save(self, path: str | Path) -> None:
        arrays = dict(self.weights)
        if isinstance(self.featurizer, NgramFeaturizer):
            arrays["idf"] = self.featurizer.idf
        save_artifact(
            path,
            kind=KIND,
            arrays=arrays,
            documents={"vocabulary": self.featurizer.vocabulary},
            meta={
                "architecture": self.architecture,
                **self._outputs_meta(),
                "featurizer": self.featurizer.spec(),
                "metadata": self.metadata,
            },
            format_version=self._format_version,
        )

    @classmethod
    def load(cls, path: str | Path) -> NeuralModel:
        manifest, arrays, documents = load_artifact(path)
        if manifest.get("kind") != KIND:
            raise ArtifactError(f"{path}: a {manifest.get('kind')!r} artifact, not {KIND!r}")
        architecture = manifest.get("architecture")
        if architecture not in ARCHITECTURES:
            raise ArtifactError(f"{path}: unknown neural architecture {architecture!r}")
        try:
            spec = manifest["featurizer"]
            vocabulary = documents["vocabulary"]
            featurizer: Featurizer
            if architecture == "bag":
                featurizer = NgramFeaturizer.from_spec(spec, vocabulary, arrays.pop("idf"))
            else:
                featurizer = TokenSequencer(vocabulary, max_length=spec["max_length"])
            model = cls(
                architecture,
                featurizer,
                arrays,
                manifest["labels"],
                **cls._outputs_from_manifest(manifest),
                metadata=manifest.get("metadata"),
            )
        except (KeyError, ValueError, TypeError, AttributeError) as error:
            raise ArtifactError(f"{path}: inconsistent artifact ({error!r})") from None
        model.source = artifact_root(path)
        return model

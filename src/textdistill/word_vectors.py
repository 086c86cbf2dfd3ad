"""The teacher's word vectors, kept beside its logits so that each word is embedded once.

A dense student starts from the fine-tuned encoder's view of every vocabulary word read alone
(:meth:`textdistill.teacher.Teacher.embed`): tens of thousands of words, several minutes on a
2-core CPU. They depend on the teacher only, not on the student's options or the transfer set,
so every later run of the same teacher (another ``--augment``, another student kind, a run
resumed after its student stage was interrupted) would compute the same vectors again. They
go into a :class:`~textdistill.logits_store.LogitsStore` of their own, keyed on the teacher's
fingerprint in the logits cache: written a batch at a time, atomically, shared by runs that
use the same cache, and resumed after a kill like labeling.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from textdistill.logits_store import LogitsStore

# Appended to the teacher's fingerprint: the store of its word vectors, beside its logits'.
STORE_SUFFIX = "word-vectors"


class Encoder(Protocol):
    """What the cache reads vectors from: a fitted teacher, or anything that embeds texts."""

    def vocabulary_words(self) -> list[str]: ...

    def continuation_pieces(self) -> list[str]: ...

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray: ...


class CachedWordVectors:
    """A :class:`~textdistill.students.dense.WordVectorSource` that embeds only the words not
    stored yet under ``root`` and reads the rest back.

    ``encoder`` is called (it may load the teacher) only when a word is missing or the
    vocabulary is asked for.

    >>> import tempfile
    >>> class Letters:
    ...     calls = 0
    ...     def vocabulary_words(self): return ["a", "b"]
    ...     def continuation_pieces(self): return []
    ...     def embed(self, texts, *, progress=False):
    ...         Letters.calls += 1
    ...         return np.array([[float(ord(t[0])), 1.0] for t in texts])
    >>> root = tempfile.mkdtemp()
    >>> first = CachedWordVectors(Letters, root, "teacher-1").embed(["a", "b"])
    >>> calls = Letters.calls
    >>> again = CachedWordVectors(Letters, root, "teacher-1").embed(["b", "a"])
    >>> again.tolist(), Letters.calls == calls  # read back: nothing embedded
    ([[98.0, 1.0], [97.0, 1.0]], True)
    """

    def __init__(self, encoder: Callable[[], Encoder], root: str | Path, fingerprint: str) -> None:
        self._encoder = encoder
        self._root = Path(root)
        self._fingerprint = f"{fingerprint}-{STORE_SUFFIX}"

    def vocabulary_words(self) -> list[str]:
        return self._encoder().vocabulary_words()

    def continuation_pieces(self) -> list[str]:
        return self._encoder().continuation_pieces()

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """``float32 [len(texts), width]``: the stored vectors, the missing ones embedded
        (and stored) first."""
        words = list(texts)
        if not words:
            return np.empty((0, 0), dtype=np.float32)
        store = self._store(words)
        store.fill(  # embeds only what is missing; nothing missing, it returns at once
            words,
            lambda batch: self._encoder().embed(batch),
            batch_size=256,
            progress=progress,
            description="word vectors",
        )
        return store.get(words)

    def _store(self, words: list[str]) -> LogitsStore:
        """The store, whose width is the encoder's: read from the store's own description
        when it exists, else from the first word, embedded and stored."""
        info = self._root / self._fingerprint / "store.json"
        try:
            width = int(json.loads(info.read_text(encoding="utf-8"))["n_classes"])
        except (OSError, ValueError, KeyError, TypeError):  # none yet, or damaged: rewritten
            first = np.asarray(self._encoder().embed(words[:1]), dtype=np.float32)
            store = LogitsStore(self._root, fingerprint=self._fingerprint, n_classes=first.shape[1])
            store.put_new(words[:1], first)
            return store
        return LogitsStore(self._root, fingerprint=self._fingerprint, n_classes=width)

"""Teacher logits computed elsewhere: for users whose big model lives on another system.

``textdistill run --teacher-logits FILE`` skips fine-tuning and labeling: the file's logits
go into the run's logits store, keyed by the file's content hash, and the student learns
from them exactly as from a teacher run here. The file must hold a row for every text the
run needs the teacher on (the unlabeled set, the test set and the labeled set, whose held-out
part calibrates the student); a missing one is an error that names it.

Formats:

* CSV, TSV, JSONL or Parquet with a ``text`` column and one numeric column per class, named
  by the class (the labels of the labeled set); for a run of text pairs, the first text in
  ``text`` and the second in ``text_pair``;
* ``.npy``: a float array of shape ``(rows, classes)``, its rows in the order of the unlabeled
  file, then the test file, then the labeled file, as read; columns in sorted class order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textdistill.data import DataError, read_scores
from textdistill.runtime.pairs import shown

__all__ = ["MissingLogitsError", "PrecomputedLogits", "read_precomputed_logits"]


class MissingLogitsError(DataError):
    """The run needs the teacher on a text the precomputed logits do not cover."""


@dataclass(frozen=True)
class PrecomputedLogits:
    """The rows of a logits file, and the identity the logits store keys them by."""

    source: str
    texts: list[str]
    scores: np.ndarray
    classes: list[str]
    digest: str

    @property
    def fingerprint(self) -> str:
        """Store key: the file's content, so an edited file is a different teacher."""
        return f"precomputed-{self.digest[:40]}"

    def logits(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Stand-in for :meth:`Teacher.logits`: there is no model to score new texts."""
        example = shown(texts[0])[:80] if texts else ""
        raise MissingLogitsError(
            f"{self.source}: no logits for {len(texts)} text(s) the run needs, e.g. "
            f"{example!r}; add a row for every unlabeled, test and labeled text"
        )


def read_precomputed_logits(
    path: str | Path, classes: list[str], aligned_texts: list[str], *, pairs: bool = False
) -> PrecomputedLogits:
    """Read a logits file (see the module docstring) for a run with these classes.

    ``aligned_texts`` are the unlabeled, test and labeled texts as read, in that order: the
    texts of a ``.npy`` file's rows. ``pairs``: the run reads text pairs, so a table's rows
    are pairs, their second texts in the ``text_pair`` column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: the teacher logits file does not exist")
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    if path.suffix.lower() == ".npy":
        try:
            logits = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise DataError(f"{path}: expected a numeric .npy array ({error})") from None
        expected = (len(aligned_texts), len(classes))
        if logits.ndim != 2 or logits.shape != expected or logits.dtype.kind not in "fiu":
            raise DataError(
                f"{path}: expected a numeric array of shape {expected} (unlabeled, test and "
                f"labeled rows; one column per class {classes}), found {logits.dtype} "
                f"{logits.shape}"
            )
        if not np.isfinite(logits).all():
            row = int(np.argwhere(~np.isfinite(logits))[0][0])
            raise DataError(f"{path}, row {row + 1}: expected finite logits")
        texts = list(aligned_texts)
    else:
        texts, logits = read_scores(path, classes, text_pair_column="text_pair" if pairs else None)
    return PrecomputedLogits(
        str(path), texts, logits.astype(np.float32), list(classes), digest.hexdigest()
    )

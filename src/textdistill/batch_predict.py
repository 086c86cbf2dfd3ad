"""Streaming batch prediction: any input size in constant memory, on one core or all of them.

Texts are read lazily (a file or stdin), cut into chunks, scored by the numpy runtime (in
worker processes with ``jobs > 1``, at most ``2 * jobs`` chunks in flight so memory stays
bounded however large the input), and written in input order as CSV or JSONL. Needs only the
base install.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any

import numpy as np

from textdistill.cascade import Cascade
from textdistill.runtime import load

CHUNK = 2000


class InputError(ValueError):
    """The input file cannot be read as asked (missing, wrong column, bad JSON line)."""


def iter_texts(source: str, text_column: str = "text") -> Iterator[str]:
    """Texts of ``source`` one by one: ``-`` (stdin, one per line), ``.csv``/``.tsv``/``.jsonl``
    (the ``text_column``), or any other file (one per line)."""
    if source == "-":
        for line in sys.stdin:
            yield line.rstrip("\n")
        return
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    with path.open(encoding="utf-8", newline="") as handle:
        if suffix in {".csv", ".tsv"}:
            reader = csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
            if text_column not in (reader.fieldnames or []):
                raise InputError(
                    f"{path}: no column {text_column!r} (columns: "
                    f"{reader.fieldnames}); pass --text-column"
                )
            for row in reader:
                yield row[text_column] or ""
        elif suffix == ".jsonl":
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        yield str(json.loads(line)[text_column])
                    except (json.JSONDecodeError, KeyError, TypeError) as error:
                        raise InputError(
                            f"{path}: line {number}: expected a JSON object with "
                            f"{text_column!r} ({error})"
                        ) from None
        else:
            for line in handle:
                yield line.rstrip("\n")


_worker_model: Any = None


@dataclass(frozen=True)
class Scored:
    """One chunk's raw logits, calibrated probabilities and (for a cascade) who answered."""

    logits: np.ndarray
    probabilities: np.ndarray
    sources: list[str] | None = None


def _load_worker(artifact: str) -> None:
    global _worker_model
    _worker_model = load(artifact)


def _score(chunk: list[str]) -> np.ndarray:
    return np.asarray(_worker_model.decision_function(chunk))


def _chunks(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(texts)
    return iter(lambda: list(islice(iterator, size)), [])


def score_chunks(
    artifact: str, texts: Iterable[str], *, jobs: int = 1, chunk_size: int = CHUNK
) -> Iterator[Scored]:
    """Scores of consecutive chunks of ``texts``, in order."""
    model = load(artifact)
    if jobs <= 1:
        for chunk in _chunks(texts, chunk_size):
            logits = model.decision_function(chunk)
            yield Scored(logits, model.probabilities(logits))
        return
    with multiprocessing.get_context("spawn").Pool(jobs, _load_worker, (artifact,)) as pool:
        pending: deque[Any] = deque()
        for chunk in _chunks(texts, chunk_size):
            pending.append(pool.apply_async(_score, (chunk,)))
            if len(pending) >= 2 * jobs:
                logits = pending.popleft().get()
                yield Scored(logits, model.probabilities(logits))
        while pending:
            logits = pending.popleft().get()
            yield Scored(logits, model.probabilities(logits))


def cascade_chunks(
    cascade: Cascade, texts: Iterable[str], *, chunk_size: int = CHUNK
) -> Iterator[Scored]:
    """Scores of a cascade: the student everywhere, the teacher below the threshold."""
    for chunk in _chunks(texts, chunk_size):
        result = cascade.predict_detailed(chunk)
        yield Scored(result.logits, result.probabilities, result.sources)


def write_predictions(
    out: IO[str],
    labels: list[str],
    scored_chunks: Iterable[Scored],
    *,
    fmt: str = "csv",
    with_logits: bool = False,
    with_sources: bool = False,
) -> int:
    """Write label + calibrated probabilities (+ raw logits, + which model answered) per
    text; returns the row count."""
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        header = ["label", *(f"p_{label}" for label in labels)]
        if with_logits:
            header += [f"logit_{label}" for label in labels]
        if with_sources:
            header.append("source")
        writer.writerow(header)
    rows = 0
    for scored in scored_chunks:
        sources = scored.sources or [""] * len(scored.logits)
        for row_logits, row_probs, source in zip(
            scored.logits, scored.probabilities, sources, strict=True
        ):
            label = labels[int(row_probs.argmax())]
            if writer is not None:
                values = [label, *(f"{p:.6f}" for p in row_probs)]
                if with_logits:
                    values += [f"{z:.6f}" for z in row_logits]
                if with_sources:
                    values.append(source)
                writer.writerow(values)
            else:
                record: dict[str, Any] = {
                    "label": label,
                    "probabilities": dict(zip(labels, map(float, row_probs), strict=True)),
                }
                if with_logits:
                    record["logits"] = dict(zip(labels, map(float, row_logits), strict=True))
                if with_sources:
                    record["source"] = source
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            rows += 1
    return rows

"""Streaming batch prediction: any input size in constant memory, on one core or all of them.

Texts are read lazily (a file or stdin), cut into chunks, scored by the numpy runtime (with
``jobs > 1``, in threads for a linear model on the C path, which releases the GIL, and in
worker processes otherwise; at most ``2 * jobs`` chunks in flight so memory stays bounded
however large the input), and written in input order as CSV or JSONL. Needs only the base
install.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any

import numpy as np

from textdistill.cascade import Cascade
from textdistill.runtime import LinearModel, load
from textdistill.runtime.outputs import LabelOutputs
from textdistill.runtime.pairs import PairError, join_pair

CHUNK = 2000


class InputError(ValueError):
    """The input file cannot be read as asked (missing, wrong column, bad JSON line)."""


def iter_texts(
    source: str, text_column: str = "text", text_pair_column: str | None = None
) -> Iterator[str]:
    """Texts of ``source`` one by one: ``-`` (stdin, one per line), ``.csv``/``.tsv``/``.jsonl``
    (the ``text_column``), or any other file (one per line). With ``text_pair_column`` (a
    ``.csv``/``.tsv``/``.jsonl`` file), each row is a text pair, joined as
    :mod:`textdistill.runtime.pairs` joins it.

    Input is strict UTF-8: a bad byte, a malformed CSV row or a JSON line without a string
    text stops with an :class:`InputError` naming the line, rather than predicting something
    for a text that is not what the file says (``null`` is not the text "None").
    """
    columns = [text_column] if text_pair_column is None else [text_column, text_pair_column]
    suffix = Path(source).suffix.lower()
    if text_pair_column is not None and (source == "-" or suffix not in {".csv", ".tsv", ".jsonl"}):
        raise InputError(
            f"{source}: text pairs are read from a .csv, .tsv or .jsonl file with both columns"
        )
    if source == "-":
        binary = getattr(sys.stdin, "buffer", None)
        lines = _decoded(binary, "standard input") if binary is not None else iter(sys.stdin)
        for line in lines:
            yield line.rstrip("\r\n")
        return
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with path.open("rb") as handle:
        lines = _decoded(handle, str(path))
        if suffix in {".csv", ".tsv"}:
            csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
            # strict: an unterminated quote is an error, not the rest of the file in one text.
            delimiter = "\t" if suffix == ".tsv" else ","
            reader = csv.DictReader(lines, delimiter=delimiter, strict=True)
            try:
                for column in columns:
                    if column not in (reader.fieldnames or []):
                        raise InputError(
                            f"{path}: no column {column!r} (columns: "
                            f"{reader.fieldnames}); pass --text-column/--text-pair-column"
                        )
                for row in reader:
                    sides = [row[column] for column in columns]
                    if None in sides:
                        raise InputError(
                            f"{path}: line {reader.line_num}: fewer fields than the header "
                            f"{reader.fieldnames}"
                        )
                    yield _joined(sides, f"{path}: line {reader.line_num}")
            except csv.Error as error:
                raise InputError(
                    f"{path}: line {reader.line_num}: malformed CSV ({error})"
                ) from None
        elif suffix == ".jsonl":
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    where = f"{path}: line {number}"
                    yield _joined(_json_texts(line, columns, where), where)
        else:
            for line in lines:
                yield line.rstrip("\r\n")


# A 10 MB document must fit in one CSV field; the standard library allows 128 KiB.
_CSV_FIELD_LIMIT = 64 * 1024 * 1024


def _decoded(stream: Iterable[bytes], source: str) -> Iterator[str]:
    """UTF-8 lines of a binary stream (a leading BOM dropped); a bad byte names its line."""
    for number, raw in enumerate(stream, start=1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as error:
            raise InputError(
                f"{source}: line {number}: expected UTF-8 text, found the byte "
                f"0x{raw[error.start : error.start + 1].hex()}; re-encode the input as UTF-8"
            ) from None


def _json_texts(line: str, columns: list[str], where: str) -> list[str]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as error:
        raise InputError(f"{where}: expected a JSON object ({error})") from None
    texts = []
    for column in columns:
        if not isinstance(value, dict) or column not in value:
            raise InputError(f"{where}: expected a JSON object with {column!r}")
        text = value[column]
        if not isinstance(text, str):
            found = "null" if text is None else f"{type(text).__name__} {text!r:.40}"
            raise InputError(f"{where}: expected {column!r} to be a string, found {found}")
        texts.append(text)
    return texts


def _joined(sides: list[str], where: str) -> str:
    """One text, or the joined pair of two; a side that cannot be part of a pair is named."""
    if len(sides) == 1:
        return sides[0]
    try:
        return join_pair(sides[0], sides[1])
    except PairError as error:
        raise InputError(f"{where}: {error}") from None


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
    if releases_gil(model):  # one model in memory, no process start-up
        with ThreadPoolExecutor(jobs) as threads:
            yield from _in_order(
                model,
                lambda chunk: threads.submit(model.decision_function, chunk).result,
                texts,
                jobs,
                chunk_size,
            )
        return
    with multiprocessing.get_context("spawn").Pool(jobs, _load_worker, (artifact,)) as pool:
        yield from _in_order(
            model, lambda chunk: pool.apply_async(_score, (chunk,)).get, texts, jobs, chunk_size
        )


def releases_gil(model: object) -> bool:
    """Whether ``model.decision_function`` spends nearly all its time without the GIL, so
    that threads scale like processes: a linear model whose features the C path computes."""
    return isinstance(model, LinearModel) and model.featurizer.uses_c_path


def _in_order(
    model: LabelOutputs,
    submit: Callable[[list[str]], Callable[[], np.ndarray]],
    texts: Iterable[str],
    jobs: int,
    chunk_size: int,
) -> Iterator[Scored]:
    """Chunks submitted to ``jobs`` workers, at most ``2 * jobs`` in flight; their scores in
    input order. ``submit`` returns what waits for a chunk's logits."""
    pending: deque[Callable[[], np.ndarray]] = deque()
    for chunk in _chunks(texts, chunk_size):
        pending.append(submit(chunk))
        if len(pending) >= 2 * jobs:
            logits = pending.popleft()()
            yield Scored(logits, model.probabilities(logits))
    while pending:
        logits = pending.popleft()()
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
    outputs: LabelOutputs,
    scored_chunks: Iterable[Scored],
    *,
    fmt: str = "csv",
    with_logits: bool = False,
    with_sources: bool = False,
) -> int:
    """Write label + calibrated probabilities (+ raw logits, + which model answered) per
    text; returns the row count. ``outputs`` (the model, or its manifest's
    :meth:`LabelOutputs.from_manifest`) turns logits into labels: for a multilabel model the
    label is a list (a JSON list in a CSV cell, which ``--multilabel`` reads back)."""
    labels = outputs.labels
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
        for row_logits, row_probs, source, chosen in zip(
            scored.logits,
            scored.probabilities,
            sources,
            outputs.labels_of(scored.logits),
            strict=True,
        ):
            label = chosen if isinstance(chosen, str) else list(chosen)
            if writer is not None:
                cell = label if isinstance(label, str) else json.dumps(label, ensure_ascii=False)
                values = [cell, *(f"{p:.6f}" for p in row_probs)]
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

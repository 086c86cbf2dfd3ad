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
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain, islice
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
    """Texts of ``source`` one by one: ``-`` (stdin) or any file but ``.csv``/``.tsv``/
    ``.jsonl``/``.parquet``, one per line with blank lines skipped; those four, the
    ``text_column``. With ``text_pair_column`` (one of those four), each row is a text pair,
    joined as :mod:`textdistill.runtime.pairs` joins it.

    Input is strict UTF-8: a bad byte, a malformed CSV row or a JSON line without a string
    text stops with an :class:`InputError` naming the line, rather than predicting something
    for a text that is not what the file says (``null`` is not the text "None").
    """
    return (text for text, _ in iter_rows(source, text_column, text_pair_column))


def iter_rows(
    source: str,
    text_column: str = "text",
    text_pair_column: str | None = None,
    keep_columns: Sequence[str] = (),
) -> Iterator[tuple[str, list[Any]]]:
    """The rows of :func:`iter_texts`, each with the values of its ``keep_columns`` (strings
    of a CSV/TSV file, JSON or Parquet values otherwise), so an output row can carry the
    input's id; only a ``.csv``/``.tsv``/``.jsonl``/``.parquet`` file has columns to keep."""
    columns = [text_column] if text_pair_column is None else [text_column, text_pair_column]
    suffix = Path(source).suffix.lower()
    tabular = source != "-" and suffix in {".csv", ".tsv", ".jsonl", ".parquet"}
    if text_pair_column is not None and not tabular:
        raise InputError(
            f"{source}: text pairs are read from a .csv, .tsv, .jsonl or .parquet file with both "
            "columns"
        )
    if keep_columns and not tabular:
        name = "standard input" if source == "-" else source
        raise InputError(
            f"{name}: --keep-columns needs a .csv, .tsv, .jsonl or .parquet file with columns"
        )
    if source == "-":
        binary = getattr(sys.stdin, "buffer", None)
        lines = _decoded(binary, "standard input") if binary is not None else iter(sys.stdin)
        yield from _line_texts(lines)
        return
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if suffix == ".parquet":
        yield from _parquet_rows(path, columns, keep_columns)
        return
    with path.open("rb") as handle:
        lines = _decoded(handle, str(path))
        if suffix in {".csv", ".tsv"}:
            csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
            # strict: an unterminated quote is an error, not the rest of the file in one text.
            delimiter = "\t" if suffix == ".tsv" else ","
            reader = csv.DictReader(lines, delimiter=delimiter, strict=True)
            try:
                for column in [*columns, *keep_columns]:
                    if column not in (reader.fieldnames or []):
                        hint = (
                            "check --keep-columns"
                            if column in keep_columns
                            else "pass --text-column/--text-pair-column"
                        )
                        raise InputError(
                            f"{path}: no column {column!r} (columns: {reader.fieldnames}); {hint}"
                        )
                for row in reader:
                    sides = [row[column] for column in columns]
                    kept = [row[column] for column in keep_columns]
                    if None in sides or None in kept:
                        raise InputError(
                            f"{path}: line {reader.line_num}: fewer fields than the header "
                            f"{reader.fieldnames}"
                        )
                    yield _joined(sides, f"{path}: line {reader.line_num}"), kept
            except csv.Error as error:
                raise InputError(
                    f"{path}: line {reader.line_num}: malformed CSV ({error})"
                ) from None
        elif suffix == ".jsonl":
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    where = f"{path}: line {number}"
                    record = _json_object(line, where)
                    texts = _json_texts(record, columns, where)
                    yield _joined(texts, where), _json_kept(record, keep_columns, where)
        else:
            yield from _line_texts(lines)


def _parquet_rows(
    path: Path, columns: list[str], keep_columns: Sequence[str]
) -> Iterator[tuple[str, list[Any]]]:
    """Rows of a Parquet file, read a batch at a time so that any size fits in memory."""
    try:
        import pyarrow
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(
            f"{path}: reading Parquet needs pyarrow (pip install pyarrow, or the train extra)"
        ) from None
    wanted = list(dict.fromkeys([*columns, *keep_columns]))
    try:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        for column in wanted:
            if column not in names:
                hint = (
                    "check --keep-columns"
                    if column in keep_columns
                    else "pass --text-column/--text-pair-column"
                )
                raise InputError(f"{path}: no column {column!r} (columns: {names}); {hint}")
        number = 0
        for batch in parquet.iter_batches(batch_size=CHUNK, columns=wanted):
            values = {name: batch.column(name).to_pylist() for name in wanted}
            for i in range(batch.num_rows):
                number += 1
                where = f"{path}: row {number}"
                texts = _json_texts({c: values[c][i] for c in columns}, columns, where)
                yield _joined(texts, where), [values[c][i] for c in keep_columns]
    except (pyarrow.ArrowException, OSError) as error:
        raise InputError(
            f"{path}: expected a Parquet file, found unreadable data ({error})"
        ) from None


def _line_texts(lines: Iterable[str]) -> Iterator[tuple[str, list[Any]]]:
    """One text per line. A blank (or whitespace-only) line is no text, as training reads a
    ``.txt`` file: the empty line a file ends with, or between paragraphs, would otherwise
    be labeled like a document."""
    for line in lines:
        if line.strip():
            yield line.rstrip("\r\n"), []


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


def _json_object(line: str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as error:
        raise InputError(f"{where}: expected a JSON object ({error})") from None
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a JSON object, found {type(value).__name__}")
    return value


def _json_texts(record: dict[str, Any], columns: list[str], where: str) -> list[str]:
    """The text columns of one record (a JSON object or a Parquet row): each a string."""
    texts = []
    for column in columns:
        if column not in record:
            raise InputError(f"{where}: expected a JSON object with {column!r}")
        text = record[column]
        if not isinstance(text, str):
            found = "null" if text is None else f"{type(text).__name__} {text!r:.40}"
            raise InputError(f"{where}: expected {column!r} to be a string, found {found}")
        texts.append(text)
    return texts


def _json_kept(record: dict[str, Any], keep_columns: Sequence[str], where: str) -> list[Any]:
    for column in keep_columns:
        if column not in record:
            raise InputError(f"{where}: no column {column!r} to keep (check --keep-columns)")
    return [record[column] for column in keep_columns]


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


class KeptColumns:
    """Input columns carried into the output, row for row. :meth:`texts` records each row's
    values as the scorer reads its text and :func:`write_predictions` takes them back as it
    writes that row's prediction, so only the rows in flight are held, whatever the input
    size."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self._pending: deque[list[Any]] = deque()

    def texts(self, rows: Iterable[tuple[str, list[Any]]]) -> Iterator[str]:
        for text, values in rows:
            self._pending.append(values)
            yield text

    def next_values(self) -> list[Any]:
        return self._pending.popleft()


def write_predictions(
    out: IO[str],
    outputs: LabelOutputs,
    scored_chunks: Iterable[Scored],
    *,
    fmt: str = "csv",
    with_logits: bool = False,
    with_sources: bool = False,
    kept: KeptColumns | None = None,
) -> int:
    """Write label + calibrated probabilities (+ raw logits, + which model answered) per
    text, after the ``kept`` input columns; returns the row count. ``outputs`` (the model,
    or its manifest's :meth:`LabelOutputs.from_manifest`) turns logits into labels: for a
    multilabel model the label is a list (a JSON list in a CSV cell, which ``--multilabel``
    reads back)."""
    labels = outputs.labels
    kept_names = kept.names if kept is not None else []
    header = ["label", *(f"p_{label}" for label in labels)]
    if with_logits:
        header += [f"logit_{label}" for label in labels]
    if with_sources:
        header.append("source")
    fields = header if fmt == "csv" else ["label", "probabilities", "logits", "source"]
    clashes = sorted(set(kept_names) & set(fields))
    if clashes:
        raise InputError(f"--keep-columns: {clashes} would clash with the output's own fields")
    # The first chunk is scored before the header is written: a missing column or a bad
    # first row stops with nothing but the error on standard output.
    chunks = iter(scored_chunks)
    first = next(chunks, None)
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow([*kept_names, *header])
    rows = 0
    for scored in chain([first] if first is not None else [], chunks):
        sources = scored.sources or [""] * len(scored.logits)
        for row_logits, row_probs, source, chosen in zip(
            scored.logits,
            scored.probabilities,
            sources,
            outputs.labels_of(scored.logits),
            strict=True,
        ):
            label = chosen if isinstance(chosen, str) else list(chosen)
            kept_values = kept.next_values() if kept is not None else []
            if writer is not None:
                cell = label if isinstance(label, str) else json.dumps(label, ensure_ascii=False)
                values = [*map(_cell, kept_values), cell, *(f"{p:.6f}" for p in row_probs)]
                if with_logits:
                    values += [f"{z:.6f}" for z in row_logits]
                if with_sources:
                    values.append(source)
                writer.writerow(values)
            else:
                record: dict[str, Any] = {
                    **dict(zip(kept_names, kept_values, strict=True)),
                    "label": label,
                    "probabilities": dict(zip(labels, map(float, row_probs), strict=True)),
                }
                if with_logits:
                    record["logits"] = dict(zip(labels, map(float, row_logits), strict=True))
                if with_sources:
                    record["source"] = source
                out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            rows += 1
    return rows


def _cell(value: Any) -> str:
    """A kept value as a CSV cell: a string as it is, a number, list or null as JSON, and
    what JSON has no form for (a Parquet date or decimal) as its ``str``."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | int | float | list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)

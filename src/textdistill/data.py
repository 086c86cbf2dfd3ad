"""Reading labeled, unlabeled and test sets into one in-memory shape.

Every later stage (teacher, student, evaluation, caches) works on a :class:`TextDataset`, so the
many ways people keep text data (CSV/TSV/JSONL/Parquet/plain text, compressed or not, the
``aclImdb`` folder layout, Hugging Face hub names) are all resolved here, once. Reading is strict
on purpose: a bad row is either an error that says exactly where it is and what was wrong, or,
with ``on_bad_row="skip"``, it is left out *and counted*; nothing is dropped silently, because a
quietly shrunken training set is much harder to notice than a crash.

Only the standard library and numpy are needed; pyarrow is imported only for Parquet and the
Hugging Face ``datasets`` package only for ``hf:`` sources, so the runtime install stays small.
"""

import bz2
import csv
import gzip
import hashlib
import itertools
import json
import lzma
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

from textdistill.runtime.pairs import PAIR_SEPARATOR, join_pair

SUPPORTED_FORMATS: tuple[str, ...] = ("csv", "tsv", "jsonl", "parquet", "txt")
"""Values accepted by the ``format`` argument (the aclImdb layout and ``hf:`` need none)."""

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".parquet": "parquet",
    ".txt": "txt",
}
_COMPRESSIONS = (".gz", ".bz2", ".xz")

# A 10 MB document must fit in one CSV field; the stdlib default (128 KiB) does not allow that.
_CSV_FIELD_LIMIT = 64 * 1024 * 1024
_FOUND_WIDTH = 80  # how much of an offending value an error message quotes
_COLUMN_HINT = (
    "choose another with --text-column/--text-pair-column/--label-column "
    "(text_column=/text_pair_column=/label_column=)"
)

OnBadRow = Literal["error", "skip"]
_BinaryFile = gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile | BinaryIO


class DataError(ValueError):
    """Bad input data.

    The message names the file, the row (1-based data row, header not counted; the line number
    for line-based formats), the column, what was expected and what was found, so that the user
    can fix the file without a debugger.
    """


@dataclass(frozen=True)
class TextDataset:
    """Texts with optional string labels, plus where they came from.

    Labels are always class *names* (``str``) so that models, reports and caches never have to
    guess whether ``1`` and ``"1"`` are the same class. Single-label data has one name per row
    in ``labels``; multilabel data has ``labels=None`` and a tuple of names per row in
    ``label_sets`` instead, sorted and without duplicates so that equal sets compare, hash and
    cache as equal, and possibly empty (a row that has none of the labels).
    """

    texts: list[str]
    labels: list[str] | None
    source: str
    skipped: dict[str, int] = field(default_factory=dict)
    label_sets: list[tuple[str, ...]] | None = None
    skipped_where: dict[str, list[str]] = field(default_factory=dict)
    """Where the first :data:`SKIPPED_SHOWN` skipped rows of each reason were, so that a
    user can find and fix them ("row 3 (line 4)")."""

    def skipped_summary(self) -> str:
        """The skipped rows in one line, counted per reason with where the first ones were.

        >>> TextDataset(["a"], None, "d.csv", {"empty text": 2},
        ...             skipped_where={"empty text": ["row 2 (line 3)", "row 5 (line 6)"]}
        ...             ).skipped_summary()
        'skipped 2 rows: 2 empty text (row 2 (line 3), row 5 (line 6))'
        """
        return _skipped_summary(self.skipped, self.skipped_where)

    def __post_init__(self) -> None:
        if self.labels is not None and len(self.labels) != len(self.texts):
            raise ValueError(
                f"{self.source}: {len(self.texts)} texts but {len(self.labels)} labels"
            )
        if self.label_sets is None:
            return
        if self.labels is not None:
            raise ValueError(
                f"{self.source}: expected labels (single-label) or label_sets (multilabel), "
                "found both"
            )
        if len(self.label_sets) != len(self.texts):
            raise ValueError(
                f"{self.source}: {len(self.texts)} texts but {len(self.label_sets)} label sets"
            )
        for i, names in enumerate(self.label_sets):
            if not (
                isinstance(names, tuple)
                and all(isinstance(name, str) for name in names)
                and all(a < b for a, b in itertools.pairwise(names))
            ):
                raise ValueError(
                    f"{self.source}, row {i + 1}: expected a sorted tuple of distinct label "
                    f"names (str), found {_describe(names)}"
                )

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def is_multilabel(self) -> bool:
        """Whether each row has a set of labels (``label_sets``) rather than one label."""
        return self.label_sets is not None

    @property
    def classes(self) -> list[str]:
        """Sorted unique labels; sorted so class indices are stable across runs and machines.

        For multilabel data these are all the names that occur in any row's set.
        """
        if self.label_sets is not None:
            return sorted({name for names in self.label_sets for name in names})
        return sorted(set(_labels_of(self, "classes")))

    def content_hash(self) -> str:
        """Hex sha256 over the texts and labels, used to key pipeline caches.

        Every string is length-prefixed so that ``["ab", "c"]`` and ``["a", "bc"]`` differ, and
        labeled, multilabel and unlabeled sets differ (each label set is length-prefixed too,
        so ``[("a", "b"), ()]`` and ``[("a",), ("b",)]`` differ). ``source`` and ``skipped``
        are left out on purpose: the same rows read from a copied or renamed file must hit the
        same cache entry.
        """
        digest = hashlib.sha256(b"textdistill.TextDataset.v1\0")
        _hash_strings(digest, self.texts)
        if self.label_sets is not None:
            digest.update(b"multilabel")
            for names in self.label_sets:
                _hash_strings(digest, names)
        elif self.labels is None:
            digest.update(b"unlabeled")
        else:
            digest.update(b"labeled")
            _hash_strings(digest, self.labels)
        return digest.hexdigest()

    def subset(self, indices: Sequence[int]) -> "TextDataset":
        """The rows at ``indices``, in that order.

        Negative indices are refused rather than wrapped around, because here they are almost
        always an off-by-one bug. ``source`` and ``skipped`` are kept: they describe how the
        origin was read, and a report on any part of it (a split, a sample) should still show
        that rows were left out there.
        """
        positions = [int(i) for i in indices]
        for i in positions:
            if not 0 <= i < len(self.texts):
                raise IndexError(f"{self.source}: row index {i} out of range 0..{len(self) - 1}")
        return TextDataset(
            texts=[self.texts[i] for i in positions],
            labels=None if self.labels is None else [self.labels[i] for i in positions],
            source=self.source,
            skipped=dict(self.skipped),
            label_sets=(
                None if self.label_sets is None else [self.label_sets[i] for i in positions]
            ),
            skipped_where={reason: list(rows) for reason, rows in self.skipped_where.items()},
        )

    def head(self, n: int) -> "TextDataset":
        """The first ``n`` rows (all of them when there are fewer), for quick experiments."""
        if n < 0:
            raise ValueError(f"head needs n >= 0, got {n}")
        return self.subset(range(min(n, len(self))))

    def without_labels(self) -> "TextDataset":
        """The same texts as an unlabeled set, e.g. to feed labeled data to the teacher."""
        return replace(self, labels=None, label_sets=None)


def read_labeled(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    format: str | None = None,
    on_bad_row: OnBadRow = "error",
    multilabel: bool = False,
    label_separator: str | None = None,
    text_pair_column: str | None = None,
) -> TextDataset:
    """Read a labeled set: a file, an ``aclImdb/train``-style folder, or ``hf:NAME[:SPLIT]``.

    With ``text_pair_column``, each row is a pair of texts (``text_column`` first): the
    dataset's texts are the joined pairs of :mod:`textdistill.runtime.pairs`, so hashes,
    caches and deduplication key on the ordered pair. An empty or missing side is an error
    naming its column, like an empty text.

    With ``multilabel=True`` each label cell holds a set of labels and the result has
    ``label_sets`` instead of ``labels``. A cell may be a list (a JSONL array, a Parquet list
    column, a Hugging Face ``Sequence(ClassLabel)``), a string holding a JSON array (how a CSV
    cell writes a list: ``["a", "b"]``; ``[]`` is a row with none of the labels), a string
    split on ``label_separator`` when one is given (``"a|b"``), or else one label. Duplicates
    are merged; a blank cell is still a missing label, not an empty set, because an empty cell
    is far more often a forgotten label than a deliberate "none".
    """
    if label_separator is not None and not multilabel:
        raise ValueError(
            f"label_separator={label_separator!r} splits multilabel cells; pass multilabel=True "
            "with it"
        )
    if label_separator == "":
        raise ValueError("label_separator must be a non-empty string, got ''")
    return _read(
        path,
        text_column,
        label_column,
        format,
        on_bad_row,
        multilabel=multilabel,
        label_separator=label_separator,
        text_pair_column=text_pair_column,
    )


def read_unlabeled(
    path: str | Path,
    *,
    text_column: str = "text",
    format: str | None = None,
    on_bad_row: OnBadRow = "error",
    text_pair_column: str | None = None,
) -> TextDataset:
    """Read texts only (pairs of texts with ``text_pair_column``); a label column, if the file
    has one, is ignored.

    On an ``aclImdb/train`` folder this reads ``unsup/`` (the reviews meant for unlabeled use),
    or the ``pos``/``neg`` texts when there is no ``unsup/``.
    """
    return _read(path, text_column, None, format, on_bad_row, text_pair_column=text_pair_column)


def stratified_split(
    data: TextDataset, test_size: float | int, *, seed: int = 0, apart: bool = False
) -> tuple[TextDataset, TextDataset]:
    """Split into ``(rest, held_out)`` with the class proportions of ``data`` on both sides.

    ``test_size`` is a fraction in (0, 1) or a row count. Every class with at least two rows
    keeps at least one row on each side when the sizes allow it, so that a rare class is never
    absent from training or evaluation; a class with a single row stays in ``rest``. Rows keep
    their original order on each side, and the same seed always gives the same split.

    Multilabel data cannot be grouped by class (a row is in several), so it is split by
    iterative stratification (Sechidis, Tsoumakas & Vlahavas 2011), which keeps each label's
    proportion on both sides; rarest labels are placed first, so that the labels that are
    easiest to lose get their row on each side while both sides still have room.

    ``apart=True`` is for a held-out side that judges what the rest trains (a test set, the
    split that picks the best epoch and fits the temperature): a held-out row whose text also
    has a row in ``rest`` goes to ``rest``, since a text trained on under one row and judged
    under another makes the judgement optimistic. Without such repeats nothing moves; with
    them the held-out side is that much smaller than ``test_size``.

    >>> data = TextDataset(["a", "b", "a", "c"] * 2, ["x", "y", "x", "y"] * 2, "rows")
    >>> rest, held = stratified_split(data, 4, seed=0, apart=True)
    >>> set(rest.texts).isdisjoint(held.texts), len(rest) + len(held)
    (True, 8)
    """
    n_held = _held_out_size(data, test_size)
    rng = np.random.default_rng(seed)
    if data.label_sets is not None:
        held = _iterative_held_out(data, n_held, rng)
    else:
        held = _stratified_held_out(_labels_of(data, "stratified_split"), n_held, rng)
    held_set = set(held)
    rest = [i for i in range(len(data)) if i not in held_set]
    if apart:
        trained = {data.texts[i] for i in rest}
        held_set = {i for i in held_set if data.texts[i] not in trained}
        rest = [i for i in range(len(data)) if i not in held_set]
    return data.subset(rest), data.subset(sorted(held_set))


def require_classes(data: TextDataset, minimum: int = 2) -> None:
    """Fail early when a classifier cannot be trained, instead of deep inside a model.

    ``minimum`` is for single-label data. Multilabel data needs only one label name: each name
    is its own yes/no decision, so a single one is already a usable detector.
    """
    classes = data.classes
    if data.is_multilabel:
        if not classes:
            raise DataError(
                f"{data.source}: need at least 1 label name, found none (every row's label "
                "set is empty)"
            )
    elif len(classes) < minimum:
        raise DataError(
            f"{data.source}: need at least {minimum} classes, found {len(classes)}: {classes}"
        )


def check_known_labels(train: TextDataset, other: TextDataset) -> None:
    """Fail when ``other`` has a label that never occurs in ``train``.

    A model cannot predict a class it never saw, so such rows would silently count as errors;
    the usual cause is a typo or a different label spelling (``"pos"`` vs ``"positive"``).
    Both sets must be single-label or both multilabel: a model trained for one kind cannot
    be scored on the other.
    """
    if train.is_multilabel != other.is_multilabel:
        raise DataError(
            f"{other.source}: expected {_label_kind(train)} data like {train.source}, found "
            f"{_label_kind(other)} data; read both with read_labeled and the same multilabel= "
            "setting"
        )
    known = {name for names in _label_sets_of(train, "check_known_labels") for name in names}
    other_sets = _label_sets_of(other, "check_known_labels")
    unseen = [i for i, names in enumerate(other_sets) if not known.issuperset(names)]
    if unseen:
        first = unseen[0]
        found = ", ".join(repr(name) for name in other_sets[first] if name not in known)
        every_unseen = {name for i in unseen for name in other_sets[i]} - known
        raise DataError(
            f"{other.source}, row {first + 1}, label column: expected a label seen in "
            f"{train.source}, found {found} ({len(unseen)} row(s) have unseen "
            f"labels: {sorted(every_unseen)}); known labels: {sorted(known)}"
        )


def indicator_matrix(label_sets: Sequence[Sequence[str]], classes: Sequence[str]) -> np.ndarray:
    """A float32 ``[rows, classes]`` matrix with 1.0 where a row has the class, else 0.0.

    This is how multilabel targets reach a model: one independent yes/no column per class, in
    the order of ``classes`` (normally ``data.classes``, so columns are stable across runs).

    >>> indicator_matrix([("a", "c"), (), ("b",)], ["a", "b", "c"])
    array([[1., 0., 1.],
           [0., 0., 0.],
           [0., 1., 0.]], dtype=float32)
    >>> indicator_matrix([("a",), ("x",)], ["a", "b"])
    Traceback (most recent call last):
    ...
    ValueError: row 2: expected labels from the classes ['a', 'b'], found 'x'
    """
    column = {name: j for j, name in enumerate(classes)}
    if len(column) != len(classes):
        raise ValueError(f"expected distinct classes, found {list(classes)}")
    matrix = np.zeros((len(label_sets), len(classes)), dtype=np.float32)
    for i, names in enumerate(label_sets):
        for name in names:
            if name not in column:
                raise ValueError(
                    f"row {i + 1}: expected labels from the classes {list(classes)}, found {name!r}"
                )
            matrix[i, column[name]] = 1.0
    return matrix


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    """One parsed record; ``where`` locates it for error messages ("row 3 (line 4)")."""

    where: str
    values: Mapping[str, Any]


SKIPPED_SHOWN = 5
"""Skipped rows located per reason in the summary; the rest are counted."""


def _skipped_summary(counts: Mapping[str, int], where: Mapping[str, list[str]]) -> str:
    parts = []
    for reason, count in counts.items():
        shown = where.get(reason, [])
        more = ", ..." if count > len(shown) else ""
        located = f" ({', '.join(shown)}{more})" if shown else ""
        parts.append(f"{count} {reason}{located}")
    total = sum(counts.values())
    return f"skipped {total} row{'s' if total != 1 else ''}: " + ", ".join(parts)


@dataclass(frozen=True)
class _BadRow:
    """A record that failed a row-level check: an error, or a skip with ``on_bad_row="skip"``."""

    where: str
    reason: str  # key in TextDataset.skipped
    column: str | None
    expected: str
    found: str

    def error(self, source: str) -> DataError:
        column = "" if self.column is None else f", column {self.column!r}"
        return DataError(
            f"{source}, {self.where}{column}: expected {self.expected}, found {self.found}"
        )


_Record = _Row | _BadRow


def _read(
    path: str | Path,
    text_column: str,
    label_column: str | None,
    format: str | None,
    on_bad_row: OnBadRow,
    *,
    multilabel: bool = False,
    label_separator: str | None = None,
    text_pair_column: str | None = None,
) -> TextDataset:
    if on_bad_row not in ("error", "skip"):
        raise ValueError(f"on_bad_row must be 'error' or 'skip', got {on_bad_row!r}")
    if text_pair_column is not None and text_pair_column in (text_column, label_column):
        raise ValueError(
            f"text_pair_column={text_pair_column!r} must differ from the text and label columns"
        )
    text_columns = [text_column] if text_pair_column is None else [text_column, text_pair_column]
    columns = [*text_columns] if label_column is None else [*text_columns, label_column]

    def collect(rows: Iterable[_Record], source: str) -> TextDataset:
        return _collect(
            rows, source, text_columns, label_column, on_bad_row, multilabel, label_separator
        )

    if isinstance(path, str) and path.startswith("hf:"):
        return collect(_hf_rows(path, columns, label_column), path)
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise DataError(f"{source}: the path does not exist")
    if path.is_dir():
        if text_pair_column is not None:
            raise DataError(f"{source}: an aclImdb folder holds single texts, not text pairs")
        return collect(_imdb_rows(path, text_column, label_column), source)
    fmt = _format_of(path, format)
    if fmt == "txt" and label_column is not None:
        raise DataError(
            f"{source}: a .txt file has one document per line and no labels; use "
            "read_unlabeled, or a csv/tsv/jsonl/parquet file with a label column"
        )
    if fmt == "txt" and text_pair_column is not None:
        raise DataError(
            f"{source}: a .txt file has one document per line, not text pairs; use a "
            "csv/tsv/jsonl/parquet file with two text columns"
        )
    try:
        opened = _open_binary(path)
    except OSError as exc:
        raise DataError(f"{source}: cannot open the file ({exc})") from exc
    with opened as stream:
        if fmt == "parquet":
            rows = _parquet_rows(stream, source, columns)
        elif fmt in ("csv", "tsv"):
            rows = _csv_rows(_decoded_lines(stream, source), source, columns, fmt)
        elif fmt == "jsonl":
            rows = _jsonl_rows(_decoded_lines(stream, source))
        else:
            rows = _txt_rows(_decoded_lines(stream, source), text_column)
        return collect(rows, source)


def _format_of(path: Path, format: str | None) -> str:
    """The explicit ``format``, else the extension under any compression suffix."""
    if format is not None:
        if format not in SUPPORTED_FORMATS:
            raise DataError(
                f"{path}: unknown format {format!r}; supported formats: {list(SUPPORTED_FORMATS)}"
            )
        return format
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes.pop()
    fmt = _EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise DataError(
            f"{path}: cannot tell the format from the file name; expected one of "
            f"{sorted(_EXTENSIONS)} (optionally followed by {list(_COMPRESSIONS)}), or pass "
            f"format= one of {list(SUPPORTED_FORMATS)}"
        )
    return fmt


def _open_binary(path: Path) -> _BinaryFile:
    """Open ``path`` for reading, decompressing by extension so callers never see the codec."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return gzip.open(path, "rb")
    if suffix == ".bz2":
        return bz2.open(path, "rb")
    if suffix == ".xz":
        return lzma.open(path, "rb")
    return path.open("rb")


def _decoded_lines(stream: Iterable[bytes], source: str) -> Iterator[str]:
    """Yield UTF-8 decoded lines (line endings kept, a leading BOM dropped).

    Decoding line by line, instead of through a text wrapper, lets an encoding error name the
    line and the byte offset where it happened.
    """
    offset = 0
    lines = iter(stream)
    for number in itertools.count(1):
        try:
            raw = next(lines, None)
        except (OSError, EOFError, lzma.LZMAError) as exc:  # truncated or not really compressed
            raise DataError(f"{source}: cannot read the file ({exc})") from exc
        if raw is None:
            return
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            where = f"line {number} (byte offset {offset + exc.start}"
            where += " after decompression)" if _is_compressed(source) else ")"
            raise DataError(
                f"{source}, {where}: expected UTF-8 text, found the byte "
                f"0x{raw[exc.start : exc.start + 1].hex()}; re-encode the file as UTF-8 (e.g. "
                "`iconv -f latin1 -t utf-8 IN > OUT`)"
            ) from None
        offset += len(raw)
        yield line


def _is_compressed(source: str) -> bool:
    return source.lower().endswith(_COMPRESSIONS)


def _csv_rows(lines: Iterator[str], source: str, columns: list[str], fmt: str) -> Iterator[_Record]:
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    # strict: an unterminated quote must be an error, not the rest of the file in one field.
    reader = csv.reader(lines, delimiter="\t" if fmt == "tsv" else ",", strict=True)
    header = _next_csv_row(reader, source, "the header")
    if header is None:
        raise DataError(f"{source}: the file is empty; expected a header row naming {columns}")
    _require_columns(source, header, columns)
    positions = [header.index(c) for c in columns]
    number = 0
    while True:
        first_line = reader.line_num + 1
        fields = _next_csv_row(reader, source, f"row {number + 1} (line {first_line})")
        if fields is None:
            return
        if not fields:  # an empty line carries no data (csv.DictReader skips these too)
            continue
        number += 1
        where = f"row {number} (line {first_line})"
        if len(fields) != len(header):
            yield _BadRow(
                where,
                "wrong field count",
                None,
                f"{len(header)} fields like the header {header}",
                f"{len(fields)} fields",
            )
        else:
            yield _Row(where, {c: fields[p] for c, p in zip(columns, positions, strict=True)})


def _next_csv_row(reader: Iterator[list[str]], source: str, where: str) -> list[str] | None:
    """Next parsed row, or None at the end; malformed quoting is a structural error."""
    try:
        return next(reader, None)
    except csv.Error as exc:
        raise DataError(
            f"{source}, {where}: expected well-formed CSV quoting, found a parse error ({exc})"
        ) from None


def _jsonl_rows(lines: Iterator[str]) -> Iterator[_Record]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield _BadRow(
                where,
                "invalid JSON",
                None,
                "a JSON object",
                f"invalid JSON ({exc.msg}, column {exc.colno})",
            )
            continue
        if isinstance(value, dict):
            yield _Row(where, value)
        else:
            yield _BadRow(
                where, "invalid JSON", None, "a JSON object", f"a JSON {type(value).__name__}"
            )


def _txt_rows(lines: Iterator[str], text_column: str) -> Iterator[_Record]:
    """One document per line; blank lines separate nothing and are not documents."""
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield _Row(f"line {number}", {text_column: line.rstrip("\r\n")})


def _parquet_rows(stream: _BinaryFile, source: str, columns: list[str]) -> Iterator[_Record]:
    try:
        import pyarrow
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{source}: reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        parquet = pq.ParquetFile(stream)
        _require_columns(source, parquet.schema_arrow.names, columns)
        table = parquet.read(columns=columns)
    except (pyarrow.ArrowException, OSError) as exc:
        raise DataError(
            f"{source}: expected a Parquet file, found unreadable data ({exc})"
        ) from exc
    values = {c: table.column(c).to_pylist() for c in columns}
    for i in range(table.num_rows):
        yield _Row(f"row {i + 1}", {c: values[c][i] for c in columns})


def _require_columns(source: str, found: Sequence[str], wanted: Sequence[str]) -> None:
    for column in wanted:
        if column not in found:
            raise DataError(
                f"{source}: column {column!r} not found; columns found: {list(found)}; "
                + _COLUMN_HINT
            )


def _imdb_rows(path: Path, text_column: str, label_column: str | None) -> Iterator[_Record]:
    """Rows of an ``aclImdb`` split folder: one review per ``.txt`` file, label = folder name."""
    if (path / "train").is_dir() and (path / "test").is_dir():
        raise DataError(
            f"{path}: this is the aclImdb root; pick a split folder: {path / 'train'} or "
            f"{path / 'test'}"
        )
    has_labeled = (path / "pos").is_dir() and (path / "neg").is_dir()
    if label_column is None and (path / "unsup").is_dir():
        folders = ["unsup"]
    elif has_labeled:
        folders = ["neg", "pos"]
    else:
        raise DataError(
            f"{path}: expected a data file or an aclImdb split folder with pos/ and neg/ "
            f"(or unsup/ for unlabeled text), found a folder with "
            f"{sorted(p.name for p in path.iterdir())[:10]}"
        )
    for folder in folders:
        for file in sorted((path / folder).glob("*.txt")):
            where = f"file {folder}/{file.name}"
            raw = file.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{file}: byte offset {exc.start}: expected UTF-8 text, found the byte "
                    f"0x{raw[exc.start : exc.start + 1].hex()}; re-encode the file as UTF-8"
                ) from None
            values = {text_column: text}
            if label_column is not None:
                values[label_column] = folder
            yield _Row(where, values)


def _hf_rows(spec: str, columns: list[str], label_column: str | None) -> Iterator[_Record]:
    """Rows of ``hf:NAME`` or ``hf:NAME:SPLIT`` (split defaults to ``train``)."""
    parts = spec.removeprefix("hf:").split(":")
    if len(parts) > 2 or not parts[0]:
        raise DataError(f"{spec}: expected hf:NAME or hf:NAME:SPLIT, e.g. hf:imdb:test")
    name, split = parts[0], parts[1] if len(parts) == 2 else "train"
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"{spec}: reading Hugging Face datasets needs the 'datasets' package: "
            "pip install datasets"
        ) from None
    try:
        dataset = datasets.load_dataset(name, split=split)
    except Exception as exc:  # the hub raises many unrelated types (network, auth, not found)
        raise DataError(f"{spec}: cannot load dataset {name!r} split {split!r} ({exc})") from exc
    _require_columns(spec, dataset.column_names, columns)
    values = {c: list(dataset[c]) for c in columns}
    if label_column is not None:
        feature = dataset.features[label_column]
        item = _item_feature(feature)
        if isinstance(feature, datasets.ClassLabel):
            values[label_column] = [_hub_class_name(feature, v) for v in values[label_column]]
        elif isinstance(item, datasets.ClassLabel):  # Sequence(ClassLabel): multilabel
            values[label_column] = [
                None if v is None else [_hub_class_name(item, x) for x in v]
                for v in values[label_column]
            ]
    for i in range(len(values[columns[0]])):
        yield _Row(f"row {i + 1}", {c: values[c][i] for c in columns})


def _item_feature(feature: Any) -> Any:
    """The item feature of a hub list feature (``Sequence(f)``, ``List(f)``, or ``[f]`` in old
    ``datasets`` versions), else None."""
    if isinstance(feature, list):
        return feature[0] if len(feature) == 1 else None
    return getattr(feature, "feature", None)


def _hub_class_name(feature: Any, value: int) -> str | None:
    """The name of a ClassLabel value: ClassLabel stores ints, and -1 is the hub's marker for
    "no label" (e.g. test splits)."""
    return None if value < 0 else feature.int2str(value)


def _collect(
    rows: Iterable[_Record],
    source: str,
    text_columns: list[str],
    label_column: str | None,
    on_bad_row: OnBadRow,
    multilabel: bool,
    label_separator: str | None,
) -> TextDataset:
    """Validate rows into a TextDataset, raising or counting each bad row; with two text
    columns, each row's text is the joined pair."""
    columns = text_columns if label_column is None else [*text_columns, label_column]
    keys_seen: set[str] = set()
    texts: list[str] = []
    labels: list[str] = []
    label_sets: list[tuple[str, ...]] = []
    skipped: Counter[str] = Counter()
    skipped_where: dict[str, list[str]] = {}
    label_kinds: dict[str, tuple[str, object]] = {}  # kind -> first (where, value) of that kind
    for record in rows:
        if isinstance(record, _Row):
            keys_seen.update(record.values)
            checked = _check_row(record, text_columns, label_column, multilabel, label_separator)
        else:
            checked = record
        if isinstance(checked, _BadRow):
            if on_bad_row == "error":
                raise checked.error(source)
            skipped[checked.reason] += 1
            shown = skipped_where.setdefault(checked.reason, [])
            if len(shown) < SKIPPED_SHOWN:
                shown.append(checked.where)
            continue
        sides = [checked.values[column] for column in text_columns]
        texts.append(sides[0] if len(sides) == 1 else join_pair(*sides))
        if label_column is not None and multilabel:
            # Lists and JSON-array strings mix freely, and list items are str()'d, so the
            # one-type rule below does not apply.
            label_sets.append(checked.values[label_column])
        elif label_column is not None:
            assert isinstance(record, _Row)
            raw = record.values[label_column]
            label_kinds.setdefault(_LABEL_KINDS.get(type(raw), "other"), (record.where, raw))
            labels.append(checked.values[label_column])
    if len(label_kinds) > 1:
        examples = " and ".join(
            f"{kind} ({where}: {raw!r})" for kind, (where, raw) in sorted(label_kinds.items())
        )
        raise DataError(
            f"{source}, column {label_column!r}: expected labels of one type, found {examples}; "
            'labels are compared as text, so 1 and "1" would be one class but 1 and 1.0 two: '
            "write the column with one type"
        )
    if keys_seen:  # JSONL rows carry their own keys: a key in no row at all is a wrong column
        _require_columns(source, sorted(keys_seen), columns)
    if not texts:
        detail = (
            f"; all rows were skipped ({_skipped_summary(skipped, skipped_where)})"
            if skipped
            else ""
        )
        raise DataError(f"{source}: expected at least one data row, found none{detail}")
    return TextDataset(
        texts=texts,
        labels=labels if label_column is not None and not multilabel else None,
        source=source,
        skipped=dict(skipped),
        label_sets=label_sets if label_column is not None and multilabel else None,
        skipped_where=skipped_where,
    )


# Label types as a reader of the file would name them; str() of each is the class name.
_LABEL_KINDS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _check_row(
    row: _Row,
    text_columns: list[str],
    label_column: str | None,
    multilabel: bool,
    label_separator: str | None,
) -> _Row | _BadRow:
    """The row with its label as ``str`` (a sorted tuple of them if multilabel), or why it is
    bad. Each text column (both sides of a pair) must hold a non-empty string."""
    for text_column in text_columns:
        text = row.values.get(text_column)
        if text is None or _is_nan(text) or (isinstance(text, str) and not text.strip()):
            found = _describe_missing(row, text_column)
            return _BadRow(row.where, "empty text", text_column, "non-empty text", found)
        if not isinstance(text, str):
            return _BadRow(row.where, "non-string text", text_column, "a string", _describe(text))
        if len(text_columns) > 1 and PAIR_SEPARATOR in text:
            return _BadRow(
                row.where,
                "invalid text",
                text_column,
                "text without the control character U+001F (it separates the sides of a pair)",
                _describe(text),
            )
    if label_column is None:
        return row
    label = row.values.get(label_column)
    if multilabel and label_separator is not None and isinstance(label, str) and not label.strip():
        # Split on the separator, an empty cell is an empty list: a text with no labels.
        return _Row(row.where, {**{c: row.values[c] for c in text_columns}, label_column: ()})
    if label is None or _is_nan(label) or not str(label).strip():
        found = _describe_missing(row, label_column)
        return _BadRow(row.where, "missing label", label_column, "a label", found)
    checked: str | tuple[str, ...] | _BadRow
    if multilabel:
        checked = _label_set(row, label_column, label, label_separator)
    else:
        expected = _label_name_problem(label)
        checked = (
            str(label)
            if expected is None
            else _BadRow(row.where, "invalid label", label_column, expected, _describe(label))
        )
    if isinstance(checked, _BadRow):
        return checked
    return _Row(row.where, {**{c: row.values[c] for c in text_columns}, label_column: checked})


def _label_name_problem(label: object) -> str | None:
    """What a class name should have been, when ``label`` cannot be one; None when it can."""
    if not isinstance(label, str | int | float):  # a list or an object is not a class name
        return "a string or a number"
    if isinstance(label, str) and not _is_unicode(label):
        # JSON can spell a lone surrogate ("\ud800"); no file format downstream can store it
        # as a class name, and it would fail only when the model is saved, hours later.
        return "valid Unicode text"
    return None


def _label_set(
    row: _Row, column: str, cell: object, separator: str | None
) -> tuple[str, ...] | _BadRow:
    """The sorted, de-duplicated label names of a multilabel cell, or why it is bad.

    A string that starts with ``[`` is read as a JSON array, because that is how a list is
    written in a CSV cell; any other string is split on ``separator``, or is one label.
    """
    names = cell
    if isinstance(cell, str) and cell.strip().startswith("["):
        try:
            names = json.loads(cell)
        except json.JSONDecodeError as exc:
            return _BadRow(
                row.where,
                "invalid label",
                column,
                "a JSON array of label names",
                f"invalid JSON ({exc.msg}, column {exc.colno}) in {_describe(cell)}",
            )
    elif isinstance(cell, str) and separator is not None:
        names = [piece.strip() for piece in cell.split(separator) if piece.strip()]
    if not isinstance(names, list | tuple):
        names = [names]
    for position, name in enumerate(names, start=1):
        if isinstance(name, bool) or _is_nan(name) or not str(name).strip():
            expected: str | None = "a non-empty string or a number"
        else:
            expected = _label_name_problem(name)
        if expected is not None:
            return _BadRow(
                row.where,
                "invalid label",
                column,
                f"each label to be {expected}",
                f"{_describe(name)} (item {position} of {_describe(cell)})",
            )
    return tuple(sorted({str(name) for name in names}))


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _describe_missing(row: _Row, column: str) -> str:
    """What stands where a value is missing; an absent key also lists the keys present."""
    if column in row.values:
        return _describe(row.values[column])
    return f"no such key (keys: {sorted(row.values)}); {_COLUMN_HINT}"


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _describe(value: object) -> str:
    """A short, unambiguous rendering of an offending value for error messages."""
    if value is None:
        return "null"
    if _is_nan(value):
        return "NaN"
    shown = repr(value)
    if len(shown) > _FOUND_WIDTH:
        shown = shown[: _FOUND_WIDTH - 3] + "..."
    return shown if isinstance(value, str) else f"{type(value).__name__} {shown}"


# --- helpers for the public functions --------------------------------------------------------


def _labels_of(data: TextDataset, purpose: str) -> list[str]:
    if data.labels is None:
        raise DataError(f"{data.source}: {purpose} needs labels, but this data set is unlabeled")
    return data.labels


def _label_sets_of(data: TextDataset, purpose: str) -> list[tuple[str, ...]]:
    """Every row's labels as a set (one-name sets for single-label data), so that checks that
    only ask "which names does this row have" need one code path for both kinds."""
    if data.label_sets is not None:
        return data.label_sets
    return [(label,) for label in _labels_of(data, purpose)]


def _label_kind(data: TextDataset) -> str:
    if data.is_multilabel:
        return "multilabel"
    return "unlabeled" if data.labels is None else "single-label"


def _hash_strings(digest: "hashlib._Hash", strings: Sequence[str]) -> None:
    digest.update(len(strings).to_bytes(8, "big"))
    for s in strings:
        # surrogatepass: JSON can carry lone surrogates ("\ud800"); they must hash, not crash.
        encoded = s.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)


def _held_out_size(data: TextDataset, test_size: float | int) -> int:
    n = len(data)
    if n < 2:
        raise DataError(f"{data.source}: cannot split {n} row(s); need at least 2")
    if isinstance(test_size, bool) or not isinstance(test_size, int | float):
        raise TypeError(f"test_size must be a fraction or a row count, got {test_size!r}")
    if isinstance(test_size, int):
        if not 1 <= test_size <= n - 1:
            raise DataError(
                f"{data.source}: test_size={test_size} rows must be between 1 and {n - 1}"
            )
        return test_size
    if not 0.0 < test_size < 1.0:
        raise DataError(f"{data.source}: test_size={test_size} must be a fraction in (0, 1)")
    return min(max(round(test_size * n), 1), n - 1)


def _stratified_held_out(labels: Sequence[str], n_held: int, rng: np.random.Generator) -> list[int]:
    """Held-out row indices of single-label data: ``_allocate``'s count drawn from each class."""
    groups: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    classes = sorted(groups)
    counts = np.array([len(groups[c]) for c in classes])
    allocation = _allocate(counts, n_held)
    held: list[int] = []
    for label, n_class_held in zip(classes, allocation, strict=True):
        held.extend(int(i) for i in rng.permutation(groups[label])[:n_class_held])
    return held


def _iterative_held_out(data: TextDataset, n_held: int, rng: np.random.Generator) -> list[int]:
    """Held-out row indices of multilabel data by iterative stratification.

    Each side (0: rest, 1: held out) wants a whole number of rows of each label: ``_allocate``
    shares the held-out side's proportion of all label occurrences out among the labels, with
    at least one row on each side for every label with two or more rows. Repeatedly the label
    with the fewest unplaced rows (the first in class order on a tie) is taken, and each of its
    unplaced rows, in seeded random order, goes to the side that still wants that label most,
    then to the side with more room left, then to a seeded coin flip. A side takes no row that
    would leave it too little room for the labels that still have no row there (rare labels
    come first, so without this they could fill a small side), and a full side takes nothing,
    which keeps the sizes exact. Rows without labels carry no information for the balance, so
    they fill whatever room is left at the end.
    """
    assert data.label_sets is not None
    has = indicator_matrix(data.label_sets, data.classes).astype(bool)
    counts = has.sum(axis=0)
    several = counts >= 2
    occurrences = round(counts.sum() * n_held / len(data))
    occurrences = min(max(occurrences, int(several.sum())), int((counts - 1)[several].sum()))
    held_wanted = np.array(_allocate(counts, occurrences))
    wanted = np.stack([counts - held_wanted, held_wanted])  # [side, label]
    placed = np.zeros(wanted.shape, dtype=int)  # [side, label]
    unplaced = counts.copy()
    room = np.array([len(data) - n_held, n_held])
    side = np.full(len(data), -1)
    while unplaced.any():
        label = int(np.argmin(np.where(unplaced > 0, unplaced, len(data) + 1)))
        for i in rng.permutation(np.flatnonzero(has[:, label] & (side < 0))):
            unplaced -= has[i]
            lacking = (several & ~has[i] & (unplaced > 0) & (placed == 0)).sum(axis=1)
            candidates = np.flatnonzero(room > lacking)
            if not len(candidates):
                candidates = np.flatnonzero(room > 0)
            for preference in (wanted[:, label], room):
                candidates = candidates[preference[candidates] == preference[candidates].max()]
            chosen = int(rng.choice(candidates))
            side[i] = chosen
            room[chosen] -= 1
            wanted[chosen] -= has[i]
            placed[chosen] += has[i]
    side[rng.permutation(np.flatnonzero(side < 0))[: room[1]]] = 1
    return [int(i) for i in np.flatnonzero(side == 1)]


def _allocate(counts: np.ndarray, n_held: int) -> list[int]:
    """Held-out rows per class: proportional, summing to ``n_held``, each side non-empty if
    possible.

    Start from the proportional floor, clipped so every class with two or more rows keeps one
    row on each side; then move single rows toward the exact total, always in the class
    furthest from its proportional share. If the total cannot be met within those soft bounds
    (more classes than held-out rows), the hard bounds 0..count apply instead.
    """
    ideal = n_held * counts / counts.sum()
    soft_low = np.where(counts >= 2, 1, 0)
    soft_high = np.where(counts >= 2, counts - 1, 0)
    allocation = np.clip(np.floor(ideal).astype(int), soft_low, soft_high)
    for low, high in ((soft_low, soft_high), (np.zeros_like(counts), counts)):
        while allocation.sum() < n_held and (allocation < high).any():
            gap = np.where(allocation < high, ideal - allocation, -np.inf)
            allocation[int(np.argmax(gap))] += 1
        while allocation.sum() > n_held and (allocation > low).any():
            excess = np.where(allocation > low, allocation - ideal, -np.inf)
            allocation[int(np.argmax(excess))] -= 1
    return [int(a) for a in allocation]


def read_scores(
    path: str | Path,
    columns: Sequence[str],
    text_column: str = "text",
    text_pair_column: str | None = None,
) -> tuple[list[str], np.ndarray]:
    """Texts and one float per named column and row, e.g. a teacher's logits per class.

    CSV, TSV, JSONL or Parquet (compressed or not), like the data files. Every value must be
    a finite number: a bad one is a :class:`DataError` naming the file, row and column. With
    ``text_pair_column`` each row is a text pair, its sides in the two text columns, and its
    text is the joined pair (:func:`~textdistill.runtime.pairs.join_pair`).
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise DataError(f"{source}: the file does not exist")
    fmt = _format_of(path, None)
    if fmt == "txt":
        raise DataError(f"{source}: expected a csv/tsv/jsonl/parquet file with scores")
    text_columns = [text_column] if text_pair_column is None else [text_column, text_pair_column]
    wanted = [*text_columns, *columns]
    try:
        opened = _open_binary(path)
    except OSError as exc:
        raise DataError(f"{source}: cannot open the file ({exc})") from exc
    texts: list[str] = []
    rows: list[list[float]] = []
    with opened as stream:
        if fmt == "parquet":
            records = _parquet_rows(stream, source, wanted)
        elif fmt in ("csv", "tsv"):
            records = _csv_rows(_decoded_lines(stream, source), source, wanted, fmt)
        else:
            records = _jsonl_rows(_decoded_lines(stream, source))
        for record in records:
            if isinstance(record, _BadRow):
                raise record.error(source)
            missing = [c for c in wanted if c not in record.values]
            if missing:
                raise DataError(f"{source}, {record.where}: missing column(s) {missing}")
            for column in text_columns:
                text = record.values[column]
                if not isinstance(text, str):
                    raise DataError(
                        f"{source}, {record.where}, column {column!r}: expected text, "
                        f"found {_describe(text)}"
                    )
                if text_pair_column is not None and PAIR_SEPARATOR in text:
                    raise DataError(
                        f"{source}, {record.where}, column {column!r}: expected text without "
                        "the control character U+001F (it separates the sides of a pair), "
                        f"found {_describe(text)}"
                    )
            sides = [record.values[column] for column in text_columns]
            texts.append(sides[0] if len(sides) == 1 else join_pair(*sides))
            rows.append([_score(record, c, source) for c in columns])
    if not texts:
        raise DataError(f"{source}: expected at least one data row, found none")
    return texts, np.array(rows, dtype=np.float32).reshape(len(texts), len(columns))


def _score(record: _Row, column: str, source: str) -> float:
    """One finite number of a row, or a DataError naming where it is not."""
    value = record.values[column]
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise DataError(
            f"{source}, {record.where}, column {column!r}: expected a finite number, "
            f"found {_describe(value)}"
        )
    return number

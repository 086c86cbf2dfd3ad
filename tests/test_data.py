"""Tests for textdistill.data: every input format, every bad-input message, splitting, hashing."""

import bz2
import gzip
import json
import lzma
import sys
import types
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textdistill.data import (
    SUPPORTED_FORMATS,
    DataError,
    TextDataset,
    check_known_labels,
    indicator_matrix,
    read_labeled,
    read_unlabeled,
    require_classes,
    stratified_split,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

_COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
}


def write(path: Path, content: str | bytes) -> Path:
    """Write ``content`` to ``path``, compressed according to its extension."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    compress = _COMPRESSORS.get(path.suffix)
    path.write_bytes(compress(data) if compress else data)
    return path


def error_of(call: Callable[[], object]) -> str:
    with pytest.raises(DataError) as caught:
        call()
    return str(caught.value)


def assert_mentions(message: str, *parts: str) -> None:
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


def make_parquet(path: Path, columns: dict[str, list[object]]) -> Path:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table(columns), path)
    return path


# --- formats ---------------------------------------------------------------------------------


def test_csv_reads_texts_and_string_labels(tmp_path: Path) -> None:
    path = write(tmp_path / "train.csv", "text,label\ngood film,1\nbad film,0\n")
    data = read_labeled(path)
    assert data.texts == ["good film", "bad film"]
    assert data.labels == ["1", "0"]
    assert data.source == str(path)
    assert data.skipped == {}
    assert data.classes == ["0", "1"]


def test_csv_handles_quoted_multiline_fields_extra_columns_and_bom(tmp_path: Path) -> None:
    content = '\ufeffid,text,label\n1,"line one\nline two, with comma",pos\n2,"say ""hi""",neg\n'
    data = read_labeled(write(tmp_path / "d.csv", content))
    assert data.texts == ["line one\nline two, with comma", 'say "hi"']
    assert data.labels == ["pos", "neg"]


def test_csv_accepts_a_10_mb_document(tmp_path: Path) -> None:
    big = "word " * 2_000_000
    data = read_unlabeled(write(tmp_path / "big.csv", f"text\n{big}\n"))
    assert data.texts == [big]


def test_csv_ignores_empty_lines(tmp_path: Path) -> None:
    data = read_labeled(write(tmp_path / "d.csv", "text,label\n\na,x\n\n\nb,y\n\n"))
    assert data.texts == ["a", "b"]


def test_tsv(tmp_path: Path) -> None:
    data = read_labeled(write(tmp_path / "d.tsv", 'label\ttext\npos\ta, b and c\nneg\t"q"\n'))
    assert data.texts == ["a, b and c", "q"]
    assert data.labels == ["pos", "neg"]


def test_jsonl_ignores_blank_lines_and_stringifies_labels(tmp_path: Path) -> None:
    # Labels of one type become their str(); mixed types are an error (tests/test_bad_input.py).
    lines = [{"text": "a", "label": 1}, {"text": "b", "label": 0}, {"text": "c", "label": 1}]
    content = "\n".join(json.dumps(x) for x in lines[:2]) + "\n\n   \n" + json.dumps(lines[2])
    data = read_labeled(write(tmp_path / "d.jsonl", content))
    assert data.texts == ["a", "b", "c"]
    assert data.labels == ["1", "0", "1"]


def test_parquet_reads_only_the_needed_columns(tmp_path: Path) -> None:
    path = make_parquet(
        tmp_path / "d.parquet", {"review": ["x", "y"], "stars": [5, 1], "other": [1.0, 2.0]}
    )
    data = read_labeled(path, text_column="review", label_column="stars")
    assert data.texts == ["x", "y"]
    assert data.labels == ["5", "1"]


def test_parquet_through_compression(tmp_path: Path) -> None:
    plain = make_parquet(tmp_path / "plain.parquet", {"text": ["x"], "label": ["a"]})
    packed = write(tmp_path / "d.parquet.gz", plain.read_bytes())
    assert read_labeled(packed).texts == ["x"]


def test_txt_is_one_document_per_line(tmp_path: Path) -> None:
    data = read_unlabeled(write(tmp_path / "d.txt", "first doc\r\nsecond doc\n\n<br />third\n"))
    assert data.texts == ["first doc", "second doc", "<br />third"]
    assert data.labels is None


def test_txt_cannot_be_labeled(tmp_path: Path) -> None:
    path = write(tmp_path / "d.txt", "a\n")
    assert_mentions(error_of(lambda: read_labeled(path)), str(path), "read_unlabeled")


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_compression_by_extension(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path / f"imdb_train.csv{suffix}", "text,label\nnice <br />film,pos\n")
    assert read_labeled(path).texts == ["nice <br />film"]
    jsonl = write(tmp_path / f"d.jsonl{suffix}", '{"text": "t", "label": "l"}\n')
    assert read_labeled(jsonl).labels == ["l"]


def test_explicit_format_overrides_the_extension(tmp_path: Path) -> None:
    path = write(tmp_path / "export.dat", "label\ttext\npos\thello\n")
    assert read_labeled(path, format="tsv").texts == ["hello"]


def test_unknown_extension_lists_supported_formats(tmp_path: Path) -> None:
    path = write(tmp_path / "d.xlsx", "x")
    assert_mentions(error_of(lambda: read_labeled(path)), "d.xlsx", ".csv", ".parquet", "format=")


def test_unknown_format_argument(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "text\na\n")
    message = error_of(lambda: read_unlabeled(path, format="excel"))
    assert_mentions(message, "'excel'", *SUPPORTED_FORMATS)


def test_column_flags(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "sentence,sentiment\nfine,positive\n")
    data = read_labeled(path, text_column="sentence", label_column="sentiment")
    assert (data.texts, data.labels) == (["fine"], ["positive"])
    assert read_unlabeled(path, text_column="sentence").texts == ["fine"]


def test_unlabeled_read_ignores_the_label_column(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "text,label\na,\nb,x\n")
    data = read_unlabeled(path)
    assert data.texts == ["a", "b"]
    assert data.labels is None


# --- bad input -------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    assert_mentions(error_of(lambda: read_labeled(path)), str(path), "does not exist")


def test_directory_that_is_not_aclimdb(tmp_path: Path) -> None:
    (tmp_path / "stuff").mkdir()
    assert_mentions(error_of(lambda: read_labeled(tmp_path)), str(tmp_path), "pos/", "neg/")


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.csv", "")
    assert_mentions(error_of(lambda: read_labeled(path)), "empty.csv", "empty", "header")


@pytest.mark.parametrize(
    ("name", "content"),
    [("h.csv", "text,label\n"), ("e.jsonl", "\n\n"), ("e.txt", "")],
)
def test_no_data_rows(tmp_path: Path, name: str, content: str) -> None:
    path = write(tmp_path / name, content)
    assert_mentions(error_of(lambda: read_unlabeled(path)), name, "at least one data row")


def test_missing_column_lists_columns_and_suggests_flags(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "review,sentiment\nx,pos\n")
    message = error_of(lambda: read_labeled(path, text_column="review"))
    assert_mentions(message, "d.csv", "'label'", "'review'", "'sentiment'", "--label-column")
    message = error_of(lambda: read_unlabeled(path))
    assert_mentions(message, "'text'", "--text-column")


def test_missing_parquet_column(tmp_path: Path) -> None:
    path = make_parquet(tmp_path / "d.parquet", {"body": ["x"]})
    assert_mentions(error_of(lambda: read_unlabeled(path)), "d.parquet", "'text'", "'body'")


def test_jsonl_key_absent_from_every_row_is_a_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", '{"body": "x", "label": "a"}\n{"body": "y"}\n')
    message = error_of(lambda: read_labeled(path, on_bad_row="skip"))
    assert_mentions(message, "d.jsonl", "'text'", "'body'", "--text-column")
    message = error_of(lambda: read_labeled(path))
    assert_mentions(message, "d.jsonl", "line 1", "'text'", "no such key", "'body'")


@pytest.mark.parametrize("text", ["", "   ", "\t"])
def test_empty_or_whitespace_text(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "d.csv", f"text,label\nok,a\n{text},b\n")
    message = error_of(lambda: read_labeled(path))
    assert_mentions(message, "d.csv", "row 2", "line 3", "column 'text'", "non-empty text")


def test_null_and_nan_text_in_jsonl(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", '{"text": "ok"}\n{"text": NaN}\n{"text": null}\n')
    message = error_of(lambda: read_unlabeled(path))
    assert_mentions(message, "d.jsonl", "line 2", "column 'text'", "NaN")
    assert read_unlabeled(path, on_bad_row="skip").skipped == {"empty text": 2}


def test_null_text_in_parquet(tmp_path: Path) -> None:
    path = make_parquet(tmp_path / "d.parquet", {"text": ["ok", None], "label": ["a", "b"]})
    message = error_of(lambda: read_labeled(path))
    assert_mentions(message, "d.parquet", "row 2", "column 'text'", "null")


def test_non_string_text(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", '{"text": 42, "label": "a"}\n')
    message = error_of(lambda: read_labeled(path))
    assert_mentions(message, "d.jsonl", "line 1", "column 'text'", "a string", "int 42")


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("d.csv", "text,label\nok,a\nno label,\n", "row 2"),
        ("d.csv", "text,label\nok,a\nblank label,  \n", "row 2"),
        ("d.jsonl", '{"text": "ok", "label": "a"}\n{"text": "x", "label": null}\n', "line 2"),
        ("d.jsonl", '{"text": "ok", "label": "a"}\n\n{"text": "x"}\n', "line 3"),
    ],
)
def test_missing_label(tmp_path: Path, name: str, content: str, where: str) -> None:
    path = write(tmp_path / name, content)
    message = error_of(lambda: read_labeled(path))
    assert_mentions(message, name, where, "column 'label'", "expected a label")


def test_nan_label_in_parquet(tmp_path: Path) -> None:
    path = make_parquet(tmp_path / "d.parquet", {"text": ["a", "b"], "label": [1.0, float("nan")]})
    message = error_of(lambda: read_labeled(path))
    assert_mentions(message, "d.parquet", "row 2", "column 'label'", "NaN")


def test_non_utf8_bytes_name_line_and_offset(tmp_path: Path) -> None:
    path = write(tmp_path / "latin.csv", b"text,label\nok,a\ncaf\xe9,b\n")
    message = error_of(lambda: read_labeled(path))
    assert_mentions(message, "latin.csv", "line 3", "byte offset 19", "0xe9", "UTF-8")


def test_non_utf8_in_compressed_file_is_structural_even_when_skipping(tmp_path: Path) -> None:
    path = write(tmp_path / "d.txt.gz", b"ok\n\xff\xfe\n")
    message = error_of(lambda: read_unlabeled(path, on_bad_row="skip"))
    assert_mentions(message, "d.txt.gz", "line 2", "after decompression", "UTF-8")


def test_wrong_field_count(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "text,label\nok,a\nx,b,extra\n")
    message = error_of(lambda: read_labeled(path))
    assert_mentions(message, "d.csv", "row 2", "2 fields", "3 fields")


def test_malformed_quoting_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", 'text\nok\n"never closed\nmore\n')
    message = error_of(lambda: read_unlabeled(path, on_bad_row="skip"))
    assert_mentions(message, "d.csv", "row 2", "quoting")


@pytest.mark.parametrize("line", ['{"text": "x", ', '["a", "b"]'])
def test_invalid_json_line(tmp_path: Path, line: str) -> None:
    path = write(tmp_path / "d.jsonl", '{"text": "ok"}\n' + line + "\n")
    message = error_of(lambda: read_unlabeled(path))
    assert_mentions(message, "d.jsonl", "line 2", "a JSON object")


def test_not_gzip_despite_the_name(tmp_path: Path) -> None:
    path = tmp_path / "d.csv.gz"
    path.write_text("text\nplain\n")
    assert_mentions(error_of(lambda: read_unlabeled(path)), "d.csv.gz", "cannot read")


def test_corrupt_parquet(tmp_path: Path) -> None:
    path = write(tmp_path / "d.parquet", b"not parquet at all")
    assert_mentions(error_of(lambda: read_unlabeled(path)), "d.parquet", "Parquet")


def test_invalid_on_bad_row(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "text\na\n")
    with pytest.raises(ValueError, match="on_bad_row"):
        read_unlabeled(path, on_bad_row="ignore")  # type: ignore[arg-type]


# --- skipping bad rows -----------------------------------------------------------------------


def test_skip_counts_every_bad_row_by_reason(tmp_path: Path) -> None:
    content = "text,label\ngood,a\n,b\n  ,b\nno label,\nx,y,z\nalso good,b\n"
    data = read_labeled(write(tmp_path / "d.csv", content), on_bad_row="skip")
    assert data.texts == ["good", "also good"]
    assert data.labels == ["a", "b"]
    assert data.skipped == {"empty text": 2, "missing label": 1, "wrong field count": 1}


def test_skip_counts_invalid_json(tmp_path: Path) -> None:
    content = '{"text": "a"}\nnot json\n[1]\n{"text": ""}\n'
    data = read_unlabeled(write(tmp_path / "d.jsonl", content), on_bad_row="skip")
    assert data.texts == ["a"]
    assert data.skipped == {"invalid JSON": 2, "empty text": 1}


def test_skip_still_fails_when_nothing_is_left(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "text,label\n,a\nx,\n")
    message = error_of(lambda: read_labeled(path, on_bad_row="skip"))
    assert_mentions(message, "d.csv", "all rows were skipped", "empty text", "missing label")


def test_skip_still_fails_on_structural_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "body,label\nx,a\n")
    assert_mentions(error_of(lambda: read_labeled(path, on_bad_row="skip")), "'text'")
    missing = tmp_path / "missing.csv"
    assert_mentions(error_of(lambda: read_labeled(missing, on_bad_row="skip")), "missing.csv")


# --- aclImdb layout --------------------------------------------------------------------------


def make_aclimdb(root: Path, *, unsup: bool = True) -> Path:
    """A tiny aclImdb tree: two reviews per class per split, plus unsup/ under train."""
    files = {
        "train/pos/10_9.txt": "great<br />film",
        "train/pos/2_8.txt": "good",
        "train/neg/0_1.txt": "awful",
        "train/neg/1_2.txt": "bad",
        "test/pos/0_10.txt": "superb",
        "test/neg/0_3.txt": "dull",
    }
    if unsup:
        files |= {"train/unsup/0_0.txt": "unsure", "train/unsup/1_0.txt": "hmm"}
    for name, text in files.items():
        path = root / "aclImdb" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "aclImdb"


def test_aclimdb_split_is_labeled_by_folder_in_sorted_order(tmp_path: Path) -> None:
    root = make_aclimdb(tmp_path)
    train = read_labeled(root / "train")
    assert train.texts == ["awful", "bad", "great<br />film", "good"]
    assert train.labels == ["neg", "neg", "pos", "pos"]
    test = read_labeled(root / "test")
    assert (test.texts, test.labels) == (["dull", "superb"], ["neg", "pos"])


def test_aclimdb_root_asks_for_a_split(tmp_path: Path) -> None:
    root = make_aclimdb(tmp_path)
    assert_mentions(error_of(lambda: read_labeled(root)), "train", "test", "pick")
    assert_mentions(error_of(lambda: read_unlabeled(root)), "train", "test", "pick")


def test_aclimdb_unlabeled_reads_unsup(tmp_path: Path) -> None:
    root = make_aclimdb(tmp_path)
    data = read_unlabeled(root / "train")
    assert data.texts == ["unsure", "hmm"]
    assert data.labels is None


def test_aclimdb_unlabeled_without_unsup_reads_pos_and_neg(tmp_path: Path) -> None:
    root = make_aclimdb(tmp_path, unsup=False)
    assert read_unlabeled(root / "train").texts == ["awful", "bad", "great<br />film", "good"]


def test_aclimdb_bad_review_file(tmp_path: Path) -> None:
    root = make_aclimdb(tmp_path)
    (root / "test" / "pos" / "1_7.txt").write_text("  \n")
    message = error_of(lambda: read_labeled(root / "test"))
    assert_mentions(message, "test", "pos/1_7.txt", "non-empty text")
    (root / "test" / "pos" / "1_7.txt").write_bytes(b"ol\xe9")
    assert_mentions(error_of(lambda: read_labeled(root / "test")), "1_7.txt", "byte offset 2")


# --- Hugging Face ----------------------------------------------------------------------------


class FakeClassLabel:
    def __init__(self, names: list[str]) -> None:
        self.names = names

    def int2str(self, value: int) -> str:
        return self.names[value]


class FakeHubDataset:
    def __init__(self, columns: dict[str, list[object]], features: dict[str, object]) -> None:
        self.columns = columns
        self.column_names = list(columns)
        self.features = features

    def __getitem__(self, column: str) -> list[object]:
        return self.columns[column]


def install_fake_datasets(
    monkeypatch: pytest.MonkeyPatch,
    calls: list[tuple[str, str]],
    dataset: FakeHubDataset | None = None,
) -> None:
    """Make ``import datasets`` return a stand-in whose load_dataset returns ``dataset``
    (by default a small single-label one) and records the calls."""

    def load_dataset(name: str, split: str) -> FakeHubDataset:
        calls.append((name, split))
        return dataset or FakeHubDataset(
            {"text": ["fine", "poor", "unknown"], "label": [1, 0, -1]},
            {"text": object(), "label": FakeClassLabel(["neg", "pos"])},
        )

    module = types.ModuleType("datasets")
    module.load_dataset = load_dataset  # type: ignore[attr-defined]
    module.ClassLabel = FakeClassLabel  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", module)


def test_hf_source_converts_class_labels_to_names(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    install_fake_datasets(monkeypatch, calls)
    data = read_labeled("hf:imdb:test", on_bad_row="skip")
    assert (data.texts, data.labels) == (["fine", "poor"], ["pos", "neg"])
    assert data.skipped == {"missing label": 1}  # -1 is the hub's "no label"
    assert data.source == "hf:imdb:test"
    assert read_unlabeled("hf:user/corpus").texts == ["fine", "poor", "unknown"]
    assert calls == [("imdb", "test"), ("user/corpus", "train")]
    assert_mentions(error_of(lambda: read_labeled("hf:imdb", text_column="x")), "'x'", "'text'")


def test_hf_source_without_datasets_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    assert_mentions(error_of(lambda: read_labeled("hf:imdb")), "hf:imdb", "pip install datasets")


def test_hf_source_malformed() -> None:
    assert_mentions(error_of(lambda: read_labeled("hf:a:b:c")), "hf:NAME:SPLIT")


# --- TextDataset -----------------------------------------------------------------------------


def labeled(texts: list[str], labels: list[str], source: str = "mem") -> TextDataset:
    return TextDataset(texts=texts, labels=labels, source=source)


def test_dataset_helpers() -> None:
    data = TextDataset(["a", "b", "c"], ["x", "y", "x"], "mem", skipped={"empty text": 1})
    assert len(data) == 3
    assert data.subset([2, 0]).texts == ["c", "a"]
    assert data.subset([2, 0]).labels == ["x", "x"]
    assert data.head(2).texts == ["a", "b"]
    assert data.head(10).texts == ["a", "b", "c"]
    assert data.without_labels().labels is None
    assert data.without_labels().texts == data.texts
    assert data.head(1).skipped == data.without_labels().skipped == {"empty text": 1}
    with pytest.raises(IndexError):
        data.subset([3])
    with pytest.raises(IndexError):
        data.subset([-1])
    with pytest.raises(ValueError, match="2 labels"):
        TextDataset(texts=["a"], labels=["x", "y"], source="mem")
    assert_mentions(error_of(lambda: data.without_labels().classes), "mem", "unlabeled")


def test_content_hash_is_stable_and_ignores_the_source() -> None:
    first = labeled(["a", "b"], ["x", "y"], source="one.csv")
    second = labeled(["a", "b"], ["x", "y"], source="copy/of/one.csv")
    assert first.content_hash() == second.content_hash()
    assert len(first.content_hash()) == 64
    assert (
        first.content_hash() == "ca3c86ae24f1911a7d779879d6c156ebfe4a1e0b36751a515eab7fa719467ebb"
    )


@pytest.mark.parametrize(
    "other",
    [
        labeled(["a", "c"], ["x", "y"]),  # a text changed
        labeled(["a", "b"], ["x", "x"]),  # a label changed
        labeled(["b", "a"], ["y", "x"]),  # order changed
        labeled(["ab", ""], ["x", "y"]),  # same characters, other boundaries
        labeled(["a"], ["x"]),  # a row fewer
        TextDataset(texts=["a", "b"], labels=None, source="mem"),  # labels dropped
    ],
)
def test_content_hash_changes_with_content(other: TextDataset) -> None:
    assert labeled(["a", "b"], ["x", "y"]).content_hash() != other.content_hash()


def test_content_hash_of_lone_surrogates() -> None:
    assert TextDataset(texts=["\ud800"], labels=None, source="m").content_hash()


# --- splitting -------------------------------------------------------------------------------


def imbalanced() -> TextDataset:
    labels = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    return labeled([f"t{i}" for i in range(100)], labels)


def test_split_keeps_proportions_and_is_disjoint() -> None:
    data = imbalanced()
    rest, held = stratified_split(data, 0.2, seed=3)
    assert Counter(held.labels) == {"a": 12, "b": 6, "c": 2}
    assert Counter(rest.labels) == {"a": 48, "b": 24, "c": 8}
    assert set(rest.texts).isdisjoint(held.texts)
    assert sorted(rest.texts + held.texts) == sorted(data.texts)
    assert held.texts == sorted(held.texts, key=data.texts.index)  # original order kept


def test_split_is_deterministic_per_seed() -> None:
    data = imbalanced()
    first = stratified_split(data, 25, seed=7)
    again = stratified_split(data, 25, seed=7)
    other = stratified_split(data, 25, seed=8)
    assert first[1].texts == again[1].texts
    assert first[1].texts != other[1].texts
    assert len(first[1]) == 25


def test_split_keeps_every_class_on_both_sides() -> None:
    labels = ["big"] * 50 + ["r1"] * 2 + ["r2"] * 3
    data = labeled([str(i) for i in range(55)], labels)
    rest, held = stratified_split(data, 5)
    assert set(rest.classes) == set(held.classes) == {"big", "r1", "r2"}


def test_split_leaves_a_singleton_class_in_rest() -> None:
    data = labeled(["a", "b", "c", "d", "e"], ["x", "x", "x", "x", "solo"])
    rest, held = stratified_split(data, 0.4)
    assert "solo" in rest.labels  # type: ignore[operator]
    assert len(held) == 2


def test_split_too_small_for_every_class_still_returns_the_requested_size() -> None:
    data = labeled([str(i) for i in range(9)], ["a", "a", "a", "b", "b", "b", "c", "c", "c"])
    rest, held = stratified_split(data, 1)
    assert len(held) == 1
    assert len(rest) == 8


@pytest.mark.parametrize("size", [0, 10, 0.0, 1.0, -0.5])
def test_split_rejects_impossible_sizes(size: float) -> None:
    data = labeled([str(i) for i in range(10)], ["a", "b"] * 5)
    assert_mentions(error_of(lambda: stratified_split(data, size)), "mem", "test_size")


def test_split_rejects_bool_size_and_unlabeled_data() -> None:
    data = labeled(["a", "b"], ["x", "y"])
    with pytest.raises(TypeError):
        stratified_split(data, True)
    assert_mentions(error_of(lambda: stratified_split(data.without_labels(), 1)), "unlabeled")


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=5),
    fraction=st.floats(min_value=0.05, max_value=0.95),
    seed=st.integers(min_value=0, max_value=2**31),
)
def test_split_properties(counts: list[int], fraction: float, seed: int) -> None:
    labels = [f"c{k}" for k, count in enumerate(counts) for _ in range(count)]
    if len(labels) < 2:
        return
    data = labeled([str(i) for i in range(len(labels))], labels)
    rest, held = stratified_split(data, fraction, seed=seed)
    n_held = min(max(round(fraction * len(data)), 1), len(data) - 1)
    assert len(held) == n_held
    assert sorted(rest.texts + held.texts, key=int) == data.texts
    multi = {f"c{k}" for k, count in enumerate(counts) if count >= 2}
    feasible = len(multi) <= n_held <= sum(c - 1 for c in counts if c >= 2)
    if feasible:
        assert multi <= set(held.classes)
        assert multi <= set(rest.classes)
    assert set(rest.classes) == {f"c{k}" for k in range(len(counts))} or not feasible


# --- label checks ----------------------------------------------------------------------------


def test_require_classes() -> None:
    require_classes(labeled(["a", "b"], ["x", "y"]))
    message = error_of(lambda: require_classes(labeled(["a", "b"], ["x", "x"], "one.csv")))
    assert_mentions(message, "one.csv", "at least 2 classes", "['x']")
    assert_mentions(error_of(lambda: require_classes(labeled(["a"], ["x"]), 3)), "at least 3")


def test_check_known_labels() -> None:
    train = labeled(["a", "b"], ["neg", "pos"], "train.csv")
    check_known_labels(train, labeled(["c"], ["pos"], "test.csv"))
    other = labeled(["c", "d", "e"], ["pos", "positive", "neutral"], "test.csv")
    message = error_of(lambda: check_known_labels(train, other))
    assert_mentions(message, "test.csv", "row 2", "'positive'", "['neg', 'pos']", "train.csv")


# --- multilabel ------------------------------------------------------------------------------


def multilabeled(
    texts: list[str], label_sets: list[tuple[str, ...]], source: str = "mem"
) -> TextDataset:
    return TextDataset(texts=texts, labels=None, source=source, label_sets=label_sets)


def test_multilabel_jsonl_lists_scalars_empty_sets_and_duplicates(tmp_path: Path) -> None:
    rows = [
        {"text": "a", "label": ["sports", "politics"]},
        {"text": "b", "label": []},
        {"text": "c", "label": ["x", "sports", "x"]},
        {"text": "d", "label": "sports"},
        {"text": "e", "label": [1, 2.5]},
        {"text": "f", "label": 7},
    ]
    path = write(tmp_path / "d.jsonl", "\n".join(json.dumps(row) for row in rows))
    data = read_labeled(path, multilabel=True)
    assert data.is_multilabel
    assert data.labels is None
    assert data.label_sets == [
        ("politics", "sports"),
        (),
        ("sports", "x"),
        ("sports",),
        ("1", "2.5"),
        ("7",),
    ]
    assert data.classes == ["1", "2.5", "7", "politics", "sports", "x"]


def test_multilabel_csv_cells_with_json_arrays_through_gzip(tmp_path: Path) -> None:
    content = 'text,labels\nfirst,"[""b"", ""a, b"", ""b""]"\nsecond,[]\nthird, [3] \nfourth,b\n'
    data = read_labeled(
        write(tmp_path / "d.csv.gz", content), label_column="labels", multilabel=True
    )
    assert data.texts == ["first", "second", "third", "fourth"]
    assert data.label_sets == [("a, b", "b"), (), ("3",), ("b",)]


def test_multilabel_csv_with_a_separator(tmp_path: Path) -> None:
    content = "text,label\na,sports| politics\nb,news||sports |\nc,news\nd,\ne, \n"
    path = write(tmp_path / "d.csv", content)
    data = read_labeled(path, multilabel=True, label_separator="|")
    # An empty cell splits into no labels: a text about none of them, as a JSON [] is.
    assert data.label_sets == [("politics", "sports"), ("news", "sports"), ("news",), (), ()]
    # Without a separator the whole cell is one label name, and an empty one is missing.
    assert read_labeled(path, multilabel=True, on_bad_row="skip").label_sets == [
        ("sports| politics",),
        ("news||sports |",),
        ("news",),
    ]


def test_multilabel_parquet_list_columns(tmp_path: Path) -> None:
    names = make_parquet(
        tmp_path / "names.parquet",
        {"text": ["w", "x", "y", "z"], "label": [["b", "a"], [], ["b", "b"], None]},
    )
    data = read_labeled(names, multilabel=True, on_bad_row="skip")
    assert data.texts == ["w", "x", "y"]
    assert data.label_sets == [("a", "b"), (), ("b",)]
    assert data.skipped == {"missing label": 1}
    numbers = make_parquet(tmp_path / "ids.parquet", {"text": ["x", "y"], "label": [[3, 1], [1]]})
    assert read_labeled(numbers, multilabel=True).label_sets == [("1", "3"), ("1",)]


def test_single_label_reading_still_refuses_lists(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", '{"text": "x", "label": ["a", "b"]}\n')
    message = error_of(lambda: read_labeled(path))
    assert_mentions(message, "d.jsonl", "line 1", "column 'label'", "a string or a number")
    csv_path = write(tmp_path / "d.csv", 'text,label\nx,"[""a""]"\n')
    assert read_labeled(csv_path).labels == ['["a"]']


class FakeSequence:
    def __init__(self, feature: object) -> None:
        self.feature = feature


def test_multilabel_hf_sequence_of_class_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    hub = FakeHubDataset(
        {"text": ["x", "y", "z"], "labels": [[2, 0], [], None]},
        {"text": object(), "labels": FakeSequence(FakeClassLabel(["anger", "joy", "love"]))},
    )
    install_fake_datasets(monkeypatch, [], hub)
    data = read_labeled("hf:go_emotions", label_column="labels", multilabel=True, on_bad_row="skip")
    assert data.label_sets == [("anger", "love"), ()]
    assert data.skipped == {"missing label": 1}


def test_multilabel_bad_json_array_in_a_csv_cell(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", 'text,labels\nok,[]\nbad,"[""a"", "\n')
    message = error_of(lambda: read_labeled(path, label_column="labels", multilabel=True))
    assert_mentions(
        message, "d.csv", "row 2 (line 3)", "column 'labels'", "a JSON array", "invalid JSON"
    )


@pytest.mark.parametrize(
    ("cell", "found"),
    [
        ("[true]", "bool True"),
        ("[null]", "null"),
        ('[["a"]]', "list ['a']"),
        ('[{"a": 1}]', "dict {'a': 1}"),
        ('["a", " "]', "' ' (item 2"),
        ("[NaN]", "NaN"),
        ("true", "bool True"),
    ],
)
def test_multilabel_invalid_label_items(tmp_path: Path, cell: str, found: str) -> None:
    lines = ['{"text": "ok", "label": []}', f'{{"text": "x", "label": {cell}}}']
    path = write(tmp_path / "d.jsonl", "\n".join(lines))
    message = error_of(lambda: read_labeled(path, multilabel=True))
    assert_mentions(message, "d.jsonl", "line 2", "column 'label'", "each label to be", found)


def test_multilabel_skip_counts_bad_rows(tmp_path: Path) -> None:
    content = 'text,label\ngood,"[""a""]"\nblank,\nbroken,[a\nbool,[true]\nalso good,a\n'
    data = read_labeled(write(tmp_path / "d.csv", content), multilabel=True, on_bad_row="skip")
    assert data.texts == ["good", "also good"]
    assert data.label_sets == [("a",), ("a",)]
    assert data.skipped == {"missing label": 1, "invalid label": 2}


def test_label_separator_needs_multilabel(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "text,label\na,x|y\n")
    with pytest.raises(ValueError, match="multilabel=True"):
        read_labeled(path, label_separator="|")
    with pytest.raises(ValueError, match="non-empty"):
        read_labeled(path, multilabel=True, label_separator="")


@pytest.mark.parametrize(
    ("labels", "label_sets", "match"),
    [
        (["x"], [("x",)], "found both"),
        (None, [("x",), ()], "2 label sets"),
        (None, [("b", "a")], "row 1.*sorted tuple"),
        (None, [("a", "a")], "distinct"),
        (None, [["a"]], "tuple"),
        (None, [(1,)], "str"),
    ],
)
def test_multilabel_dataset_refuses_malformed_label_sets(
    labels: list[str] | None, label_sets: list[tuple[str, ...]], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        TextDataset(texts=["t"], labels=labels, source="mem", label_sets=label_sets)


def test_multilabel_dataset_helpers() -> None:
    data = multilabeled(["a", "b", "c"], [("x",), (), ("x", "y")])
    assert data.is_multilabel
    assert not labeled(["a"], ["x"]).is_multilabel
    assert data.classes == ["x", "y"]
    assert data.subset([2, 0]).label_sets == [("x", "y"), ("x",)]
    assert data.subset([2, 0]).labels is None
    assert data.head(2).label_sets == [("x",), ()]
    bare = data.without_labels()
    assert (bare.labels, bare.label_sets, bare.is_multilabel) == (None, None, False)
    assert bare.content_hash() == TextDataset(["a", "b", "c"], None, "mem").content_hash()


def test_multilabel_content_hash_is_stable_and_ignores_the_source() -> None:
    first = multilabeled(["a", "b"], [("x", "y"), ()], source="one.jsonl")
    second = multilabeled(["a", "b"], [("x", "y"), ()], source="elsewhere/one.jsonl")
    assert first.content_hash() == second.content_hash()
    assert (
        first.content_hash() == "917ead29b7b39d5d373bb1a1b5e11592c2eee9d06dd213efed7d90459dd4793e"
    )


@pytest.mark.parametrize(
    "other",
    [
        labeled(["a", "b"], ["x", "y"]),  # single-label with the same names
        TextDataset(texts=["a", "b"], labels=None, source="mem"),  # unlabeled
        multilabeled(["a", "b"], [("x", "y"), ("z",)]),  # a label set changed
        multilabeled(["a", "b"], [("x",), ("y",)]),  # same names, other rows
        multilabeled(["a", "b"], [("xy",), ()]),  # same characters, other boundaries
    ],
)
def test_multilabel_content_hash_changes_with_content(other: TextDataset) -> None:
    assert multilabeled(["a", "b"], [("x", "y"), ()]).content_hash() != other.content_hash()


def test_multilabel_content_hash_differs_from_single_label_with_one_label_per_row() -> None:
    single = labeled(["a", "b"], ["x", "y"])
    assert multilabeled(["a", "b"], [("x",), ("y",)]).content_hash() != single.content_hash()


def rare_label_data() -> TextDataset:
    """100 rows: "even" on half, "fifth" on a fifth, "rare" on two rows, some with none."""
    label_sets = []
    for i in range(100):
        names = {"even"} if i % 2 == 0 else set()
        names |= {"fifth"} if i % 5 == 0 else set()
        names |= {"rare"} if i in (3, 10) else set()
        label_sets.append(tuple(sorted(names)))
    return multilabeled([f"t{i}" for i in range(100)], label_sets)


def label_counts(data: TextDataset) -> Counter[str]:
    assert data.label_sets is not None
    return Counter(name for names in data.label_sets for name in names)


def test_multilabel_split_keeps_proportions_sizes_and_a_rare_label_on_both_sides() -> None:
    data = rare_label_data()
    rest, held = stratified_split(data, 0.2, seed=3)
    assert (len(rest), len(held)) == (80, 20)
    assert rest.is_multilabel and held.is_multilabel
    total, in_held, in_rest = label_counts(data), label_counts(held), label_counts(rest)
    assert in_held["rare"] == in_rest["rare"] == 1
    for name in ("even", "fifth"):  # proportional to within one row
        assert abs(in_held[name] - 0.2 * total[name]) <= 1
        assert in_held[name] + in_rest[name] == total[name]
    assert set(rest.texts).isdisjoint(held.texts)
    assert sorted(rest.texts + held.texts) == sorted(data.texts)
    assert held.texts == sorted(held.texts, key=data.texts.index)  # original order kept
    assert rest.texts == sorted(rest.texts, key=data.texts.index)


def test_multilabel_split_is_deterministic_per_seed() -> None:
    data = rare_label_data()
    first = stratified_split(data, 25, seed=7)
    again = stratified_split(data, 25, seed=7)
    other = stratified_split(data, 25, seed=8)
    assert first[1].texts == again[1].texts
    assert first[1].label_sets == again[1].label_sets
    assert first[1].texts != other[1].texts
    assert len(first[1]) == 25


@settings(max_examples=60, deadline=None)
@given(
    label_sets=st.lists(
        st.frozensets(st.sampled_from(["a", "b", "c", "d"]), max_size=3), min_size=2, max_size=30
    ),
    fraction=st.floats(min_value=0.05, max_value=0.95),
    seed=st.integers(min_value=0, max_value=2**31),
)
def test_multilabel_split_properties(
    label_sets: list[frozenset[str]], fraction: float, seed: int
) -> None:
    data = multilabeled(
        [str(i) for i in range(len(label_sets))], [tuple(sorted(s)) for s in label_sets]
    )
    rest, held = stratified_split(data, fraction, seed=seed)
    n_held = min(max(round(fraction * len(data)), 1), len(data) - 1)
    assert len(held) == n_held
    assert sorted(rest.texts + held.texts, key=int) == data.texts
    assert stratified_split(data, fraction, seed=seed)[1].texts == held.texts


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=5),
    fraction=st.floats(min_value=0.05, max_value=0.95),
    seed=st.integers(min_value=0, max_value=2**31),
)
def test_multilabel_split_of_one_label_per_row_keeps_every_label_on_both_sides(
    counts: list[int], fraction: float, seed: int
) -> None:
    names = [f"c{k}" for k, count in enumerate(counts) for _ in range(count)]
    if len(names) < 2:
        return
    data = multilabeled([str(i) for i in range(len(names))], [(name,) for name in names])
    rest, held = stratified_split(data, fraction, seed=seed)
    n_held = len(held)
    multi = {f"c{k}" for k, count in enumerate(counts) if count >= 2}
    if len(multi) <= n_held <= sum(c - 1 for c in counts if c >= 2):
        assert multi <= set(held.classes)
        assert multi <= set(rest.classes)


def test_require_classes_for_multilabel_data() -> None:
    require_classes(multilabeled(["a", "b"], [("spam",), ()]))  # one detector is enough
    message = error_of(lambda: require_classes(multilabeled(["a"], [()], "none.jsonl")))
    assert_mentions(message, "none.jsonl", "at least 1 label name")


def test_check_known_labels_for_multilabel_data() -> None:
    train = multilabeled(["a", "b"], [("neg",), ("pos", "sarcastic")], "train.jsonl")
    check_known_labels(train, multilabeled(["c", "d"], [(), ("pos",)], "test.jsonl"))
    other = multilabeled(["c", "d", "e"], [("pos",), ("irony", "pos"), ("new",)], "test.jsonl")
    message = error_of(lambda: check_known_labels(train, other))
    assert_mentions(
        message,
        "test.jsonl",
        "row 2",
        "found 'irony'",
        "2 row(s)",
        "['irony', 'new']",
        "['neg', 'pos', 'sarcastic']",
        "train.jsonl",
    )


def test_check_known_labels_refuses_mixing_single_and_multilabel() -> None:
    single = labeled(["a"], ["pos"], "single.csv")
    multi = multilabeled(["a"], [("pos",)], "multi.jsonl")
    assert_mentions(
        error_of(lambda: check_known_labels(single, multi)),
        "multi.jsonl",
        "expected single-label data like single.csv",
        "found multilabel data",
    )
    assert_mentions(
        error_of(lambda: check_known_labels(multi, single)), "single.csv", "found single-label"
    )


def test_indicator_matrix() -> None:
    matrix = indicator_matrix([("a", "c"), (), ("c",)], ["a", "b", "c"])
    assert matrix.dtype == np.float32
    assert matrix.tolist() == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    assert indicator_matrix([(), ()], []).shape == (2, 0)
    with pytest.raises(ValueError, match=r"row 2.*'zz'"):
        indicator_matrix([("a",), ("a", "zz")], ["a", "b"])
    with pytest.raises(ValueError, match="distinct"):
        indicator_matrix([("a",)], ["a", "a"])


# --- real data -------------------------------------------------------------------------------


def test_real_sst2_dev() -> None:
    path = SHARED_DATA / "sst2_dev.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} not present")
    data = read_labeled(path)
    assert len(data) == 872
    assert set(data.classes) == {"neg", "pos"}
    assert data.skipped == {}

"""The numbers the README and the docs quote are the numbers of the results files they cite.

A passage (a paragraph, a list item, a table row) that names a ``benchmarks/results/*.json``
file is checked number by number against that file: every number written in it must be a
value of the file (anywhere in it, strings included, so the sizes in a ``command`` count),
to the precision it is written with. A unit after the number allows the conversions it
names (``MB`` from bytes, ``%`` and ``points`` from fractions, ``min`` and ``h`` from
seconds, ``ms`` from seconds). A table row is checked against the files named in it, above it
in its section (its caption and what leads to it) and in its footnotes (the paragraphs right
below the table that start ``(a)``, ``(b)``...).

What a results file cannot hold is listed in :data:`NOT_IN_RESULTS`, each with why (an
estimate and what it is computed from, a difference of two results, a size of the protocol
the file does not record); an entry that no longer matches anything fails too, so the list
cannot outlive the text. A table that a benchmark renders into a page (between
``<!-- NAME.json table: begin -->`` and ``... end -->``) must be exactly what that benchmark
renders from the file today; before the file exists it may hold words, not numbers.

Not checked here: ratios written as ``3.0x`` (two values of a file, not one), and passages
that cite no results file (the docs' own examples, timings of a single command).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# (page, a literal piece of a passage around the number) -> why no results file holds it.
SETTING = "a setting of the benchmark (its script or the teacher's recipe), not a result"
ESTIMATE = "an estimate, computed in the passage from numbers the results files hold"
NOT_IN_RESULTS: dict[tuple[str, str], str] = {
    ("benchmarks.md", "MiniLM-L6 at 256 tokens"): SETTING,
    ("benchmarks.md", "`runs/trec`, 32 tokens"): SETTING,
    ("benchmarks.md", "(p = 0.4, 0.35, 0.25)"): SETTING,
    ("benchmarks.md", "recombine their 2,352 questions"): SETTING,
    ("benchmarks.md", "(MiniLM-L6, 128 tokens, 8 epochs"): SETTING,
    ("benchmarks.md", "ECE (10 bins)"): SETTING,
    ("benchmarks.md", "one label in 15-25"): (
        "derived: 1 / (1 - agreement) of the int8 rows of teacher_speed.json (95.7%, 93.4%)"
    ),
    ("benchmarks.md", "(chunks of 5,000)"): SETTING,
    ("benchmarks.md", "on the 2,000 test reviews"): "the protocol's test set size",
    ("benchmarks.md", "a student fit on 5,000 real reviews"): SETTING,
    ("benchmarks.md", "6 layers, 384 wide"): "the teacher's architecture",
    (
        "benchmarks.md",
        "| 10M reviews, CPU (32 cores a machine) | 215 core-hours | 40 min | 8 min | $9 |",
    ): ESTIMATE,
    (
        "benchmarks.md",
        "| 100M reviews, CPU (32 cores a machine) | 2,153 core-hours | 6.7 h | 81 min | $86 |",
    ): ESTIMATE,
    ("benchmarks.md", "about 570 cores in fp32 (7,380 / 12.9)"): ESTIMATE,
    ("benchmarks.md", "take 52 GPU-minutes and 100M 8.7 GPU-hours"): ESTIMATE,
    ("benchmarks.md", "about 2.3 times longer"): ESTIMATE,
    ("benchmarks.md", "fit on 5,000 IMDB reviews or the 6,920 SST-2 training sentences"): SETTING,
    ("README.md", "2.6 to 2.9 points below it (5.3 with only 1,500"): (
        "differences of two results of short_text.json (the teacher's accuracy less the kept "
        "student's) and the small pool's size, a setting"
    ),
}

CITATION = re.compile(r"\b([a-z0-9_]+)\.json\b")
FENCE = re.compile(r"^```.*?^```[ \t]*$", re.M | re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)
GENERATED = re.compile(
    r"<!-- (?P<name>[a-z0-9_]+)\.json table: begin -->.*?<!-- (?P=name)\.json table: end -->",
    re.S,
)
CODE = re.compile(r"`[^`\n]*`")
LINK_TARGET = re.compile(r"\]\([^)\s]*\)")
NUMBER = re.compile(
    r"(?<![\w.,])(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<decimals>\d+))?(?![\w.]\w|\w)"
)
# A unit after a number, and the factors that turn a value of the file into the number written.
UNITS: list[tuple[re.Pattern[str], tuple[float, ...]]] = [
    (re.compile(r"\s?(?:%|points?\b|pts\b)"), (1.0, 100.0)),
    (re.compile(r"\s?GB\b"), (1.0, 1e-3, 1e-6, 1e-9)),
    (re.compile(r"\s?MB\b"), (1.0, 1e-3, 1e-6)),
    (re.compile(r"\s?KB\b"), (1.0, 1e-3)),
    (re.compile(r"\s?GiB\b"), (1.0, 2.0**-10, 2.0**-20, 2.0**-30)),
    (re.compile(r"\s?MiB\b"), (1.0, 2.0**-10, 2.0**-20)),
    (re.compile(r"\s?KiB\b"), (1.0, 2.0**-10)),
    (re.compile(r"\s?ms\b"), (1.0, 1e3)),
    (re.compile(r"\s?(?:min|minutes?)\b"), (1.0, 1 / 60)),
    (re.compile(r"\s?(?:h|hours?)\b"), (1.0, 1 / 60, 1 / 3600)),
    (re.compile(r"\s?(?:s|seconds?)\b"), (1.0, 1e-3)),
]
FOOTNOTE = re.compile(r"\s*\([a-z]\)\s")
RATIO = re.compile(r"\s?[x×](?!\w)")


@dataclass(frozen=True)
class Quote:
    """A number written in a passage that cites results files."""

    page: str
    line: int
    text: str
    value: float
    decimals: int
    factors: tuple[float, ...]
    start: int
    end: int
    passage: str
    """The passage as written (code and link targets blanked in place for the search)."""
    citations: tuple[str, ...]

    def __str__(self) -> str:
        files = ", ".join(f"{name}.json" for name in self.citations)
        context = " ".join(self.passage[max(0, self.start - 40) : self.end + 40].split())
        return f"{self.page}:{self.line}: {self.text} (cites {files}) in '...{context}...'"


def _blank(match: re.Match[str]) -> str:
    """Text removed, line numbers kept."""
    return re.sub(r"[^\n]", " ", match.group())


def _passages(text: str) -> Iterator[tuple[int, str, bool]]:
    """``(first line, text, is a table row)`` of every paragraph, list item and table row."""
    line = 1
    for block in re.split(r"(\n[ \t]*\n)", text):
        if not block.strip() or block.startswith("\n"):
            line += block.count("\n")
            continue
        rows = block.split("\n")
        if rows[0].lstrip().startswith("|"):
            for offset, row in enumerate(rows):
                yield line + offset, row, True
        else:
            item: list[str] = []
            item_line = line
            for offset, row in enumerate(rows):
                if re.match(r"\s*(?:[-*]|\d+\.)\s", row) and item:
                    yield item_line, "\n".join(item), False
                    item, item_line = [], line + offset
                item.append(row)
            yield item_line, "\n".join(item), False
        line += block.count("\n")


def _cited(text: str, directory: Path) -> set[str]:
    return {name for name in CITATION.findall(text) if (directory / f"{name}.json").exists()}


def quotes(page: Path, directory: Path = RESULTS) -> Iterator[Quote]:
    """Every number of ``page`` in a passage that cites a results file."""
    text = page.read_text(encoding="utf-8")
    for pattern in (GENERATED, FENCE, COMMENT):
        text = pattern.sub(_blank, text)
    passages = list(_passages(text))
    # A table row also cites what the passages of its section above it cite (its caption
    # and what leads to it) and its footnotes (passages right below that start "(a)").
    around: dict[int, set[str]] = {}
    section: set[str] = set()
    for i, (_, passage, is_row) in enumerate(passages):
        if passage.lstrip().startswith("#"):
            section = set()
        elif not is_row:
            section |= _cited(passage, directory)
        else:
            files = set(section)
            j = i
            while j + 1 < len(passages) and passages[j + 1][2]:
                j += 1
            while j + 1 < len(passages) and FOOTNOTE.match(passages[j + 1][1]):
                files |= _cited(passages[j + 1][1], directory)
                j += 1
            around[i] = files
    for i, (line, passage, _) in enumerate(passages):
        if passage.lstrip().startswith("#"):
            continue
        cited = _cited(passage, directory) | around.get(i, set())
        if not cited:
            continue
        plain = LINK_TARGET.sub(_blank, CODE.sub(_blank, passage))
        for match in NUMBER.finditer(plain):
            after = plain[match.end() :]
            if RATIO.match(after):
                continue
            factors = next((f for unit, f in UNITS if unit.match(after)), (1.0,))
            decimals = match["decimals"] or ""
            yield Quote(
                page=page.name,
                line=line + plain.count("\n", 0, match.start()),
                text=match.group(),
                value=float(match["whole"].replace(",", "") + "." + decimals),
                decimals=len(decimals),
                factors=factors,
                start=match.start(),
                end=match.end(),
                passage=passage,
                citations=tuple(sorted(cited)),
            )


def _values(content: Any, into: list[float]) -> list[float]:
    """Every number in a JSON document, those written inside strings included."""
    if isinstance(content, bool):
        pass
    elif isinstance(content, int | float):
        into.append(float(content))
    elif isinstance(content, str):
        into.extend(float(x) for x in re.findall(r"\d+(?:\.\d+)?", content.replace(",", "")))
    elif isinstance(content, dict):
        for value in content.values():
            _values(value, into)
    elif isinstance(content, list):
        for value in content:
            _values(value, into)
    return into


def results_values(name: str, directory: Path = RESULTS) -> list[float]:
    return _values(json.loads((directory / f"{name}.json").read_text(encoding="utf-8")), [])


def holds(quote: Quote, values: list[float]) -> bool:
    """Whether a value, in one of the quote's units, rounds to the number as written."""
    tolerance = 0.5 * 10.0**-quote.decimals * (1 + 1e-9)
    return any(
        abs(value * factor - quote.value) <= tolerance
        for value in values
        for factor in quote.factors
    )


def _excused(quote: Quote, used: set[tuple[str, str]]) -> bool:
    for key in NOT_IN_RESULTS:
        page, piece = key
        if page != quote.page:
            continue
        for found in re.finditer(re.escape(piece), quote.passage.replace("\n", " ")):
            if found.start() <= quote.start and quote.end <= found.end():
                used.add(key)
                return True
    return False


def unsupported(
    pages: list[Path], used: set[tuple[str, str]], directory: Path = RESULTS
) -> list[str]:
    """The quotes of ``pages`` that no cited results file holds and no excuse covers."""
    cache: dict[str, list[float]] = {}
    problems = []
    for page in pages:
        for quote in quotes(page, directory):
            values = [
                value
                for name in quote.citations
                for value in cache.setdefault(name, results_values(name, directory))
            ]
            if not holds(quote, values) and not _excused(quote, used):
                problems.append(str(quote))
    return problems


# --------------------------------------------------------------------------------- tests
def test_every_number_next_to_a_cited_results_file_is_in_it() -> None:
    used: set[tuple[str, str]] = set()
    problems = unsupported(PAGES, used)
    assert not problems, "numbers that their cited results file does not hold:\n" + "\n".join(
        problems
    )
    stale = sorted(set(NOT_IN_RESULTS) - used)
    assert not stale, f"NOT_IN_RESULTS entries that no longer match a page: {stale}"


def test_a_stale_number_is_caught(tmp_path: Path) -> None:
    """The check itself: numbers of the file pass in their units, a changed one fails."""
    results = tmp_path / "results"
    results.mkdir()
    (results / "bench.json").write_text(
        json.dumps(
            {"command": "bench.py --n 20000", "rows": [{"accuracy": 0.8874, "bytes": 3_210_000}]}
        )
    )
    page = tmp_path / "page.md"
    page.write_text(
        "Accuracy 0.887 (88.7%) on 20,000 texts, 3.2 MB (`bench.json`).\n\n"
        "| system | accuracy | size |\n| --- | ---: | ---: |\n| student | 0.889 | 3.2 MB |\n\n"
        "(a) From `bench.json`; 3.0x faster. Off by a rounding: 0.8875.\n\n"
        "Nothing cited here: 0.5.\n"
    )
    problems = unsupported([page], set(), results)
    assert [p.split(": ", 1)[1].split(" (", 1)[0] for p in problems] == ["0.889", "0.8875"]
    assert problems[0].startswith("page.md:5:")


def test_generated_tables_are_what_their_benchmark_renders_today(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A table a benchmark wrote into a page is its rendering of the results file as it is."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    found = 0
    for page in PAGES:
        for match in GENERATED.finditer(page.read_text(encoding="utf-8")):
            name = match["name"]
            body = match.group().split("\n", 1)[1].rsplit("\n", 1)[0]
            if not (RESULTS / f"{name}.json").exists():  # before the first run: words only
                assert not re.search(r"\d", CODE.sub("", body)), f"{page.name}: {name}.json"
                continue
            module = importlib.import_module(name)
            rows = json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))["rows"]
            assert body == module.markdown_table(rows), f"{page.name}: the {name}.json table"
            found += 1
    assert found  # the short-text page has one

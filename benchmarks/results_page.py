"""Render every ``benchmarks/results/*.json`` as one Markdown page, provenance first.

The documentation's results page is this script's output (the MkDocs build calls
:func:`render`), so no number there is typed by hand: each table is a file's ``rows`` (or any
other list of records), under the command, the commit and the machine that produced it. A
file that does not record one of those says so in bold rather than leaving a blank. The
renderer knows no benchmark by name, so a new results file appears on the page without any
change here.

    python benchmarks/results_page.py                     # the page on standard output
    python benchmarks/results_page.py --out results.md    # or into a file
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# "source" (the commit and whether tracked files had edits, written by results_file.py) took
# the place of a bare "commit": a file shows whichever it has.
PROVENANCE = ("command", "commit", "source", "machine", "versions")
MISSING = "**not recorded**"
# A file typed up from a run's output (a machine without a checkout) says so, and how: its
# provenance fields were written by a person, not recorded by results_file.py.
BY_HAND = "written_by_hand"


def format_value(value: Any) -> str:
    """A cell: thousands separators from 1,000 on, else floats to 4 significant digits."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if abs(value) >= 1_000:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    if isinstance(value, str):
        return _cell_text(value) if value else "(empty)"
    return _cell_text(json.dumps(value, ensure_ascii=False))


def _cell_text(text: str) -> str:
    """Text that cannot break a Markdown table row."""
    return text.replace("|", "\\|").replace("\n", " ")


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def records_table(records: list[dict[str, Any]]) -> list[str]:
    """A Markdown table of the records' scalar fields, columns in first-seen order.

    Nested fields (a hyperparameter search, a selection) would make cells unreadable; they
    are named under the table, so a reader knows to look in the JSON.
    """
    columns: list[str] = []
    nested: list[str] = []
    for record in records:
        for key, value in record.items():
            if _is_scalar(value):
                if key not in columns:
                    columns.append(key)
            elif key not in nested:
                nested.append(key)
    nested = [key for key in nested if key not in columns]
    lines = [
        "| " + " | ".join(_cell_text(c) for c in columns) + " |",
        "| " + " | ".join("---:" if _numeric(records, c) else "---" for c in columns) + " |",
    ]
    for record in records:
        lines.append("| " + " | ".join(format_value(record.get(c)) for c in columns) + " |")
    if nested:
        names = ", ".join(f"`{key}`" for key in nested)
        lines += ["", f"Nested fields not shown, see the JSON: {names}."]
    return lines


def _numeric(records: list[dict[str, Any]], column: str) -> bool:
    values = [r.get(column) for r in records if r.get(column) is not None]
    return bool(values) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    )


def _field_lines(fields: dict[str, Any], prefix: str = "") -> list[str]:
    """Bullets for scalar and dict fields (dicts flattened as ``a.b``)."""
    lines: list[str] = []
    for key, value in fields.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            lines += _field_lines(value, prefix=f"{name}.")
        elif _is_scalar(value) or (isinstance(value, list) and all(map(_is_scalar, value))):
            lines.append(f"- `{name}`: {format_value(value)}")
    return lines


def render_file(
    path: Path, plots: Iterable[Path] = (), image_prefix: str = "results/"
) -> list[str]:
    """One results file: its title, provenance, other fields, then one table per record list."""
    content = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(content).__name__}")
    title = content.get("benchmark", path.stem)
    lines = [f"## {_cell_text(str(title))}", "", f"File: `benchmarks/results/{path.name}`", ""]
    if content.get(BY_HAND):
        lines += [f"**Written by hand**: {_cell_text(str(content[BY_HAND]))}", ""]
    for key in PROVENANCE:
        if key == ("commit" if "source" in content else "source"):
            continue
        value = content.get(key)
        if value is None or value == "" or value == {}:
            lines.append(f"- {key}: {MISSING}")
        elif isinstance(value, dict):
            lines.append(f"- {key}:")
            lines += ["    " + line for line in _field_lines(value)]
        else:
            lines.append(f"- {key}: `{_cell_text(str(value))}`")
    others = {k: v for k, v in content.items() if k not in (*PROVENANCE, "benchmark", BY_HAND)}
    scalars = {k: v for k, v in others.items() if not _is_records(v)}
    details = _field_lines(scalars)
    if details:
        lines += ["", "Other fields:", "", *details]
    for key, value in others.items():
        if _is_records(value):
            lines += ["", f"### `{key}`", "", *records_table(value)]
    for plot in plots:
        lines += ["", f"![{plot.stem}]({image_prefix}{plot.name})"]
    return lines


def _plots_by_file(paths: list[Path], plots: list[Path]) -> tuple[dict[Path, list[Path]], list]:
    """Each plot goes with the results file whose name is the longest prefix of its own."""
    owned: dict[Path, list[Path]] = {path: [] for path in paths}
    orphans = []
    for plot in plots:
        owners = [p for p in paths if plot.stem == p.stem or plot.stem.startswith(p.stem + "_")]
        if owners:
            owned[max(owners, key=lambda p: len(p.stem))].append(plot)
        else:
            orphans.append(plot)
    return owned, orphans


def render(results_dir: Path = RESULTS_DIR, image_prefix: str = "results/") -> str:
    """The whole page: every JSON file under ``results_dir`` in name order, then stray plots.

    Plots are linked as ``image_prefix + name``: where the page is written decides that.
    """
    paths = sorted(results_dir.glob("*.json"))
    plots = sorted(results_dir.glob("*.png"))
    owned, orphans = _plots_by_file(paths, plots)
    lines = [
        "# Results",
        "",
        "Generated by `benchmarks/results_page.py` from the files in `benchmarks/results/`,",
        "each rendered with the command, the commit, the machine and the library versions it",
        "records (a file written before versions were recorded says so). Numbers are",
        "rounded to 4 significant digits; the JSON holds them in full.",
        "",
    ]
    if not paths:
        lines.append(f"No results files in `{results_dir.name}/`.")
    for path in paths:
        lines += [*render_file(path, owned[path], image_prefix), ""]
    if orphans:
        lines += ["## Plots without a results file", ""]
        lines += [f"![{plot.stem}]({image_prefix}{plot.name})" for plot in orphans]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="folder of JSON files")
    parser.add_argument("--out", type=Path, help="write the page here (default: stdout)")
    parser.add_argument(
        "--image-prefix", default="results/", help="how the page links the plots (results/)"
    )
    args = parser.parse_args(argv)
    page = render(args.results, args.image_prefix)
    if args.out is None:
        sys.stdout.write(page)
    else:
        args.out.write_text(page, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

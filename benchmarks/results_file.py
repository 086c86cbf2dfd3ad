"""One way to write a benchmark's results: JSON under benchmarks/results/, always naming the
command, the machine, the library versions and the commit, so every number can be traced.

The load average is taken when this module is imported, which is when a benchmark starts, so
the file says whether other work shared the machine while it measured.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from textdistill.provenance import provenance
from textdistill.runtime.atomic import write_file_atomically

RESULTS_DIR = Path(__file__).resolve().parent / "results"

LOAD_AT_START = os.getloadavg()


def write_results(name: str, rows: list[dict[str, Any]], **extra: Any) -> Path:
    """Write ``results/<name>.json``: the command, provenance, ``extra`` fields and ``rows``.

    Provenance is ``machine`` (CPU model and flags, cores, RAM, load average at start and
    end), ``versions`` (Python, numpy, torch, ...) and ``source`` (the commit and whether
    tracked files had edits when the results were written).
    """
    content = {
        "benchmark": name,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        **provenance(LOAD_AT_START, Path(__file__).resolve().parent),
        **extra,
        "rows": rows,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    write_file_atomically(path, (json.dumps(content, indent=2) + "\n").encode())
    return path


def write_table_into(page: Path, results_name: str, table: str) -> None:
    """Replace what stands between ``<!-- NAME.json table: begin -->`` and ``... end -->`` in
    the docs ``page`` with ``table`` (the markers test_quoted_numbers checks such tables by)."""
    begin = f"<!-- {results_name}.json table: begin -->"
    end = f"<!-- {results_name}.json table: end -->"
    head, rest = page.read_text(encoding="utf-8").split(begin)
    _, tail = rest.split(end)
    page.write_text(f"{head}{begin}\n{table}\n{end}{tail}", encoding="utf-8")

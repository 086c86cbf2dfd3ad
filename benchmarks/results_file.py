"""One way to write a benchmark's results: JSON under benchmarks/results/, always naming the
machine, the command and the commit, so every number in the README can be traced."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def write_results(name: str, rows: list[dict[str, Any]], **extra: Any) -> Path:
    """Write ``results/<name>.json`` with provenance, ``extra`` fields and ``rows``."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=RESULTS_DIR.parent,
    ).stdout.strip()
    content = {
        "benchmark": name,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": len(os.sched_getaffinity(0)),
            "processor": platform.processor(),
        },
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "commit": commit or "unknown",
        **extra,
        "rows": rows,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(content, indent=2))
    return path

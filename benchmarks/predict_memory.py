"""Peak memory of ``textdistill predict`` on inputs of growing size: it must stay flat.

Builds text files of ~100 MB and ~1 GB (IMDB reviews, one per line, repeated), trains a
student artifact on 5,000 reviews, then runs ``textdistill predict -i FILE -o OUT`` on each
(with ``--jobs 1`` and ``--jobs 0``) and records the docs/s and the peak resident memory of
the largest process (``ru_maxrss`` over the children: the main process or one worker).

    python benchmarks/predict_memory.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from results_file import write_results
from textdistill.data import read_labeled
from textdistill.students.linear import LinearStudent


def _write_input(path: Path, lines: list[str], target_bytes: int) -> int:
    written = n = 0
    with path.open("w", encoding="utf-8") as handle:
        while written < target_bytes:
            for line in lines:
                handle.write(line)
                written += len(line.encode("utf-8"))
                n += 1
    return n


def _run(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a fresh child process (and its workers)."""
    code = (
        "import resource, subprocess, sys;"
        "subprocess.run(sys.argv[1:], check=True);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, *command], check=True, capture_output=True, text=True
    ).stdout
    return time.perf_counter() - started, int(out.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[100, 1000])
    args = parser.parse_args()
    imdb = read_labeled(args.data / "imdb_train.csv.gz")
    order = np.random.default_rng(0).permutation(len(imdb)).tolist()
    train, other = imdb.subset(order[:5000]), imdb.subset(order[5000:10000])
    lines = [" ".join(text.split()) + "\n" for text in other.texts]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        LinearStudent(loss="soft_ce").fit(train.texts, train.labels).save(work / "student")
        textdistill = str(Path(sys.executable).with_name("textdistill"))
        for size_mb in args.sizes_mb:
            source = work / f"input-{size_mb}mb.txt"
            n_docs = _write_input(source, lines, size_mb * 1_000_000)
            for jobs in ("1", "0"):
                seconds, peak_mb = _run(
                    [
                        textdistill,
                        "predict",
                        str(work / "student"),
                        "-i",
                        str(source),
                        "-o",
                        str(work / "out.csv"),
                        "-j",
                        jobs,
                    ]
                )
                row = {
                    "input_mb": round(source.stat().st_size / 1e6),
                    "n_docs": n_docs,
                    "jobs": int(jobs) or len(os.sched_getaffinity(0)),
                    "seconds": round(seconds, 1),
                    "docs_per_s": round(n_docs / seconds),
                    "peak_rss_mb": round(peak_mb, 1),
                }
                print(json.dumps(row), flush=True)
                rows.append(row)
            source.unlink()
    write_results("predict_memory", rows)


if __name__ == "__main__":
    main()

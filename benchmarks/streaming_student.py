"""The streaming linear student: same accuracy as the in-memory fit, bounded memory at 1M rows.

Two parts, each in its own process so that its peak RSS (``ru_maxrss``) is its own:

* ``equality``: the in-memory ``LinearStudent(loss="mse")`` and ``StreamingLinearStudent``
  fit on the same teacher-labeled IMDB reviews (the seed protocol's cached teacher logits for
  its 20,000-review row; no gold rows on either side), scored on its 2,000 test reviews.
* ``memory``: ``StreamingLinearStudent`` on 1,000,000 synthetic documents, each 4-12
  sentences drawn at random from IMDB reviews, generated chunk by chunk from a seed (never
  all in memory). Their "teacher logits" are the scores of a student fit in memory on 5,000
  real reviews' teacher logits: a stand-in teacher, as labeling a million documents with the
  real one would take about eight hours on this machine. Memory, not accuracy, is measured here.

    python benchmarks/streaming_student.py --data ../shared/data --runs /work/main/runs
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from results_file import write_results

CHUNK = 20_000


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _protocol(data: Path, runs: Path) -> tuple[list[str], np.ndarray, list[str], list[str], list]:
    """Transfer texts and cached teacher logits of the seed protocol, and its test set."""
    from seed_protocol import protocol_splits
    from textdistill.data import TextDataset, read_unlabeled
    from textdistill.logits_store import LogitsStore

    metrics = json.loads((runs / "seed_protocol" / "metrics.json").read_text())
    _labeled, test, unlabeled, rest = protocol_splits(data, 0, 1000, 2000, 5000)
    extra = read_unlabeled(data / "imdb_unlabeled.csv.gz")
    pool = TextDataset(texts=unlabeled.texts + rest.texts + extra.texts, labels=None, source="pool")
    texts = pool.head(20_000).texts
    store = LogitsStore(
        runs / "seed_protocol" / "logits",
        fingerprint=metrics["teacher"]["fingerprint"],
        n_classes=len(metrics["teacher"]["classes"]),
    )
    return texts, store.get(texts), test.texts, list(test.labels), metrics["teacher"]["classes"]


def equality(data: Path, runs: Path, mode: str) -> dict:
    from textdistill.students.linear import LinearStudent
    from textdistill.students.streaming import StreamingLinearStudent

    texts, logits, test_texts, test_labels, classes = _protocol(data, runs)
    started = time.perf_counter()
    if mode == "in_memory":
        model = LinearStudent(loss="mse").fit(texts, logits, classes=classes).model_
    else:

        def chunks() -> Iterator[tuple[list[str], np.ndarray]]:
            for i in range(0, len(texts), 5000):
                yield texts[i : i + 5000], logits[i : i + 5000]

        student = StreamingLinearStudent().fit(chunks, classes=classes)
        model = student.model_
    seconds = time.perf_counter() - started
    predicted = model.predict(test_texts)
    return {
        "part": "equality",
        "fit": mode,
        "n_rows": len(texts),
        "test_accuracy": float(np.mean(np.array(predicted) == np.array(test_labels))),
        "n_features": model.featurizer.n_features,
        "penalty": model.metadata["selection"]["penalty"],
        "fit_seconds": seconds,
        "peak_rss_mib": _peak_rss_mib(),
        "test_logits": model.decision_function(test_texts).tolist(),
    }


def _sentences(data: Path) -> list[str]:
    from textdistill.data import read_unlabeled

    split = re.compile(r"(?<=[.!?])\s+|<br\s*/?>")
    found: list[str] = []
    for name in ("imdb_train.csv.gz", "imdb_unlabeled.csv.gz"):
        for review in read_unlabeled(data / name).texts:
            found.extend(s for s in split.split(review) if len(s) > 20)
    return found


def memory(data: Path, runs: Path, n_docs: int) -> dict:
    from textdistill.students.linear import LinearStudent
    from textdistill.students.streaming import StreamingLinearStudent

    texts, logits, test_texts, test_labels, classes = _protocol(data, runs)
    stand_in = LinearStudent(loss="mse", grid=(1.0,)).fit(
        texts[:5000], logits[:5000], classes=classes
    )
    sentences = np.array(_sentences(data), dtype=object)
    del texts, logits

    def chunks() -> Iterator[tuple[list[str], np.ndarray]]:
        for start in range(0, n_docs, CHUNK):
            rng = np.random.default_rng(start)
            size = min(CHUNK, n_docs - start)
            lengths = rng.integers(4, 13, size)
            picks = rng.integers(0, len(sentences), lengths.sum())
            bounds = np.concatenate([[0], np.cumsum(lengths)])
            docs = [" ".join(sentences[picks[a:b]]) for a, b in itertools.pairwise(bounds)]
            yield docs, stand_in.decision_function(docs)

    before = _peak_rss_mib()
    started = time.perf_counter()
    student = StreamingLinearStudent(grid=(1.0,)).fit(chunks, classes=classes, progress=True)
    seconds = time.perf_counter() - started
    predicted = student.model_.predict(test_texts)
    return {
        "part": "memory",
        "fit": "streaming",
        "n_rows": student.n_teacher_rows_,
        "chunk_rows": CHUNK,
        "n_features": student.model_.featurizer.n_features,
        "cg_iterations": student.selection_["cg_iterations"],
        "fit_seconds": seconds,
        "peak_rss_mib_before_fit": before,
        "peak_rss_mib": _peak_rss_mib(),
        "test_accuracy_vs_gold": float(np.mean(np.array(predicted) == np.array(test_labels))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--n-docs", type=int, default=1_000_000)
    parser.add_argument("--part", choices=["equality", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="streaming", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part == "equality":
        print(json.dumps(equality(args.data, args.runs, args.mode)))
        return
    if args.part == "memory":
        print(json.dumps(memory(args.data, args.runs, args.n_docs)))
        return

    def child(*extra: str) -> dict:
        command = [sys.executable, __file__, "--data", str(args.data), "--runs", str(args.runs)]
        done = subprocess.run([*command, *extra], check=True, capture_output=True, text=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    in_memory = child("--part", "equality", "--mode", "in_memory")
    streaming = child("--part", "equality", "--mode", "streaming")
    difference = np.abs(np.array(in_memory.pop("test_logits")) - streaming.pop("test_logits"))
    rows = [in_memory, streaming]
    print(json.dumps(rows, indent=2))
    rows.append(child("--part", "memory", "--n-docs", str(args.n_docs)))
    print(json.dumps(rows[-1], indent=2))
    accuracy_gap = abs(in_memory["test_accuracy"] - streaming["test_accuracy"])
    write_results(
        "streaming_student",
        rows,
        accuracy_difference_points=100 * accuracy_gap,
        max_abs_test_logit_difference=float(difference.max()),
    )


if __name__ == "__main__":
    main()

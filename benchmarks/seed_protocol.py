"""The reference article's protocol on IMDB, and the same teacher with far more unlabeled text.

Row 1: 1,000 labeled reviews, 5,000 unlabeled, 2,000 test reviews, all disjoint and drawn
from imdb_train.csv.gz with a fixed seed; all-MiniLM-L6-v2 fine-tuned with the recipe
``--teacher-recipe`` names (``teacher_recipes.RECIPES``; by default ``256-head``, 4 epochs,
fp32 labeling: the teacher of ``seed_protocol.json``), or precomputed logits.
Row 2: the same labeled set, test set and teacher; as unlabeled set, every other train
review plus imdb_unlabeled.csv.gz, capped at ``--more-unlabeled`` documents (labeling costs
about 30 reviews/s on 2 cores: the JSON says how many were scored).

Both rows share one run directory, so the teacher is fine-tuned once and every logit is
cached: rerunning the script resumes where it stopped.

    python benchmarks/seed_protocol.py --data ../shared/data --more-unlabeled 20000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from results_file import write_results
from teacher_recipes import RECIPES
from textdistill.data import TextDataset, read_labeled, read_unlabeled
from textdistill.pipeline import RunConfig, run_pipeline
from textdistill.teacher import TeacherConfig


def protocol_splits(
    data_dir: Path, seed: int, n_labeled: int, n_test: int, n_unlabeled: int
) -> tuple[TextDataset, TextDataset, TextDataset, TextDataset]:
    """labeled, test, the article's unlabeled set, and the rest of the train split."""
    train = read_labeled(data_dir / "imdb_train.csv.gz")
    order = np.random.default_rng(seed).permutation(len(train)).tolist()
    test = train.subset(order[:n_test])
    labeled = train.subset(order[n_test : n_test + n_labeled])
    unlabeled = train.subset(order[n_test + n_labeled : n_test + n_labeled + n_unlabeled])
    rest = train.subset(order[n_test + n_labeled + n_unlabeled :])
    return labeled, test, unlabeled.without_labels(), rest.without_labels()


def _row(metrics: dict, n_unlabeled_available: int) -> dict:
    systems = metrics["systems"]
    return {
        "n_labeled": metrics["data"]["labeled"]["rows"],
        "n_unlabeled": metrics["data"]["unlabeled"]["rows"],
        "n_unlabeled_available": n_unlabeled_available,
        "n_test": metrics["data"]["test"]["rows"],
        "baseline_accuracy": systems["baseline"]["accuracy"],
        "teacher_accuracy": systems["teacher"]["accuracy"],
        "student_accuracy": systems["student"]["accuracy"],
        "student_teacher_agreement": systems["student"]["agreement_with_teacher"],
        "baseline_macro_f1": systems["baseline"]["macro_f1"],
        "teacher_macro_f1": systems["teacher"]["macro_f1"],
        "student_macro_f1": systems["student"]["macro_f1"],
        "teacher_docs_per_s": systems["teacher"]["docs_per_s"],
        "student_docs_per_s": systems["student"]["docs_per_s"],
        "student_size_bytes": systems["student"]["size_bytes"],
        "teacher_size_bytes": systems["teacher"]["size_bytes"],
        "teacher_fit_seconds": metrics["teacher"]["fit_seconds"],
        "teacher_best_epoch": metrics["teacher"]["best_epoch"],
        "student_selection": {
            k: v for k, v in metrics["student"]["selection"].items() if k != "grid"
        },
        # what --student auto kept, why, and every candidate it weighed, on the test set
        "student_kind": metrics["student"]["kind"],
        "student_kept_because": metrics["student"].get("kept_because"),
        "student_candidates": {
            kind: {
                key: test[key]
                for key in ("accuracy", "agreement_with_teacher", "docs_per_s", "size_bytes")
            }
            for kind, test in metrics["student"].get("test", {}).items()
        },
    }


def teacher_config(recipe: str) -> TeacherConfig:
    """The teacher of a recipe, labeling in fp32 (as every run these results come from did)."""
    return TeacherConfig(precision="fp32", **RECIPES[recipe])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("runs/seed_protocol"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-labeled", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--n-unlabeled", type=int, default=5000)
    parser.add_argument(
        "--more-unlabeled",
        type=int,
        default=20000,
        help="unlabeled documents for row 2 (0: skip row 2)",
    )
    parser.add_argument(
        "--teacher-logits",
        type=Path,
        help="precomputed teacher logits for every review (e.g. from teacher_recipes.py "
        "label, on a GPU): no fine-tuning or labeling here",
    )
    parser.add_argument(
        "--teacher-recipe",
        default="256-head",
        choices=list(RECIPES),
        help="how the teacher is fine-tuned (256-head: the teacher of seed_protocol.json)",
    )
    parser.add_argument("--results", default="seed_protocol", help="results/<NAME>.json")
    args = parser.parse_args()

    started = time.time()
    labeled, test, unlabeled, rest = protocol_splits(
        args.data, args.seed, args.n_labeled, args.n_test, args.n_unlabeled
    )
    config = RunConfig(
        out=args.out,
        seed=args.seed,
        teacher=teacher_config(args.teacher_recipe),
        teacher_logits=args.teacher_logits,
    )
    rows = [_row(run_pipeline(labeled, unlabeled, test, config), len(unlabeled))]
    if args.more_unlabeled:
        extra = read_unlabeled(args.data / "imdb_unlabeled.csv.gz")
        pool = TextDataset(
            texts=unlabeled.texts + rest.texts + extra.texts,
            labels=None,
            source="imdb_train (not labeled/test) + imdb_unlabeled",
        )
        # The article's 5,000 first, then the other train reviews, then the unsup reviews:
        # each larger row contains the smaller one.
        more = pool.head(args.more_unlabeled)
        rows.append(_row(run_pipeline(labeled, more, test, config), len(pool)))
    write_results(
        args.results,
        rows,
        seed=args.seed,
        teacher=str(args.teacher_logits or config.teacher.model),
        teacher_recipe=None if args.teacher_logits else args.teacher_recipe,
        seconds=time.time() - started,
        reference_article={
            "baseline_accuracy": 0.79,
            "teacher_accuracy": 0.89,
            "student_accuracy": 0.87,
        },
    )
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

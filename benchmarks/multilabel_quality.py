"""Multilabel distillation on real text: baseline, teacher and student, per-label thresholds.

No multilabel corpus is in ../shared/data (and none can be downloaded here), so one is
derived from TREC: a document is 1, 2 or 3 TREC questions (probabilities 0.4, 0.35, 0.25)
joined by spaces, and its labels are the set of their coarse classes (DESC, ENTY, ABBR, HUM,
NUM, LOC; ABBR is rare, 1.6% of questions). The labels are real annotations and come from
the text; what is synthetic is only the grouping. The questions are first split three ways
(seeded), so no question occurs in two of: the labeled documents, the test documents, the
unlabeled documents. Labeled and test documents use each of their questions once; the
unlabeled documents draw questions from their share with replacement, so there can be more
of them than questions.

Everything runs through the real pipeline (``run_pipeline`` on files read with
``read_labeled(..., multilabel=True)``): the default teacher (all-MiniLM-L6-v2) fine-tuned
with binary cross-entropy on the labeled documents (its validation split, 10%, also chooses
every system's per-label thresholds), its logits on the unlabeled documents, and the linear
student. The run directory caches the teacher and its logits, so the student variants that
follow (loss, amount of unlabeled text) refit only the student. For each student the test
scores with thresholds at 0 (probability 0.5) are recorded beside the tuned ones: what the
per-label thresholds bring.

    python benchmarks/multilabel_quality.py --data ../shared/data --work runs/multilabel
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from results_file import write_results
from textdistill.data import read_labeled, read_unlabeled
from textdistill.evaluate import agreement, multilabel_scores
from textdistill.pipeline import RunConfig, StudentConfig, run_pipeline
from textdistill.runtime import load
from textdistill.teacher import TeacherConfig

SIZES = {1: 0.4, 2: 0.35, 3: 0.25}  # questions per document


def trec_documents(
    questions: list[tuple[str, str]], n_documents: int, rng: np.random.Generator, *, reuse: bool
) -> list[tuple[str, tuple[str, ...]]]:
    """Documents of 1-3 questions each; ``reuse``: draw with replacement (else each question
    once, stopping when they run out)."""
    order = list(rng.permutation(len(questions)))
    documents = []
    while len(documents) < n_documents:
        k = int(rng.choice(list(SIZES), p=list(SIZES.values())))
        if reuse:
            picked = [int(i) for i in rng.choice(len(questions), size=k, replace=False)]
        elif len(order) >= k:
            picked, order = [int(i) for i in order[:k]], order[k:]
        else:
            break
        documents.append(
            (
                " ".join(questions[i][0] for i in picked),
                tuple(sorted({questions[i][1] for i in picked})),
            )
        )
    return documents


def write_documents(path: Path, documents: list[tuple[str, tuple[str, ...]]]) -> Path:
    """CSV with the label sets as JSON lists, the way a user would write them."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for text, labels in documents:
            writer.writerow([text, json.dumps(list(labels))])
    return path


def build_files(data: Path, work: Path, n_unlabeled: int, seed: int) -> dict[str, Path]:
    with gzip.open(data / "trec_train.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        questions = [(row["text"], row["label"]) for row in csv.DictReader(handle)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(questions))
    # shares of the questions: labeled 2,000 (about 1,000 documents), test 1,100 (about 550),
    # unlabeled the other 2,352
    shares = np.split(order, [2_000, 3_100])
    pools = [[questions[i] for i in share] for share in shares]
    work.mkdir(parents=True, exist_ok=True)
    labeled = trec_documents(pools[0], 1_000, rng, reuse=False)
    test = trec_documents(pools[1], 1_000, rng, reuse=False)
    unlabeled = trec_documents(pools[2], n_unlabeled, rng, reuse=True)
    (work / "unlabeled.txt").write_text(
        "\n".join(text for text, _ in unlabeled) + "\n", encoding="utf-8"
    )
    return {
        "labeled": write_documents(work / "labeled.csv", labeled),
        "test": write_documents(work / "test.csv", test),
        "unlabeled": work / "unlabeled.txt",
    }


def scores_at_zero(run: Path, name: str, texts: list[str], truth: list[Any]) -> dict[str, Any]:
    """The system's test scores with every threshold at 0 (probability 0.5)."""
    model = load(str(run / name))
    model.thresholds = np.zeros(len(model.labels))
    return multilabel_scores(truth, model.predict(texts), model.labels)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Micro-F1 against the number of unlabeled documents, per student loss, with the
    baseline and the teacher as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for loss, marker in (("mse", "o"), ("soft_ce", "s")):
        points = sorted((r["n_unlabeled"], r) for r in rows if r["loss"] == loss)
        if points:
            x = [max(n, 100) for n, _ in points]  # 0 drawn at 100 on the log axis
            tuned = [r["student_micro_f1"] for _, r in points]
            at_half = [r["student_micro_f1_threshold_0"] for _, r in points]
            ax.plot(x, tuned, marker=marker, label=f"student ({loss}), per-label thresholds")
            ax.plot(x, at_half, marker=marker, linestyle=":", alpha=0.6, label=f"{loss} at 0.5")
    ax.axhline(rows[0]["teacher_micro_f1"], color="tab:red", linestyle="--", label="teacher")
    ax.axhline(rows[0]["baseline_micro_f1"], color="gray", linestyle="--", label="baseline")
    ax.set_xscale("log")
    ax.set_xlabel("unlabeled documents (0 drawn at 100)")
    ax.set_ylabel("test micro-F1")
    ax.set_title("TREC-multi: 1,000 labeled documents, 6 labels")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--work", type=Path, default=Path("runs/multilabel"))
    parser.add_argument("--n-unlabeled", type=int, nargs="+", default=[0, 1_000, 5_000])
    parser.add_argument("--losses", nargs="+", default=["mse", "soft_ce"])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    files = build_files(args.data, args.work, max(args.n_unlabeled), args.seed)
    labeled = read_labeled(files["labeled"], multilabel=True)
    test = read_labeled(files["test"], multilabel=True)
    unlabeled_all = read_unlabeled(files["unlabeled"])
    assert test.label_sets is not None
    truth = list(test.label_sets)
    rows: list[dict[str, Any]] = []
    run_dir = args.work / "run"
    for n_unlabeled in sorted(args.n_unlabeled, reverse=True):  # the largest labels them all
        for loss in args.losses:
            config = RunConfig(
                out=run_dir,
                seed=args.seed,
                n_unlabeled=n_unlabeled or None,
                teacher=TeacherConfig(epochs=args.epochs, max_length=args.max_length),
                student=StudentConfig(loss=loss, alpha=[0.0, 0.1, 0.3]),
            )
            started = time.perf_counter()
            metrics = run_pipeline(labeled, unlabeled_all if n_unlabeled else None, test, config)
            systems = metrics["systems"]
            student_zero = scores_at_zero(run_dir, "student", test.texts, truth)
            baseline_zero = scores_at_zero(run_dir, "baseline", test.texts, truth)
            teacher_pred = load(str(run_dir / "student")).predict(test.texts)
            row = {
                "dataset": "trec-multi",
                "student": "linear",
                "loss": loss,
                "augment": 0,
                "n_labeled": len(labeled),
                "n_unlabeled": n_unlabeled,
                "n_test": len(test),
                "labels_per_row": metrics["data"]["test"]["labels_per_row"],
                "student_accuracy": systems["student"]["subset_accuracy"],
                "teacher_accuracy": systems["teacher"]["subset_accuracy"],
                "student_teacher_agreement": systems["student"]["agreement_with_teacher"],
                "student_label_agreement": systems["student"]["label_agreement_with_teacher"],
                "seconds": time.perf_counter() - started,
            }
            for name in ("baseline", "teacher", "student"):
                for key in ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss"):
                    row[f"{name}_{key}"] = systems[name][key]
            for name, at_zero in (("student", student_zero), ("baseline", baseline_zero)):
                for key in ("micro_f1", "macro_f1", "subset_accuracy"):
                    row[f"{name}_{key}_threshold_0"] = at_zero[key]
            row["per_label_f1"] = {
                name: {label: s["f1"] for label, s in systems[name]["per_class"].items()}
                for name in ("baseline", "teacher", "student")
            }
            row["student_thresholds"] = metrics["student"]["thresholds"]
            row["teacher_thresholds"] = metrics["teacher"]["thresholds"]
            row["student_docs_per_s"] = systems["student"]["docs_per_s"]
            row["teacher_docs_per_s"] = systems["teacher"]["docs_per_s"]
            assert agreement(teacher_pred, teacher_pred) == 1.0
            rows.append(row)
            print(
                f"unlabeled {n_unlabeled:>5} {loss:>7}: micro-F1 baseline "
                f"{row['baseline_micro_f1']:.3f} teacher {row['teacher_micro_f1']:.3f} student "
                f"{row['student_micro_f1']:.3f} (at 0.5: {row['student_micro_f1_threshold_0']:.3f})"
                f"; subset acc. student {row['student_subset_accuracy']:.3f}, teacher "
                f"{row['teacher_subset_accuracy']:.3f}",
                flush=True,
            )
            path = write_results(
                "multilabel_quality",
                rows,
                teacher=metrics["teacher"]["model"],
                teacher_best_epoch=metrics["teacher"]["best_epoch"],
                teacher_fit_seconds=metrics["teacher"]["fit_seconds"],
            )
    plot(rows, path.with_suffix(".png"))
    print(f"wrote {path} and {path.with_suffix('.png')}")


if __name__ == "__main__":
    main()

"""Short text: baseline, teacher and students on sentences, through ``run_pipeline``.

Four protocols, each with 1,000 labeled texts and the teacher that ``textdistill run``
fine-tunes (the demo's: 64 tokens, as ``textdistill demo``):

* ``sst2``: 1,000 of sst2_train.csv.gz labeled (a seeded permutation, as cascade.py), the
  other 5,920 unlabeled, sst2_dev.csv.gz (872) as the test set;
* ``sst2_small_pool``: the same 1,000 labels and only the first 1,500 of those unlabeled;
* ``trec``: a stratified 20% of trec_train.csv.gz as the test set (1,091), 1,000 of the rest
  labeled (stratified), the other 3,361 unlabeled;
* ``demo``: the demo corpus (Rotten Tomatoes snippets) split as ``textdistill demo`` splits
  it: 2,000 test, 1,000 labeled, 7,662 unlabeled.

Each (dataset, student, augment) is one run directory under ``--work``. The first run of a
dataset fine-tunes its teacher; later runs start from a copy of that run's teacher, baseline
and precision stages (whose keys do not depend on the student or the augmentation), so each
teacher is fine-tuned once, and all runs share one logits cache, so each text is labeled once.
Students are scored through the numpy runtime on one core (the pipeline's own evaluation).

    python benchmarks/short_text.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from results_file import RESULTS_DIR, write_results
from textdistill.data import TextDataset, read_labeled, stratified_split
from textdistill.pipeline import AugmentConfig, RunConfig, StudentConfig, run_pipeline
from textdistill.teacher import TeacherConfig

# Datasets that share another's labeled set and teacher.
TEACHER_OF = {"sst2_small_pool": "sst2"}
# Stages a later run of the same dataset copies from its first run: they depend only on the
# labeled data, the teacher options and the seed.
SHARED_STAGES = ("baseline", "teacher", "precision")


@dataclass(frozen=True)
class Protocol:
    labeled: TextDataset
    unlabeled: TextDataset
    test: TextDataset
    teacher: TeacherConfig


def _sst2(data: Path, n_unlabeled: int | None) -> Protocol:
    train = read_labeled(data / "sst2_train.csv.gz")
    order = np.random.default_rng(0).permutation(len(train)).tolist()
    pool = order[1000:] if n_unlabeled is None else order[1000 : 1000 + n_unlabeled]
    return Protocol(
        train.subset(order[:1000]),
        train.subset(pool).without_labels(),
        read_labeled(data / "sst2_dev.csv.gz"),
        TeacherConfig(),
    )


def _trec(data: Path) -> Protocol:
    rest, test = stratified_split(read_labeled(data / "trec_train.csv.gz"), 0.2, seed=0)
    unlabeled, labeled = stratified_split(rest, 1000, seed=0)
    return Protocol(labeled, unlabeled.without_labels(), test, TeacherConfig())


def _demo(data: Path) -> Protocol:
    from textdistill.corpora import rotten_tomatoes

    rest, test = stratified_split(rotten_tomatoes(), 2000, seed=0)
    unlabeled, labeled = stratified_split(rest, 1000, seed=0)
    return Protocol(labeled, unlabeled.without_labels(), test, TeacherConfig(max_length=64))


PROTOCOLS: dict[str, Callable[[Path], Protocol]] = {
    "sst2": lambda data: _sst2(data, None),
    "sst2_small_pool": lambda data: _sst2(data, 1500),
    "trec": _trec,
    "demo": _demo,
}


def _classes_at_zero_f1(system: dict[str, Any]) -> list[str]:
    return sorted(name for name, s in system["per_class"].items() if s["f1"] == 0)


def _row(dataset: str, student: str, augment: int, metrics: dict[str, Any]) -> dict[str, Any]:
    systems = metrics["systems"]
    info = metrics["student"]
    row: dict[str, Any] = {
        "dataset": dataset,
        "student": student,
        "student_kept": info.get("kind", student),
        "augment": augment,
        "n_labeled": metrics["data"]["labeled"]["rows"],
        "n_unlabeled": metrics["data"]["unlabeled"]["rows"],
        "n_transfer": info["n_teacher_rows"],
        "n_test": metrics["data"]["test"]["rows"],
    }
    for name in ("baseline", "teacher", "student"):
        row[f"{name}_accuracy"] = systems[name]["accuracy"]
        row[f"{name}_macro_f1"] = systems[name]["macro_f1"]
        row[f"{name}_classes_at_f1_zero"] = _classes_at_zero_f1(systems[name])
    row["student_teacher_agreement"] = systems["student"]["agreement_with_teacher"]
    row["baseline_docs_per_s"] = systems["baseline"]["docs_per_s"]
    row["teacher_docs_per_s"] = systems["teacher"]["docs_per_s"]
    row["docs_per_s"] = systems["student"]["docs_per_s"]
    row["size_bytes"] = systems["student"]["size_bytes"]
    row["student_fit_seconds"] = info["fit_seconds"]
    if "candidates" in info:
        row["candidates"] = info["candidates"]
    return row


def _first_run(work: Path, teacher: str) -> Path | None:
    """A finished run directory of ``teacher``'s dataset, whose teacher a new run reuses."""
    finished = sorted(work.glob(f"{teacher}-*/stages/teacher.json"))
    return finished[0].parent.parent if finished else None


def _seed_from(first: Path, target: Path) -> None:
    """Copy the dataset's first run's teacher-side stages into a new run directory."""
    if target.exists():
        return
    (target / "stages").mkdir(parents=True)
    for stage in SHARED_STAGES:
        marker = first / "stages" / f"{stage}.json"
        if marker.exists():
            shutil.copy2(marker, target / "stages" / marker.name)
        if (first / stage).is_dir():
            shutil.copytree(first / stage, target / stage)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--work", type=Path, default=Path("runs/short_text"))
    parser.add_argument("--datasets", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    parser.add_argument("--students", nargs="+", default=["linear", "auto"])
    parser.add_argument("--augment", nargs="+", type=int, default=[0, 20])
    args = parser.parse_args()

    rows_file = args.work / "rows.json"
    done: dict[str, dict[str, Any]] = (
        json.loads(rows_file.read_text()) if rows_file.exists() else {}
    )
    for dataset in args.datasets:
        protocol = PROTOCOLS[dataset](args.data)
        for augment in args.augment:
            for student in args.students:
                name = f"{dataset}-{student}-x{augment}"
                out = args.work / name
                first = _first_run(args.work, TEACHER_OF.get(dataset, dataset))
                if first is not None:
                    _seed_from(first, out)
                config = RunConfig(
                    out=out,
                    logits_cache=args.work / "logits",
                    teacher=protocol.teacher,
                    student=StudentConfig(kind=student),
                    augment=AugmentConfig(n_iter=augment),
                )
                metrics = run_pipeline(protocol.labeled, protocol.unlabeled, protocol.test, config)
                done[name] = _row(dataset, student, augment, metrics)
                args.work.mkdir(parents=True, exist_ok=True)
                rows_file.write_text(json.dumps(done, indent=2))
                print(json.dumps(done[name]), flush=True)
    rows = sorted(done.values(), key=lambda r: (r["dataset"], r["augment"], r["student"]))
    write_results("short_text", rows)
    print(f"wrote {RESULTS_DIR / 'short_text.json'}")


if __name__ == "__main__":
    main()

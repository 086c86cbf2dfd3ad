"""Short text: baseline, teacher and students on sentences, through ``run_pipeline``.

Four protocols, each with 1,000 labeled texts and the teacher that ``textdistill run``
fine-tunes (the demo's: 64 tokens, as ``textdistill demo``), by the fine-tuning loop these
results were measured with (``PLAIN_LOOP``: shuffled batches, every epoch run):

* ``sst2``: 1,000 of sst2_train.csv.gz labeled (a seeded permutation, as cascade.py), the
  other 5,920 unlabeled, sst2_dev.csv.gz (872) as the test set;
* ``sst2_small_pool``: the same 1,000 labels and only the first 1,500 of those unlabeled;
* ``trec``: a stratified 20% of trec_train.csv.gz as the test set, less the 20 questions that
  trec_train repeats (1,070), 1,000 of the rest labeled (stratified), the other 3,382
  unlabeled;
* ``demo``: the demo corpus (Rotten Tomatoes snippets) split as ``textdistill demo`` splits
  it: 2,000 test, 1,000 labeled, 9,808 unlabeled.

Each (dataset, student, augment) is one run directory under ``--work``, named
``DATASET-STUDENT-xN`` (``-wW`` appended when ``--dense-window W`` is not the default, 3: the
dense student's max-pooled detectors read W consecutive words); the results are read back from
every such run's ``metrics.json`` (each row records the commit and load of the run that
evaluated it). The first run of a dataset fine-tunes its teacher; later runs start from a copy
of that run's teacher, baseline and precision stages (whose keys do not depend on the student
or the augmentation), so each teacher is fine-tuned once, and all runs share one logits cache,
so each text is labeled once.
Students are scored through the numpy runtime on one core (the pipeline's own evaluation).

    python benchmarks/short_text.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from results_file import RESULTS_DIR, write_results, write_table_into
from textdistill.data import TextDataset, read_labeled, stratified_split
from textdistill.pipeline import AugmentConfig, RunConfig, StudentConfig, run_pipeline
from textdistill.students.dense import DEFAULT_WINDOW
from textdistill.teacher import TeacherConfig
from textdistill.teacher_training import PLAIN_LOOP

# The invocations whose runs the committed results hold (each row's "run" says when and at
# which commit it was evaluated); then --write-only wrote the file.
INVOCATIONS = [
    "python benchmarks/short_text.py --data ../shared/data --datasets sst2 sst2_small_pool trec"
    " demo --augment 0 --dense-window 1",
    "python benchmarks/short_text.py --data ../shared/data --datasets sst2 sst2_small_pool trec"
    " demo --augment 0",
    "python benchmarks/short_text.py --data ../shared/data --datasets sst2 --augment 20",
]
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
        TeacherConfig(**PLAIN_LOOP),
    )


def _trec(data: Path) -> Protocol:
    rest, test = stratified_split(read_labeled(data / "trec_train.csv.gz"), 0.2, seed=0, apart=True)
    unlabeled, labeled = stratified_split(rest, 1000, seed=0)
    return Protocol(labeled, unlabeled.without_labels(), test, TeacherConfig(**PLAIN_LOOP))


def _demo(data: Path) -> Protocol:
    from textdistill.corpora import rotten_tomatoes

    rest, test = stratified_split(rotten_tomatoes(), 2000, seed=0)
    unlabeled, labeled = stratified_split(rest, 1000, seed=0)
    teacher = TeacherConfig(max_length=64, **PLAIN_LOOP)
    return Protocol(labeled, unlabeled.without_labels(), test, teacher)


PROTOCOLS: dict[str, Callable[[Path], Protocol]] = {
    "sst2": lambda data: _sst2(data, None),
    "sst2_small_pool": lambda data: _sst2(data, 1500),
    "trec": _trec,
    "demo": _demo,
}


def _classes_at_zero_f1(system: dict[str, Any]) -> list[str]:
    return sorted(name for name, s in system["per_class"].items() if s["f1"] == 0)


RUN_NAME = re.compile(
    r"(?P<dataset>.+)-(?P<student>[a-z]+)-x(?P<augment>\d+)(?:-w(?P<window>\d+))?"
)


def run_name(dataset: str, student: str, augment: int, window: int) -> str:
    """The run directory of one (dataset, student, augment, dense window), as RUN_NAME reads;
    the window is named when it is not the default.

    >>> run_name("sst2", "auto", 0, DEFAULT_WINDOW), run_name("sst2", "auto", 20, 1)
    ('sst2-auto-x0', 'sst2-auto-x20-w1')
    >>> RUN_NAME.fullmatch("sst2_small_pool-dense-x0-w3").groupdict()
    {'dataset': 'sst2_small_pool', 'student': 'dense', 'augment': '0', 'window': '3'}
    """
    named = f"-w{window}" if window != DEFAULT_WINDOW else ""
    return f"{dataset}-{student}-x{augment}{named}"


def label(row: dict[str, Any]) -> str:
    """A row's student as the table and the plots name it: its window when not the default."""
    window = row.get("dense_window", DEFAULT_WINDOW)
    return row["student"] + (f" w{window}" if window != DEFAULT_WINDOW else "")


def _rows(
    dataset: str,
    student: str,
    augment: int,
    metrics: dict[str, Any],
    *,
    window: int = DEFAULT_WINDOW,
) -> list[dict[str, Any]]:
    """One row for the student the run kept (``student`` as asked: "auto" keeps one of the
    linear and dense students) and, for ``auto``, one per student it tried and scored."""
    systems = metrics["systems"]
    info = metrics["student"]
    common: dict[str, Any] = {
        "dataset": dataset,
        "augment": augment,
        "dense_window": window,
        "n_labeled": metrics["data"]["labeled"]["rows"],
        "n_unlabeled": metrics["data"]["unlabeled"]["rows"],
        "n_transfer": info["n_teacher_rows"],
        "n_test": metrics["data"]["test"]["rows"],
    }
    for name in ("baseline", "teacher"):
        common[f"{name}_accuracy"] = systems[name]["accuracy"]
        common[f"{name}_macro_f1"] = systems[name]["macro_f1"]
        common[f"{name}_classes_at_f1_zero"] = _classes_at_zero_f1(systems[name])
    common["baseline_docs_per_s"] = systems["baseline"]["docs_per_s"]
    common["teacher_docs_per_s"] = systems["teacher"]["docs_per_s"]

    def row(name: str, system: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
        return {
            **common,
            "student": name,
            "student_kind": facts.get("kind", name),
            "student_accuracy": system["accuracy"],
            "student_macro_f1": system["macro_f1"],
            "student_classes_at_f1_zero": _classes_at_zero_f1(system),
            "student_teacher_agreement": system["agreement_with_teacher"],
            "student_validation_agreement": facts.get("validation_agreement"),
            "docs_per_s": system["docs_per_s"],
            "size_bytes": system["size_bytes"],
            "student_fit_seconds": facts["fit_seconds"],
        }

    common["run"] = {  # where this row's numbers were evaluated (the run's metrics.json)
        "created": metrics["created"],
        "source": metrics["source"],
        "load_average_at_start": metrics["machine"]["load_average_at_start"],
    }
    rows = [row(student, systems["student"], info)]
    if len(info.get("candidates", {})) > 1:
        rows[0]["kept_because"] = info["kept_because"]
        rows += [
            row(kind, info["test"][kind], info["candidates"][kind]) for kind in info["candidates"]
        ]
    return rows


def _rows_of_runs(work: Path) -> list[dict[str, Any]]:
    """The rows of every finished run under ``work`` (``DATASET-STUDENT-xN/metrics.json``)."""
    rows = []
    for metrics_file in sorted(work.glob("*-x*/metrics.json")):
        name = RUN_NAME.fullmatch(metrics_file.parent.name)
        if name is None:
            continue
        metrics = json.loads(metrics_file.read_text())
        rows += _rows(
            name["dataset"],
            name["student"],
            int(name["augment"]),
            metrics,
            window=int(name["window"] or DEFAULT_WINDOW),
        )
    return sorted(rows, key=lambda r: (r["dataset"], r["augment"], r["dense_window"], r["student"]))


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


def plot(dataset: str, rows: list[dict[str, Any]], path: Path) -> None:
    """Accuracy against documents per second: every student row of ``dataset`` (each kind at
    each augmentation), with its baseline and teacher marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    first = rows[0]
    ax.scatter(
        first["baseline_docs_per_s"],
        first["baseline_accuracy"],
        s=90,
        marker="s",
        color="tab:gray",
        label="baseline (TF-IDF + LR on the labels)",
        zorder=3,
    )
    if first["teacher_docs_per_s"]:
        ax.scatter(
            first["teacher_docs_per_s"],
            first["teacher_accuracy"],
            s=110,
            marker="*",
            color="tab:red",
            label="teacher (all cores)",
            zorder=3,
        )
    ax.axhline(first["teacher_accuracy"], color="tab:red", lw=0.8, ls="--")
    ax.axhline(
        first["teacher_accuracy"] - 0.02,
        color="tab:red",
        lw=0.6,
        ls=":",
        label="2 points under the teacher",
    )
    colors = {"linear": "tab:blue", "dense": "tab:green", "blend": "tab:purple"}
    kept = {
        (r["augment"], r["dense_window"], r["student_kind"]) for r in rows if r["student"] == "auto"
    }
    for row in rows:
        kind = row["student"]
        if kind == "auto":  # drawn as a ring around the candidate it kept
            continue
        if kind == "linear" and row["dense_window"] != DEFAULT_WINDOW:  # as the default run's
            continue
        point = (row["docs_per_s"], row["student_accuracy"])
        ax.scatter(*point, s=50, color=colors.get(kind, "black"), zorder=4)
        if (row["augment"], row["dense_window"], kind) in kept:
            ax.scatter(*point, s=160, facecolors="none", edgecolors="black", zorder=5)
        ax.annotate(
            f"{label(row)} x{row['augment']}",
            point,
            textcoords="offset points",
            xytext=(6, -3),
            fontsize=7,
        )
    for kind, color in colors.items():
        ax.scatter([], [], color=color, label=f"{kind} student (one core)")
    ax.scatter([], [], s=160, facecolors="none", edgecolors="black", label="kept by --student auto")
    ax.set_xscale("log")
    ax.set_xlabel("sentences per second (log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{dataset}: accuracy against throughput (xN: augmentation)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


DOCS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "short-text.md"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The docs table of every row, rendered from the results so it cannot drift."""

    def f(value: float) -> str:
        return f"{value:.3f}"

    lines = [
        "| dataset | augment | teacher-labeled texts | student | baseline | teacher | student "
        "| under the teacher | agreement with teacher | macro-F1 baseline / teacher / student "
        "| sentences/s (1 core) | size |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for row in rows:
        kept = row["student"] == "auto"
        name = f"**{label(row)}: {row['student_kind']}**" if kept else label(row)
        lines.append(
            f"| {row['dataset']} | x{row['augment']} | {row['n_transfer']:,} | {name} | "
            f"{f(row['baseline_accuracy'])} | {f(row['teacher_accuracy'])} | "
            f"{f(row['student_accuracy'])} | "
            f"{100 * (row['teacher_accuracy'] - row['student_accuracy']):.1f} pts | "
            f"{f(row['student_teacher_agreement'])} | {f(row['baseline_macro_f1'])} / "
            f"{f(row['teacher_macro_f1'])} / {f(row['student_macro_f1'])} | "
            f"{row['docs_per_s']:,.0f} | {row['size_bytes'] / 1e6:.1f} MB |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--work", type=Path, default=Path("runs/short_text"))
    parser.add_argument("--datasets", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    parser.add_argument("--students", nargs="+", default=["auto"])
    parser.add_argument("--augment", nargs="+", type=int, default=[0, 20])
    parser.add_argument(
        "--dense-window",
        type=int,
        default=DEFAULT_WINDOW,
        help="consecutive words the dense student's max-pooled detectors read",
    )
    parser.add_argument(
        "--write-only",
        action="store_true",
        help="run nothing: write the JSON and plots from the finished runs in --work",
    )
    args = parser.parse_args()

    for dataset in [] if args.write_only else args.datasets:
        protocol = PROTOCOLS[dataset](args.data)
        for augment in args.augment:
            for student in args.students:
                out = args.work / run_name(dataset, student, augment, args.dense_window)
                first = _first_run(args.work, TEACHER_OF.get(dataset, dataset))
                if first is not None:
                    _seed_from(first, out)
                config = RunConfig(
                    out=out,
                    logits_cache=args.work / "logits",
                    teacher=protocol.teacher,
                    student=StudentConfig(kind=student, dense_window=args.dense_window),
                    augment=AugmentConfig(n_iter=augment),
                )
                run_pipeline(protocol.labeled, protocol.unlabeled, protocol.test, config)
    rows = _rows_of_runs(args.work)
    write_results("short_text", rows, invocations=INVOCATIONS)
    write_table_into(DOCS_PAGE, "short_text", markdown_table(rows))
    for dataset in sorted({row["dataset"] for row in rows}):
        plot(
            dataset,
            [r for r in rows if r["dataset"] == dataset],
            RESULTS_DIR / f"short_text_{dataset}.png",
        )
    print(f"wrote {RESULTS_DIR / 'short_text.json'} and a PNG per dataset")


if __name__ == "__main__":
    main()

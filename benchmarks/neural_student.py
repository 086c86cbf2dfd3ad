"""Neural students (embedding bag, BiLSTM) beside the linear student, on cached teacher logits.

Reads the teacher logits of earlier runs (``runs/sst2``, ``runs/seed_protocol``, ``runs/trec``,
made by ``benchmarks/cascade.py`` and ``benchmarks/seed_protocol.py``; copied to a temporary
directory first, so the runs are never written to), rebuilds the same splits with the
pipeline's own ``prepare_splits``, fits each neural student on the transfer set + the gold
rows exactly as ``textdistill run`` does, and scores every student through the numpy runtime
(one BLAS thread) on the test set. The linear row is each run's own student artifact, timed
here in the same process. No text is labeled by the teacher.

    python benchmarks/neural_student.py --data ../shared/data --runs runs
    python benchmarks/neural_student.py --datasets sst2 --students bag bilstm

Rows follow ``benchmarks/student_quality.py``'s schema (``student`` is ``linear`` or
``neural-<arch>``), plus docs/s and artifact size.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the runtime is timed on one core
os.environ.setdefault("OMP_NUM_THREADS", "2")  # torch may train on both

import argparse
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from results_file import RESULTS_DIR, write_results
from seed_protocol import protocol_splits
from textdistill.calibration import fit_temperature
from textdistill.data import TextDataset, read_labeled, read_unlabeled
from textdistill.evaluate import agreement, throughput
from textdistill.logits_store import LogitsStore
from textdistill.pipeline import RunConfig, Splits, prepare_splits
from textdistill.runtime import load
from textdistill.runtime.artifact import directory_size
from textdistill.students.neural import NeuralStudent

# Per architecture and dataset: settings chosen on held-out teacher rows (see the README).
STUDENTS: dict[str, dict[str, Any]] = {
    "bag": {"architecture": "bag", "hidden_units": 64, "max_features": 100_000},
    # Tang et al.'s sizes.
    "bilstm": {
        "architecture": "bilstm",
        "embedding_dim": 300,
        "lstm_units": 150,
        "hidden_units": 200,
        "max_features": 30_000,
    },
}
# Not run, and why (see the README).
SKIPPED = {
    ("imdb", "bilstm"): "one BiLSTM epoch on the 5,325 SST-2 sentences took 1-4 minutes on this "
    "2-core machine; on 18,000 reviews of up to 256 words it would take hours per epoch",
}


@dataclass
class Dataset:
    name: str
    run: str
    splits: Splits


def _datasets(data: Path, names: list[str]) -> list[Dataset]:
    """The splits each cached run was made with (see cascade.py, seed_protocol.py)."""
    out = []
    if "sst2" in names:
        sst2 = read_labeled(data / "sst2_train.csv.gz")
        order = np.random.default_rng(0).permutation(len(sst2)).tolist()
        splits = prepare_splits(
            sst2.subset(order[:1000]),
            sst2.subset(order[1000:]).without_labels(),
            read_labeled(data / "sst2_dev.csv.gz"),
            RunConfig(),
        )
        out.append(Dataset("sst2", "sst2", splits))
    if "imdb" in names:
        labeled, test, unlabeled, rest = protocol_splits(data, 0, 1000, 2000, 5000)
        extra = read_unlabeled(data / "imdb_unlabeled.csv.gz")
        pool = TextDataset(
            texts=unlabeled.texts + rest.texts + extra.texts, labels=None, source="imdb pool"
        )
        splits = prepare_splits(labeled, pool.head(20000), test, RunConfig())
        out.append(Dataset("imdb", "seed_protocol", splits))
    if "trec" in names:
        trec = read_labeled(data / "trec_train.csv.gz")
        out.append(
            Dataset("trec", "trec", prepare_splits(trec, None, None, RunConfig(n_labeled=1000)))
        )
    return out


def _open_store(run: Path, scratch: Path) -> tuple[LogitsStore, list[str]]:
    info = json.loads((run / "stages" / "teacher.json").read_text())["info"]
    fingerprint, classes = info["fingerprint"], info["classes"]
    shutil.copytree(run / "logits" / fingerprint, scratch / fingerprint)
    return LogitsStore(scratch, fingerprint=fingerprint, n_classes=len(classes)), classes


def _score(
    model: Any, splits: Splits, classes: list[str], teacher_logits: np.ndarray
) -> dict[str, Any]:
    assert splits.test.labels is not None
    predicted = model.predict(splits.test.texts)
    teacher = [classes[i] for i in teacher_logits.argmax(axis=1)]
    return {
        "student_accuracy": float(np.mean(np.array(predicted) == np.array(splits.test.labels))),
        "teacher_accuracy": float(np.mean(np.array(teacher) == np.array(splits.test.labels))),
        "student_teacher_agreement": agreement(predicted, teacher),
        "docs_per_s": throughput(model.predict, splits.test.texts),
    }


def _rows(
    dataset: Dataset, runs: Path, students: list[str], scratch: Path, epochs: int | None
) -> list[dict[str, Any]]:
    splits = dataset.splits
    store, classes = _open_store(runs / dataset.run, scratch / dataset.name)
    teacher_test = store.get(splits.test.texts)
    common = {
        "dataset": dataset.name,
        "loss": "mse",
        "augment": "none",
        "n_labeled": len(splits.labeled),
        "n_unlabeled": len(splits.unlabeled),
        "n_transfer": len(splits.transfer),
        "n_test": len(splits.test),
    }
    linear = runs / dataset.run / "student"
    rows = [
        {
            **common,
            "student": "linear",
            **_score(load(str(linear)), splits, classes, teacher_test),
            "size_bytes": directory_size(linear),
        }
    ]
    print(json.dumps(rows[-1]), flush=True)
    gold, calibration = splits.teacher_train, splits.teacher_validation
    assert gold.labels is not None and calibration.labels is not None
    for name in students:
        if (dataset.name, name) in SKIPPED:
            continue
        params = dict(STUDENTS[name])
        if epochs is not None:
            params["epochs"] = epochs
        student = NeuralStudent(**params).fit(
            splits.transfer,
            store.get(splits.transfer),
            classes=classes,
            gold_texts=gold.texts,
            gold_labels=gold.labels,
            progress=True,
        )
        index = {c: i for i, c in enumerate(classes)}
        student.model_.temperature = fit_temperature(
            student.decision_function(calibration.texts),
            np.array([index[label] for label in calibration.labels]),
        )
        path = scratch / f"{dataset.name}-{name}"
        student.save(path)
        rows.append(
            {
                **common,
                "student": f"neural-{name}",
                **_score(load(str(path)), splits, classes, teacher_test),
                "size_bytes": directory_size(path),
                "fit_seconds": student.fit_seconds_,
                "best_epoch": student.best_epoch_,
                "params": student.get_params(),
            }
        )
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "params"}), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="folder of the cached runs")
    parser.add_argument("--datasets", nargs="+", default=["sst2", "imdb", "trec"])
    parser.add_argument("--students", nargs="+", default=list(STUDENTS), choices=list(STUDENTS))
    parser.add_argument("--epochs", type=int, help="override the number of epochs (quick checks)")
    parser.add_argument("--name", default="neural_student", help="results/<name>.json")
    parser.add_argument(
        "--append",
        action="store_true",
        help="keep the rows of an earlier results file whose (dataset, student) was not rerun",
    )
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        for dataset in _datasets(args.data, args.datasets):
            rows.extend(_rows(dataset, args.runs, args.students, Path(scratch), args.epochs))
    earlier = RESULTS_DIR / f"{args.name}.json"
    if args.append and earlier.exists():
        done = {(row["dataset"], row["student"]) for row in rows}
        kept = json.loads(earlier.read_text())["rows"]
        rows = [r for r in kept if (r["dataset"], r["student"]) not in done] + rows
    skipped = [
        {"dataset": d, "student": f"neural-{s}", "why": why} for (d, s), why in SKIPPED.items()
    ]
    write_results(args.name, rows, students=STUDENTS, skipped=skipped)


if __name__ == "__main__":
    main()

"""What the teacher costs on a CPU: labeling docs/s per precision and backend, and fine-tuning
seconds with and without the cheaper loop.

``labeling``: fine-tuned teachers label the same texts in every precision and backend
``Teacher.use_precision`` offers (torch fp32, the loop ``textdistill`` used before ONNX
Runtime; bf16 autocast; torch's dynamic int8; ONNX Runtime fp32 with its transformer graph
optimisations; ONNX Runtime int8), plus a plain Hugging Face loop (input order, batches
padded to their longest member) for reference. The variants run interleaved, ``--rounds``
times, and each row gives the median docs/s and the labels (and largest logit change) against
torch fp32. Texts: the 872 SST-2 dev sentences (the SST-2 teacher), the 1,090 TREC test
questions (the TREC teacher), and ``--imdb-docs`` IMDB reviews at 512 tokens read by the
SST-2 teacher (a sentence teacher on reviews: the speed is the model's, the agreement that
teacher's).

``fine-tuning``: all-MiniLM-L6-v2 fine-tuned as ``textdistill run`` does it (1,000 labels,
900 to train and 100 to pick the epoch, seed 0; the short-text protocols of
``short_text.py``), once as before (shuffled batches, all 8 epochs: ``today``) and once with
length-bucketed batches and early stopping with a patience of 2 (``new``, both opt-in),
each scored on its protocol's test set. IMDB reviews take hours at 8 epochs on two cores, so
IMDB is measured on a subsample and for one epoch only (time per epoch, no accuracy).

Every row records the load average around it: on a shared machine only rows measured side
by side compare.

    python benchmarks/teacher_speed.py labeling --data ../shared/data \\
        --sst2-teacher runs/short_text/sst2-auto-x0/teacher \\
        --trec-teacher runs/short_text/trec-auto-x0/teacher
    python benchmarks/teacher_speed.py fine-tuning --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from results_file import RESULTS_DIR, write_results
from short_text import PROTOCOLS
from textdistill.data import read_labeled, stratified_split
from textdistill.teacher import Teacher, TeacherConfig
from textdistill.teacher_precision import LABELING_PRECISIONS

VARIANTS = {
    "today": {"bucket_by_length": False, "patience": None},
    "new": {"bucket_by_length": True, "patience": 2},
}


def _plain_loop(teacher: Teacher, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """The reference: no sorting, each batch padded to its longest text."""
    model, tokenizer = teacher._model, teacher._tokenizer
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                truncation=True,
                padding=True,
                max_length=teacher._max_length,
                return_tensors="pt",
            )
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            out.append(logits.logits.float().numpy())
    return np.concatenate(out)


def _labeling_rows(
    dataset: str, teacher_dir: Path, texts: list[str], max_length: int, rounds: int
) -> list[dict[str, Any]]:
    teacher = Teacher.load(teacher_dir)
    # Head truncation, as the plain loop does, so agreement measures numerics alone.
    teacher.config.truncation = "head"
    teacher.config.max_length = teacher._max_length = max_length
    torch.set_num_threads(teacher._thread_count())
    for precision in LABELING_PRECISIONS:  # build every backend before anything is timed
        teacher.use_precision(precision)
        teacher.logits(texts[:8])
    runs: dict[str, list[float]] = {}
    logits: dict[str, np.ndarray] = {}
    loads = [os.getloadavg()[0]]
    for _ in range(rounds):
        for variant in ("hf-plain-fp32", *LABELING_PRECISIONS):
            started = time.perf_counter()
            if variant == "hf-plain-fp32":
                teacher.use_precision("fp32")
                with teacher._threads():
                    logits[variant] = _plain_loop(teacher, texts)
            else:
                teacher.use_precision(variant)
                logits[variant] = teacher.logits(texts, batch_size=64)
            runs.setdefault(variant, []).append(len(texts) / (time.perf_counter() - started))
            loads.append(os.getloadavg()[0])
    reference = logits["fp32"]
    rows = []
    for variant, rates in runs.items():
        rows.append(
            {
                "part": "labeling",
                "dataset": dataset,
                "variant": variant,
                "max_length": max_length,
                "docs": len(texts),
                "batch_size": 64,
                "docs_per_s": statistics.median(rates),
                "docs_per_s_rounds": rates,
                "speedup_vs_torch_fp32": statistics.median(rates) / statistics.median(runs["fp32"]),
                "label_agreement_with_fp32": float(
                    np.mean(logits[variant].argmax(axis=1) == reference.argmax(axis=1))
                ),
                "max_abs_logit_diff": float(np.max(np.abs(logits[variant] - reference))),
                "load_1min": {"min": min(loads), "max": max(loads)},
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _fine_tuning_row(
    dataset: str,
    variant: str,
    train: tuple[list[str], list[str]],
    validation: tuple[list[str], list[str]],
    test: tuple[list[str], list[str]] | None,
    config: TeacherConfig,
) -> dict[str, Any]:
    teacher = Teacher(config, **VARIANTS[variant])
    load_before = os.getloadavg()
    teacher.fit(*train, val_texts=validation[0], val_labels=validation[1], progress=False)
    row: dict[str, Any] = {
        "part": "fine-tuning",
        "dataset": dataset,
        "variant": variant,
        **VARIANTS[variant],
        "n_train": len(train[0]),
        "n_validation": len(validation[0]),
        "max_length": config.max_length,
        "epochs_max": config.epochs,
        "epochs_run": len(teacher.history_),
        "best_epoch": teacher.best_epoch_,
        "fit_seconds": teacher.fit_seconds_,
        "epoch_seconds": [h["seconds"] for h in teacher.history_],
        "val_accuracy": [h["val_accuracy"] for h in teacher.history_],
        "val_loss": [h["val_loss"] for h in teacher.history_],
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }
    if test is not None:
        predicted = teacher.predict(test[0])
        hits = [p == y for p, y in zip(predicted, test[1], strict=True)]
        row["test_accuracy"] = float(np.mean(hits))
        row["n_test"] = len(test[0])
    print(json.dumps(row), flush=True)
    return row


def _protocol_sets(
    name: str, data: Path
) -> tuple[tuple[Any, Any], tuple[Any, Any], tuple[Any, Any], TeacherConfig]:
    protocol = PROTOCOLS[name](data)
    # The split ``textdistill run`` makes of 1,000 labels (pipeline.prepare_splits).
    train, validation = stratified_split(protocol.labeled, 100, seed=0)
    pairs = [(d.texts, list(d.labels or [])) for d in (train, validation, protocol.test)]
    return pairs[0], pairs[1], pairs[2], protocol.teacher


def _imdb_sets(data: Path, n: int) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    imdb = read_labeled(data / "imdb_train.csv.gz")
    order = np.random.default_rng(0).permutation(len(imdb)).tolist()
    train, validation = stratified_split(imdb.subset(order[:n]), 0.1, seed=0)
    return (train.texts, list(train.labels or [])), (
        validation.texts,
        list(validation.labels or []),
    )


def _previous_rows(part: str) -> list[dict[str, Any]]:
    """Rows of the other part, kept when one part is rerun."""
    path = RESULTS_DIR / "teacher_speed.json"
    if not path.is_file():
        return []
    return [r for r in json.loads(path.read_text()).get("rows", []) if r.get("part") != part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["labeling", "fine-tuning"])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument(
        "--sst2-teacher", type=Path, default=Path("runs/short_text/sst2-auto-x0/teacher")
    )
    parser.add_argument(
        "--trec-teacher", type=Path, default=Path("runs/short_text/trec-auto-x0/teacher")
    )
    parser.add_argument("--imdb-docs", type=int, default=128, help="IMDB reviews to label")
    parser.add_argument("--imdb-labels", type=int, default=300, help="IMDB reviews to fine-tune on")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--datasets", nargs="+", default=["sst2", "trec", "imdb"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--note", default="", help="stored in the JSON")
    args = parser.parse_args()
    rows = _previous_rows(args.part)
    note = args.note

    def save() -> None:
        write_results("teacher_speed", rows, note=note)

    if args.part == "labeling":
        sets = {
            "sst2": (args.sst2_teacher, read_labeled(args.data / "sst2_dev.csv.gz").texts, 64),
            "trec": (args.trec_teacher, _protocol_sets("trec", args.data)[2][0], 64),
        }
        imdb = read_labeled(args.data / "imdb_train.csv.gz")
        order = np.random.default_rng(1).permutation(len(imdb)).tolist()
        sets["imdb"] = (args.sst2_teacher, imdb.subset(order[: args.imdb_docs]).texts, 512)
        for dataset in args.datasets:
            teacher_dir, texts, max_length = sets[dataset]
            rows += _labeling_rows(dataset, teacher_dir, texts, max_length, args.rounds)
            save()
        return
    for dataset in args.datasets:
        for variant in args.variants:
            if dataset == "imdb":
                train, validation = _imdb_sets(args.data, args.imdb_labels)
                config = TeacherConfig(epochs=1)
                rows.append(_fine_tuning_row(dataset, variant, train, validation, None, config))
            else:
                train, validation, test, config = _protocol_sets(dataset, args.data)
                rows.append(_fine_tuning_row(dataset, variant, train, validation, test, config))
            save()


if __name__ == "__main__":
    main()

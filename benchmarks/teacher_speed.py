"""How fast the teacher labels, against a plain Hugging Face loop on the same model and texts.

Variants, all on the same fine-tuned teacher and the same documents:

* ``hf-plain-fp32``          the texts in their given order, batches of 32 padded to their
                             longest member, fp32: what a first script does
* ``textdistill-fp32``       ``Teacher.logits``: tokenised once, sorted by length, batches of
                             similar lengths (32 and 64)
* ``textdistill-int8``       the same after ``torch.ao.quantization.quantize_dynamic`` of the
                             linear layers (an experiment: not what ``textdistill run`` does)

Each row gives documents/s and agreement of predicted labels (and max |Δ logit|) with the
plain fp32 loop. Run the seed protocol and cascade benchmarks first for the teachers.

    python benchmarks/teacher_speed.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from results_file import write_results
from textdistill.data import read_labeled
from textdistill.teacher import Teacher


def _plain_loop(teacher: Teacher, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """The baseline: no sorting, pad each batch to its longest text."""
    model, tokenizer = teacher._model, teacher._tokenizer
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                truncation=True,
                padding=True,
                max_length=teacher.config.max_length,
                return_tensors="pt",
            )
            out.append(
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                .logits.float()
                .numpy()
            )
    return np.concatenate(out)


def _timed(run: Any) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    logits = run()
    return logits, time.perf_counter() - started


def _rows(dataset: str, teacher_dir: Path, texts: list[str]) -> list[dict[str, Any]]:
    teacher = Teacher.load(teacher_dir)
    torch.set_num_threads(teacher.config.num_threads or 2)
    reference, seconds = _timed(lambda: _plain_loop(teacher, texts))
    rows = [
        {
            "variant": "hf-plain-fp32",
            "dataset": dataset,
            "batch_size": 32,
            "docs_per_s": len(texts) / seconds,
            "label_agreement_with_fp32": 1.0,
            "max_abs_logit_diff": 0.0,
        }
    ]

    def row(variant: str, batch_size: int, logits: np.ndarray, seconds: float) -> dict:
        return {
            "variant": variant,
            "dataset": dataset,
            "batch_size": batch_size,
            "docs_per_s": len(texts) / seconds,
            "label_agreement_with_fp32": float(
                np.mean(logits.argmax(axis=1) == reference.argmax(axis=1))
            ),
            "max_abs_logit_diff": float(np.max(np.abs(logits - reference))),
        }

    for batch_size in (32, 64):
        logits, seconds = _timed(lambda b=batch_size: teacher.logits(texts, batch_size=b))
        rows.append(row("textdistill-fp32", batch_size, logits, seconds))
    teacher._model = torch.ao.quantization.quantize_dynamic(
        teacher._model, {torch.nn.Linear}, dtype=torch.qint8
    )
    logits, seconds = _timed(lambda: teacher.logits(texts, batch_size=64))
    rows.append(row("textdistill-int8", 64, logits, seconds))
    for r in rows[-4:]:
        print(r, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--imdb-teacher", type=Path, default=Path("runs/seed_protocol/teacher"))
    parser.add_argument("--sst2-teacher", type=Path, default=Path("runs/sst2/teacher"))
    parser.add_argument("--imdb-docs", type=int, default=512)
    parser.add_argument("--sst2-docs", type=int, default=872)
    args = parser.parse_args()
    imdb = read_labeled(args.data / "imdb_train.csv.gz")
    order = np.random.default_rng(1).permutation(len(imdb)).tolist()
    rows = _rows("imdb", args.imdb_teacher, imdb.subset(order[: args.imdb_docs]).texts)
    sst2 = read_labeled(args.data / "sst2_dev.csv.gz").texts[: args.sst2_docs]
    rows += _rows("sst2", args.sst2_teacher, sst2)
    write_results("teacher_speed", rows, note="2 torch threads; fixed document order")


if __name__ == "__main__":
    main()

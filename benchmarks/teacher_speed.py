"""How fast the teacher labels, against a plain Hugging Face loop on the same model and texts.

Variants, all on the same fine-tuned teacher and the same documents:

* ``hf-plain-fp32``          the texts in their given order, batches of 32 padded to their
                             longest member, fp32: what a first script does
* ``textdistill-fp32``       ``Teacher.logits``: tokenised once, sorted by length, batches of
                             similar lengths (32 and 64)
* ``textdistill-bf16``       the same under bf16 autocast (AMX/AVX512-BF16 on this CPU)
* ``textdistill-int8``       the same after ``torch.ao.quantization.quantize_dynamic`` of the
                             linear layers

``textdistill run`` picks bf16 or int8 only where it measures faster and keeps >= 99.5% of the
fp32 labels (``Teacher.select_precision``). IMDB is measured at 256 and 512 tokens; all
variants truncate at the head, as the plain loop does, so agreement measures numerics alone.

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


def _rows(
    dataset: str, teacher_dir: Path, texts: list[str], max_length: int | None = None
) -> list[dict[str, Any]]:
    teacher = Teacher.load(teacher_dir)
    # Plain-loop truncation ("head") for both, so agreement measures numerics only.
    teacher.config.truncation = "head"
    if max_length is not None:
        teacher.config.max_length = teacher._max_length = max_length
    torch.set_num_threads(teacher.config.num_threads or 2)
    reference, seconds = _timed(lambda: _plain_loop(teacher, texts))
    common = {"dataset": dataset, "max_length": teacher._max_length}
    rows = [
        {
            "variant": "hf-plain-fp32",
            **common,
            "batch_size": 32,
            "docs_per_s": len(texts) / seconds,
            "label_agreement_with_fp32": 1.0,
            "max_abs_logit_diff": 0.0,
        }
    ]
    for precision, sizes in (("fp32", (32, 64)), ("bf16", (32, 64)), ("int8", (64,))):
        teacher.use_precision(precision)
        for batch_size in sizes:
            logits, seconds = _timed(lambda b=batch_size: teacher.logits(texts, batch_size=b))
            rows.append(
                {
                    "variant": f"textdistill-{precision}",
                    **common,
                    "batch_size": batch_size,
                    "docs_per_s": len(texts) / seconds,
                    "speedup_vs_plain": len(texts) / seconds / rows[0]["docs_per_s"],
                    "label_agreement_with_fp32": float(
                        np.mean(logits.argmax(axis=1) == reference.argmax(axis=1))
                    ),
                    "max_abs_logit_diff": float(np.max(np.abs(logits - reference))),
                }
            )
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--imdb-teacher", type=Path, default=Path("runs/seed_protocol/teacher"))
    parser.add_argument("--sst2-teacher", type=Path, default=Path("runs/sst2/teacher"))
    parser.add_argument("--imdb-docs", type=int, default=512)
    parser.add_argument("--sst2-docs", type=int, default=872)
    parser.add_argument(
        "--note", default="2 torch threads; fixed document order", help="stored in the JSON"
    )
    args = parser.parse_args()
    imdb = read_labeled(args.data / "imdb_train.csv.gz")
    order = np.random.default_rng(1).permutation(len(imdb)).tolist()
    reviews = imdb.subset(order[: args.imdb_docs]).texts
    rows = [row for n in (256, 512) for row in _rows("imdb", args.imdb_teacher, reviews, n)]
    sst2 = read_labeled(args.data / "sst2_dev.csv.gz").texts[: args.sst2_docs]
    rows += _rows("sst2", args.sst2_teacher, sst2)
    write_results("teacher_speed", rows, note=args.note)


if __name__ == "__main__":
    main()

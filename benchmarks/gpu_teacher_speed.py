"""Teacher inference speed on one GPU: the all-MiniLM-L6-v2 architecture on IMDB-length input.

What labeling costs per GPU, for the plan in the README. The model has the teacher's exact
architecture (6 layers, 384 wide, 2 classes) with random weights: speed does not depend on
the weights, and the 87 MB fine-tuned checkpoint could not travel to the GPU machine. Inputs
are random token ids whose lengths follow the IMDB reviews' token lengths at 256 tokens (one
tenth of the documents at each decile: 79, 142, 164, 184, 212, 250, then 256 for the
four longest tenths; mean 205.5), batched longest first with dynamic padding exactly as
``Teacher.logits`` does. Tokenization is not included (it runs on the CPU cores beside the
GPU). fp32, and bf16 autocast.

    python benchmarks/gpu_teacher_speed.py       # needs a CUDA GPU
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch
from transformers import BertConfig, BertForSequenceClassification

from results_file import write_results

DECILES = [79, 142, 164, 184, 212, 250, 256, 256, 256, 256]
N_DOCS = 40_000


def main() -> None:
    config = BertConfig(
        vocab_size=30522,
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
        max_position_embeddings=512,
        num_labels=2,
    )
    model = BertForSequenceClassification(config).cuda().eval()
    lengths = np.repeat(DECILES, N_DOCS // 10)
    rng = np.random.default_rng(0)
    ids = [rng.integers(1000, 30000, n) for n in lengths]
    order = np.argsort(-lengths, kind="stable")

    def run(batch_size: int, bf16: bool, count: int) -> None:
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            for start in range(0, count, batch_size):
                idx = order[start : start + batch_size]
                width = lengths[idx].max()
                x = np.zeros((len(idx), width), np.int64)
                mask = np.zeros_like(x)
                for i, j in enumerate(idx):
                    x[i, : lengths[j]] = ids[j]
                    mask[i, : lengths[j]] = 1
                inputs = {"input_ids": torch.from_numpy(x).cuda()}
                inputs["attention_mask"] = torch.from_numpy(mask).cuda()
                model(**inputs).logits.float().cpu().numpy()

    rows = []
    for bf16 in (False, True):
        for batch_size in (64, 256):
            run(batch_size, bf16, 4000)  # warm-up
            torch.cuda.synchronize()
            started = time.perf_counter()
            run(batch_size, bf16, N_DOCS)
            torch.cuda.synchronize()
            seconds = time.perf_counter() - started
            rows.append(
                {
                    "gpu": torch.cuda.get_device_name(),
                    "dtype": "bf16 autocast" if bf16 else "fp32",
                    "batch": batch_size,
                    "docs": N_DOCS,
                    "mean_tokens": float(lengths.mean()),
                    "seconds": seconds,
                    "docs_per_s": N_DOCS / seconds,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    write_results("gpu_teacher_speed", rows)


if __name__ == "__main__":
    main()

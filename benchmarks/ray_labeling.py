"""Teacher labeling through Ray against the local loop, on the same machine and documents.

The local loop is what ``textdistill run`` does (``LogitsStore.fill`` with ``Teacher.logits``,
batches of 64, all cores as torch threads). Ray runs ``textdistill label``'s code on a local
cluster of all cores: one actor per core with one torch thread each (the default), and one
actor with every core as threads. Wall time counts everything a user waits for (Ray's start
excluded, which a long job pays once): reading the Parquet input, starting the actors and
loading a teacher in each, scoring, writing shards. The logits of both are compared.

    python benchmarks/ray_labeling.py --data ../shared/data \
        --teacher /work/main/runs/seed_protocol/teacher
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from results_file import write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--teacher", type=Path, default=Path("runs/seed_protocol/teacher"))
    parser.add_argument("--n-docs", type=int, default=1500)
    args = parser.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq
    import ray

    from textdistill.data import read_unlabeled
    from textdistill.logits_store import LogitsStore
    from textdistill.scale.labeling import label_files
    from textdistill.teacher import Teacher

    cores = len(os.sched_getaffinity(0))
    texts = read_unlabeled(args.data / "imdb_unlabeled.csv.gz").head(args.n_docs).texts
    tmp = Path(tempfile.mkdtemp(prefix="ray-labeling-"))
    corpus = tmp / "corpus.parquet"
    pq.write_table(pa.table({"text": texts}), corpus)
    rows = []

    teacher = Teacher.load(args.teacher, device="cpu")
    local = LogitsStore(tmp / "local", fingerprint=teacher.fingerprint, n_classes=2)
    started = time.perf_counter()
    local.fill(texts, teacher.logits, batch_size=64, progress=False)
    seconds = time.perf_counter() - started
    rows.append(
        {
            "engine": "local loop",
            "actors": 1,
            "threads_per_actor": cores,
            "docs": len(texts),
            "wall_seconds": seconds,
            "docs_per_s": len(texts) / seconds,
        }
    )
    print(json.dumps(rows[-1]))
    reference = local.get(texts)
    del teacher

    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    for actors, threads in ((cores, 1), (1, cores)):
        out = tmp / f"ray-{actors}x{threads}"
        started = time.perf_counter()
        stats = label_files(
            [str(corpus)],
            args.teacher,
            out,
            actors=actors,
            cpus_per_actor=threads,
            rows_per_shard=256,
            batch_size=64,
        )
        seconds = time.perf_counter() - started
        store = LogitsStore(out, fingerprint=local.fingerprint, n_classes=2)
        difference = np.abs(store.get(texts) - reference)
        rows.append(
            {
                "engine": "ray",
                "actors": actors,
                "threads_per_actor": threads,
                "docs": stats.n_scored,
                "wall_seconds": seconds,
                "docs_per_s": stats.n_scored / seconds,
                "docs_per_s_per_actor_scoring": stats.n_scored / stats.scoring_seconds,
                "overhead_vs_local_percent": 100 * (seconds / rows[0]["wall_seconds"] - 1),
                "max_abs_logit_difference": float(difference.max()),
                "labels_equal": float(np.mean(store.get(texts).argmax(1) == reference.argmax(1))),
            }
        )
        print(json.dumps(rows[-1]))
    ray.shutdown()
    write_results(
        "ray_labeling", rows, teacher=str(args.teacher), corpus="imdb_unlabeled (first N)"
    )


if __name__ == "__main__":
    main()

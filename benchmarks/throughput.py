"""Documents per second, latency, size and cold start of every way to serve a classifier.

Systems, each trained on the same labels of the same dataset:

* ``textdistill-runtime``  the student runtime (C n-gram counting + numpy)
* ``textdistill-python``   the same artifact with the pure-Python featurizer fallback
* ``textdistill-onnx``     the same artifact exported to ONNX, run by onnxruntime
* ``sklearn-tfidf-lr``     scikit-learn TfidfVectorizer(1-2 grams, sublinear) + LogisticRegression
* ``fasttext``             fastText supervised (word bigrams), ``predict``
* ``teacher-fp32``         the fine-tuned all-MiniLM-L6-v2 teacher, fp32, batch 32

on IMDB reviews and SST-2 sentences (../shared/data), on one core and on all cores (worker
processes for the CPU models, torch threads for the teacher). Speed does not depend on how a
linear model's weights were learned, so the linear systems here are fit on gold labels
(5,000 IMDB reviews; the 6,920 SST-2 training sentences); the accuracy columns show that the
runtime's featurizer loses nothing against scikit-learn's vectorizer with the same classifier.

    python benchmarks/throughput.py --data ../shared/data --teacher runs/seed_protocol/teacher
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from results_file import write_results
from textdistill.data import TextDataset, read_labeled
from textdistill.evaluate import throughput
from textdistill.runtime import featurizer as featurizer_module
from textdistill.runtime import load
from textdistill.runtime.artifact import directory_size
from textdistill.students.linear import LinearStudent

Predict = Callable[[Sequence[str]], Any]


def _datasets(data: Path, seed: int) -> dict[str, tuple[TextDataset, TextDataset]]:
    imdb = read_labeled(data / "imdb_train.csv.gz")
    order = np.random.default_rng(seed).permutation(len(imdb)).tolist()
    return {
        "imdb": (imdb.subset(order[:5000]), imdb.subset(order[5000:7000])),
        "sst2": (read_labeled(data / "sst2_train.csv.gz"), read_labeled(data / "sst2_dev.csv.gz")),
    }


# ------------------------------------------------------------------ systems
def _sklearn(train: TextDataset) -> tuple[Predict, int]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
        LogisticRegression(C=16.0, max_iter=1000),
    )
    model.fit(train.texts, train.labels)
    # No pickle-free format exists for a scikit-learn pipeline; its size is what joblib writes.
    with tempfile.TemporaryDirectory() as tmp:
        import joblib

        joblib.dump(model, Path(tmp) / "model.joblib")
        size = (Path(tmp) / "model.joblib").stat().st_size
    return model.predict, size


def _fasttext(train: TextDataset, workdir: Path) -> tuple[Predict, int]:
    import fasttext

    source = workdir / "fasttext_train.txt"
    source.write_text(
        "".join(
            f"__label__{label} {' '.join(text.split())}\n"
            for text, label in zip(train.texts, train.labels or [], strict=True)
        )
    )
    # lr 0.5 and 25 epochs: fastText's own advice for small sets; its defaults underfit here.
    model = fasttext.train_supervised(
        str(source), wordNgrams=2, epoch=25, lr=0.5, verbose=0, thread=1
    )
    model.save_model(str(workdir / "fasttext.bin"))

    def predict(texts: Sequence[str]) -> list[str]:
        labels, _ = model.predict([" ".join(t.split()) for t in texts])
        return [label[0].removeprefix("__label__") for label in labels]

    return predict, (workdir / "fasttext.bin").stat().st_size


def _onnx(artifact: Path, workdir: Path) -> tuple[Predict, int] | None:
    try:
        from textdistill.export import OnnxStudent, export_onnx
    except ImportError:
        return None
    path = export_onnx(artifact, workdir / "student.onnx")
    student = OnnxStudent(path)
    return student.predict, Path(path).stat().st_size


# ------------------------------------------------------------------ measuring
def _latencies_ms(predict: Predict, texts: Sequence[str], n: int = 300) -> tuple[float, float]:
    samples = []
    for text in list(texts)[:n]:
        started = time.perf_counter()
        predict([text])
        samples.append(1000 * (time.perf_counter() - started))
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.99 * len(samples)))]


_WORKER: dict[str, Predict] = {}


def _worker_init() -> None:
    import threadpoolctl

    threadpoolctl.threadpool_limits(1)


def _worker_predict(texts: list[str]) -> int:
    _WORKER["predict"](texts)
    return len(texts)


def _all_cores(predict: Predict, texts: Sequence[str], cores: int) -> float:
    """docs/s of ``predict`` in one forked worker process per core (what ``--jobs`` does);
    the workers inherit the model, so every system is measured the same way."""
    _WORKER["predict"] = predict
    chunks = [list(texts[i : i + 1000]) for i in range(0, len(texts), 1000)]
    with multiprocessing.get_context("fork").Pool(cores, _worker_init) as pool:
        pool.map(_worker_predict, chunks[:cores])  # warm up every worker
        started = time.perf_counter()
        done = 0
        while time.perf_counter() - started < 2.0:
            done += sum(pool.map(_worker_predict, chunks))
        return done / (time.perf_counter() - started)


def _measure(
    system: str, dataset: str, predict: Predict, test: TextDataset, cores: int, **extra: Any
) -> list[dict[str, Any]]:
    """One row on one core (with latency and accuracy) and, on a multi-core box, one on all."""
    rows = [
        _row(
            system,
            dataset,
            1,
            throughput(predict, test.texts, min_seconds=2.0),
            _latencies_ms(predict, test.texts),
            accuracy=_accuracy(predict, test),
            **extra,
        )
    ]
    if cores > 1:
        rows.append(
            _row(
                system,
                dataset,
                cores,
                _all_cores(predict, test.texts, cores),
                None,
                size_bytes=extra["size_bytes"],
            )
        )
    return rows


def _cold_start(artifact: Path) -> float:
    """Seconds from process start to the first prediction with the numpy runtime."""
    code = (
        "from textdistill import load; import sys; "
        "load(sys.argv[1]).predict(['a first prediction'])"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(artifact)], check=True)
    return time.perf_counter() - started


def _row(
    system: str,
    dataset: str,
    cores: int,
    docs_per_s: float,
    latency: tuple[float, float] | None,
    **extra: Any,
) -> dict[str, Any]:
    row = {
        "system": system,
        "dataset": dataset,
        "cores": cores,
        "docs_per_s": round(docs_per_s, 1),
        "latency_ms_p50": None if latency is None else round(latency[0], 3),
        "latency_ms_p99": None if latency is None else round(latency[1], 3),
        **extra,
    }
    print(json.dumps(row), flush=True)
    return row


def _accuracy(predict: Predict, test: TextDataset) -> float:
    predicted = [str(p) for p in predict(test.texts)]
    return float(np.mean(np.asarray(predicted) == np.asarray(test.labels)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--teacher", type=Path, help="a saved teacher (textdistill run's teacher/)")
    parser.add_argument("--teacher-docs", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    rows: list[dict[str, Any]] = []
    import threadpoolctl

    with tempfile.TemporaryDirectory() as tmp, threadpoolctl.threadpool_limits(1):
        workdir = Path(tmp)
        for dataset, (train, test) in _datasets(args.data, args.seed).items():
            texts = test.texts
            artifact = workdir / f"{dataset}-student"
            LinearStudent(loss="soft_ce", random_state=args.seed).fit(
                train.texts, train.labels
            ).save(artifact)
            size = directory_size(artifact)
            cold = _cold_start(artifact)
            for kind in ("runtime", "python"):
                featurizer_module._PURE_PYTHON = kind == "python"
                model = load(str(artifact))
                rows += _measure(
                    f"textdistill-{kind}",
                    dataset,
                    model.predict,
                    test,
                    cores,
                    size_bytes=size,
                    cold_start_s=round(cold, 3),
                )
            featurizer_module._PURE_PYTHON = False
            onnx = _onnx(artifact, workdir)
            if onnx is not None:
                rows += _measure(
                    "textdistill-onnx", dataset, onnx[0], test, cores, size_bytes=onnx[1]
                )
            predict, size = _sklearn(train)
            rows += _measure("sklearn-tfidf-lr", dataset, predict, test, cores, size_bytes=size)
            predict, size = _fasttext(train, workdir)
            rows += _measure("fasttext", dataset, predict, test, cores, size_bytes=size)
            if args.teacher:
                rows.extend(_teacher_rows(args.teacher, dataset, texts[: args.teacher_docs], cores))
    write_results("throughput", rows)


def _teacher_rows(path: Path, dataset: str, texts: list[str], cores: int) -> list[dict]:
    import threadpoolctl

    from textdistill.teacher import Teacher

    rows = []
    with threadpoolctl.threadpool_limits(None):
        for n_threads in sorted({1, cores}):
            teacher = Teacher.load(path)
            teacher.config.num_threads = n_threads
            teacher.config.eval_batch_size = 32
            rows.append(
                _row(
                    "teacher-fp32",
                    dataset,
                    n_threads,
                    throughput(teacher.logits, texts, min_seconds=5.0, batch_size=32),
                    _latencies_ms(teacher.logits, texts, n=30) if n_threads == cores else None,
                    size_bytes=directory_size(path),
                )
            )
    return rows


if __name__ == "__main__":
    main()

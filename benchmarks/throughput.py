"""Documents per second, latency, size and cold start of every way to serve a classifier, and
where the student runtime's time goes.

Systems, each trained on the same labels of the same dataset:

* ``textdistill-runtime``  the student runtime (the fused C path: text to logits)
* ``textdistill-python``   the same artifact with the pure-Python featurizer fallback
* ``textdistill-onnx``     the same artifact exported to ONNX, run by onnxruntime
* ``sklearn-tfidf-lr``     scikit-learn TfidfVectorizer(1-2 grams, sublinear) + LogisticRegression
* ``fasttext``             fastText supervised (word bigrams) with as many hash buckets as the
  training texts have distinct bigrams and 50 dimensions, the settings its tutorial gives for
  a small, fast model (its default of 2M buckets x 100 dimensions weighs 800 MB), ``predict``
* ``teacher-fp32``         with ``--teacher``: a fine-tuned all-MiniLM-L6-v2, fp32, batch 32,
  read at ``--teacher-max-length`` tokens (the head)

on IMDB reviews and SST-2 sentences (../shared/data). Speed does not depend on how a linear
model's weights were learned, so the linear systems are fit on gold labels (5,000 IMDB
reviews; the 6,920 SST-2 training sentences); the accuracy column shows that the runtime's
featurizer loses nothing against scikit-learn's vectorizer with the same classifier.

All systems are measured in this one process, interleaved: each of ``--rounds`` rounds times
every system for ``--seconds`` (its rate: the fastest pass over the test texts in that time),
in an order that rotates from round to round, and a row is the median round (with the
slowest and fastest), so load that comes and goes on a shared machine reaches every system
alike. One core: numerical libraries limited to one thread. Two cores:
the runtime in two threads (its C path releases the GIL) and every CPU system in two forked
worker processes (what ``predict --jobs 2`` does for models that hold the GIL).

The profile splits the runtime's time per document into its stages (decoding UTF-8, reading
and tokenizing, hashing, looking up, accumulating the weighted sums, the softmax) by stopping
the C path after each stage, and sets each stage's text throughput against this core's memory
read bandwidth (numpy summing a 256 MB array): a stage far below it is bound by computation
or latency, not by moving the bytes.

    flock /tmp/textdistill-heavy.lock python benchmarks/throughput.py --data ../shared/data \\
        --teacher runs/short_text/sst2-auto-x0/teacher
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from results_file import LOAD_AT_START, write_results, write_table_into
from textdistill.data import TextDataset, read_labeled
from textdistill.evaluate import throughput
from textdistill.runtime import LinearModel, load
from textdistill.runtime.artifact import directory_size
from textdistill.students.linear import LinearStudent

Predict = Callable[[Sequence[str]], Any]
Timed = Callable[[float], float]  # seconds to run for -> docs/s
BATCH = 1000
# The targets for the runtime (docs/s on one core, and against fastText in one run).
TARGETS = {"imdb": 100_000, "sst2": 1_000_000, "fasttext_ratio": 10.0}
STAGES = ("tokenize", "hash", "lookup", "accumulate")
DOCS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


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


def fasttext_buckets(lines: Sequence[str]) -> int:
    """The number of distinct word bigrams of fastText's input lines: a hash table with one
    bucket per bigram of the training texts, instead of the default 2,000,000.

    >>> fasttext_buckets(["a b c", "a b"])
    2
    """
    return len({pair for line in lines for pair in itertools.pairwise(line.split())})


def _fasttext(train: TextDataset, workdir: Path) -> tuple[Predict, int, dict[str, Any]]:
    import fasttext

    lines = [" ".join(text.split()) for text in train.texts]
    source = workdir / "fasttext_train.txt"
    source.write_text(
        "".join(
            f"__label__{label} {line}\n"
            for line, label in zip(lines, train.labels or [], strict=True)
        )
    )
    # 25 epochs at lr 0.5: fastText's own advice for small sets; its defaults underfit here.
    # At lr 0.5 it diverges on the SST-2 sentences ("Encountered NaN"). At lower rates it
    # sometimes does too, not every time with the same rate and seed (seen at 0.1 and 0.05 in a
    # process that had run the teacher; the same call then trained alone), so each rate is
    # tried with three seeds before a lower one; the JSON records the rate and seed used.
    settings: dict[str, float] = {
        "wordNgrams": 2,
        "epoch": 25,
        "dim": 50,
        "bucket": fasttext_buckets(lines),
    }
    attempts = list(itertools.product((0.5, 0.25, 0.1, 0.05, 0.025), (0, 1, 2)))
    for lr, seed in attempts:
        try:
            model = fasttext.train_supervised(
                str(source), verbose=0, thread=1, lr=lr, seed=seed, **settings
            )
            break
        except RuntimeError as error:
            if "NaN" not in str(error) or (lr, seed) == attempts[-1]:
                raise
    settings.update(lr=lr, seed=seed)
    model.save_model(str(workdir / "fasttext.bin"))

    def predict(texts: Sequence[str]) -> list[str]:
        labels, _ = model.predict([" ".join(t.split()) for t in texts])
        return [label[0].removeprefix("__label__") for label in labels]

    return predict, (workdir / "fasttext.bin").stat().st_size, settings


def _onnx(artifact: Path, workdir: Path) -> tuple[Predict, int] | None:
    try:
        from textdistill.export import OnnxStudent, export_onnx
    except ImportError:
        return None
    path = export_onnx(artifact, workdir / f"{artifact.name}.onnx")
    student = OnnxStudent(path)
    return student.predict, Path(path).stat().st_size


def _python_path(artifact: Path) -> LinearModel:
    """The artifact on the pure-Python featurizer, in this process beside the C one."""
    model = load(str(artifact))
    assert isinstance(model, LinearModel)
    model.featurizer._fast = False  # the featurizer's "cannot use C" state
    return model


# ------------------------------------------------------------------ measuring
def _one_core(predict: Predict, texts: Sequence[str]) -> Timed:
    return lambda seconds: throughput(predict, texts, min_seconds=seconds, batch_size=BATCH)


def worker_chunks(texts: Sequence[str], workers: int) -> list[list[str]]:
    """``texts`` in consecutive chunks of at most BATCH, and at least one per worker: the 872
    SST-2 test sentences in one chunk of 1,000 kept the second core idle, so "two cores"
    measured one core plus the hand-off.

    >>> [len(c) for c in worker_chunks(["t"] * 872, 2)], len(worker_chunks(["t"] * 2500, 2))
    ([436, 436], 3)
    """
    size = max(1, min(BATCH, -(-len(texts) // workers)))
    return [list(texts[i : i + size]) for i in range(0, len(texts), size)]


def _threads(
    predict: Predict, texts: Sequence[str], pool: ThreadPoolExecutor, workers: int
) -> Timed:
    """docs/s of ``predict`` on chunks spread over the pool's ``workers`` threads."""
    chunks = worker_chunks(texts, workers)

    return _fastest_pass(lambda: list(pool.map(predict, chunks)), len(texts))


def _fastest_pass(
    one_pass: Callable[[], object], n_docs: int, clock: Callable[[], float] = time.perf_counter
) -> Timed:
    """docs/s of the fastest of the passes run in the time given, as
    :func:`textdistill.evaluate.throughput` measures one core: other work only slows a pass.
    ``clock=time.process_time`` counts only this process's CPU time (single-threaded work that
    other processes take the core from)."""

    def timed(seconds: float) -> float:
        started, fastest = clock(), float("inf")
        while True:
            begun = clock()
            one_pass()
            now = clock()
            fastest = min(fastest, now - begun)
            if now - started >= seconds:
                return n_docs / fastest

    return timed


_WORKER: dict[str, Predict] = {}


def _worker_init() -> None:
    import threadpoolctl

    threadpoolctl.threadpool_limits(1)


def _worker_predict(key_texts: tuple[str, list[str]]) -> int:
    key, texts = key_texts
    _WORKER[key](texts)
    return len(texts)


def _processes(key: str, texts: Sequence[str], pool: Any, workers: int) -> Timed:
    """docs/s of the system ``key`` in the forked worker pool (the workers inherited it)."""
    chunks = [(key, chunk) for chunk in worker_chunks(texts, workers)]

    return _fastest_pass(lambda: pool.map(_worker_predict, chunks), len(texts))


def interleaved(measures: dict[str, Timed], rounds: int, seconds: float) -> dict[str, list[float]]:
    """Every measure once per round, in an order rotated by one each round."""
    names = list(measures)
    results: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            results[name].append(measures[name](seconds))
    return results


def _latencies_ms(predict: Predict, texts: Sequence[str], n: int = 300) -> tuple[float, float]:
    samples = []
    for text in list(texts)[:n]:
        started = time.perf_counter()
        predict([text])
        samples.append(1000 * (time.perf_counter() - started))
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.99 * len(samples)))]


def _cold_start(artifact: Path) -> float:
    """Seconds from process start to the first prediction with the numpy runtime."""
    code = (
        "from textdistill import load; import sys; "
        "load(sys.argv[1]).predict(['a first prediction'])"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(artifact)], check=True)
    return time.perf_counter() - started


def _accuracy(predict: Predict, test: TextDataset) -> float:
    predicted = [str(p) for p in predict(test.texts)]
    return float(np.mean(np.asarray(predicted) == np.asarray(test.labels)))


def _row(system: str, dataset: str, cores: int, rates: list[float], **extra: Any) -> dict:
    row = {
        "system": system,
        "dataset": dataset,
        "cores": cores,
        "docs_per_s": round(statistics.median(rates), 1),
        "docs_per_s_min": round(min(rates), 1),
        "docs_per_s_max": round(max(rates), 1),
        **extra,
    }
    print(json.dumps(row), flush=True)
    return row


# ------------------------------------------------------------------ the profile
def memory_bandwidth_gb_s(rounds: int, megabytes: int = 256) -> float:
    """One core's read bandwidth: numpy summing an array much larger than the caches."""
    array = np.ones(megabytes << 17, dtype=np.int64)
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        array.sum()
        rates.append(array.nbytes / (time.perf_counter() - started) / 1e9)
    return statistics.median(rates)


def profile(
    model: LinearModel, texts: list[str], rounds: int, seconds: float, bandwidth: float
) -> list[dict[str, Any]]:
    """Microseconds per document of each stage of ``model.predict_proba``, interleaved, from
    the fastest of the rounds, in CPU time of this process: a stage is a difference of two
    measures, and wall time on a shared core (a run at load 10-20 had a stage come out
    negative) measures the neighbours.

    The C stages are cumulative runs of the fused path stopped after each stage (``tokenize``
    includes reading the texts from the list and lower-casing the non-ASCII ones with
    ``str.lower``); a stage's time is the difference from the one before. ``decode`` is
    UTF-8 bytes to str, what reading a file costs before any of it; ``softmax`` is the
    calibrated probabilities from the logits.
    """
    featurizer = model.featurizer
    fast = featurizer._vocabulary()
    if fast is None:
        raise RuntimeError("the profile needs the C extension")
    encoded = [text.encode("utf-8") for text in texts]
    n_bytes = sum(map(len, encoded))
    out = np.empty((len(texts), len(model.labels)), dtype=np.float32)
    logits = model.decision_function(texts)

    def repeat(work: Callable[[], object]) -> Timed:
        return _fastest_pass(work, len(texts), clock=time.process_time)

    def stopped_after(stage: int) -> Callable[[], object]:
        return lambda: fast.logits(
            texts, featurizer.idf, featurizer._tf, model.coef, model.intercept, out,
            stop_after=stage,
        )  # fmt: skip

    measures: dict[str, Timed] = {
        "decode": repeat(lambda: [b.decode("utf-8") for b in encoded]),
        **{name: repeat(stopped_after(i + 1)) for i, name in enumerate(STAGES)},
        "softmax": repeat(lambda: model.probabilities(logits)),
        "predict_proba": repeat(lambda: model.predict_proba(texts)),
    }
    rates = interleaved(measures, rounds, seconds)
    # The fastest round: other work only ever adds time, and a stage is a difference of two
    # measures, which the noise of two medians could even make negative.
    us = {name: 1e6 / max(r) for name, r in rates.items()}
    cumulative = [us[name] for name in STAGES]
    alone = {"decode": us["decode"], "softmax": us["softmax"]}
    for i, name in enumerate(STAGES):
        alone[name] = cumulative[i] - (cumulative[i - 1] if i else 0.0)
    bytes_per_doc = n_bytes / len(texts)

    def stage_row(name: str, us_per_doc: float) -> dict[str, Any]:
        mb_s = bytes_per_doc / us_per_doc if us_per_doc > 0 else None  # bytes/us = MB/s
        return {
            "stage": name,
            "us_per_doc": round(us_per_doc, 3),
            "text_mb_per_s": None if mb_s is None else round(mb_s, 1),
            "below_memory_bandwidth_x": None if mb_s is None else round(1e3 * bandwidth / mb_s, 1),
        }

    rows = [stage_row(name, alone[name]) for name in ("decode", *STAGES, "softmax")]
    rows.append(stage_row("predict_proba (all, measured)", us["predict_proba"]))
    return rows


# ------------------------------------------------------------------ the teacher
def _teacher_at(path: Path, max_length: int, workdir: Path) -> Path:
    """A copy of the saved teacher that reads ``max_length`` tokens (the head)."""
    copy = workdir / "teacher"
    if not copy.exists():
        shutil.copytree(path, copy)
        meta = json.loads((copy / "teacher.json").read_text())
        meta["config"].update(max_length=max_length, truncation="head")
        (copy / "teacher.json").write_text(json.dumps(meta, indent=2))
    return copy


def _teacher_rows(path: Path, dataset: str, texts: list[str], cores: int) -> list[dict]:
    import threadpoolctl

    from textdistill.teacher import Teacher

    rows = []
    with threadpoolctl.threadpool_limits(None):
        for n_threads in sorted({1, cores}):
            teacher = Teacher.load(path)
            teacher.config.num_threads = n_threads
            teacher.config.eval_batch_size = 32
            rate = throughput(teacher.logits, texts, min_seconds=5.0, batch_size=32)
            latency = _latencies_ms(teacher.logits, texts, n=30) if n_threads == cores else None
            rows.append(
                _row(
                    "teacher-fp32",
                    dataset,
                    n_threads,
                    [rate],
                    latency_ms_p50=None if latency is None else round(latency[0], 3),
                    latency_ms_p99=None if latency is None else round(latency[1], 3),
                    size_bytes=directory_size(path),
                )
            )
    return rows


# ------------------------------------------------------------------ one dataset
def _dataset_rows(
    dataset: str,
    train: TextDataset,
    test: TextDataset,
    workdir: Path,
    args: argparse.Namespace,
    cores: int,
    bandwidth: float,
) -> tuple[list[dict], list[dict], dict[str, Any]]:
    artifact = workdir / f"{dataset}-student"
    LinearStudent(loss="soft_ce", random_state=args.seed).fit(train.texts, train.labels).save(
        artifact
    )
    runtime = load(str(artifact))
    assert isinstance(runtime, LinearModel) and runtime.featurizer.uses_c_path
    python = _python_path(artifact)
    fasttext_predict, fasttext_size, fasttext_settings = _fasttext(train, workdir)
    systems: dict[str, tuple[Predict, int]] = {
        "textdistill-runtime": (runtime.predict, directory_size(artifact)),
        "textdistill-python": (python.predict, directory_size(artifact)),
    }
    onnx = _onnx(artifact, workdir)
    if onnx is not None:
        systems["textdistill-onnx"] = onnx
    systems["sklearn-tfidf-lr"] = _sklearn(train)
    systems["fasttext"] = (fasttext_predict, fasttext_size)
    texts = test.texts
    # Outputs are what today's definition gives: the C path's logits equal the Python path's.
    identical = bool(
        np.array_equal(
            runtime.decision_function(texts).view(np.uint32),
            python.decision_function(texts).view(np.uint32),
        )
    )
    measures = {(name, 1): _one_core(p, texts) for name, (p, _) in systems.items()}
    _WORKER.clear()
    _WORKER.update({name: p for name, (p, _) in systems.items()})
    with (
        multiprocessing.get_context("fork").Pool(cores, _worker_init) as pool,
        ThreadPoolExecutor(cores) as threads,
    ):
        pool.map(_worker_predict, [(name, texts[:10]) for name in systems] * cores)  # warm up
        if cores > 1:
            in_threads = _threads(runtime.predict, texts, threads, cores)
            measures[("textdistill-runtime", -cores)] = in_threads
            for name in systems:
                measures[(name, cores)] = _processes(name, texts, pool, cores)
        keyed = {f"{name}/{cores}": m for (name, cores), m in measures.items()}
        rates = interleaved(keyed, args.rounds, args.seconds)
    cold = _cold_start(artifact)
    rows = []
    for (name, n_cores), measure_rates in zip(measures, rates.values(), strict=True):
        predict, size = systems[name]
        extra: dict[str, Any] = {"workers": "threads" if n_cores < 0 else "processes"}
        if n_cores == 1:
            p50, p99 = _latencies_ms(predict, texts)
            extra = {
                "workers": None,
                "latency_ms_p50": round(p50, 3),
                "latency_ms_p99": round(p99, 3),
                "accuracy": _accuracy(predict, test),
            }
            if name.startswith("textdistill-"):
                extra["cold_start_s"] = round(cold, 3)
        rows.append(_row(name, dataset, abs(n_cores), measure_rates, size_bytes=size, **extra))
    profile_rows = [
        {"dataset": dataset, **row}
        for row in profile(runtime, texts, args.rounds, args.seconds / 2, bandwidth)
    ]
    for row in profile_rows:
        print(json.dumps(row), flush=True)
    one_core = {row["system"]: row["docs_per_s"] for row in rows if row["cores"] == 1}
    best_two = max(
        (r["docs_per_s"] for r in rows if r["system"] == "textdistill-runtime" and r["cores"] > 1),
        default=None,
    )
    summary = {
        "test_docs": len(texts),
        "text_mb": round(sum(len(t.encode()) for t in texts) / 1e6, 3),
        "runtime_logits_identical_to_python_path": identical,
        "runtime_vs_fasttext_x": round(one_core["textdistill-runtime"] / one_core["fasttext"], 2),
        "runtime_one_core_target": TARGETS[dataset],
        "runtime_one_core_target_met": one_core["textdistill-runtime"] >= TARGETS[dataset],
        "fasttext_ratio_target_met": (
            one_core["textdistill-runtime"] / one_core["fasttext"] >= TARGETS["fasttext_ratio"]
        ),
        "runtime_two_cores_not_below_one": None
        if best_two is None
        else best_two >= one_core["textdistill-runtime"],
        "fasttext_settings": fasttext_settings,
    }
    if args.teacher:
        teacher = _teacher_at(args.teacher, args.teacher_max_length, workdir)
        rows += _teacher_rows(teacher, dataset, texts[: args.teacher_docs], cores)
    return rows, profile_rows, summary


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The docs' speed table: one line per system and dataset, one and two cores."""
    names = {
        "textdistill-runtime": "textdistill runtime (fused C path)",
        "textdistill-python": "textdistill runtime, pure-Python fallback",
        "textdistill-onnx": "textdistill ONNX (onnxruntime)",
        "sklearn-tfidf-lr": "scikit-learn TF-IDF + LR",
        "fasttext": "fastText (bigrams, buckets fit to the data)",
        "teacher-fp32": "teacher, fp32",
    }
    lines = [
        "| system | data | 1 core docs/s | 2 cores docs/s | p50 ms | p99 ms | size | accuracy |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for dataset in dict.fromkeys(row["dataset"] for row in rows):
        for name, label in names.items():
            mine = [r for r in rows if r["system"] == name and r["dataset"] == dataset]
            one = next((r for r in mine if r["cores"] == 1), None)
            if one is None:
                continue
            two = [r for r in mine if r["cores"] > 1]
            two_text = " / ".join(
                f"{r['docs_per_s']:,.0f}" + (f" ({r['workers']})" if r.get("workers") else "")
                for r in two
            )
            cells = [
                label,
                "IMDB" if dataset == "imdb" else "SST-2",
                f"{one['docs_per_s']:,.0f}",
                two_text or "–",
                "–" if one.get("latency_ms_p50") is None else f"{one['latency_ms_p50']:.3f}",
                "–" if one.get("latency_ms_p99") is None else f"{one['latency_ms_p99']:.3f}",
                f"{one['size_bytes'] / 1e6:.1f} MB",
                "" if one.get("accuracy") is None else f"{one['accuracy']:.4f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--teacher", type=Path, help="a saved teacher (textdistill run's teacher/)")
    parser.add_argument("--teacher-docs", type=int, default=256)
    parser.add_argument("--teacher-max-length", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="per system and round")
    parser.add_argument("--datasets", nargs="+", default=["imdb", "sst2"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    rows: list[dict[str, Any]] = []
    profiles: list[dict[str, Any]] = []
    summaries: dict[str, Any] = {}
    import threadpoolctl

    with tempfile.TemporaryDirectory() as tmp, threadpoolctl.threadpool_limits(1):
        bandwidth = memory_bandwidth_gb_s(args.rounds)
        for dataset, (train, test) in _datasets(args.data, args.seed).items():
            if dataset not in args.datasets:
                continue
            found, profile_rows, summaries[dataset] = _dataset_rows(
                dataset, train, test, Path(tmp), args, cores, bandwidth
            )
            rows += found
            profiles += profile_rows
    load_at_end = os.getloadavg()
    write_results(
        "throughput",
        rows,
        shared_machine=(
            f"load average {LOAD_AT_START[0]:.1f} at the start, {load_at_end[0]:.1f} at the "
            f"end on {cores} cores; where other work ran, absolute rates are low and only the "
            "ratios of systems measured interleaved in one process hold"
        ),
        rounds=args.rounds,
        seconds_per_round=args.seconds,
        memory_read_bandwidth_gb_s=round(bandwidth, 2),
        summary=summaries,
        profile=profiles,
    )
    table = markdown_table(rows)
    write_table_into(DOCS_PAGE, "throughput", table)
    print(table)


if __name__ == "__main__":
    main()

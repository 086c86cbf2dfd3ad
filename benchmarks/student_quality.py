"""How faithful can the linear student be? Every loss, feature option and augmentation.

Three tasks, each with 1,000 labeled texts (900 gold rows for the student; the other 100 are
the pipeline's calibration split and stay unused here) and the teacher of an earlier run:

* IMDB: the protocol of seed_protocol.py (seed 0: 2,000 test reviews; unlabeled reviews in
  the order "the article's 5,000, the other train reviews, imdb_unlabeled"), students on the
  first 1,000 / 2,000 / 5,000 / 10,000 / 20,000 / 25,000 / 75,000 of them for each loss (a
  learning curve); then, on the largest size with logits, a sweep of feature options (n-gram
  length, character n-grams, feature cap) reporting artifact size against accuracy.
* SST-2: as cascade.py (1,000 of sst2_train, the other 5,920 unlabeled, tested on sst2_dev),
  with no unlabeled text or all of it, with and without augmentation (Tang et al., n_iter 20).
* TREC (6 classes): as the ``runs/trec`` run (a stratified 20% of trec_train as test, 1,000
  of the rest labeled), with no unlabeled text or the other 3,362 questions, with and
  without augmentation.

Every student chooses its penalty, ``alpha`` (the gold rows' share: 0, 0.1, 0.3) and, for
``soft_ce``, ``T`` (1, 2, 4) on held-out teacher-labeled rows by agreement; on SST-2 and TREC
also, for ``mse``, the feature options (word 1-2 grams, 1-3 grams, or 1-2 grams plus
character 2-5 grams). ``soft_ce``'s penalty grid is cut to C in 1..64 (4..64 on IMDB), and
the IMDB feature sweep fixes the ridge penalty at 1.0, to fit this 2-core machine.

Teacher logits are read, never recomputed for texts a run already scored: each run's logits
store (``RUN/logits``) is copied into ``--work`` and opened there, so the run directory is
left untouched. Texts no run scored (augmented texts, TREC's other questions, SST-2's gold
texts) are labeled by that run's saved teacher into the copy (about 300 sentences/s on two
cores). IMDB reviews are never labeled here (30/s): sizes without logits are skipped, and
recorded as skipped. ``--teacher-logits PATH`` gives IMDB logits of another teacher instead
(for all its unlabeled reviews and its test reviews), in either format:

* ``.npz``: ``hashes`` uint8 ``[n, 16]`` (``textdistill.logits_store.text_hash``: the first
  16 bytes of the sha256 of the UTF-8 text), ``logits`` float32 ``[n, k]``, ``classes`` str
  ``[k]`` (the label names of the columns) and optionally ``teacher``, a str naming it;
* ``.parquet``: a column ``text_sha256`` (hex; its first 32 characters are the same hash)
  and one float column ``logit_<class>`` per class; the key ``teacher`` of the file's
  metadata optionally names it.

Finished rows are kept in ``--work``/rows.json, so a rerun does only what is missing.

    python benchmarks/student_quality.py --data ../shared/data --runs /work/main/runs
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from results_file import RESULTS_DIR, write_results
from seed_protocol import protocol_splits
from textdistill.augment import augment, mask_token_of, resolve_tagger
from textdistill.data import TextDataset, read_labeled, read_unlabeled, stratified_split
from textdistill.evaluate import agreement, classification_scores
from textdistill.logits_store import LogitsStore, text_hash
from textdistill.pipeline import RunConfig, prepare_splits
from textdistill.runtime import LinearModel, NgramFeaturizer
from textdistill.runtime.artifact import directory_size
from textdistill.students.linear import LinearStudent
from textdistill.teacher import Teacher

ALPHAS = (0.0, 0.1, 0.3)
TEMPERATURES = (1.0, 2.0, 4.0)
SHORT_TEXT_FEATURES = ({"max_n": 3}, {"char_ngrams": (2, 5)})
IMDB_SIZES = (1_000, 2_000, 5_000, 10_000, 20_000, 25_000, 75_000)
IMDB_FEATURE_SWEEP: tuple[dict[str, Any], ...] = (
    {"max_n": 2, "max_features": 20_000},
    {"max_n": 2, "max_features": 50_000},
    {"max_n": 2, "max_features": 200_000},
    {"max_n": 3, "max_features": 200_000},
    {"max_n": 3, "max_features": 1_000_000},
    {"max_n": 2, "max_features": 400_000, "char_ngrams": (3, 5)},
)


class Logits:
    """Teacher logits by text: a store copied from a run, or a precomputed file."""

    def __init__(
        self,
        store: LogitsStore | None,
        table: dict[bytes, np.ndarray] | None,
        classes: list[str],
        teacher: str,
    ) -> None:
        self.store, self.table, self.classes, self.teacher = store, table, classes, teacher

    def missing(self, texts: Sequence[str]) -> int:
        if self.table is not None:
            return sum(text_hash(t) not in self.table for t in set(texts))
        assert self.store is not None
        return len(self.store.missing(texts))

    def get(self, texts: Sequence[str]) -> np.ndarray:
        if self.table is not None:
            return np.stack([self.table[text_hash(t)] for t in texts])
        assert self.store is not None
        return self.store.get(texts)


def copied_store(run: Path, work: Path) -> Logits:
    """The run's logits store, copied under ``work`` (the run is only read)."""
    metrics = json.loads((run / "metrics.json").read_text())
    fingerprint, classes = metrics["teacher"]["fingerprint"], metrics["teacher"]["classes"]
    target = work / "stores" / run.name
    if not (target / fingerprint).exists():
        shutil.copytree(run / "logits" / fingerprint, target / fingerprint)
    store = LogitsStore(target, fingerprint=fingerprint, n_classes=len(classes))
    return Logits(store, None, classes, f"{run / 'teacher'} ({fingerprint[:12]})")


def precomputed(path: Path) -> Logits:
    """Logits from a ``.npz`` or ``.parquet`` file (formats in the module docstring)."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as content:
            hashes, logits = content["hashes"], content["logits"].astype(np.float32)
            classes = [str(c) for c in content["classes"]]
            teacher = str(content["teacher"]) if "teacher" in content else path.name
        if hashes.dtype != np.uint8 or hashes.shape != (len(logits), 16):
            raise ValueError(f"{path}: `hashes` must be uint8 [n, 16], got {hashes.shape}")
        keys = [bytes(row) for row in hashes]
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        columns = [c for c in table.column_names if c.startswith("logit_")]
        if "text_sha256" not in table.column_names or not columns:
            raise ValueError(f"{path}: needs a text_sha256 column and logit_<class> columns")
        classes = [c.removeprefix("logit_") for c in columns]
        logits = np.stack([table[c].to_numpy() for c in columns], axis=1).astype(np.float32)
        keys = [bytes.fromhex(h[:32]) for h in table["text_sha256"].to_pylist()]
        metadata = table.schema.metadata or {}
        teacher = metadata.get(b"teacher", path.name.encode()).decode()
    else:
        raise ValueError(f"{path}: expected a .npz or .parquet file")
    if logits.ndim != 2 or logits.shape[1] != len(classes):
        raise ValueError(f"{path}: logits {logits.shape} do not match classes {classes}")
    return Logits(None, dict(zip(keys, logits, strict=True)), classes, teacher)


def label_missing(logits: Logits, texts: Sequence[str], teacher: Callable[[], Teacher]) -> int:
    """Score the texts the copied store lacks with the run's teacher; how many were scored."""
    assert logits.store is not None
    todo = logits.store.missing(texts)
    if todo:
        print(f"  labeling {len(todo)} texts with the teacher", flush=True)
        logits.store.fill(todo, lambda batch: teacher().logits(batch), progress=True)
    return len(todo)


@dataclass
class Task:
    """One dataset: gold rows, test set, unlabeled pool and the teacher's logits."""

    name: str
    gold: TextDataset
    test: TextDataset
    pool: list[str]
    logits: Logits
    teacher_dir: Path | None  # to label texts the store lacks; None: never label

    @property
    def teacher(self) -> str:
        return self.logits.teacher

    def teacher_accuracy(self) -> float:
        assert self.test.labels is not None
        predicted = self.logits.get(self.test.texts).argmax(axis=1)
        return float(np.mean(np.array(self.logits.classes)[predicted] == self.test.labels))


def evaluate(task: Task, student: LinearStudent, scratch: Path) -> dict[str, Any]:
    """Scores through the runtime (the artifact written and read back), and its size."""
    assert task.test.labels is not None
    path = scratch / "student"
    student.save(path)
    model = LinearModel.load(path)
    predicted = model.predict(task.test.texts)
    teacher = np.array(task.logits.classes)[task.logits.get(task.test.texts).argmax(axis=1)]
    scores = classification_scores(task.test.labels, predicted, task.logits.classes)
    size = directory_size(path)
    shutil.rmtree(path)
    return {
        "student_accuracy": scores["accuracy"],
        "student_macro_f1": scores["macro_f1"],
        "student_teacher_agreement": agreement(predicted, list(teacher)),
        "student_size_bytes": size,
        "n_features": model.featurizer.n_features,
    }


def fit_row(
    task: Task,
    *,
    loss: str,
    n_unlabeled: int,
    n_augment: int,
    augmented: list[str],
    options: dict[str, Any],
    scratch: Path,
) -> dict[str, Any]:
    """One student: fit on the pool's first ``n_unlabeled`` texts (the gold texts when 0)
    plus the augmented ones, then measured on the test set."""
    assert task.gold.labels is not None
    transfer = (task.pool[:n_unlabeled] if n_unlabeled else list(task.gold.texts)) + augmented
    student = LinearStudent(loss=loss, random_state=0, **options)  # type: ignore[arg-type]
    student.fit(
        transfer,
        task.logits.get(transfer),
        classes=task.logits.classes,
        gold_texts=task.gold.texts,
        gold_labels=task.gold.labels,
        progress=True,
    )
    scores = evaluate(task, student, scratch)
    selection = {k: v for k, v in student.selection_.items() if k != "grid"}
    return {
        "dataset": task.name,
        "student": "linear",
        "loss": loss,
        "augment": n_augment,
        "n_labeled": len(task.gold) + 100,
        "n_gold_rows": len(task.gold),
        "n_unlabeled": n_unlabeled,
        "n_synthetic": len(augmented),
        "n_transfer": len(transfer),
        "n_test": len(task.test),
        "teacher": task.logits.teacher,
        "teacher_accuracy": task.teacher_accuracy(),
        **scores,
        "fit_seconds": student.fit_seconds_,
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
        "selection": selection,
        "search": student.selection_["grid"],
    }


def splits_of(labeled: TextDataset, test: TextDataset) -> TextDataset:
    """The student's gold rows: the pipeline's teacher_train split of the labeled set."""
    return prepare_splits(labeled, None, test, RunConfig(seed=0)).teacher_train


def imdb_task(data: Path, runs: Path, work: Path, teacher_logits: Path | None) -> Task:
    labeled, test, unlabeled, rest = protocol_splits(data, 0, 1000, 2000, 5000)
    extra = read_unlabeled(data / "imdb_unlabeled.csv.gz")
    pool = unlabeled.texts + rest.texts + extra.texts
    if teacher_logits is not None:
        return Task("imdb", splits_of(labeled, test), test, pool, precomputed(teacher_logits), None)
    logits = copied_store(runs / "seed_protocol", work)
    return Task("imdb", splits_of(labeled, test), test, pool, logits, None)


def sst2_task(data: Path, runs: Path, work: Path) -> Task:
    sst2 = read_labeled(data / "sst2_train.csv.gz")
    order = np.random.default_rng(0).permutation(len(sst2)).tolist()
    labeled, test = sst2.subset(order[:1000]), read_labeled(data / "sst2_dev.csv.gz")
    pool = sst2.subset(order[1000:]).texts
    logits = copied_store(runs / "sst2", work)
    return Task("sst2", splits_of(labeled, test), test, pool, logits, runs / "sst2" / "teacher")


def trec_task(data: Path, runs: Path, work: Path) -> Task:
    trec = read_labeled(data / "trec_train.csv.gz")
    rest, test = stratified_split(trec, 0.2, seed=0)
    others, labeled = stratified_split(rest, 1000, seed=0)
    logits = copied_store(runs / "trec", work)
    return Task(
        "trec", splits_of(labeled, test), test, others.texts, logits, runs / "trec" / "teacher"
    )


def featurizer_speed(texts: list[str]) -> list[dict[str, Any]]:
    """Documents/s of the featurizer, word n-grams vs with character n-grams, C vs Python."""
    from textdistill.runtime import featurizer as module

    rows = []
    for char_ngrams in (None, (2, 5)):
        featurizer = NgramFeaturizer.fit(texts, max_n=2, char_ngrams=char_ngrams)
        for path, pure in (("c", False), ("python", True)):
            module._PURE_PYTHON, featurizer._fast = pure, None
            started = time.perf_counter()
            featurizer.transform(texts)
            seconds = time.perf_counter() - started
            rows.append(
                {
                    "char_ngrams": None if char_ngrams is None else list(char_ngrams),
                    "path": path if module._ngrams is not None or pure else "python (no C)",
                    "n_features": featurizer.n_features,
                    "docs_per_s": len(texts) / seconds,
                }
            )
    module._PURE_PYTHON = False
    return rows


def learning_curve(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    imdb = [r for r in rows if r["dataset"] == "imdb" and r.get("experiment") == "losses"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for loss, marker in (("mse", "o"), ("soft_ce", "s")):
        mine = sorted((r for r in imdb if r["loss"] == loss), key=lambda r: r["n_unlabeled"])
        sizes = [r["n_unlabeled"] for r in mine]
        axes[0].plot(sizes, [r["student_accuracy"] for r in mine], marker=marker, label=loss)
        axes[1].plot(
            sizes, [r["student_teacher_agreement"] for r in mine], marker=marker, label=loss
        )
    if imdb:
        axes[0].axhline(imdb[0]["teacher_accuracy"], color="grey", ls="--", label="teacher")
    axes[0].set_title("IMDB, 1,000 labels: test accuracy")
    axes[1].set_title("agreement with the teacher")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("teacher-labeled unlabeled reviews")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


class Rows:
    """Finished rows by key, saved after each, so that a rerun does only what is missing."""

    def __init__(self, path: Path, scratch: Path) -> None:
        self.path, self.scratch = path, scratch
        self.done: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}

    def fit(self, key: str, task: Task, labels: dict[str, Any], **fit: Any) -> None:
        if key not in self.done:
            print(f"- {key}", flush=True)
            self.done[key] = {**labels, **fit_row(task, scratch=self.scratch, **fit)}
            self.path.write_text(json.dumps(self.done, indent=1))
        r = self.done[key]
        print(
            f"  {key}: student {r['student_accuracy']:.4f}, teacher {r['teacher_accuracy']:.4f}, "
            f"agreement {r['student_teacher_agreement']:.4f}, {r['n_features']} features",
            flush=True,
        )


def search_options(loss: str, soft_ce_grid: tuple[float, ...]) -> dict[str, Any]:
    """What each student searches; soft_ce's penalty grid is cut to what the 2-core machine
    can afford (its fits at C = 256 are the slowest and were never the best)."""
    if loss == "soft_ce":
        return {"alpha": ALPHAS, "temperature": TEMPERATURES, "grid": soft_ce_grid}
    return {"alpha": ALPHAS, "temperature": 1.0}


def run_imdb(
    task: Task, rows: Rows, sizes: Sequence[int], sweep_features: bool
) -> list[dict[str, Any]]:
    """Each loss at each size with logits, then (``sweep_features``) the feature sweep; returns the
    skipped sizes. A size beyond the pool means the whole pool, and is recorded as such."""
    sizes = sorted({min(n, len(task.pool)) for n in sizes})
    available = [n for n in sizes if not task.logits.missing(task.pool[:n])]
    skipped = [
        {"dataset": "imdb", "n_unlabeled": n, "why": f"no teacher logits for {task.teacher}"}
        for n in sizes
        if n not in available
    ]
    for n in available:
        for loss in ("mse", "soft_ce"):
            rows.fit(
                f"imdb/{loss}/{n}",
                task,
                {"experiment": "losses"},
                loss=loss,
                n_unlabeled=n,
                n_augment=0,
                augmented=[],
                options=search_options(loss, (4.0, 16.0, 64.0)),
            )
    for features in IMDB_FEATURE_SWEEP if sweep_features and available else ():
        rows.fit(
            "imdb/features/" + ",".join(f"{k}={v}" for k, v in features.items()),
            task,
            {"experiment": "features"},
            loss="mse",
            n_unlabeled=available[-1],
            n_augment=0,
            augmented=[],
            # the penalty the mse search picks on 20,000 reviews, fixed to keep the sweep cheap
            options={**features, "alpha": 0.1, "grid": (1.0,)},
        )
    return skipped


def run_short_texts(task: Task, rows: Rows) -> None:
    """No unlabeled text or all of it, with and without augmentation, each loss."""
    assert task.teacher_dir is not None
    teacher_dir = task.teacher_dir
    loaded: list[Teacher] = []

    def teacher() -> Teacher:
        if not loaded:
            loaded.append(Teacher.load(teacher_dir))
        return loaded[0]

    tagger_name, tagger = resolve_tagger("auto")
    synthetic = augment(
        task.gold.texts,
        n_iter=20,
        mask_token=mask_token_of(teacher_dir),
        tagger=tagger,
        random_state=0,
    )
    scored = label_missing(task.logits, [*task.gold.texts, *task.pool, *synthetic], teacher)
    print(f"  {task.name}: {len(synthetic)} augmented texts ({tagger_name}); {scored} scored now")
    for n in (0, len(task.pool)):
        for n_augment in (0, 20):
            for loss in ("mse", "soft_ce"):
                rows.fit(
                    f"{task.name}/{loss}/{n}/augment{n_augment}",
                    task,
                    {"experiment": "augment", "tagger": tagger_name},
                    loss=loss,
                    n_unlabeled=n,
                    n_augment=n_augment,
                    augmented=synthetic if n_augment else [],
                    options={
                        **search_options(loss, (1.0, 4.0, 16.0, 64.0)),
                        # feature options are searched with mse only (its fits take seconds)
                        "feature_grid": SHORT_TEXT_FEATURES if loss == "mse" else (),
                    },
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="runs to read")
    parser.add_argument("--work", type=Path, default=Path("runs/student_quality"))
    parser.add_argument("--teacher-logits", type=Path, help="precomputed IMDB teacher logits")
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=["imdb", "imdb-features", "sst2", "trec"],
        default=["imdb", "imdb-features", "sst2", "trec"],
    )
    parser.add_argument("--imdb-sizes", type=int, nargs="+", default=list(IMDB_SIZES))
    parser.add_argument("--results", default="student_quality", help="results/<NAME>.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=args.work))
    rows = Rows(args.work / "rows.json", scratch)
    started = time.time()
    skipped: list[dict[str, Any]] = []
    imdb = imdb_task(args.data, args.runs, args.work, args.teacher_logits)
    for name in args.tasks:
        if name == "imdb":
            skipped += run_imdb(imdb, rows, args.imdb_sizes, "imdb-features" in args.tasks)
        elif name == "imdb-features":
            continue
        elif name == "sst2":
            run_short_texts(sst2_task(args.data, args.runs, args.work), rows)
        else:
            run_short_texts(trec_task(args.data, args.runs, args.work), rows)
    shutil.rmtree(scratch)
    results = list(rows.done.values())
    speed = featurizer_speed(imdb.test.texts)
    plot = RESULTS_DIR / f"{args.results}_learning_curve.png"
    learning_curve(results, plot)
    path = write_results(
        args.results,
        results,
        teacher=imdb.teacher,
        skipped=skipped,
        featurizer_speed=speed,
        seconds=time.time() - started,
    )
    print(json.dumps(speed, indent=1))
    print(f"wrote {path} and {plot}")


if __name__ == "__main__":
    main()

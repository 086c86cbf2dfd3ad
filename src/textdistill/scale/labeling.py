"""Label a corpus with a saved teacher on a Ray cluster: Ray Data in, Parquet shards out.

One teacher per actor (a GPU each where the cluster has GPUs, else ``cpus_per_actor`` cores
and as many torch threads), fed by ``map_batches`` from ``read_parquet`` / ``read_csv`` /
``read_json`` over local paths or any URI pyarrow understands (``s3://``, ``gs://``,
``hdfs://``...). Each batch of ``rows_per_shard`` rows becomes one shard (scale/shards.py):

* **Resumable.** Before scoring, the driver reads which text hashes the output already holds
  (every shard is complete by construction) and ships them to the actors once; each actor
  drops those rows, and the duplicates inside its batch, before the teacher sees them. A
  rerun after a crash, or over a grown corpus, scores only what is new.
* **Nothing written twice.** A shard is named after the texts it scores, so when a worker
  dies mid-batch and Ray retries the batch elsewhere, the retry writes the same file: the
  shard appears once, whole (temporary file + rename, or one PUT on an object store).
* **One store.** A local (or mounted) output directory is a :class:`LogitsStore` root:
  ``textdistill run --logits-cache OUTPUT`` and ``LogitsStore(OUTPUT, ...)`` read the shards,
  so a student trains the same way whatever labeled its data.

Two sources of the same text in different batches of one run (a corpus with duplicates
spread over files) are scored in both; the store keeps one row (same logits), so this costs
time, not correctness. Deduplicating across a whole corpus would need a shuffle, which costs
more than the rare duplicate.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from textdistill.extras import install_hint
from textdistill.logits_store import HASH_BYTES, LogitsStore, text_hash
from textdistill.scale.shards import ShardError, is_shard_name, read_shard, write_shard
from textdistill.teacher import logits_key

SCALE_HINT = f"distributed labeling needs the scale extra: {install_hint('scale')}"
_READERS = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json"}


@dataclass(frozen=True)
class LabelingStats:
    """What one labeling job did (printed by ``textdistill label``, kept in metrics)."""

    n_rows: int
    n_already_stored: int
    n_scored: int
    n_shards: int
    actors: int
    device: str
    seconds: float
    scoring_seconds: float  # summed over actors: teacher + shard writing, no start-up or I/O wait

    @property
    def docs_per_second(self) -> float:
        return self.n_scored / self.seconds if self.seconds > 0 and self.n_scored else 0.0


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # the Data library is a separate extra of ray
    except ImportError as error:
        raise ImportError(f"{SCALE_HINT} ({error})") from None
    return ray


def input_format(path: str) -> str:
    """Reader for a path from its extension (compression suffixes ignored).

    >>> input_format("s3://bucket/part-0001.csv.gz"), input_format("docs.jsonl")
    ('csv', 'json')
    """
    name = posixpath.basename(path.rstrip("/")).lower()
    for compression in (".gz", ".bz2", ".zst", ".lz4", ".snappy"):
        name = name.removesuffix(compression)
    suffix = posixpath.splitext(name)[1]
    if suffix in _READERS:
        return _READERS[suffix]
    if suffix == "":  # a folder of Parquet files, as Spark and Ray Data write them
        return "parquet"
    raise ValueError(
        f"{path}: cannot tell the format from the extension {suffix!r}; expected one of "
        f"{sorted(_READERS)} (optionally compressed), or name it with --format"
    )


def read_corpus(paths: Sequence[str], text_column: str, fmt: str | None = None) -> Any:
    """A Ray Dataset of the ``text_column`` of ``paths`` (and each row's file, for errors)."""
    ray = _import_ray()
    if not paths:
        raise ValueError("no input paths given")
    formats = {fmt or input_format(str(p)) for p in paths}
    if len(formats) > 1:
        raise ValueError(f"inputs mix formats {sorted(formats)}; label them in separate jobs")
    reader = {
        "parquet": ray.data.read_parquet,
        "csv": ray.data.read_csv,
        "json": ray.data.read_json,
    }[formats.pop()]
    dataset = reader([str(p) for p in paths], include_paths=True)
    missing = text_column not in dataset.schema().names
    if missing:
        raise ValueError(
            f"{paths[0]}: no column {text_column!r} (columns: {dataset.schema().names}); "
            "name the text column with --text-column"
        )
    return dataset.select_columns([text_column, "path"])


def _output_location(output: str | Path) -> tuple[Any, str]:
    """``(pyarrow filesystem, path in it)`` for a local path or a URI."""
    import pyarrow.fs

    text = str(output)
    if "://" in text:
        return pyarrow.fs.FileSystem.from_uri(text)
    return pyarrow.fs.LocalFileSystem(), os.path.abspath(text)


def stored_hashes(filesystem: Any, root: str, fingerprint: str, n_classes: int) -> np.ndarray:
    """Sorted ``V16`` keys of every text the output already holds for this teacher.

    A local output is opened as a :class:`LogitsStore` (which checks its format, sets damaged
    shards aside and removes a dead writer's temporaries); on an object store each shard is
    read and checked, and a damaged one is left out, so its texts are scored again.
    """
    import pyarrow.fs

    if isinstance(filesystem, pyarrow.fs.LocalFileSystem):
        store = LogitsStore(root, fingerprint=fingerprint, n_classes=n_classes)
        hashes = store.stored_hashes()
    else:
        selector = pyarrow.fs.FileSelector(posixpath.join(root, fingerprint), allow_not_found=True)
        found = []
        for info in filesystem.get_file_info(selector):
            if info.type != pyarrow.fs.FileType.File or not is_shard_name(info.base_name):
                continue
            try:
                shard = read_shard(info.path, filesystem)
            except ShardError as error:
                print(f"textdistill: {error}; its texts will be scored again", file=sys.stderr)
                continue
            if shard.fingerprint == fingerprint and shard.logits.shape[1] == n_classes:
                found.append(shard.hashes)
        hashes = np.concatenate(found) if found else np.empty((0, HASH_BYTES), np.uint8)
    return np.sort(np.ascontiguousarray(hashes).view(f"V{HASH_BYTES}").ravel())


class ShardWriter:
    """The Ray actor: one teacher, scoring batches and writing each as one shard.

    Loaded once per actor (model loading costs seconds); ``__call__`` is Ray Data's batch
    function and returns one summary row per batch for the driver to add up.
    """

    def __init__(
        self,
        teacher_path: str,
        fingerprint: str,
        precision: str,
        output_root: str,
        done: list[Any],
        text_column: str,
        device: str,
        threads: int,
        batch_size: int,
    ) -> None:
        import ray

        from textdistill.teacher import Teacher

        self.teacher = Teacher.load(teacher_path, device=device)
        if self.teacher.fingerprint != fingerprint:
            raise ValueError(
                f"{teacher_path} on this node is another teacher (fingerprint "
                f"{self.teacher.fingerprint[:12]}, the driver's {fingerprint[:12]}); every "
                "node must see the same saved teacher"
            )
        if device == "cpu":
            self.teacher.config.num_threads = threads
        self.teacher.use_precision(precision)
        self.key = logits_key(fingerprint, precision)
        self.filesystem, root = _output_location(output_root)
        self.directory = posixpath.join(root, self.key)
        self.done = ray.get(done[0])
        self.text_column = text_column
        self.batch_size = batch_size

    def __call__(self, batch: Any) -> dict[str, np.ndarray]:
        texts = batch.column(self.text_column).to_pylist()
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                path = batch.column("path")[i].as_py()
                raise ValueError(
                    f"{path}: a {type(text).__name__} where column {self.text_column!r} "
                    "should hold a text (null or empty cell?)"
                )
        keys: dict[bytes, str] = {}
        for text in texts:
            keys.setdefault(text_hash(text), text)
        hashes = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), HASH_BYTES)
        todo = ~np.isin(hashes.view(f"V{HASH_BYTES}").ravel(), self.done)
        started = time.perf_counter()
        if todo.any():
            texts_todo = [text for text, keep in zip(keys.values(), todo, strict=True) if keep]
            logits = self.teacher.logits(texts_todo, batch_size=self.batch_size)
            write_shard(self.directory, hashes[todo], logits, self.key, self.filesystem)
        return {
            "rows": np.array([len(texts)]),
            "already_stored": np.array([int((~todo).sum())]),
            "scored": np.array([int(todo.sum())]),
            "shards": np.array([int(todo.any())]),
            "seconds": np.array([time.perf_counter() - started]),
        }


def label_dataset(
    dataset: Any,
    teacher_path: str | Path,
    output: str | Path,
    *,
    text_column: str = "text",
    actors: int | None = None,
    cpus_per_actor: int = 1,
    use_gpu: bool | None = None,
    rows_per_shard: int = 1024,
    batch_size: int = 64,
    precision: str = "fp32",
) -> LabelingStats:
    """Score every text of a Ray ``dataset`` not yet in ``output`` and write the shards.

    Ray must be initialised (see :func:`ray_session`). ``actors`` defaults to one per GPU
    (``use_gpu``: whether the cluster has any) or one per ``cpus_per_actor`` CPUs. Logits of
    a ``precision`` other than fp32 are stored apart, under ``logits_key``, as the store does.
    """
    ray = _import_ray()
    from textdistill.teacher import PRECISIONS, Teacher

    if precision not in PRECISIONS or precision == "auto":
        raise ValueError(f"precision must be fp32, bf16 or int8, got {precision!r}")

    if rows_per_shard < 1 or batch_size < 1 or cpus_per_actor < 1:
        raise ValueError("rows_per_shard, batch_size and cpus_per_actor must be positive")
    started = time.perf_counter()
    teacher = Teacher.load(teacher_path, device="cpu")  # fingerprint and classes, checked early
    fingerprint, n_classes = teacher.fingerprint, len(teacher.classes_)
    del teacher
    filesystem, root = _output_location(output)
    done = stored_hashes(filesystem, root, logits_key(fingerprint, precision), n_classes)
    resources = ray.cluster_resources()
    gpu = bool(resources.get("GPU", 0)) if use_gpu is None else use_gpu
    if actors is None:
        actors = int(resources.get("GPU", 0)) if gpu else int(resources.get("CPU", 1))
        actors = max(1, actors if gpu else actors // cpus_per_actor)
    if actors * cpus_per_actor >= resources.get("CPU", 0):
        # The actors would hold every CPU and leave none to the tasks that read the input for
        # them (a deadlock): read it all first, into Ray's object store (which spills to disk
        # beyond its size), then score. With a CPU to spare, reading streams beside scoring.
        dataset = dataset.materialize()
    summary = dataset.map_batches(
        ShardWriter,
        batch_size=rows_per_shard,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus_per_actor,
        num_gpus=1 if gpu else 0,
        fn_constructor_kwargs={
            "teacher_path": str(Path(teacher_path).resolve()),
            "fingerprint": fingerprint,
            "precision": precision,
            "output_root": str(output) if "://" in str(output) else root,
            "done": [ray.put(done)],
            "text_column": text_column,
            "device": "cuda" if gpu else "cpu",
            "threads": cpus_per_actor,
            "batch_size": batch_size,
        },
    )
    totals = dict.fromkeys(("rows", "already_stored", "scored", "shards", "seconds"), 0.0)
    for part in summary.iter_batches(batch_size=None, batch_format="numpy"):
        for name in totals:
            totals[name] += float(part[name].sum())
    return LabelingStats(
        n_rows=int(totals["rows"]),
        n_already_stored=int(totals["already_stored"]),
        n_scored=int(totals["scored"]),
        n_shards=int(totals["shards"]),
        actors=actors,
        device="gpu" if gpu else "cpu",
        seconds=time.perf_counter() - started,
        scoring_seconds=totals["seconds"],
    )


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[None]:
    """Join the cluster at ``address``, or start a local one; leave Ray as it was found.

    An already initialised Ray (a notebook, a test fixture) is used and left running.
    """
    ray = _import_ray()
    if ray.is_initialized():
        yield
        return
    options: dict[str, Any] = {"include_dashboard": False}
    if address is None:
        options["num_cpus"] = num_cpus
    ray.init(address=address, **options)
    try:
        yield
    finally:
        ray.shutdown()


def label_files(
    paths: Sequence[str],
    teacher_path: str | Path,
    output: str | Path,
    *,
    text_column: str = "text",
    fmt: str | None = None,
    **options: Any,
) -> LabelingStats:
    """:func:`label_dataset` over files (Ray must be initialised)."""
    return label_dataset(
        read_corpus(paths, text_column, fmt),
        teacher_path,
        output,
        text_column=text_column,
        **options,
    )


def label_texts(
    texts: Sequence[str], teacher_path: str | Path, output: str | Path, **options: Any
) -> LabelingStats:
    """:func:`label_dataset` over texts in memory (``run --engine ray``)."""
    ray = _import_ray()
    import pyarrow as pa

    table = pa.table({"text": list(texts), "path": ["<memory>"] * len(texts)})
    # One block per shard, so that the shards spread over every actor.
    step = options.get("rows_per_shard", 1024)
    blocks = [table.slice(start, step) for start in range(0, max(len(table), 1), step)]
    return label_dataset(ray.data.from_arrow(blocks), teacher_path, output, **options)

"""Distributed labeling: Parquet shards, the store reading them, and Ray labeling itself.

The Ray tests share one local cluster of 2 CPUs (module-scoped, shut down at the end) and the
tiny random BERT, fine-tuned once; the shard-format tests need pyarrow only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pyarrow.fs
import pyarrow.parquet as pq
import pytest

from textdistill.logits_store import LogitsStore, text_hash
from textdistill.scale.shards import ShardError, read_shard, write_shard

N_CLASSES = 2
LOCAL = pyarrow.fs.LocalFileSystem()


def _hashes(texts: list[str]) -> np.ndarray:
    return np.frombuffer(b"".join(map(text_hash, texts)), dtype=np.uint8).reshape(len(texts), 16)


def _shard_files(root: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in root.glob("*/shard-*.parquet")}


# ------------------------------------------------------------------------- shard format
def test_shard_round_trip_is_read_by_the_store(tmp_path: Path) -> None:
    texts = ["good fun", "awful plot", ""]
    logits = np.array([[-1.5, 2.0], [3.0, -0.25], [0.0, 1e-7]], dtype=np.float32)
    path = write_shard(str(tmp_path / "fp"), _hashes(texts), logits, "fp", LOCAL)
    shard = read_shard(path)
    assert shard.fingerprint == "fp"
    np.testing.assert_array_equal(shard.logits, logits)
    # Written once more with the same texts: the same name, not a second file.
    assert write_shard(str(tmp_path / "fp"), _hashes(texts), logits, "fp", LOCAL) == path
    assert len(list((tmp_path / "fp").glob("shard-*"))) == 1
    # Other engines read it as plain Parquet.
    table = pq.read_table(path)
    assert table.column("fingerprint").to_pylist() == ["fp"] * 3
    assert table.column("logits").to_pylist()[1] == [3.0, -0.25]

    store = LogitsStore(tmp_path, fingerprint="fp", n_classes=N_CLASSES)
    np.testing.assert_array_equal(store.get(["awful plot", "good fun"]), logits[[1, 0]])
    assert store.missing([*texts, "new"]) == ["new"]


def test_damaged_or_foreign_shards_are_set_aside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "mine"
    kept = write_shard(str(directory), _hashes(["a"]), np.ones((1, 2)), "mine", LOCAL)
    foreign = write_shard(str(directory), _hashes(["b"]), np.ones((1, 2)), "theirs", LOCAL)
    altered = write_shard(str(directory), _hashes(["c"]), np.ones((1, 2)), "mine", LOCAL)
    table = pq.read_table(altered)
    edited = table.set_column(1, "logits", pa.array([[5.0, 5.0]], pa.list_(pa.float32(), 2)))
    pq.write_table(edited.replace_schema_metadata(table.schema.metadata), altered)
    with pytest.raises(ShardError, match="checksum"):
        read_shard(altered)

    store = LogitsStore(tmp_path, fingerprint="mine", n_classes=N_CLASSES)
    assert "a" in store and "b" not in store and "c" not in store
    assert Path(kept).exists()
    assert Path(foreign).with_suffix(".foreign").exists()
    assert Path(altered).with_suffix(".corrupt").exists()
    err = capsys.readouterr().err
    assert "another teacher" in err and "checksum" in err


def test_a_shard_of_a_newer_format_is_refused(tmp_path: Path) -> None:
    path = write_shard(str(tmp_path), _hashes(["a"]), np.ones((1, 2)), "fp", LOCAL)
    table = pq.read_table(path)
    info = json.loads(table.schema.metadata[b"textdistill.shard"])
    info["format_version"] = 99
    pq.write_table(
        table.replace_schema_metadata({b"textdistill.shard": json.dumps(info).encode()}), path
    )
    with pytest.raises(ShardError, match="newer textdistill"):
        read_shard(path)


# --------------------------------------------------------------------------- Ray labeling
@pytest.fixture(scope="module")
def ray_cluster() -> Any:
    """A local Ray cluster of 2 CPUs for the whole module, shut down afterwards."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> SimpleNamespace:
    """A saved tiny teacher and a few hundred unlabeled texts (some repeated) in a CSV."""
    from conftest import _make_toy_sentiment
    from test_teacher import make_teacher

    root = tmp_path_factory.mktemp("scale")
    texts, labels = _make_toy_sentiment()
    teacher = make_teacher(tiny_bert_dir).fit(texts, labels, progress=False)
    teacher.save(root / "teacher")
    more, _ = _make_toy_sentiment(n_per_class=150, seed=1)
    numbered = [f"{text} number {i}" for i, text in enumerate(more)]
    unlabeled = numbered + numbered[:20]  # repeats: stored once
    path = root / "unlabeled.csv"
    pa.csv.write_csv(pa.table({"id": range(len(unlabeled)), "text": unlabeled}), path)
    return SimpleNamespace(
        root=root, teacher=teacher, texts=unlabeled, csv=path, teacher_dir=root / "teacher"
    )


def test_ray_labeling_gives_the_local_loops_logits(
    ray_cluster: Any, corpus: SimpleNamespace, tmp_path: Path
) -> None:
    from textdistill.scale.labeling import label_files

    stats = label_files(
        [str(corpus.csv)], corpus.teacher_dir, tmp_path / "out", rows_per_shard=64, batch_size=16
    )
    distinct = len(set(corpus.texts))
    assert stats.n_rows == len(corpus.texts)
    # A text repeated in another batch may be scored there too (no shuffle to deduplicate).
    assert distinct <= stats.n_scored <= len(corpus.texts) and stats.n_already_stored == 0
    assert stats.n_shards == len(_shard_files(tmp_path / "out")) >= 2
    assert stats.actors == 2 and stats.device == "cpu"

    fingerprint = corpus.teacher.fingerprint
    ray_store = LogitsStore(tmp_path / "out", fingerprint=fingerprint, n_classes=N_CLASSES)
    assert len(ray_store) == distinct
    local_store = LogitsStore(tmp_path / "local", fingerprint=fingerprint, n_classes=N_CLASSES)
    local_store.fill(corpus.texts, corpus.teacher.logits, progress=False)
    np.testing.assert_allclose(
        ray_store.get(corpus.texts), local_store.get(corpus.texts), rtol=1e-5, atol=1e-5
    )


def test_rerun_scores_only_new_texts_and_keeps_complete_shards(
    ray_cluster: Any, corpus: SimpleNamespace, tmp_path: Path
) -> None:
    from textdistill.scale.labeling import label_files

    out = tmp_path / "out"
    half = corpus.root / "half.parquet"
    pq.write_table(pa.table({"text": corpus.texts[:100]}), half)
    first = label_files([str(half)], corpus.teacher_dir, out, rows_per_shard=32)
    assert first.n_scored == 100
    before = _shard_files(out)

    again = label_files([str(half)], corpus.teacher_dir, out, rows_per_shard=32)
    assert (again.n_scored, again.n_already_stored, again.n_shards) == (0, 100, 0)
    assert _shard_files(out) == before

    grown = label_files([str(corpus.csv)], corpus.teacher_dir, out, rows_per_shard=32)
    distinct = len(set(corpus.texts))
    # The first 100 texts, and the repeats of 20 of them at the end of the file, are skipped.
    assert (grown.n_already_stored, grown.n_scored) == (120, distinct - 100)
    after = _shard_files(out)
    assert {name: after[name] for name in before} == before  # untouched
    rows = sum(pq.read_metadata(path).num_rows for path in out.glob("*/shard-*.parquet"))
    assert rows == distinct  # no text stored twice


def _parent(pid: int) -> int:
    # /proc/PID/stat: "pid (name) state ppid ..."; the name may hold spaces, not ")".
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _actor_pids() -> list[int]:
    """Processes of this test's Ray Data map actors: their title names the batch function,
    and they descend from this process (through the local cluster's raylet), so that another
    Ray job on the machine is left alone."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            title = (entry / "cmdline").read_bytes()
            if not (entry.name.isdigit() and b"MapWorker" in title and b"ShardWriter" in title):
                continue
            ancestor = int(entry.name)
            for _ in range(4):
                ancestor = _parent(ancestor)
                if ancestor == os.getpid():
                    pids.append(int(entry.name))
                    break
        except (OSError, ValueError, IndexError):
            continue
    return pids


def test_a_killed_actors_batch_is_redone_and_nothing_is_stored_twice(
    ray_cluster: Any, corpus: SimpleNamespace, tmp_path: Path
) -> None:
    import signal
    import threading
    import time

    from textdistill.scale.labeling import label_files

    texts = sorted(set(corpus.texts))
    source = tmp_path / "distinct.parquet"
    pq.write_table(pa.table({"text": texts}), source)
    out = tmp_path / "out"
    killed: list[int] = []
    finished = threading.Event()

    def kill_one_actor_mid_run() -> None:
        while not finished.is_set() and not killed:
            pids = _actor_pids()
            if pids and len(_shard_files(out)) >= 2:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(len(_shard_files(out)))
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_one_actor_mid_run)
    watcher.start()
    try:
        stats = label_files([str(source)], corpus.teacher_dir, out, rows_per_shard=4, batch_size=4)
    finally:
        finished.set()
        watcher.join()

    assert killed and killed[0] < len(texts) / 4, "the actor was not killed mid-run"
    # Each batch is counted once, by the call that returned its summary. The killed actor's
    # call returned none: only its batch's redo counts those texts, once, and finds none of
    # them already stored (the restarted actor holds the set shipped at the start).
    assert (stats.n_rows, stats.n_scored, stats.n_already_stored) == (len(texts), len(texts), 0)
    assert stats.n_shards == len(_shard_files(out))  # the redo rewrote its shard, not another
    rows = sum(pq.read_metadata(path).num_rows for path in out.glob("*/shard-*.parquet"))
    assert rows == len(texts)  # but stored once
    store = LogitsStore(out, fingerprint=corpus.teacher.fingerprint, n_classes=N_CLASSES)
    np.testing.assert_allclose(store.get(texts), corpus.teacher.logits(texts), rtol=1e-5, atol=1e-5)


def test_label_command_and_its_errors(
    ray_cluster: Any, corpus: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from textdistill.cli import main

    out = tmp_path / "out"
    args = ["label", str(corpus.teacher_dir), str(corpus.csv), "--output", str(out)]
    assert main([*args, "--rows-per-shard", "100"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_rows"] == len(corpus.texts) and summary["n_already_stored"] == 0
    store = LogitsStore(out, fingerprint=corpus.teacher.fingerprint, n_classes=N_CLASSES)
    assert len(store) == len(set(corpus.texts))
    assert main([*args, "--text-column", "body"]) == 1
    assert "no column 'body'" in capsys.readouterr().err
    assert main(["label", str(corpus.teacher_dir), str(corpus.root / "x.xml"), "-o", "o"]) == 1
    assert "cannot tell the format" in capsys.readouterr().err


def test_run_with_the_ray_engine_trains_on_the_shards(
    ray_cluster: Any, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    from conftest import _make_toy_sentiment
    from test_pipeline import _config
    from textdistill.data import TextDataset
    from textdistill.pipeline import run_pipeline
    from textdistill.teacher import Teacher

    texts, labels = _make_toy_sentiment()
    labeled = TextDataset(texts=texts, labels=labels, source="toy")
    unlabeled = TextDataset(texts=[t + " indeed" for t in texts], labels=None, source="toy-u")
    config = _config(tiny_bert_dir, tmp_path / "run")
    config.teacher.precision = "fp32"  # the store is keyed by the bare fingerprint then
    config.engine = "ray"
    metrics = run_pipeline(labeled, unlabeled, None, config)

    labeling = metrics["teacher"]["labeling"]
    assert labeling["engine"] == "ray" and labeling["n_scored"] == len(set(unlabeled.texts))
    assert list((tmp_path / "run" / "logits").glob("*/shard-*.parquet"))
    teacher = Teacher.load(tmp_path / "run" / "teacher")
    store = LogitsStore(
        tmp_path / "run" / "logits", fingerprint=teacher.fingerprint, n_classes=N_CLASSES
    )
    np.testing.assert_allclose(
        store.get(unlabeled.texts), teacher.logits(unlabeled.texts), rtol=1e-5, atol=1e-5
    )
    assert metrics["student"]["n_teacher_rows"] > 0

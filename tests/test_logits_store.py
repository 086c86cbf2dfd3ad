"""The resumable logits cache."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from textdistill.logits_store import FillStats, LogitsStore, StoreError, text_hash


def fake_teacher(calls: list[list[str]]):  # type: ignore[no-untyped-def]
    def score(batch: list[str]) -> np.ndarray:
        calls.append(list(batch))
        return np.array([[len(t), -len(t)] for t in batch], dtype=np.float32)

    return score


TEXTS = [f"document number {i} " + "x" * (i % 7) for i in range(50)]


def test_fill_scores_each_distinct_text_once_and_keeps_order(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    store = LogitsStore(tmp_path, fingerprint="t1", n_classes=2)
    stats = store.fill(TEXTS + TEXTS[:10], fake_teacher(calls), batch_size=8, progress=False)
    assert (stats.n_texts, stats.n_unique, stats.n_scored, stats.n_cached) == (60, 50, 50, 0)
    assert sum(len(c) for c in calls) == 50
    got = store.get(TEXTS[::-1])
    np.testing.assert_array_equal(got[:, 0], [len(t) for t in TEXTS[::-1]])
    assert got.dtype == np.float32


def test_a_rerun_reuses_everything(tmp_path: Path) -> None:
    LogitsStore(tmp_path, fingerprint="t1", n_classes=2).fill(
        TEXTS, fake_teacher([]), batch_size=8, progress=False
    )
    calls: list[list[str]] = []
    store = LogitsStore(tmp_path, fingerprint="t1", n_classes=2)
    stats = store.fill(TEXTS, fake_teacher(calls), progress=False)
    assert calls == [] and stats.n_cached == 50 and len(store) == 50


def test_a_crash_loses_only_the_batch_in_flight(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    score = fake_teacher(calls)

    def dies_on_third_batch(batch: list[str]) -> np.ndarray:
        if len(calls) == 2:
            raise KeyboardInterrupt
        return score(batch)

    store = LogitsStore(tmp_path, fingerprint="t1", n_classes=2)
    with pytest.raises(KeyboardInterrupt):
        store.fill(TEXTS, dies_on_third_batch, batch_size=10, progress=False)
    assert not list((tmp_path / "t1").glob(".*tmp*"))
    calls.clear()
    resumed = LogitsStore(tmp_path, fingerprint="t1", n_classes=2)
    stats = resumed.fill(TEXTS, score, batch_size=10, progress=False)
    assert (stats.n_cached, stats.n_scored) == (20, 30)
    np.testing.assert_array_equal(resumed.get(TEXTS)[:, 0], [len(t) for t in TEXTS])


def test_another_teacher_never_sees_these_logits(tmp_path: Path) -> None:
    LogitsStore(tmp_path, fingerprint="t1", n_classes=2).fill(
        TEXTS, fake_teacher([]), progress=False
    )
    other = LogitsStore(tmp_path, fingerprint="t2", n_classes=2)
    assert len(other) == 0
    with pytest.raises(StoreError, match="no logits stored"):
        other.get(TEXTS[:1])


def test_store_of_another_shape_is_refused(tmp_path: Path) -> None:
    LogitsStore(tmp_path, fingerprint="t1", n_classes=2)
    with pytest.raises(StoreError, match="holds logits of"):
        LogitsStore(tmp_path, fingerprint="t1", n_classes=3)


def test_teacher_returning_a_wrong_shape_is_an_error(tmp_path: Path) -> None:
    store = LogitsStore(tmp_path, fingerprint="t1", n_classes=3)
    with pytest.raises(StoreError, match="shape"):
        store.fill(TEXTS, fake_teacher([]), progress=False)


def test_a_damaged_chunk_is_set_aside_and_rescored(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    store = LogitsStore(tmp_path, fingerprint="t1", n_classes=2)
    store.fill(TEXTS, fake_teacher([]), batch_size=25, progress=False)
    chunk = sorted((tmp_path / "t1").glob("chunk-*.npz"))[0]
    content = dict(np.load(chunk))
    content["logits"] = content["logits"] + 1  # altered values, stale checksum
    with chunk.open("wb") as handle:
        np.savez(handle, **content)
    calls: list[list[str]] = []
    reopened = LogitsStore(tmp_path, fingerprint="t1", n_classes=2)
    assert "damaged" in capsys.readouterr().err
    assert len(reopened) == 25
    reopened.fill(TEXTS, fake_teacher(calls), progress=False)
    assert sum(len(c) for c in calls) == 25
    assert list((tmp_path / "t1").glob("*.corrupt"))
    np.testing.assert_array_equal(reopened.get(TEXTS)[:, 0], [len(t) for t in TEXTS])


def test_garbage_chunk_file_is_set_aside(tmp_path: Path) -> None:
    store = LogitsStore(tmp_path, fingerprint="t1", n_classes=2)
    store.fill(TEXTS[:5], fake_teacher([]), progress=False)
    (tmp_path / "t1" / "chunk-0-garbage.npz").write_bytes(b"not a zip")
    assert len(LogitsStore(tmp_path, fingerprint="t1", n_classes=2)) == 5


def test_invalid_fingerprint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        LogitsStore(tmp_path, fingerprint="../escape", n_classes=2)


# ---------------------------------------------------------------- writers sharing a store
def _logits_of(text: str) -> list[float]:
    """What a deterministic teacher would answer: the same for a text in any batch."""
    digest = text_hash(text)
    return [digest[0] / 255.0, -digest[1] / 255.0]


def _slow_teacher(calls: list[str], pause: float = 0.005):  # type: ignore[no-untyped-def]
    def score(batch: list[str]) -> np.ndarray:
        calls.extend(batch)
        time.sleep(pause)  # long enough for the other writer to come in between
        return np.array([_logits_of(t) for t in batch], dtype=np.float32)

    return score


def _stored_rows(directory: Path) -> list[bytes]:
    rows = []
    for chunk in directory.glob("chunk-*.npz"):
        with np.load(chunk, allow_pickle=False) as content:
            rows.extend(row.tobytes() for row in content["hashes"])
    return rows


def test_two_writers_on_one_store_split_the_work(tmp_path: Path) -> None:
    texts = [f"shared text {i} " + "y" * (i % 11) for i in range(400)]
    first, second = texts[:300], texts[100:]  # 200 texts in both
    calls: dict[str, list[str]] = {"first": [], "second": []}
    stats: dict[str, FillStats] = {}
    stores = {name: LogitsStore(tmp_path, fingerprint="t", n_classes=2) for name in calls}
    barrier = threading.Barrier(2)

    def writer(name: str, mine: list[str]) -> None:
        barrier.wait()
        stats[name] = stores[name].fill(
            mine, _slow_teacher(calls[name]), batch_size=4, progress=False
        )

    threads = [
        threading.Thread(target=writer, args=("first", first)),
        threading.Thread(target=writer, args=("second", second)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    scored = calls["first"] + calls["second"]
    assert sorted(scored) == sorted(texts)  # every text scored once, by one of them
    assert calls["first"] and calls["second"] and set(calls["second"]) & set(first)  # shared
    rows = _stored_rows(tmp_path / "t")
    assert len(rows) == len(set(rows)) == len(texts)  # and stored once
    for name, mine in (("first", first), ("second", second)):
        assert stats[name].n_scored == len(calls[name])
        assert stats[name].n_cached == len(mine) - len(calls[name])
        assert stats[name].n_by_others == stats[name].n_cached  # nothing was there before
        expected = np.array([_logits_of(t) for t in mine], dtype=np.float32)
        np.testing.assert_array_equal(stores[name].get(mine), expected)
    assert not list((tmp_path / "t" / "claims").iterdir())  # both claims removed at the end


def _live_writer(root: Path, name: str, texts: list[str]) -> threading.Thread:
    """A writer sharing the store under ``root`` while it scores ``texts``: it holds its claim
    on them (an exclusive flock, as a live fill does), and the thread it returns stores their
    logits 0.3 s after it starts, then lets the claim go."""
    import fcntl

    claims = root / "t" / "claims"
    claims.mkdir(parents=True, exist_ok=True)
    holder = (claims / f"{name}.claim").open("w+b")
    fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
    holder.write(b"".join(text_hash(t) for t in texts))
    holder.flush()
    writer = LogitsStore(root, fingerprint="t", n_classes=2)

    def land_the_batch() -> None:
        time.sleep(0.3)
        writer.put(texts, np.array([_logits_of(t) for t in texts], dtype=np.float32))
        holder.close()

    return threading.Thread(target=land_the_batch)


def test_a_live_writers_claim_is_waited_for_and_a_dead_ones_taken_over(tmp_path: Path) -> None:
    store = LogitsStore(tmp_path, fingerprint="t", n_classes=2)
    claims = tmp_path / "t" / "claims"
    claims.mkdir()
    live, dead = TEXTS[:4], TEXTS[4:8]
    # A dead writer: its claim file is there, but nobody holds its lock.
    (claims / "dead.claim").write_bytes(b"".join(text_hash(t) for t in dead))
    thread = _live_writer(tmp_path, "live", live)
    thread.start()
    calls: list[str] = []
    started = time.monotonic()
    stats = store.fill(TEXTS, _slow_teacher(calls, pause=0.0), batch_size=4, progress=False)
    thread.join()
    assert time.monotonic() - started >= 0.3  # it waited for the live batch ...
    assert not set(calls) & set(live) and set(dead) <= set(calls)  # ... and took the dead one
    assert sorted(calls) == sorted(TEXTS[4:])
    assert (stats.n_scored, stats.n_by_others) == (46, 4)
    assert not (claims / "dead.claim").exists()
    rows = _stored_rows(tmp_path / "t")
    assert len(rows) == len(set(rows)) == 50


def test_logits_scored_outside_fill_are_stored_once_by_writers_sharing_the_store(
    tmp_path: Path,
) -> None:
    """Two runs on one cache both time their teacher on the same test set: whichever stores
    second finds the first one's chunk and adds only what is new."""
    texts = [f"test text {i}" for i in range(30)]
    logits = np.array([_logits_of(t) for t in texts], dtype=np.float32)
    first = LogitsStore(tmp_path, fingerprint="t", n_classes=2)
    second = LogitsStore(tmp_path, fingerprint="t", n_classes=2)  # opened before first writes
    first.put(texts[:10], logits[:10])
    assert first.put_new(texts + texts[:5], np.concatenate([logits, logits[:5]])) == 20
    assert second.put_new(texts[::-1], logits[::-1]) == 0  # all there already, from the other
    rows = _stored_rows(tmp_path / "t")
    assert len(rows) == len(set(rows)) == len(texts)
    np.testing.assert_array_equal(second.get(texts), logits)
    assert not list((tmp_path / "t" / "claims").iterdir())


def test_logits_scored_outside_fill_wait_for_a_batch_another_writer_is_scoring(
    tmp_path: Path,
) -> None:
    """One run is scoring a batch (its claim is held) that holds texts of another run's timed
    test pass: the test pass stores only the rest and waits for that batch, so no text is
    stored twice (what two runs on one cache did before put_new took claims)."""
    texts = [f"test text {i}" for i in range(30)]
    logits = np.array([_logits_of(t) for t in texts], dtype=np.float32)
    thread = _live_writer(tmp_path, "scoring", texts[:6])
    thread.start()
    store = LogitsStore(tmp_path, fingerprint="t", n_classes=2)
    started = time.monotonic()
    assert store.put_new(texts, logits) == 24
    thread.join()
    assert time.monotonic() - started >= 0.3  # it waited for the batch in flight
    rows = _stored_rows(tmp_path / "t")
    assert len(rows) == len(set(rows)) == len(texts)
    np.testing.assert_array_equal(store.get(texts), logits)


def test_a_batch_landing_while_another_writer_looks_is_not_scored_twice(
    tmp_path: Path,
) -> None:
    """A writer stores its last batch and drops its claim without the store's lock. Another
    writer, under the lock, reads both the stored chunks and the live claims: a batch that
    lands between those two reads must be seen by one of them (two runs sharing a cache
    once stored 16 texts twice this way)."""
    texts = [f"shared text {i}" for i in range(8)]
    first = LogitsStore(tmp_path, fingerprint="t", n_classes=2)
    second = LogitsStore(tmp_path, fingerprint="t", n_classes=2)
    scoring, may_land = threading.Event(), threading.Event()

    def held_teacher(batch: list[str]) -> np.ndarray:
        scoring.set()
        may_land.wait(10)
        return np.array([_logits_of(t) for t in batch], dtype=np.float32)

    lander = threading.Thread(
        target=lambda: first.fill(texts, held_teacher, batch_size=8, progress=False)
    )
    lander.start()
    assert scoring.wait(10)  # the first writer holds its claim on every text
    read_chunks = second._load_chunks

    def read_then_let_the_batch_land() -> None:
        read_chunks()
        if lander.is_alive():  # the first read under the lock: now the batch lands
            may_land.set()
            lander.join(10)

    second._load_chunks = read_then_let_the_batch_land  # type: ignore[method-assign]
    calls: list[str] = []
    stats = second.fill(texts, _slow_teacher(calls, pause=0.0), batch_size=8, progress=False)
    assert calls == [] and stats.n_scored == 0 and stats.n_by_others == len(texts)
    rows = _stored_rows(tmp_path / "t")
    assert len(rows) == len(set(rows)) == len(texts)

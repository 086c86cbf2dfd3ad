"""The resumable logits cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from textdistill.logits_store import LogitsStore, StoreError


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

"""The fine-tuning loop's economies and its checkpoints: length-bucketed batches, early
stopping, and a fit interrupted after an epoch that resumes into the uninterrupted teacher.

The tiny random BERT from conftest stands in for the real teacher (a fit takes about a
second); a real SIGKILL of a whole run is in tests/test_faults.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from textdistill import teacher_training
from textdistill.teacher import Teacher
from textdistill.teacher_checkpoint import load_checkpoint
from textdistill.teacher_training import POOL_BATCHES, stale_epochs, training_batches

FAST = {"learning_rate": 3e-3, "epochs": 4, "batch_size": 8, "max_length": 32, "num_threads": 1}
LEARNS_FAST = {"epochs": 6, "batch_size": 4}
"""Twice the updates per epoch: the tiny random teacher learns the toy task by epoch 3, so
that with flipped validation labels its validation loss rises from there on."""


def _teacher(model_dir: Path, **overrides: Any) -> Teacher:
    return Teacher(model=str(model_dir), **{**FAST, **overrides})


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    from conftest import _make_toy_sentiment

    texts, labels = _make_toy_sentiment()
    val_texts, val_labels = _make_toy_sentiment(10, seed=1)
    return {"texts": texts, "labels": labels, "val_texts": val_texts, "val_labels": val_labels}


def _fit(teacher: Teacher, data: dict[str, Any], **options: Any) -> Teacher:
    return teacher.fit(
        data["texts"],
        data["labels"],
        val_texts=data["val_texts"],
        val_labels=data["val_labels"],
        progress=False,
        **options,
    )


def _without_seconds(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


# ------------------------------------------------------------------------------- batches
def test_unbucketed_batches_are_the_slices_of_one_permutation() -> None:
    """Plain shuffled batches draw exactly what the loop drew before buckets existed."""
    batches = training_batches(list(range(50)), 8, torch.Generator().manual_seed(3), False)
    expected = torch.randperm(50, generator=torch.Generator().manual_seed(3)).tolist()
    assert [i for batch in batches for i in batch] == expected
    assert [len(b) for b in batches] == [8] * 6 + [2]


def test_bucketed_batches_cover_every_row_once_and_pad_little() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 60, size=1000).tolist()
    batch_size = 16

    def padded(batches: list[list[int]]) -> int:
        return sum(max(lengths[i] for i in b) * len(b) for b in batches)

    generator = torch.Generator().manual_seed(0)
    first = training_batches(lengths, batch_size, generator, True)
    second = training_batches(lengths, batch_size, generator, True)
    for batches in (first, second):
        assert sorted(i for b in batches for i in b) == list(range(1000))
        assert all(1 <= len(b) <= batch_size for b in batches)
    assert first != second  # a new draw every epoch
    again = training_batches(lengths, batch_size, torch.Generator().manual_seed(0), True)
    assert again == first  # and the same draw for the same seed
    plain = training_batches(lengths, batch_size, torch.Generator().manual_seed(0), False)
    assert padded(first) < 0.7 * padded(plain)
    # Each batch comes from one pool of POOL_BATCHES * batch_size rows of the permutation,
    # not from the whole set sorted: batch contents change between epochs.
    assert {tuple(sorted(b)) for b in first} != {tuple(sorted(b)) for b in second}
    assert len(lengths) > POOL_BATCHES * batch_size


def test_a_small_set_is_not_sorted_into_the_same_batches_every_epoch() -> None:
    """240 rows are 15 batches of 16, less than one pool of POOL_BATCHES: sorted as one pool,
    distinct lengths would make every epoch cut the very same batches. At least MIN_POOLS
    pools keep the draw random."""
    assert POOL_BATCHES * 16 >= 240
    lengths = list(range(240))
    generator = torch.Generator().manual_seed(0)
    epochs = [training_batches(lengths, 16, generator, True) for _ in range(2)]
    first, second = ({tuple(sorted(b)) for b in batches} for batches in epochs)
    assert len(first & second) < len(first) // 2
    assert sorted(i for b in epochs[0] for i in b) == lengths


# ------------------------------------------------------------------------ early stopping
def test_stale_epochs_count_epochs_that_did_not_lower_the_validation_loss() -> None:
    history = [
        {"val_loss": 0.5, "val_accuracy": 0.7},
        {"val_loss": 0.4, "val_accuracy": 0.7},
        {"val_loss": 0.45, "val_accuracy": 0.8},  # a better accuracy does not count
        {"val_loss": 0.42, "val_accuracy": 0.8},  # better than its predecessor, not the best
    ]
    assert stale_epochs(history) == 2
    assert stale_epochs(history[:2]) == 0
    assert stale_epochs([{"val_loss": None}] * 3) == 0


def test_early_stopping_computes_a_prefix_of_the_full_run(
    tiny_bert_dir: Path, data: dict[str, Any]
) -> None:
    """Flipped validation labels: the more the teacher learns, the worse its validation loss,
    so with a patience of 2 it stops early and keeps an early epoch, exactly as the full
    run's first epochs did."""
    flipped = {**data, "val_labels": ["neg" if y == "pos" else "pos" for y in data["val_labels"]]}
    full = _fit(_teacher(tiny_bert_dir, **LEARNS_FAST, patience=None), flipped)
    stopped = _fit(_teacher(tiny_bert_dir, **LEARNS_FAST, patience=2), flipped)
    assert len(full.history_) == 6
    assert 1 <= len(stopped.history_) < 6
    assert stale_epochs(stopped.history_) == 2
    n = len(stopped.history_)
    assert _without_seconds(stopped.history_) == _without_seconds(full.history_[:n])
    assert stopped.best_epoch_ == full.best_epoch_ < n
    np.testing.assert_array_equal(stopped.logits(data["val_texts"]), full.logits(data["val_texts"]))


def test_a_patience_of_zero_runs_every_epoch(tiny_bert_dir: Path, data: dict[str, Any]) -> None:
    flipped = {**data, "val_labels": ["neg" if y == "pos" else "pos" for y in data["val_labels"]]}
    assert len(_fit(_teacher(tiny_bert_dir, epochs=5, patience=0), flipped).history_) == 5
    with pytest.raises(ValueError, match="patience must be an integer >= 0 or None"):
        Teacher(patience=-1)


def test_without_a_validation_set_every_epoch_runs(
    tiny_bert_dir: Path, data: dict[str, Any]
) -> None:
    teacher = _teacher(tiny_bert_dir, patience=1).fit(data["texts"], data["labels"], progress=False)
    assert len(teacher.history_) == FAST["epochs"] == teacher.best_epoch_


# ----------------------------------------------------------------------------- checkpoints
class _Killed(BaseException):
    """Stands for a kill right after a checkpoint was written (not an Exception: nothing
    on the way may catch it)."""


def _interrupt_after(monkeypatch: pytest.MonkeyPatch, epochs: int) -> None:
    real = teacher_training.save_checkpoint

    def save(path: Path, key: str, state: Any) -> None:
        real(path, key, state)
        if state.epoch == epochs:
            raise _Killed

    monkeypatch.setattr(teacher_training, "save_checkpoint", save)


@pytest.mark.parametrize("bucketed", [True, False])
def test_a_fit_interrupted_after_an_epoch_resumes_into_the_uninterrupted_teacher(
    tiny_bert_dir: Path,
    data: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    bucketed: bool,
) -> None:
    options = {"patience": None, "bucket_by_length": bucketed}
    reference = _fit(_teacher(tiny_bert_dir, **options), data)
    checkpoint = tmp_path / "fit.ckpt"
    with monkeypatch.context() as patched:
        _interrupt_after(patched, 2)
        with pytest.raises(_Killed):
            _fit(_teacher(tiny_bert_dir, **options), data, checkpoint=checkpoint)
    state, reason = load_checkpoint(checkpoint, _key(tiny_bert_dir, data, **options))
    assert reason is None and state is not None and state.epoch == 2
    capsys.readouterr()

    resumed = _fit(_teacher(tiny_bert_dir, **options), data, checkpoint=checkpoint)
    assert f"resuming fine-tuning after epoch 2 of {FAST['epochs']}" in capsys.readouterr().err
    assert not checkpoint.exists()  # removed once the fit is done
    # Bit for bit the same weights (the fingerprint hashes them), scores and logits.
    assert resumed.fingerprint == reference.fingerprint
    assert _without_seconds(resumed.history_) == _without_seconds(reference.history_)
    assert resumed.best_epoch_ == reference.best_epoch_
    np.testing.assert_allclose(
        resumed.logits(data["val_texts"]), reference.logits(data["val_texts"]), rtol=0, atol=1e-5
    )


def test_resuming_keeps_an_earlier_best_epoch(
    tiny_bert_dir: Path, data: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The best epoch's weights live in the checkpoint when a later epoch was saved."""
    flipped = {**data, "val_labels": ["neg" if y == "pos" else "pos" for y in data["val_labels"]]}
    settings = {**LEARNS_FAST, "patience": None}
    reference = _fit(_teacher(tiny_bert_dir, **settings), flipped)
    assert reference.best_epoch_ < 5
    checkpoint = tmp_path / "fit.ckpt"
    with monkeypatch.context() as patched:
        _interrupt_after(patched, 5)
        with pytest.raises(_Killed):
            _fit(_teacher(tiny_bert_dir, **settings), flipped, checkpoint=checkpoint)
    resumed = _fit(_teacher(tiny_bert_dir, **settings), flipped, checkpoint=checkpoint)
    assert resumed.best_epoch_ == reference.best_epoch_
    assert resumed.fingerprint == reference.fingerprint


def _key(model_dir: Path, data: dict[str, Any], **options: Any) -> str:
    from textdistill.teacher_checkpoint import checkpoint_key

    teacher = _teacher(model_dir, **options)
    return checkpoint_key(
        teacher.config,
        (data["texts"], data["labels"]),
        (data["val_texts"], data["val_labels"]),
    )


def test_a_checkpoint_of_other_settings_or_a_damaged_one_is_not_resumed(
    tiny_bert_dir: Path,
    data: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reference = _fit(_teacher(tiny_bert_dir), data)
    checkpoint = tmp_path / "fit.ckpt"
    with monkeypatch.context() as patched:
        _interrupt_after(patched, 1)
        with pytest.raises(_Killed):
            _fit(_teacher(tiny_bert_dir, learning_rate=1e-3), data, checkpoint=checkpoint)
    capsys.readouterr()
    assert _fit(_teacher(tiny_bert_dir), data, checkpoint=checkpoint).fingerprint == (
        reference.fingerprint
    )
    err = capsys.readouterr().err
    assert "not resuming fine-tuning: " in err and "written for other data or settings" in err

    checkpoint.write_bytes(b"\x00" * 40)
    assert _fit(_teacher(tiny_bert_dir), data, checkpoint=checkpoint).fingerprint == (
        reference.fingerprint
    )
    assert f"not resuming fine-tuning: {checkpoint} is damaged" in capsys.readouterr().err


def test_the_checkpoint_key_ignores_where_the_fit_runs(
    tiny_bert_dir: Path, data: dict[str, Any]
) -> None:
    base = _key(tiny_bert_dir, data)
    assert _key(tiny_bert_dir, data, num_threads=2, device="cpu", precision="int8") == base
    assert _key(tiny_bert_dir, data, precision="bf16") != base
    assert _key(tiny_bert_dir, data, seed=1) != base
    other = {**data, "labels": list(reversed(data["labels"]))}
    assert _key(tiny_bert_dir, other) != base
    json.dumps(base)

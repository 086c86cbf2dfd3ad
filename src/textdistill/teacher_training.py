"""The fine-tuning loop of :meth:`Teacher.fit <textdistill.teacher.Teacher.fit>`, resumable
after a kill, with two opt-in economies for a CPU.

Fine-tuning is what a user without a GPU pays for first. Two settings spend less, and both
are off by default because neither has been shown to keep the teacher's accuracy (see
:class:`~textdistill.teacher.TeacherConfig`):

* **length-bucketed batches** (``TeacherConfig.bucket_by_length``): each epoch's shuffled
  order is cut into pools of :data:`POOL_BATCHES` batches, each pool is sorted by length and
  cut into batches, and the batches are shuffled. A batch is padded to its longest member,
  and on SST-2 sentences random batches compute 1.9 times the real tokens, pooled ones 1.08
  times (900 sentences, batches of 16); every batch still draws from a random sample of the
  set, a pool, so batches differ from epoch to epoch.
* **early stopping** (``TeacherConfig.patience``): after ``patience`` epochs in a row that
  did not lower the best validation loss, the later epochs are skipped. The loss, not the
  accuracy, decides: on the 100 validation rows a 1,000-label set leaves, accuracy moves in
  steps of a point and measures to about +-4 points, while the loss moves with every row's
  confidence. The kept epoch is still the best by validation score among those that ran.
  ``epochs`` stays the maximum and the learning-rate schedule is the one for ``epochs``, so
  a run that stops early computed exactly the first epochs of the run that does not.
And always:

* **a checkpoint after every epoch** (:mod:`textdistill.teacher_checkpoint`): a rerun after a
  kill continues after the last finished epoch and ends with the same teacher.
"""

from __future__ import annotations

import functools
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textdistill.class_balance import (
    class_counts,
    head_biases,
    is_imbalanced,
    logit_adjustment,
    macro_f1,
    positive_weights,
    start_head_at,
)
from textdistill.pair_encoding import Encoded
from textdistill.teacher_checkpoint import (
    TrainingState,
    checkpoint_key,
    load_checkpoint,
    save_checkpoint,
)

if TYPE_CHECKING:
    import torch

    from textdistill.teacher import Teacher

PLAIN_LOOP: dict[str, Any] = {"bucket_by_length": False, "patience": None}
"""The ``TeacherConfig`` defaults without either economy: shuffled batches and every epoch.
Results measured with that loop pin them, so that they stay reproducible if a default
changes."""

POOL_BATCHES = 16
"""Batches per pool sorted by length, at most; see the module docstring."""

MIN_POOLS = 4
"""Pools an epoch is cut into, at least. A set of 300 sentences is 19 batches of 16: sorted
as one pool, every epoch would cut the same length-homogeneous batches and the batch noise of
shuffled training would be lost. Even so, in a probe on SST-2 (all-MiniLM-L6-v2, 3 epochs,
lr 1e-4, 270 training sentences, judged on the first 400 sentences of sst2_dev, seeds 0 and
1) plain batches measured 0.777 / 0.730, one sorted pool 0.760 / 0.715 and four pools
0.738 / 0.688; with 900 training sentences bucketing measured 0.840 / 0.820 / 0.830 against
0.818 / 0.820 / 0.818 (seeds 0-2). With the default recipe (8 epochs, lr 5e-5) and patience
2, judged on 1,000 SST-2 training sentences no run trained on (runs/dev/loop_probe.py), the
economies measured no worse: 270 training sentences 0.828 / 0.775 against plain 0.828 /
0.763, 900 sentences 0.833 against 0.830 in 95 s instead of 270 s. They stay opt-in until
more seeds and datasets agree."""

VALIDATION_ROWS = 400
"""Validation rows a larger labeled set gives up: accuracy to about +-2 points, not +-4."""


def validation_rows(n_labeled: int) -> int:
    """Labeled rows held out to pick the teacher's epoch (and calibrate the student).

    A tenth of the labeled set, as before, but from 2,000 labels on at least
    :data:`VALIDATION_ROWS`: 100 rows (a tenth of 1,000) measure accuracy to about +-4
    points, which makes "the best epoch" partly noise, while a set of 2,000 to 4,000 labels
    can spare 400 rows and still train on at least 80% of itself. Below 2,000 labels every
    training row counts more than a finer validation score.

    >>> [validation_rows(n) for n in (500, 1000, 2000, 3000, 10000)]
    [50, 100, 400, 400, 1000]
    """
    tenth = round(0.1 * n_labeled)
    if n_labeled >= 5 * VALIDATION_ROWS:
        return max(tenth, VALIDATION_ROWS)
    return tenth


def training_batches(
    lengths: list[int], batch_size: int, generator: torch.Generator, bucketed: bool
) -> list[list[int]]:
    """One epoch's batches of row indices, drawn from ``generator``.

    Unbucketed: consecutive slices of a random permutation. Bucketed: pools of
    :data:`POOL_BATCHES` batches of that permutation (fewer where the epoch would otherwise
    be fewer than :data:`MIN_POOLS` pools) sorted by length (ties in permutation order), cut
    into batches, and the batches shuffled.

    >>> import torch
    >>> lengths = [5, 1, 4, 2, 3, 6, 8, 7] * 4  # 16 batches of 2: 4 pools of 8 rows
    >>> batches = training_batches(lengths, 2, torch.Generator().manual_seed(0), True)
    >>> sorted(i for b in batches for i in b) == list(range(32))
    True
    >>> padding = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    >>> sum(padding) < 16  # against about 43 for random pairs
    True
    """
    import torch

    order = torch.randperm(len(lengths), generator=generator).tolist()
    if not bucketed:
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    n_batches = math.ceil(len(order) / batch_size)
    pool = batch_size * max(1, min(POOL_BATCHES, n_batches // MIN_POOLS))
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        members = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches += [members[i : i + batch_size] for i in range(0, len(members), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def stale_epochs(history: list[dict[str, Any]]) -> int:
    """How many of the last epochs in a row did not lower the best validation loss.

    >>> stale_epochs([{"val_loss": 0.5}, {"val_loss": 0.6}, {"val_loss": 0.55}])
    2
    >>> stale_epochs([{"val_loss": 0.5}, {"val_loss": 0.4}])
    0
    """
    best, stale = math.inf, 0
    for record in history:
        loss = record.get("val_loss")
        if loss is None:
            return 0
        stale = 0 if loss < best else stale + 1
        best = min(best, loss)
    return stale


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split parameters so biases and normalisation weights get no weight decay.

    Decaying LayerNorm gains and biases pulls them towards zero for no regularisation
    benefit; this is the standard BERT fine-tuning recipe. Norm layers are detected by
    class name so RMSNorm/T5LayerNorm-style modules are covered as well.
    """
    no_decay: set[int] = set()
    for module in model.modules():
        if "norm" in type(module).__name__.lower():
            no_decay.update(id(p) for p in module.parameters(recurse=False))
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            no_decay.add(id(p))
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if id(p) not in no_decay], "weight_decay": weight_decay},
        {"params": [p for p in params if id(p) in no_decay], "weight_decay": 0.0},
    ]


def linear_warmup_decay(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR multiplier for update ``s`` (0-based): ramp up to 1, then decay linearly.

    Unlike the HF schedule, neither the first nor the last update gets a learning rate of
    exactly zero, so no step is wasted on tiny datasets.

    >>> factor = linear_warmup_decay(2, 10)
    >>> [round(factor(s), 3) for s in (0, 1, 2, 9)]
    [0.5, 1.0, 1.0, 0.125]
    """

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


def _validation_scores(logits: np.ndarray, targets: np.ndarray) -> tuple[float, float, float]:
    """Accuracy, loss and the score that picks the best epoch, from validation logits.

    Class ids: accuracy, cross-entropy, and accuracy again. A 0/1 label matrix (multilabel):
    subset accuracy, binary cross-entropy per logit, and micro-F1, because with many labels
    an exact match of the whole set is rare and moves in steps too coarse to rank epochs.
    """
    if targets.ndim == 1:
        accuracy = float(np.mean(logits.argmax(axis=1) == targets))
        return accuracy, _cross_entropy(logits, targets), accuracy
    on = logits > 0
    truth = targets > 0.5
    accuracy = float(np.mean(np.all(on == truth, axis=1)))
    z = logits.astype(np.float64)
    bce = float(np.mean(np.maximum(z, 0) - z * targets + np.log1p(np.exp(-np.abs(z)))))
    true_positives = float(np.sum(on & truth))
    denominator = float(on.sum() + truth.sum())
    return accuracy, bce, 2 * true_positives / denominator if denominator else 1.0


def _cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean cross-entropy in float64, computed from logits we already have on the host."""
    z = logits.astype(np.float64)
    z_max = z.max(axis=1, keepdims=True)
    log_norm = z_max[:, 0] + np.log(np.exp(z - z_max).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(z)), targets]))


def _cpu_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def fine_tune(
    teacher: Teacher,
    model: Any,
    texts: list[str],
    labels: list[Any],
    val_data: tuple[list[str], list[Any]] | None,
    progress: bool,
    checkpoint: Path | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Train ``model`` (``teacher``'s new classifier) and return the history and kept epoch.

    With ``checkpoint`` (a file path) the state after every epoch is written there, and a
    checkpoint already there for the same data and settings is resumed from; it is removed
    once the training is over.
    """
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    cfg = teacher.config
    train_ids = teacher._encode(texts)
    y_train = torch.from_numpy(teacher._targets(labels))
    counts = class_counts(y_train.numpy(), len(teacher.classes_))
    start_head_at(model, head_biases(counts, len(texts), teacher.multilabel_))
    loss_of: Callable[..., Any]
    if teacher.multilabel_:
        weights = torch.from_numpy(positive_weights(counts, len(texts))).to(teacher._device)
        loss_of = functools.partial(F.binary_cross_entropy_with_logits, pos_weight=weights)
    else:
        adjustment = torch.from_numpy(logit_adjustment(counts, len(texts)).astype(np.float32))
        shift = adjustment.to(teacher._device)
        loss_of = lambda logits, target: F.cross_entropy(logits + shift, target)  # noqa: E731

    by_macro_f1 = not teacher.multilabel_ and is_imbalanced(counts)
    val_ids = Encoded([])
    y_val = teacher._targets([])
    if val_data is not None:
        val_ids = teacher._encode(val_data[0])
        y_val = teacher._targets(val_data[1])

    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.learning_rate)
    steps_per_epoch = math.ceil(len(train_ids) / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    warmup_steps = math.ceil(cfg.warmup_ratio * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, linear_warmup_decay(warmup_steps, total_steps)
    )
    shuffler = torch.Generator().manual_seed(cfg.seed)
    train_bf16 = teacher._train_in_bf16()
    lengths = [len(row) for row in train_ids.ids]

    history: list[dict[str, Any]] = []
    best_key: tuple[float, float] | None = None
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch = cfg.epochs
    key = checkpoint_key(cfg, (texts, labels), val_data) if checkpoint is not None else ""
    if checkpoint is not None:
        state, reason = load_checkpoint(checkpoint, key)
        if reason is not None:
            print(
                f"textdistill: not resuming fine-tuning: {reason}; starting over", file=sys.stderr
            )
        if state is not None:
            model.load_state_dict(state.model)
            optimizer.load_state_dict(state.optimizer)
            scheduler.load_state_dict(state.scheduler)
            shuffler.set_state(state.shuffler)
            torch.set_rng_state(state.torch_rng)
            if state.cuda_rng is not None and teacher._device.type == "cuda":
                torch.cuda.set_rng_state(state.cuda_rng, teacher._device)
            history, best_epoch, best_key = state.history, state.best_epoch, state.best_key
            best_state = state.best_model if state.best_model is not None else None
            if best_state is None and best_key is not None:
                best_state = _cpu_copy(model)
            print(
                f"textdistill: resuming fine-tuning after epoch {state.epoch} of {cfg.epochs} "
                f"({checkpoint})",
                file=sys.stderr,
            )

    def stopped() -> bool:
        patience = cfg.patience or 0
        return patience > 0 and stale_epochs(history) >= patience

    for epoch in range(len(history) + 1, cfg.epochs + 1):
        if stopped():
            break
        epoch_start = time.perf_counter()
        model.train()
        batches = training_batches(lengths, cfg.batch_size, shuffler, cfg.bucket_by_length)
        loss_sum, seen = 0.0, 0
        bar = tqdm(
            batches,
            desc=f"teacher epoch {epoch}/{cfg.epochs}",
            unit="step",
            file=sys.stderr,
            disable=not progress,
        )
        for idx in bar:
            batch = teacher._collate(train_ids.take(idx))
            target = y_train[idx].to(teacher._device)
            with teacher._autocast(train_bf16):
                logits = model(**batch).logits
            loss = loss_of(logits.float(), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            loss_sum += float(loss.item()) * len(idx)
            seen += len(idx)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", refresh=False)
        bar.close()

        record: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": loss_sum / max(seen, 1),
            "val_accuracy": None,
            "val_loss": None,
        }
        if val_data is not None:
            val_logits = teacher._logits_encoded(
                val_ids, cfg.eval_batch_size, progress=False, desc="validation"
            )
            val_acc, val_loss, val_score = _validation_scores(val_logits, y_val)
            record["val_accuracy"] = val_acc
            record["val_loss"] = val_loss
            if teacher.multilabel_:
                record["val_micro_f1"] = val_score
            else:
                record["val_macro_f1"] = macro_f1(val_logits, y_val)
                if by_macro_f1:
                    val_score = record["val_macro_f1"]
            key_now = (val_score, -val_loss if math.isfinite(val_loss) else -math.inf)
            if best_key is None or key_now > best_key:
                best_key, best_epoch = key_now, epoch
                best_state = _cpu_copy(model)
            if progress:
                print(
                    f"teacher epoch {epoch}: train_loss={record['train_loss']:.4f} "
                    f"val_accuracy={val_acc:.4f} val_loss={val_loss:.4f}",
                    file=sys.stderr,
                )
        record["seconds"] = time.perf_counter() - epoch_start
        history.append(record)
        if checkpoint is not None:
            save_checkpoint(
                checkpoint,
                key,
                TrainingState(
                    epoch=epoch,
                    history=history,
                    best_epoch=best_epoch,
                    best_key=best_key,
                    model=model.state_dict(),
                    best_model=best_state if best_epoch != epoch else None,
                    optimizer=optimizer.state_dict(),
                    scheduler=scheduler.state_dict(),
                    shuffler=shuffler.get_state(),
                    torch_rng=torch.get_rng_state(),
                    cuda_rng=torch.cuda.get_rng_state(teacher._device)
                    if teacher._device.type == "cuda"
                    else None,
                ),
            )

    if val_data is None:
        best_epoch = len(history)
    if best_state is not None and best_epoch != len(history):
        model.load_state_dict(best_state)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return history, best_epoch

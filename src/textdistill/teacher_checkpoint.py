"""The state of a teacher fine-tuning after its last finished epoch, so a killed run resumes.

Fine-tuning is the first long job a CPU user meets (minutes per epoch on two cores, hours on
long reviews), and without this a run killed in epoch 5 of 8 starts again at epoch 1. After
every epoch :meth:`Teacher.fit <textdistill.teacher.Teacher.fit>` writes one file with
everything the next epoch depends on:

* the model's weights, and the best epoch's weights when that was an earlier epoch;
* AdamW's moments and step counts, and the learning-rate schedule's position;
* the random state: the shuffling generator (batch order) and torch's global generator
  (dropout; CUDA's as well on a GPU);
* the history so far and the best epoch with the score that made it best.

Restoring all of it makes the resumed run compute exactly what the uninterrupted one would
have, so it ends with the same teacher (on a CPU: the same weights, bit for bit).

The file is safetensors (tensors) with the rest as JSON in its header: no pickle, like every
other file textdistill reads back. It is written to a temporary file and renamed into place
(:func:`~textdistill.runtime.atomic.write_file_atomically`), so a kill while it is written
leaves the previous epoch's checkpoint. It carries a key, a hash of the training data and of
the settings that shape the training; a checkpoint written for other data or settings is not
resumed from but replaced.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textdistill.runtime.atomic import write_file_atomically

if TYPE_CHECKING:
    import torch

CHECKPOINT_FORMAT = 1
"""Version of the checkpoint layout; a checkpoint of another version is not resumed from."""

_FORMAT_NAME = "textdistill.teacher-checkpoint"
# Settings that do not change what the training computes: where and how fast it runs, and
# the labeling precision (except bf16, which changes the fine-tuning too).
_NOT_SHAPING = ("device", "num_threads")


@dataclass
class TrainingState:
    """Everything the next epoch of a fine-tuning depends on, after ``epoch`` finished ones."""

    epoch: int
    history: list[dict[str, Any]]
    best_epoch: int
    best_key: tuple[float, float] | None
    model: dict[str, torch.Tensor]
    best_model: dict[str, torch.Tensor] | None
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    shuffler: torch.Tensor
    torch_rng: torch.Tensor
    cuda_rng: torch.Tensor | None = None


def checkpoint_key(
    config: Any, train: tuple[list[str], list[Any]], validation: tuple[list[str], list[Any]] | None
) -> str:
    """A hash of the data and the settings that shape the training, for matching a checkpoint.

    ``config`` is the teacher's :class:`~textdistill.teacher.TeacherConfig`; the device and
    thread count are left out (a run may resume on another machine), the labeling precision
    reduced to whether it forces bf16 fine-tuning.
    """
    skipped = (*_NOT_SHAPING, "precision")
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in skipped}
    settings["bf16"] = config.precision == "bf16"
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for texts, labels in (train, validation or ([], [])):
        digest.update(json.dumps([texts, labels]).encode())  # label sets: tuples become lists
    return digest.hexdigest()


def save_checkpoint(path: Path, key: str, state: TrainingState) -> None:
    """Write ``state`` to ``path`` atomically (the previous checkpoint stays until replaced)."""
    import torch
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}

    def put(prefix: str, named: dict[str, torch.Tensor]) -> None:
        for name, tensor in named.items():
            # A copy of each: safetensors refuses tensors that share memory (tied weights).
            tensors[f"{prefix}/{name}"] = tensor.detach().to("cpu", copy=True).contiguous()

    put("model", state.model)
    if state.best_model is not None:
        put("best", state.best_model)
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, values in state.optimizer["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{param_id}/{name}"] = value.detach().to("cpu", copy=True)
            else:
                scalars.setdefault(str(param_id), {})[name] = value
    put("rng", {"shuffler": state.shuffler, "torch": state.torch_rng})
    if state.cuda_rng is not None:
        put("rng", {"cuda": state.cuda_rng})
    header = {
        "format": _FORMAT_NAME,
        "format_version": CHECKPOINT_FORMAT,
        "key": key,
        "epoch": state.epoch,
        "history": state.history,
        "best_epoch": state.best_epoch,
        "best_key": list(state.best_key) if state.best_key is not None else None,
        "optimizer_param_groups": state.optimizer["param_groups"],
        "optimizer_scalars": scalars,
        "scheduler": state.scheduler,
    }
    payload = save(tensors, metadata={"textdistill": json.dumps(header)})
    write_file_atomically(path, payload)


def load_checkpoint(path: Path, key: str) -> tuple[TrainingState | None, str | None]:
    """The state saved at ``path`` for this ``key``, or None and why it cannot be resumed.

    The reason is None when there is simply no checkpoint; otherwise it says what was found
    (another run's checkpoint, a damaged file, another format), for the log.
    """
    if not path.is_file():
        return None, None
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            header = json.loads((handle.metadata() or {})["textdistill"])
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (OSError, SafetensorError, KeyError, ValueError) as error:
        return None, f"{path} is damaged ({type(error).__name__}: {error})"
    if not isinstance(header, dict) or header.get("format") != _FORMAT_NAME:
        return None, f"{path} is not a textdistill teacher checkpoint"
    if header.get("format_version") != CHECKPOINT_FORMAT:
        return None, (
            f"{path} is in checkpoint format {header.get('format_version')!r}, this textdistill "
            f"writes format {CHECKPOINT_FORMAT}"
        )
    if header.get("key") != key:
        return None, f"{path} was written for other data or settings"

    def group(prefix: str) -> dict[str, torch.Tensor]:
        start = len(prefix) + 1
        return {k[start:]: v for k, v in tensors.items() if k.startswith(prefix + "/")}

    state: dict[int, dict[str, Any]] = {}
    for name, tensor in group("optimizer").items():
        param_id, field = name.split("/", 1)
        state.setdefault(int(param_id), {})[field] = tensor
    for param_id, values in header["optimizer_scalars"].items():
        state.setdefault(int(param_id), {}).update(values)
    rng = group("rng")
    best = group("best")
    best_key = header["best_key"]
    return (
        TrainingState(
            epoch=int(header["epoch"]),
            history=list(header["history"]),
            best_epoch=int(header["best_epoch"]),
            best_key=(float(best_key[0]), float(best_key[1])) if best_key is not None else None,
            model=group("model"),
            best_model=best or None,
            optimizer={"state": state, "param_groups": header["optimizer_param_groups"]},
            scheduler=header["scheduler"],
            shuffler=rng["shuffler"],
            torch_rng=rng["torch"],
            cuda_rng=rng.get("cuda"),
        ),
        None,
    )

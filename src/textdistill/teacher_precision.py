"""Which numeric precision and backend the teacher labels in, chosen by measurement.

The candidates besides fp32 torch are bf16 autocast, torch's dynamic int8, and ONNX Runtime
in fp32 and int8 (:mod:`textdistill.teacher_onnx`). Which is fastest depends on the CPU:
bf16 wins where the CPU has AMX and loses badly on one with only AVX2, ONNX Runtime's fused
graph wins on most CPUs without AMX. So nothing is assumed: :func:`select_precision` scores a
check set in fp32, orders the candidates by their speed on a short probe, and takes the first
(fastest) one that keeps the fp32 label on ``min_agreement`` of the check set and is faster
than fp32 over the whole set. Usually the fastest candidate passes and only two full passes
are made; an int8 that loses labels costs one more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from textdistill.extras import install_hint
from textdistill.pair_encoding import Encoded
from textdistill.runtime.pairs import join_pair
from textdistill.teacher_onnx import ONNX_PRECISIONS, OnnxLabeler, onnx_runtime_available

if TYPE_CHECKING:
    from textdistill.teacher import Teacher

LABELING_PRECISIONS = ("fp32", "bf16", "int8", *ONNX_PRECISIONS)
"""What :meth:`Teacher.use_precision <textdistill.teacher.Teacher.use_precision>` accepts."""

PROBE_DOCS = 64
"""Check texts on which the candidates are timed to order them (after one warm-up batch)."""

_WARM_UP_DOCS = 8


def auto_candidates(teacher: Teacher) -> list[str]:
    """The precisions ``"auto"`` tries on this teacher's device (int8 and ONNX: CPU only)."""
    if teacher._device.type != "cpu":
        return ["bf16"]
    return ["bf16", "int8"] + (list(ONNX_PRECISIONS) if onnx_runtime_available() else [])


def build_labeler(teacher: Teacher, precision: str) -> Callable[..., Any]:
    """A forward function (collated batch in, logits tensor out) for ``precision``, made once.

    int8 is torch's dynamic quantization of every ``nn.Linear`` (weights int8 per tensor,
    activations quantized on the fly) on a copy of the model; the ONNX precisions export it.
    """
    if teacher._device.type != "cpu":
        raise ValueError(
            f"{precision} labeling needs a CPU teacher; on a GPU use precision 'bf16' or "
            "'auto', or load the teacher with device='cpu'"
        )
    if precision == "int8":
        import copy
        import warnings

        import torch

        with warnings.catch_warnings():  # torch.ao's deprecation notice, not actionable
            warnings.simplefilter("ignore")
            quantized = torch.ao.quantization.quantize_dynamic(
                copy.deepcopy(teacher._model), {torch.nn.Linear}, dtype=torch.qint8
            )
        return lambda **batch: quantized(**batch).logits
    if not onnx_runtime_available():
        raise ImportError(
            f"{precision} labeling needs onnx and onnxruntime; install them with "
            f"`{install_hint('onnx')}`"
        )
    probe = join_pair("textdistill", "export probe") if teacher.pairs_ else "export probe"
    sample = teacher._collate(teacher._encode([probe]))
    with teacher._threads():
        return OnnxLabeler(
            teacher._model,
            sample,
            int8=precision == "onnx-int8",
            num_threads=teacher._thread_count(),
        )


def _timed(teacher: Teacher, encoded: Encoded) -> tuple[np.ndarray, float]:
    """Logits of pre-tokenized texts and the seconds they took (at least a nanosecond)."""
    started = time.perf_counter()
    logits = teacher._logits_encoded(
        encoded, teacher._inference_batch_size(), progress=False, desc="precision check"
    )
    return logits, max(time.perf_counter() - started, 1e-9)


def _first(encoded: Encoded, n: int) -> Encoded:
    return encoded.take(range(min(n, len(encoded))))


def _agreement(logits: np.ndarray, reference: np.ndarray, multilabel: bool) -> float:
    """Share of rows given the same label (multilabel: the same label set) by both logits."""
    if multilabel:
        return float(np.mean(np.all((logits > 0) == (reference > 0), axis=1)))
    return float(np.mean(logits.argmax(axis=1) == reference.argmax(axis=1)))


def select_precision(
    teacher: Teacher, texts: list[str], wanted: str, min_agreement: float
) -> dict[str, Any]:
    """Measure and switch ``teacher`` to the labeling precision to use; return what was seen.

    ``wanted`` is ``"auto"`` or one precision, which is then used whatever it measured (the
    report still shows it).
    """
    forced = wanted != "auto"
    candidates = auto_candidates(teacher) if not forced else [] if wanted == "fp32" else [wanted]
    teacher.use_precision("fp32")
    with teacher._threads():
        encoded = teacher._encode(texts)
    reference, fp32_seconds = _timed(teacher, encoded)
    report: dict[str, Any] = {
        "requested": wanted,
        "precision": "fp32",
        "check_docs": len(texts),
        "min_agreement": min_agreement,
        "fp32_docs_per_s": len(texts) / fp32_seconds,
        "docs_per_s": len(texts) / fp32_seconds,
        "candidates": [],
    }
    if len(candidates) > 1:
        probe: dict[str, float] = {}
        for candidate in ["fp32", *candidates]:
            teacher.use_precision(candidate)
            _timed(teacher, _first(encoded, _WARM_UP_DOCS))  # kernels and sessions set up
            seconds = _timed(teacher, _first(encoded, PROBE_DOCS))[1]
            probe[candidate] = min(PROBE_DOCS, len(texts)) / seconds
        report["probe_docs_per_s"] = probe
        # Fastest first; one slower than fp32 on the probe is not worth a full pass.
        faster = [c for c in candidates if probe[c] > probe["fp32"]]
        candidates = sorted(faster, key=lambda c: -probe[c])
    for candidate in candidates:
        teacher.use_precision(candidate)
        logits, seconds = _timed(teacher, encoded)
        agreement = _agreement(logits, reference, teacher.multilabel_)
        report["candidates"].append(
            {
                "precision": candidate,
                "docs_per_s": len(texts) / seconds,
                "label_agreement_with_fp32": agreement,
                "max_abs_logit_diff": float(np.max(np.abs(logits - reference))),
            }
        )
        if forced or (agreement >= min_agreement and seconds < fp32_seconds):
            report.update(precision=candidate, docs_per_s=len(texts) / seconds)
            return report
    teacher.use_precision("fp32")
    return report

"""The report: table, Markdown and plot from a metrics dictionary."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from textdistill.report import (
    PLOT_NAME,
    accuracy_throughput_figure,
    per_class_table,
    reliability_figure,
    render_markdown,
    summary_table,
    write_report,
)


def _system(accuracy: float, docs_per_s: float, cores: int = 1) -> dict:
    return {
        "accuracy": accuracy,
        "macro_f1": accuracy - 0.01,
        "agreement_with_teacher": 0.9,
        "docs_per_s": docs_per_s,
        "cores": cores,
        "size_bytes": 2_000_000,
        "per_class": {
            "neg": {"precision": 0.8, "recall": 0.9, "f1": 0.85, "support": 10},
            "pos": {"precision": 0.9, "recall": 0.8, "f1": 0.85, "support": 10},
        },
    }


METRICS: dict[str, Any] = {
    "created": "2026-11-26T00:00:00+00:00",
    "textdistill_version": "0.1.0",
    "machine": {
        "platform": "Linux",
        "cpu_model": "Example(R) CPU",
        "cpu_flags": {"avx2": True, "avx512f": True, "avx512_bf16": False, "amx_tile": False},
        "logical_cpus": 4,
        "cpus_available": 2,
        "ram_bytes": 8 * 2**30,
        "load_average_at_start": [1.5, 1.0, 0.5],
    },
    "versions": {"python": "3.11.7", "numpy": "2.0.0", "torch": "2.5.0", "onnxruntime": None},
    "source": {"commit": "0123456789abcdef" * 2 + "01234567", "dirty": True, "modified": ["a"]},
    "data": {
        "labeled": {"rows": 100, "classes": {"neg": 50, "pos": 50}},
        "unlabeled": {"rows": 500},
        "test": {"rows": 20},
    },
    "notes": ["a note"],
    "systems": {
        "baseline": _system(0.80, 5000),
        "teacher": _system(0.90, 30, 2),
        "student": _system(0.88, 6000),
    },
    "baseline": {"selection": {"penalty": 16.0}},
    "teacher": {
        "model": "tiny",
        "fit_seconds": 12.0,
        "best_epoch": 2,
        "history": [
            {"epoch": 1, "train_loss": 0.6, "val_accuracy": 0.7, "val_loss": 0.5, "seconds": 5.0},
            {"epoch": 2, "train_loss": 0.4, "val_accuracy": None, "val_loss": None, "seconds": 5.0},
        ],
        "labeling": {"n_scored": 500, "n_cached": 0, "docs_per_s": 30.0},
    },
    "student": {
        "selection": {"loss": "mse", "penalty_name": "alpha", "penalty": 1.0, "n_validation": 50},
        "n_features": 1234,
        "fit_seconds": 1.5,
    },
}


def test_tables_list_every_system_and_class() -> None:
    table = summary_table(METRICS["systems"])
    assert table.count("\n") == 4 and "| teacher | 0.9000 |" in table and "1.9 MB" in table
    assert per_class_table(METRICS["systems"]).count("| student |") == 2


def test_write_report_makes_markdown_and_plot(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    write_report(tmp_path, METRICS)
    report = (tmp_path / "report.md").read_text()
    assert "200x faster than the teacher" in report
    assert "- a note" in report and f"({PLOT_NAME})" in report
    assert "| 2 | 0.4000 | - | - | 5 |" in report
    assert (tmp_path / PLOT_NAME).read_bytes()[:4] == b"\x89PNG"
    assert "| student |" in capsys.readouterr().out


def test_throughput_plot_legend_hides_no_point_and_the_axis_names_each_system() -> None:
    """The legend sits outside the axes, inside the figure, clear of every point (the
    teacher's above all); the axis says the baseline, like the student, ran on one core."""
    import matplotlib.pyplot as plt

    for teacher_accuracy in (0.95, 0.70):  # the teacher above and below the students
        systems = copy.deepcopy(METRICS["systems"])
        systems["teacher"]["accuracy"] = teacher_accuracy
        fig = accuracy_throughput_figure(systems)
        try:
            fig.canvas.draw()
            ax = fig.axes[0]
            legend = ax.get_legend().get_window_extent()
            assert legend.x0 > ax.get_window_extent().x1
            assert fig.bbox.contains(legend.x0, legend.y0) and fig.bbox.contains(
                legend.x1, legend.y1
            )
            for row in systems.values():
                point = ax.transData.transform((row["docs_per_s"], row["accuracy"]))
                assert not legend.contains(*point)
            label = ax.get_xlabel()
            assert "baseline and student on one" in label and "students" not in label
        finally:
            plt.close(fig)


def test_reliability_diagram_marks_each_bin_with_its_count() -> None:
    """Every non-empty bin, before and after scaling, of teacher and student, is labeled
    with its number of documents at its point; an empty bin has no point and no label."""
    import matplotlib.pyplot as plt

    def bins(counts: list[int], shift: float) -> list[dict[str, float]]:
        return [
            {
                "count": count,
                "confidence": 0.55 + 0.1 * i + shift,
                "accuracy": 0.5 + 0.1 * i if count else float("nan"),
            }
            for i, count in enumerate(counts)
        ]

    calibration = {
        name: {
            "temperature": 1.5,
            "ece_before": 0.1,
            "ece_after": 0.05,
            "reliability_before": bins([11, 0, 23, 37, 412], 0.0),
            "reliability_after": bins([13, 29, 0, 41, 398], 0.01),
        }
        for name in ("teacher", "student")
    }
    fig = reliability_figure(calibration)
    try:
        for ax in fig.axes:
            marked = {(text.get_text(), *text.xy) for text in ax.texts if hasattr(text, "xy")}
            for when in ("before", "after"):
                for b in calibration["teacher"][f"reliability_{when}"]:
                    if b["count"]:
                        assert (str(b["count"]), b["confidence"], b["accuracy"]) in marked
            assert len(marked) == 8 and "0" not in {text for text, _, _ in marked}
    finally:
        plt.close(fig)


def test_report_names_the_gold_share_and_the_ridge_penalty_apart() -> None:
    """--alpha is the gold share and the ridge penalty is the ridge alpha: the report never
    says "alpha" alone for either, and an mse student (no temperature) shows no T=None."""
    import re

    metrics = copy.deepcopy(METRICS)
    mse = {"loss": "mse", "penalty_name": "alpha", "penalty": 1.0, "n_validation": 50}
    soft = {**mse, "loss": "soft_ce", "penalty_name": "C", "temperature": 2.0}
    metrics["student"] = {
        "kind": "linear",
        "kept_because": "it agrees more with the teacher",
        "candidates": {
            "linear": {
                "kind": "linear",
                "selection": {**mse, "alpha": 0.1, "temperature": None},
                "n_features": 1234,
                "fit_seconds": 1.5,
            },
            "soft": {
                "kind": "linear",
                "selection": {**soft, "alpha": 0.2},
                "n_features": 99,
                "fit_seconds": 0.5,
            },
        },
    }
    report = render_markdown(metrics)
    assert "ridge alpha=1.0, gold share 0.1 (by agreement)" in report
    assert "C=1.0, gold share 0.2, T=2.0" in report
    assert "T=None" not in report
    assert re.search(r"(?<!ridge )\balpha\b", report) is None, report


def _multilabel_system(micro_f1: float, docs_per_s: float | None, cores: int = 1) -> dict:
    return {
        "subset_accuracy": micro_f1 - 0.2,
        "accuracy": micro_f1 - 0.2,
        "micro_precision": micro_f1,
        "micro_recall": micro_f1,
        "micro_f1": micro_f1,
        "macro_f1": micro_f1 - 0.05,
        "hamming_loss": 0.0625,
        "per_class": {
            "sport": {"precision": 0.8, "recall": 0.9, "f1": 0.85, "support": 7},
            "politics": {"precision": 0.5, "recall": 0.25, "f1": 0.333, "support": 4},
        },
        "n": 20,
        "multilabel": True,
        "agreement_with_teacher": 0.75,
        "label_agreement_with_teacher": 0.9375,
        "docs_per_s": docs_per_s,
        "size_bytes": None if docs_per_s is None else 2_000_000,
        "cores": cores,
    }


MULTILABEL: dict[str, Any] = copy.deepcopy(METRICS) | {
    "task": "multilabel",
    "systems": {
        "baseline": _multilabel_system(0.70, 5000),
        "teacher": _multilabel_system(0.85, 40, 2),
        "student": _multilabel_system(0.80, 8000),
    },
}
MULTILABEL["teacher"]["thresholds"] = {"sport": 0.0, "politics": -1.25}
MULTILABEL["student"]["thresholds"] = {"sport": 0.5, "politics": -0.75}


def test_multilabel_summary_has_set_and_label_scores() -> None:
    table = summary_table(MULTILABEL["systems"], "multilabel")
    header = table.splitlines()[0]
    assert header == (
        "| system | subset accuracy | micro-F1 | macro-F1 | Hamming loss | "
        "agreement with teacher (sets) | label agreement | docs/s | cores | size |"
    )
    assert "| student | 0.6000 | 0.8000 | 0.7500 | 0.0625 | 0.7500 | 0.9375 | 8,000 | 1 |" in table


def test_multilabel_report_shows_thresholds_and_micro_f1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_report(tmp_path, MULTILABEL)
    report = (tmp_path / "report.md").read_text()
    assert report == render_markdown(MULTILABEL)
    assert "| teacher | 0.6500 | 0.8500 | 0.8000 | 0.0625 |" in report
    assert "200x faster than the teacher" in report
    assert "on 75.0% of test documents (whole label sets)" in report
    assert "on 93.8% of (document, label) decisions" in report
    assert f"![micro-F1 against throughput]({PLOT_NAME})" in report
    assert "## Per label" in report and "## Per class" not in report
    assert "| system | label | precision | recall | F1 | support | threshold |" in report
    # Each system's row carries its own threshold; the baseline has none.
    assert "| student | politics | 0.500 | 0.250 | 0.333 | 4 | -0.750 |" in report
    assert "| teacher | politics | 0.500 | 0.250 | 0.333 | 4 | -1.250 |" in report
    assert "| baseline | sport | 0.800 | 0.900 | 0.850 | 7 | - |" in report
    assert "chosen per label, each to maximise that label's F1: the held-out validation" in report
    # The rest of the report is the single-label one's.
    assert "- a note" in report and "| 2 | 0.4000 | - | - | 5 |" in report
    assert (tmp_path / PLOT_NAME).read_bytes()[:4] == b"\x89PNG"
    assert "| micro-F1 |" in capsys.readouterr().out


def test_multilabel_report_without_teacher_speed(tmp_path: Path) -> None:
    metrics: dict[str, Any] = copy.deepcopy(MULTILABEL)
    metrics["teacher"]["precomputed"] = True
    metrics["systems"]["teacher"] = _multilabel_system(0.85, None, 2)
    write_report(tmp_path, metrics)
    report = (tmp_path / "report.md").read_text()
    assert "The student agrees with the teacher on 75.0%" in report
    assert "| teacher | 0.6500 | 0.8500 | 0.8000 | 0.0625 | 0.7500 | 0.9375 | n/a | 2 | n/a |" in (
        report
    )
    assert (tmp_path / PLOT_NAME).read_bytes()[:4] == b"\x89PNG"


def test_single_label_tables_are_unchanged_by_task() -> None:
    assert per_class_table(METRICS["systems"]).splitlines()[0] == (
        "| system | class | precision | recall | F1 | support |"
    )
    assert render_markdown(METRICS) == render_markdown(METRICS | {"task": "multiclass"})


def test_an_unknown_task_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown task 'regression'"):
        render_markdown(METRICS | {"task": "regression"})


def test_multilabel_report_says_the_baseline_thresholds_are_out_of_fold() -> None:
    metrics = copy.deepcopy(MULTILABEL)
    metrics["baseline"] |= {"thresholds": {"sport": -0.5, "politics": 0.0}, "threshold_rows": 90}
    metrics["data"]["labeled"]["labels_per_row"] = 1.25
    report = render_markdown(metrics)
    assert "the baseline's (it trains on every labeled row) on out-of-fold logits of 90" in report
    assert "| baseline | sport | 0.800 | 0.900 | 0.850 | 7 | -0.500 |" in report
    assert "1.25 labels per row." in report and "Labels (labeled rows with each): " in report


def test_report_names_the_machine_load_libraries_and_commit() -> None:
    text = render_markdown(METRICS)
    assert (
        "Machine: Example(R) CPU (AVX2, AVX-512, no AVX512-BF16, no AMX; 2 of 4 CPUs, 8 GiB RAM), "
        "load average 1.50 at the start. Python 3.11.7, numpy 2.0.0, torch 2.5.0; "
        "commit 0123456789ab, with edits to 1 file(s)."
    ) in text
    installed = {**METRICS, "source": {"commit": None, "dirty": None, "modified": None}}
    assert "code from an installed package (no git checkout)" in render_markdown(installed)

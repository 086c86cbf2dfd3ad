"""The report: table, Markdown and plot from a metrics dictionary."""

from __future__ import annotations

from pathlib import Path

from textdistill.report import PLOT_NAME, per_class_table, summary_table, write_report


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


METRICS = {
    "created": "2026-11-26T00:00:00+00:00",
    "textdistill_version": "0.1.0",
    "machine": {"platform": "Linux", "cpu_count": 2},
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

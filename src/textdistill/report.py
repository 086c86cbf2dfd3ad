"""The run's report: a table for the terminal, ``report.md`` and a PNG a person reads at a
glance (accuracy against documents per second, log scale)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

SYSTEM_NAMES = {
    "baseline": "baseline (TF-IDF + LR, gold labels only)",
    "teacher": "teacher (fine-tuned transformer)",
    "student": "student (distilled, numpy runtime)",
}
PLOT_NAME = "accuracy_vs_throughput.png"


def _size(n_bytes: float) -> str:
    """Human-readable size.

    >>> _size(1536), _size(90_000_000)
    ('1.5 KB', '85.8 MB')
    """
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def summary_table(systems: dict[str, Any]) -> str:
    """The headline comparison as a Markdown table (it also reads well in a terminal)."""
    lines = [
        "| system | accuracy | macro-F1 | agreement with teacher | docs/s | cores | size |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in systems.items():
        lines.append(
            f"| {name} | {row['accuracy']:.4f} | {row['macro_f1']:.4f} | "
            f"{row['agreement_with_teacher']:.4f} | {row['docs_per_s']:,.0f} | {row['cores']} | "
            f"{_size(row['size_bytes'])} |"
        )
    return "\n".join(lines)


def per_class_table(systems: dict[str, Any]) -> str:
    """Precision, recall, F1 and support per class and system (the article's table)."""
    lines = [
        "| system | class | precision | recall | F1 | support |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in systems.items():
        for label, scores in row["per_class"].items():
            lines.append(
                f"| {name} | {label} | {scores['precision']:.3f} | "
                f"{scores['recall']:.3f} | {scores['f1']:.3f} | {scores['support']} |"
            )
    return "\n".join(lines)


def plot_accuracy_vs_throughput(systems: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"baseline": "tab:gray", "teacher": "tab:red", "student": "tab:blue"}
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for name, row in systems.items():
        ax.scatter(
            row["docs_per_s"],
            row["accuracy"],
            s=90,
            color=colors.get(name, "black"),
            label=SYSTEM_NAMES.get(name, name),
            zorder=3,
        )
        ax.annotate(
            f"{name}\n{row['accuracy']:.3f}",
            (row["docs_per_s"], row["accuracy"]),
            textcoords="offset points",
            xytext=(8, -4),
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_xlabel("documents per second (log scale; teacher on all cores, students on one)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Accuracy against throughput")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    low = min(row["docs_per_s"] for row in systems.values())
    high = max(row["docs_per_s"] for row in systems.values())
    ax.set_xlim(low / 3, high * 10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def render_markdown(metrics: dict[str, Any]) -> str:
    systems = metrics["systems"]
    data = metrics["data"]
    teacher = metrics["teacher"]
    student = metrics["student"]
    labeling = teacher["labeling"]
    speedup = systems["student"]["docs_per_s"] / max(systems["teacher"]["docs_per_s"], 1e-9)
    lines = [
        "# textdistill run report",
        "",
        f"Created {metrics['created']} by textdistill {metrics['textdistill_version']} on "
        f"{metrics['machine']['platform']} ({metrics['machine']['cpu_count']} CPUs).",
        "",
        f"Data: {data['labeled']['rows']} labeled, {data['unlabeled']['rows']} unlabeled, "
        f"{data['test']['rows']} test rows. Classes: "
        + ", ".join(f"{k} ({v})" for k, v in data["labeled"].get("classes", {}).items())
        + ".",
        *(f"- {note}" for note in metrics.get("notes", [])),
        "",
        "## Results on the test set",
        "",
        summary_table(systems),
        "",
        f"The student is {speedup:,.0f}x faster than the teacher and agrees with it on "
        f"{systems['student']['agreement_with_teacher']:.1%} of test documents.",
        "",
        f"![accuracy against throughput]({PLOT_NAME})",
        "",
        "## Per class",
        "",
        per_class_table(systems),
        "",
        "## Cost and choices",
        "",
        f"- Teacher `{teacher['model']}`: fine-tuned in {teacher['fit_seconds']:.0f} s, "
        f"best epoch {teacher['best_epoch']} (of {len(teacher['history'])}).",
        f"- Labeling: {labeling['n_scored']} texts scored this run, {labeling['n_cached']} "
        f"reused from the cache"
        + (f", {labeling['docs_per_s']:.1f} docs/s." if labeling["n_scored"] else "."),
        f"- Student: loss `{student['selection']['loss']}`, "
        f"{student['selection']['penalty_name']}={student['selection']['penalty']} chosen on "
        f"{student['selection']['n_validation']} held-out teacher-labeled rows; "
        f"{student['n_features']:,} features; fit in {student['fit_seconds']:.1f} s.",
        f"- Baseline: C={metrics['baseline']['selection']['penalty']} chosen on held-out "
        "gold labels.",
        "",
        "| epoch | train loss | val accuracy | val loss | seconds |",
        "| ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {h['epoch']} | {h['train_loss']:.4f} | {_fmt(h.get('val_accuracy'))} | "
            f"{_fmt(h.get('val_loss'))} | {h['seconds']:.0f} |"
            for h in teacher["history"]
        ),
        "",
    ]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def write_report(root: Path, metrics: dict[str, Any]) -> None:
    """Write ``report.md`` and the plot into the run directory; print the table."""
    plot_accuracy_vs_throughput(metrics["systems"], root / PLOT_NAME)
    (root / "report.md").write_text(render_markdown(metrics))
    print(summary_table(metrics["systems"]), file=sys.stdout)
    print(f"\nreport: {root / 'report.md'}", file=sys.stdout)

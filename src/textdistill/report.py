"""The run's report: a table for the terminal, ``report.md`` and a PNG a person reads at a
glance (accuracy, or micro-F1 for a multilabel run, against documents per second, log scale).

``metrics["task"]`` says which scores the systems carry: ``"multilabel"`` (a set of labels
per document), or ``"multiclass"``, which is also what a run from before the key is.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SYSTEM_NAMES = {
    "baseline": "baseline (TF-IDF + LR, gold labels only)",
    "teacher": "teacher (fine-tuned transformer)",
    "student": "student (distilled, numpy runtime)",
}
PLOT_NAME = "accuracy_vs_throughput.png"
RELIABILITY_PLOT = "reliability.png"
CASCADE_PLOT = "cascade.png"
# The baseline is timed like the student, on one core; only the teacher gets them all.
THROUGHPUT_LABEL = "docs/s (log scale; teacher on all cores, baseline and student on one)"


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


def _number(value: float | None) -> str:
    """A rate with thousands separators, or n/a where it was not measured."""
    return "n/a" if value is None else f"{value:,.0f}"


Column = tuple[str, Callable[[dict[str, Any]], str]]
"""A summary-table column: its heading, and the cell it shows for a system's row."""


def _score(key: str) -> Callable[[dict[str, Any]], str]:
    """A column cell showing ``row[key]`` to four decimals."""
    return lambda row: f"{row[key]:.4f}"


COST_COLUMNS: tuple[Column, ...] = (
    ("docs/s", lambda row: _number(row["docs_per_s"])),
    ("cores", lambda row: str(row["cores"])),
    ("size", lambda row: _size(row["size_bytes"]) if row["size_bytes"] else "n/a"),
)


@dataclass(frozen=True)
class Task:
    """What the report shows for one kind of run; the rest of the report is shared."""

    columns: tuple[Column, ...]  # the summary table's scores, before COST_COLUMNS
    score: str  # the key of the score plotted against throughput
    score_name: str  # what the plot and the report call that score


TASKS = {
    "multiclass": Task(
        columns=(
            ("accuracy", _score("accuracy")),
            ("macro-F1", _score("macro_f1")),
            ("agreement with teacher", _score("agreement_with_teacher")),
        ),
        score="accuracy",
        score_name="accuracy",
    ),
    "multilabel": Task(
        columns=(
            ("subset accuracy", _score("subset_accuracy")),
            ("micro-F1", _score("micro_f1")),
            ("macro-F1", _score("macro_f1")),
            ("Hamming loss", _score("hamming_loss")),
            ("agreement with teacher (sets)", _score("agreement_with_teacher")),
            ("label agreement", _score("label_agreement_with_teacher")),
        ),
        score="micro_f1",
        score_name="micro-F1",
    ),
}


def task_of(metrics: dict[str, Any]) -> str:
    """The run's task, refusing one the report cannot show rather than mislabelling it.

    >>> task_of({}), task_of({"task": "multilabel"})
    ('multiclass', 'multilabel')
    """
    task: str = metrics.get("task", "multiclass")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASKS)}")
    return task


def _table(columns: Sequence[str], rows: Iterable[Sequence[str]], text_columns: int = 1) -> str:
    """A Markdown table; the columns after the first ``text_columns`` are right-aligned numbers.

    >>> print(_table(["system", "accuracy"], [["student", "0.9"]]))
    | system | accuracy |
    | --- | ---: |
    | student | 0.9 |
    """
    align = ["---"] * text_columns + ["---:"] * (len(columns) - text_columns)
    lines = [f"| {' | '.join(columns)} |", f"| {' | '.join(align)} |"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)


def summary_table(systems: dict[str, Any], task: str = "multiclass") -> str:
    """The headline comparison as a Markdown table (it also reads well in a terminal)."""
    columns = (*TASKS[task].columns, *COST_COLUMNS)
    return _table(
        ["system", *(heading for heading, _ in columns)],
        ([name, *(cell(row) for _, cell in columns)] for name, row in systems.items()),
    )


def per_class_table(
    systems: dict[str, Any], thresholds: dict[str, dict[str, float]] | None = None
) -> str:
    """Precision, recall, F1 and support per class and system (the article's table).

    A multilabel run passes each system's decision thresholds by label: the rows are then
    labels, and each shows the threshold its system predicts the label at ("-" for a system
    without thresholds).
    """
    columns = ["system", "class", "precision", "recall", "F1", "support"]
    if thresholds is not None:
        columns[1:] = ["label", *columns[2:], "threshold"]
    rows = []
    for name, row in systems.items():
        for label, scores in row["per_class"].items():
            cells = [
                name,
                label,
                f"{scores['precision']:.3f}",
                f"{scores['recall']:.3f}",
                f"{scores['f1']:.3f}",
                str(scores["support"]),
            ]
            if thresholds is not None:
                cells.append(_fmt(thresholds.get(name, {}).get(label), ".3f"))
            rows.append(cells)
    return _table(columns, rows, text_columns=2)


def plot_accuracy_vs_throughput(
    systems: dict[str, Any], path: Path, task: str = "multiclass"
) -> None:
    """Each system's score (accuracy, or micro-F1 for multilabel) against its speed."""
    import matplotlib.pyplot as plt

    fig = accuracy_throughput_figure(systems, task)
    fig.savefig(path)
    plt.close(fig)


def accuracy_throughput_figure(systems: dict[str, Any], task: str = "multiclass") -> Figure:
    """The figure of :func:`plot_accuracy_vs_throughput`. The legend sits outside the axes:
    wherever it goes inside, some run puts a point under it (the slow teacher, left, at the
    top or the bottom of the score range)."""
    score, score_name = TASKS[task].score, TASKS[task].score_name
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"baseline": "tab:gray", "teacher": "tab:red", "student": "tab:blue"}
    fig, ax = plt.subplots(figsize=(7.6, 4.2), dpi=120)
    systems = {name: row for name, row in systems.items() if row["docs_per_s"] is not None}
    for name, row in systems.items():
        ax.scatter(
            row["docs_per_s"],
            row[score],
            s=90,
            color=colors.get(name, "black"),
            label=SYSTEM_NAMES.get(name, name),
            zorder=3,
        )
        ax.annotate(
            f"{name}\n{row[score]:.3f}",
            (row["docs_per_s"], row[score]),
            textcoords="offset points",
            xytext=(8, -4),
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_xlabel(THROUGHPUT_LABEL)
    ax.set_ylabel(f"test {score_name}")
    ax.set_title(f"{score_name[:1].upper()}{score_name[1:]} against throughput")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    low = min(row["docs_per_s"] for row in systems.values())
    high = max(row["docs_per_s"] for row in systems.values())
    ax.set_xlim(low / 3, high * 10)
    fig.tight_layout()
    return fig


def _precision_lines(check: dict[str, Any] | None) -> list[str]:
    """The labeling precision chosen, and what each faster candidate measured."""
    if not check:
        return []
    seen = "; ".join(
        f"{c['precision']}: {c['docs_per_s']:.1f} docs/s, "
        f"{c['label_agreement_with_fp32']:.1%} label agreement"
        for c in check["candidates"]
    )
    return [
        f"- Labeling precision: **{check['precision']}** (fp32: {check['fp32_docs_per_s']:.1f} "
        f"docs/s on {check['check_docs']} check texts"
        + (f"; {seen}; a faster precision needs {check['min_agreement']:.1%})" if seen else ")")
    ]


FLAG_NAMES = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX512-BF16", "amx_tile": "AMX"}


def _provenance_sentence(metrics: dict[str, Any]) -> str:
    """The machine, its load, the libraries and the code behind every number in the report:
    a teacher's docs/s depends on the CPU's extensions and on what else was running."""
    machine, versions, source = metrics["machine"], metrics["versions"], metrics["source"]
    flags = machine["cpu_flags"]
    extensions = ", ".join(
        name if flags.get(flag) else f"no {name}" for flag, name in FLAG_NAMES.items()
    )
    ram = f", {machine['ram_bytes'] / 2**30:.0f} GiB RAM" if machine["ram_bytes"] else ""
    load = machine["load_average_at_start"]
    libraries = ", ".join(f"{name} {v}" for name, v in versions.items() if v and name != "python")
    if source["commit"] is None:
        code = "code from an installed package (no git checkout)"
    else:
        edited = f", with edits to {len(source['modified'])} file(s)" if source["dirty"] else ""
        code = f"commit {source['commit'][:12]}{edited}"
    return (
        f"Machine: {machine['cpu_model'] or machine['platform']} ({extensions}; "
        f"{machine['cpus_available']} of {machine['logical_cpus']} CPUs{ram}), "
        f"load average {load[0]:.2f} at the start. Python {versions['python']}, {libraries}; "
        f"{code}."
    )


def render_markdown(metrics: dict[str, Any]) -> str:
    task = task_of(metrics)
    multilabel = task == "multilabel"
    systems = metrics["systems"]
    data = metrics["data"]
    teacher = metrics["teacher"]
    student = metrics["student"]
    labeling = teacher["labeling"]
    teacher_rate = systems["teacher"]["docs_per_s"]
    lines = [
        "# textdistill run report",
        "",
        f"Created {metrics['created']} by textdistill {metrics['textdistill_version']}. "
        + _provenance_sentence(metrics),
        "",
        f"Data: {data['labeled']['rows']} labeled, {data['unlabeled']['rows']} unlabeled, "
        f"{data['test']['rows']} test rows. "
        + ("Labels (labeled rows with each): " if multilabel else "Classes: ")
        + ", ".join(f"{k} ({v})" for k, v in data["labeled"].get("classes", {}).items())
        + (
            f"; {data['labeled']['labels_per_row']:.2f} labels per row."
            if "labels_per_row" in data["labeled"]
            else "."
        ),
        *(f"- {note}" for note in metrics.get("notes", [])),
        "",
        "## Results on the test set",
        "",
        summary_table(systems, task),
        "",
        (
            f"The student is {systems['student']['docs_per_s'] / teacher_rate:,.0f}x faster "
            "than the teacher and agrees"
            if teacher_rate
            else "The student agrees"
        )
        + f" with the teacher on {systems['student']['agreement_with_teacher']:.1%} of test "
        "documents"
        + (
            f" (whole label sets) and on {systems['student']['label_agreement_with_teacher']:.1%}"
            " of (document, label) decisions."
            if multilabel
            else "."
        ),
        "",
        f"![{TASKS[task].score_name} against throughput]({PLOT_NAME})",
        "",
        *_per_class_section(metrics, multilabel),
        "",
        "## Cost and choices",
        "",
        (
            f"- Teacher: {teacher['model']}; no model here, so no teacher speed, calibration "
            "or cascade."
            if teacher.get("precomputed")
            else f"- Teacher `{teacher['model']}`: fine-tuned in {teacher['fit_seconds']:.0f} s, "
            f"best epoch {teacher['best_epoch']} (of {len(teacher['history'])})."
        ),
        f"- Labeling: {labeling['n_scored']} texts scored this run, {labeling['n_cached']} "
        f"reused from the cache"
        + (
            f", {labeling['docs_per_s']:.1f} docs/s in {labeling.get('seconds', 0):.0f} s."
            if labeling["n_scored"]
            else "."
        ),
        *_precision_lines(labeling.get("precision")),
        *_student_lines(student),
        f"- Baseline: C={metrics['baseline']['selection']['penalty']} chosen on held-out "
        "gold labels.",
        *_augment_line(metrics.get("augment", {})),
        "",
        *_epoch_table(teacher["history"]),
    ]
    if "calibration" in metrics:
        lines += _reliability_sections(metrics)
    return "\n".join(lines)


def _epoch_table(history: list[dict[str, Any]]) -> list[str]:
    """The teacher's fine-tuning epochs; nothing for a teacher that was not fine-tuned here
    (precomputed logits), rather than a table of headers only."""
    if not history:
        return []
    return [
        "| epoch | train loss | val accuracy | val loss | seconds |",
        "| ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {h['epoch']} | {_fmt(h.get('train_loss'))} | {_fmt(h.get('val_accuracy'))} | "
            f"{_fmt(h.get('val_loss'))} | {_fmt(h.get('seconds'), '.0f')} |"
            for h in history
        ),
        "",
    ]


# A selection's "alpha" is the ridge penalty; the report says so, because "alpha" alone
# reads as the gold share (--alpha), which the report calls "gold share".
PENALTY_NAMES = {"alpha": "ridge alpha"}


def _student_line(facts: dict[str, Any]) -> str:
    """What one student chose on its held-out rows, in a sentence."""
    selection = facts["selection"]
    kind = facts.get("kind", "linear")
    if kind == "blend":
        return (
            f"blend: {selection['dense_weight']} x the dense student's logits + "
            f"{1 - selection['dense_weight']} x the linear student's (weight chosen among "
            f"0.25, 0.5, 0.75 on the {selection['n_validation']} held-out rows, agreement "
            f"{facts['validation_agreement']:.4f}); one dense artifact"
        )
    if kind == "dense":
        chosen = (
            f"loss `{selection['loss']}`, {selection['epochs']} epochs (lowest held-out MSE), "
            f"{selection['n_word_vectors']:,} word vectors started from the "
            f"{selection['word_vectors']}"
        )
    elif kind == "neural":
        chosen = f"loss `{selection.get('loss', 'mse')}`, best epoch {selection.get('epoch')}"
    else:
        gold_share = selection.get("alpha")
        penalty_name = PENALTY_NAMES.get(selection["penalty_name"], selection["penalty_name"])
        chosen = (
            f"loss `{selection['loss']}`, {penalty_name}={selection['penalty']}"
            + (f", gold share {gold_share}" if gold_share is not None else "")
            + (
                f", T={selection['temperature']}"
                if selection.get("temperature") is not None
                else ""
            )
            + f" (by {selection.get('select_by', 'agreement')})"
        )
    agreement = facts.get("validation_agreement")
    return (
        f"{kind}: {chosen}, on {selection['n_validation']} held-out teacher-labeled rows"
        + (f" (agreement {agreement:.4f})" if agreement is not None else "")
        + f", then refit on all rows; {facts['n_features']:,} features; fit in "
        f"{facts['fit_seconds']:.1f} s"
    )


def _student_lines(student: dict[str, Any]) -> list[str]:
    """The kept student, why, and every student tried beside it on the test set."""
    candidates = student.get("candidates", {})
    if len(candidates) <= 1:
        return [f"- Student: {_student_line(student)}."]
    lines = [f"- Student kept: {student['kind']}, because {student['kept_because']}."]
    lines += [f"  - {_student_line(facts)}." for facts in candidates.values()]
    tested = student.get("test", {})
    if tested:
        lines += [
            "",
            "| student tried | held-out agreement | test accuracy | test agreement with teacher "
            "| docs/s (1 core) | size |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            *(
                f"| {kind}{' (kept)' if kind == student['kind'] else ''} | "
                f"{_fmt(candidates[kind].get('validation_agreement'))} | "
                f"{_fmt(row['accuracy'])} | {_fmt(row['agreement_with_teacher'])} | "
                f"{row['docs_per_s']:,.0f} | {_size(row['size_bytes'])} |"
                for kind, row in tested.items()
            ),
            "",
        ]
    return lines


def _reliability_sections(metrics: dict[str, Any]) -> list[str]:
    """Calibration, cascade and fidelity: what to trust the student with."""
    calibration, cascade, fidelity = (
        metrics["calibration"],
        metrics["cascade"],
        metrics["fidelity"],
    )
    chosen, reach = cascade["operating_point"], cascade["reaches_teacher_accuracy"]
    timed, timed_reach = (
        cascade["measured"]["operating_point"],
        cascade["measured"]["reaches_teacher_accuracy"],
    )
    lines = [
        "## Calibration",
        "",
        f"Temperatures fitted on {calibration['n_calibration']} held-out labels (the "
        "teacher's validation split, which the student never trains on); expected "
        "calibration error (ECE, 10 bins) and negative log-likelihood on the test set.",
        "",
        "| model | temperature | ECE before | ECE after | NLL before | NLL after |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in ("teacher", "student"):
        c = calibration[name]
        lines.append(
            f"| {name} | {c['temperature']:.3f} | {c['ece_before']:.4f} | "
            f"{c['ece_after']:.4f} | {c['nll_before']:.4f} | {c['nll_after']:.4f} |"
        )
    lines += [
        "",
        f"![reliability diagram]({RELIABILITY_PLOT})",
        "",
        "## Cascade: the student answers, the teacher settles the hard cases",
        "",
        f"Documents whose calibrated student confidence is below the threshold go to the "
        f"teacher. The threshold, {cascade['threshold']:.3f}, is where the cascade's expected "
        "accuracy (from both models' calibrated confidences on the unlabeled set) reaches the "
        "teacher's; "
        f"on the test set it defers {chosen['fraction_deferred']:.1%} of documents for "
        f"accuracy {chosen['accuracy']:.4f} at {timed['docs_per_s']:,.0f} docs/s, measured: "
        f"the cascade artifact timed on the {timed['n_docs']} test texts "
        f"({timed['docs_per_s'] / cascade['teacher_docs_per_s']:,.1f}x the teacher alone, "
        f"{cascade['teacher_accuracy']:.4f} at {cascade['teacher_docs_per_s']:,.0f} docs/s; "
        f"student alone: {cascade['student_accuracy']:.4f}).",
        "",
        f"Deferring {reach['fraction_deferred']:.0%} reaches the teacher's accuracy "
        f"({reach['accuracy']:.4f}) on the test set; timed there, the cascade runs at "
        f"{timed_reach['docs_per_s']:,.0f} docs/s, "
        f"{timed_reach['docs_per_s'] / cascade['teacher_docs_per_s']:,.1f}x the teacher alone. "
        "The artifact is `cascade/` (use it with `textdistill predict --cascade`).",
        "",
        "The docs/s of the table and of the plot's curve are computed, not measured: "
        "1 / (1/student + deferred/teacher), from the student's and the teacher's measured "
        "rates.",
        "",
        "| deferred | threshold | accuracy | agreement with teacher | docs/s (computed) |",
        "| ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {row['fraction_deferred']:.0%} | {min(row['threshold'], 1.0):.3f} | "
            f"{row['accuracy']:.4f} | {row['agreement_with_teacher']:.4f} | "
            f"{row['docs_per_s']:,.0f} |"
            for row in cascade["curve"][::10]
        ),
        "",
        f"![cascade curve]({CASCADE_PLOT})",
        "",
        "## Where the student and the teacher disagree",
        "",
        f"{fidelity['n_disagreements']} test documents. Agreement by student confidence:",
        "",
        "| student confidence | documents | agreement | student accuracy | teacher accuracy |",
        "| --- | ---: | ---: | ---: | ---: |",
        *(
            f"| {b['low']:.2f}-{b['high']:.2f} | {b['count']} | {_fmt(b['agreement'])} | "
            f"{_fmt(b['student_accuracy'])} | {_fmt(b['teacher_accuracy'])} |"
            for b in fidelity["by_confidence"]
        ),
        "",
        "The disagreements the student was surest of:",
        "",
        "| gold | student (confidence) | teacher (confidence) | text |",
        "| --- | --- | --- | --- |",
        *(
            f"| {e['gold']} | {e['student']} ({e['student_confidence']:.2f}) | {e['teacher']} "
            f"({e['teacher_confidence']:.2f}) | {_cell(e['text'])} |"
            for e in fidelity["disagreements"]
        ),
        "",
    ]
    return lines


def _per_class_section(metrics: dict[str, Any], multilabel: bool) -> list[str]:
    """The per-class table; a multilabel run's is per label and shows each system's
    thresholds, since they, as much as the model, decide which labels it predicts."""
    systems = metrics["systems"]
    if not multilabel:
        return ["## Per class", "", per_class_table(systems)]
    thresholds = {
        name: metrics[name]["thresholds"]
        for name in systems
        if "thresholds" in metrics.get(name, {})
    }
    folds = metrics.get("baseline", {}).get("threshold_rows")
    where = (
        f"the teacher's and the student's on the held-out validation split, the baseline's "
        f"(it trains on every labeled row) on out-of-fold logits of {folds} labeled rows"
        if folds
        else "the held-out validation split"
    )
    return [
        "## Per label",
        "",
        "Decision thresholds (logit scale; 0.0 is probability 0.5) were chosen per label, "
        f"each to maximise that label's F1: {where}. A label with too few positive rows "
        'there keeps 0.0 ("-": none tuned).',
        "",
        per_class_table(systems, thresholds),
    ]


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")[:200]


def plot_reliability(calibration: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = reliability_figure(calibration)
    fig.savefig(path)
    plt.close(fig)


def reliability_figure(calibration: dict[str, Any]) -> Figure:
    """The reliability diagrams of teacher and student, each bin marked with its count: a
    bin of 3 documents far from the diagonal says little, one of 300 says a lot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), dpi=120, sharey=True)
    for ax, name in zip(axes, ("teacher", "student"), strict=True):
        report = calibration[name]
        ax.plot([0, 1], [0, 1], color="gray", linestyle=":", label="perfect")
        for when, style, offset in (("before", "o--", -10), ("after", "s-", 6)):
            bins = [b for b in report[f"reliability_{when}"] if b["count"]]
            (line,) = ax.plot(
                [b["confidence"] for b in bins],
                [b["accuracy"] for b in bins],
                style,
                label=f"{when} (ECE {report[f'ece_{when}']:.3f}; documents per bin)",
            )
            for b in bins:
                ax.annotate(
                    str(b["count"]),
                    (b["confidence"], b["accuracy"]),
                    textcoords="offset points",
                    xytext=(0, offset),
                    ha="center",
                    fontsize=6,
                    color=line.get_color(),
                )
        ax.set_title(f"{name} (T = {report['temperature']:.2f})")
        ax.set_xlabel("confidence")
        ax.set_xlim(0.45, 1.01)
        ax.set_ylim(top=1.1)  # room for the counts of bins at accuracy 1
        ax.grid(alpha=0.3)
        # Low accuracy at high confidence: the corner no well-trained model's bins reach.
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("accuracy")
    fig.suptitle("Reliability on the test set, before and after temperature scaling")
    fig.tight_layout()
    return fig


def plot_cascade(cascade: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = cascade["curve"]
    fractions = [100 * row["fraction_deferred"] for row in curve]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    ax.plot(
        fractions, [row["accuracy"] for row in curve], color="tab:blue", label="cascade accuracy"
    )
    ax.axhline(cascade["teacher_accuracy"], color="tab:red", linestyle="--", label="teacher alone")
    chosen = cascade["operating_point"]
    ax.scatter(
        [100 * chosen["fraction_deferred"]],
        [chosen["accuracy"]],
        color="black",
        zorder=3,
        label="chosen threshold",
    )
    ax.set_xlabel("documents deferred to the teacher (%)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    speed = ax.twinx()
    speed.plot(
        fractions,
        [row["docs_per_s"] for row in curve],
        color="tab:green",
        linestyle=":",
        label="docs/s, computed from the two rates",
    )
    timed = list(cascade["measured"].values())
    speed.scatter(
        [100 * row["fraction_deferred"] for row in timed],
        [row["docs_per_s"] for row in timed],
        color="tab:green",
        marker="D",
        zorder=3,
        label="docs/s, measured (cascade timed)",
    )
    speed.set_yscale("log")
    speed.set_ylabel("documents per second (log)")
    lines, labels = ax.get_legend_handles_labels()
    more_lines, more_labels = speed.get_legend_handles_labels()
    ax.legend(lines + more_lines, labels + more_labels, fontsize=8, loc="center right")
    ax.set_title("Cascade: accuracy and speed against deferral")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _fmt(value: float | None, spec: str = ".4f") -> str:
    """A number in ``spec``, or "-" where there is none (e.g. no training loss)."""
    return "-" if value is None else format(value, spec)


def write_report(root: Path, metrics: dict[str, Any]) -> None:
    """Write ``report.md`` and the plot into the run directory; print the table."""
    task = task_of(metrics)
    plot_accuracy_vs_throughput(metrics["systems"], root / PLOT_NAME, task)
    if "calibration" in metrics:
        plot_reliability(metrics["calibration"], root / RELIABILITY_PLOT)
        plot_cascade(metrics["cascade"], root / CASCADE_PLOT)
    (root / "report.md").write_text(render_markdown(metrics))
    print(summary_table(metrics["systems"], task), file=sys.stdout)
    print(f"\nreport: {root / 'report.md'}", file=sys.stdout)


def _augment_line(augment: dict[str, Any]) -> list[str]:
    """A line on Tang et al.'s augmentation, when the run used it."""
    if not augment.get("n_iter"):
        return []
    return [
        f"- Augmentation: {augment['n_synthetic']:,} synthetic texts ({augment['n_iter']} per "
        f"labeled text; tagger `{augment['tagger_used']}`, mask `{augment['mask_token']}`), "
        "labeled by the teacher for the student."
    ]

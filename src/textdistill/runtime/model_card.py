"""The model card: ``README.md`` in every artifact, for the person who finds it later.

An artifact pushed to the Hugging Face Hub is read by people who did not train it, and the
Hub shows a repository's ``README.md`` as its front page. So every artifact gets one when it
is saved, written from its manifest (task, labels, kind, features, training metadata, how to
load it), and ``textdistill run`` rewrites it once the test set has been scored, adding the
metrics, the speed and the machine they were measured on.

The card is documentation, not part of the model: the manifest does not list it, so editing
it never invalidates the artifact's checksums, and loading never reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CARD = "README.md"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _metadata_lines(metadata: dict[str, Any]) -> list[str]:
    lines = []
    for key, value in metadata.items():
        if isinstance(value, dict | list):
            continue  # search histories and the like: in model.json, not on a front page
        lines.append(f"- {key.replace('_', ' ')}: {_number(value)}")
    return lines


def _evaluation_lines(evaluation: dict[str, Any]) -> list[str]:
    """The systems table of a run's metrics (accuracy, agreement, docs/s, size)."""
    systems = evaluation.get("systems", {})
    columns = [
        ("accuracy", "accuracy"),
        ("macro_f1", "macro-F1"),
        ("micro_f1", "micro-F1"),
        ("agreement_with_teacher", "agreement with teacher"),
        ("docs_per_s", "docs/s"),
        ("size_bytes", "bytes"),
    ]
    present = [(k, name) for k, name in columns if any(k in s for s in systems.values())]
    lines = [
        "| system | " + " | ".join(name for _, name in present) + " |",
        "| --- |" + " ---: |" * len(present),
    ]
    for system, scores in systems.items():
        cells = [_number(scores[k]) if scores.get(k) is not None else "–" for k, _ in present]
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    data = evaluation.get("data", {})
    sizes = ", ".join(
        f"{name.replace('_', ' ')} {_number(summary['rows'])}"
        for name, summary in data.items()
        if isinstance(summary, dict) and isinstance(summary.get("rows"), int)
    )
    if sizes:
        lines += ["", f"Rows: {sizes}."]
    teacher = evaluation.get("config", {}).get("teacher", {})
    if evaluation.get("config", {}).get("teacher_logits"):
        lines += ["", "Teacher: logits computed elsewhere (`--teacher-logits`)."]
    elif teacher:
        lines += [
            "",
            f"Teacher: `{teacher.get('model')}` ({teacher.get('method')}, "
            f"{teacher.get('max_length')} tokens, {teacher.get('epochs')} epochs).",
        ]
    machine = evaluation.get("machine")
    if isinstance(machine, dict) and machine:
        flags = machine.get("cpu_flags") or {}
        described = ", ".join(
            str(part)
            for part in (
                machine.get("cpu_model"),
                f"{machine.get('cpus_available')} CPUs available",
                "flags " + " ".join(f for f, on in flags.items() if on) if flags else None,
                f"load average {machine['load_average_at_start'][0]:.1f} at the start"
                if machine.get("load_average_at_start")
                else None,
            )
            if part
        )
        lines += ["", f"Measured on: {described}."]
    lines += [
        "",
        "The student's docs/s is one CPU core; the teacher's uses every core it was given.",
    ]
    return lines


def render(
    manifest: dict[str, Any],
    evaluation: dict[str, Any] | None = None,
    repo: str | None = None,
) -> str:
    """The card's Markdown from an artifact's manifest and, after a run, its metrics.

    ``repo`` (``OWNER/NAME[@REVISION]``) is the Hub repository the card is pushed to: its
    usage lines then name it, ready to copy. A card saved on disk cannot know where it will
    be pushed, so without ``repo`` they show ``OWNER/NAME`` and say to replace it.
    """
    labels = [str(label) for label in manifest.get("labels", [])]
    task = manifest.get("task", "multiclass")
    kind = manifest.get("kind", "?")
    metadata = manifest.get("metadata") or {}
    shown = ", ".join(f"`{label}`" for label in labels[:50])
    if len(labels) > 50:
        shown += f" and {len(labels) - 50:,} more"
    what = (
        "any number of labels per text (multilabel)"
        if task == "multilabel"
        else "one label per text"
    )
    where = repo or "OWNER/NAME"
    placeholder = (
        []
        if repo
        else [
            "Replace `OWNER/NAME` with the repository's name (or the whole `hf://` reference with",
            "a local folder).",
        ]
    )
    lines = [
        "---",
        "library_name: textdistill",
        "pipeline_tag: text-classification",
        "tags: [textdistill, distillation, text-classification]",
        "---",
        "",
        f"# textdistill {kind} student",
        "",
        f"A text classifier distilled by [textdistill]: {what}, {len(labels)} labels: "
        f"{shown}. It runs with numpy alone (no torch, no pickle).",
        "",
        "## How to use it",
        "",
        "```bash",
        'pip install "textdistill[hub]"',
        f'textdistill predict hf://{where} "a text to label"',
        "```",
        "",
        "```python",
        "import textdistill",
        "",
        f'model = textdistill.load("hf://{where}")',
        'model.predict(["a text to label"])',
        "```",
        "",
        *placeholder,
        "Loading checks the sha256 of every file against `model.json`.",
        "",
        "## Intended use",
        "",
        "Labeling text like the text it was trained on, where a transformer would be too slow",
        "or too costly. It learned from a teacher model's answers and a few human labels: it is",
        "no better than they were, and on text unlike its training data it can be wrong with",
        "confidence. Check it on labeled data of your own before relying on it.",
        "",
        "## Training",
        "",
    ]
    training = _metadata_lines(metadata)
    lines += training or ["No training metadata was recorded in `model.json`."]
    if evaluation is not None:
        lines += ["", "## Evaluation on the held-out test set", "", *_evaluation_lines(evaluation)]
    lines += ["", "[textdistill]: https://pypi.org/project/textdistill/", ""]
    return "\n".join(lines)


def write_card(path: str | Path, evaluation: dict[str, Any] | None = None) -> None:
    """(Re)write ``README.md`` in the artifact directory ``path`` from its verified manifest
    and, when given, a run's metrics (``metrics.json``: systems, data, config, machine)."""
    from textdistill.runtime.artifact import read_manifest
    from textdistill.runtime.atomic import write_file_atomically

    card = render(read_manifest(path), evaluation)
    write_file_atomically(Path(path) / CARD, card.encode("utf-8"))

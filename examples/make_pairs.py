"""Write the sentence-pair example: two support messages per row, and whether the second
reports the same problem as the first (``duplicate``: the same customer writing again) or not
(``different``).

The messages are composed from the phrase lists of ``make_tickets.py`` (no real data, no
personal data): an opening and a problem, sometimes a detail. The two sides of a duplicate
pair report the same problem with the same order number, amount or device, each with its own
opening and detail. The other pairs report the same problem about another order (or amount,
or device), two problems of the same class, or two problems of different classes. As for the
tickets, the labeled file uses only the first nine problems of each class, and the test and
unlabeled files use all fourteen. One gold label in twenty is the wrong one, as in data
labeled by people (the teacher's logits follow the phrase lists, not the gold labels).

``ticket_pairs_logits.csv`` holds the logits of an imaginary teacher that knows the phrase
lists, one row per pair of every file (columns ``text`` and ``text_pair``, then one per class),
so that ``run --teacher-logits`` needs no teacher model and takes seconds. Run from the
repository root to rewrite the files (seeded, so the output is the same every time):

    python examples/make_pairs.py
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from make_tickets import DETAILS, FILLS, OPENINGS, PROBLEMS

HERE = Path(__file__).resolve().parent
FILES = (  # name, pairs, problems per class, first id
    ("ticket_pairs.csv", 200, 9, 1),
    ("ticket_pairs_test.csv", 100, None, 1001),
    ("ticket_pairs_unlabeled.csv", 300, None, 2001),
)
# The share of gold labels that are wrong, as some are in data labeled by people.
NOISE = 0.05
# The imaginary teacher's logits (different, duplicate) for each kind of pair.
LOGITS = {
    "same problem": (-2, 3),
    "other order": (1, 0),
    "same class": (1, -1),
    "other class": (3, -2),
}


def values(rng: random.Random) -> dict[str, str]:
    """What fills a problem's placeholders: an order number, amounts, a device..."""
    return {
        "order": f"#{rng.randint(10000, 99999)}",
        **{key: rng.choice(options) for key, options in FILLS.items()},
    }


def side(label: str, problem: int, fills: dict[str, str], rng: random.Random) -> str:
    """One message reporting problem ``problem`` of class ``label``."""
    text = PROBLEMS[label][problem].format(**fills)
    text = text[0].upper() + text[1:] + rng.choice([".", ".", "!", "?"])
    detail = rng.choice(DETAILS).format(**values(rng)) if rng.random() < 0.3 else ""
    return " ".join(part for part in (rng.choice(OPENINGS), text, detail) if part)


def pair(rng: random.Random, n_problems: int | None) -> tuple[str, str, str]:
    """Two messages and the kind of pair they are (a key of ``LOGITS``)."""
    labels = sorted(PROBLEMS)
    label = rng.choice(labels)
    first = rng.randrange(len(PROBLEMS[label][:n_problems]))
    template = PROBLEMS[label][first]
    kinds = ["same problem", "same problem", "other order", "same class", "other class"]
    kind = rng.choice(kinds if "{" in template else [k for k in kinds if k != "other order"])
    fills, other_fills = values(rng), values(rng)
    if kind == "same problem":
        other_label, second, other_fills = label, first, fills
    elif kind == "other order":
        other_label, second = label, first
        while template.format(**other_fills) == template.format(**fills):
            other_fills = values(rng)
    elif kind == "same class":
        other_label = label
        second = rng.choice([i for i in range(len(PROBLEMS[label][:n_problems])) if i != first])
    else:
        other_label = rng.choice([name for name in labels if name != label])
        second = rng.randrange(len(PROBLEMS[other_label][:n_problems]))
    return side(label, first, fills, rng), side(other_label, second, other_fills, rng), kind


def main() -> None:
    rng = random.Random(15)
    seen: set[tuple[str, str]] = set()
    kinds: dict[tuple[str, str], str] = {}
    for name, n_pairs, n_problems, start in FILES:
        rows = []
        while len(rows) < n_pairs:
            text_a, text_b, kind = pair(rng, n_problems)
            if (text_a, text_b) in seen or text_a == text_b:
                continue
            seen.add((text_a, text_b))
            kinds[text_a, text_b] = kind
            duplicate = kind == "same problem"
            if rng.random() < NOISE:  # the person who labeled it read it the other way
                duplicate = not duplicate
            rows.append((text_a, text_b, "duplicate" if duplicate else "different"))
        with (HERE / name).open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "text_a", "text_b", "label"])
            for i, (text_a, text_b, label) in enumerate(rows, start=start):
                writer.writerow([f"p{i}", text_a, text_b, label])
    with (HERE / "ticket_pairs_logits.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "text_pair", "different", "duplicate"])
        for (text_a, text_b), kind in kinds.items():
            writer.writerow([text_a, text_b, *LOGITS[kind]])


if __name__ == "__main__":
    main()

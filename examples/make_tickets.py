"""Write the example data set: support messages to a made-up online shop, in four classes.

The messages are composed from phrase lists written for this example (no real data, no
personal data): an opening, a problem of one class, sometimes a detail, and a closing. A
tenth of them also mention a second topic in passing, so the classes overlap a little, as
real tickets do. The labeled file uses only the first nine problems of each class; the
test and unlabeled files use all fourteen, so the test set holds phrasings that no labeled
row has, which the teacher, having read a lot of English, may still place, and which the
student then learns from the teacher's labels on the unlabeled file. Run from the
repository root to rewrite the files (seeded, so the output is the same every time):

    python examples/make_tickets.py
"""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent

OPENINGS = [
    "Hi,", "Hello,", "Hello there,", "Good morning,", "Hi team,", "Dear support,", "Hey,",
    "Quick question:", "Sorry to bother you,", "Not happy:", "Urgent:", "", "", "",
]  # fmt: skip

PROBLEMS = {
    "billing": [
        "I was charged twice for order {order}",
        "my card was billed {amount} but the order shows {amount2}",
        "the refund for order {order} has not reached my account",
        "I cancelled my subscription and still got charged this month",
        "the invoice for order {order} has the wrong VAT number",
        "my discount code was not applied at checkout",
        "I need a copy of the invoice for my last purchase",
        "why is there a {amount} fee on my statement",
        "the payment failed but the money left my bank account",
        "can I pay the rest of the order by bank transfer",
        "you refunded {amount} instead of {amount2}",
        "my gift card balance disappeared after paying",
        "please change the billing address on my invoices",
        "I was charged in dollars instead of euros",
    ],
    "delivery": [
        "order {order} still has not arrived",
        "the parcel was left at the wrong address",
        "tracking for order {order} has not moved in {days} days",
        "the courier says the package was delivered but nothing came",
        "the box arrived crushed and the item is broken",
        "can I change the delivery address for order {order}",
        "only half of my order was in the parcel",
        "the delivery slot was missed and nobody called",
        "how long does shipping to {country} take",
        "I received someone else's package",
        "my parcel is stuck at customs in {country}",
        "the express delivery took {days} days",
        "can the courier leave the parcel with a neighbour",
        "the tracking link for order {order} does not work",
    ],
    "technical": [
        "the app crashes when I open my basket",
        "the website shows an error 500 at checkout",
        "the search page never finishes loading",
        "I get a blank screen after pressing pay",
        "the app will not install on my {device}",
        "product pictures do not load on my {device}",
        "the checkout button does nothing in {browser}",
        "notifications stopped working after the last update",
        "the page keeps logging me out every few minutes",
        "the size filter shows the wrong products",
        "the app freezes on the order history screen",
        "your site is very slow in {browser} today",
        "the barcode scanner in the app does not start",
        "dark mode makes the prices unreadable",
    ],
    "account": [
        "I cannot log in to my account",
        "the password reset email never arrives",
        "please delete my account and my data",
        "how do I change the email address on my account",
        "my account was locked after too many attempts",
        "someone else seems to be using my account",
        "I want to merge my two accounts",
        "the two-factor code is not accepted",
        "how can I unsubscribe from the newsletter",
        "I forgot which email I used to sign up",
        "my loyalty points are missing from my profile",
        "please update the phone number on my account",
        "I never created an account but I get your emails",
        "the verification link says it has expired",
    ],
}

DETAILS = [
    "This is the second time I write about it.", "I have attached a screenshot.",
    "It happened yesterday evening.", "My order number is {order}.", "Please help quickly.",
    "I have been a customer for years.", "Nobody answered my last email.",
    "It is for a birthday on Friday.", "I tried again this morning, same thing.",
    "Your chat bot could not help.", "", "", "", "",
]  # fmt: skip

ASIDES = {
    "billing": "and by the way I was also charged for shipping",
    "delivery": "and the parcel is late as well",
    "technical": "and the app was crashing too",
    "account": "and I also had trouble logging in",
}

CLOSINGS = [
    "Thanks.", "Thank you!", "Regards, Sam", "Best, Alex", "Cheers", "Thanks in advance.",
    "Kind regards", "", "", "",
]  # fmt: skip

FILLS = {
    "amount": ["12.99", "49.00", "5.50", "120.00", "23.40", "9.99"],
    "amount2": ["10.99", "45.00", "3.50", "100.00", "21.40", "7.99"],
    "days": ["five", "six", "ten", "twelve", "3", "8"],
    "country": ["Spain", "Canada", "Norway", "Japan", "Ireland", "Brazil"],
    "device": ["iPhone", "Android phone", "tablet", "old Samsung", "Pixel"],
    "browser": ["Firefox", "Safari", "Chrome", "Edge"],
}


def _fill(template: str, rng: random.Random) -> str:
    values = {key: rng.choice(options) for key, options in FILLS.items()}
    values["order"] = f"#{rng.randint(10000, 99999)}"
    return template.format(**values)


def message(label: str, rng: random.Random, n_problems: int | None = None) -> str:
    """One message of class ``label`` from its first ``n_problems`` problems (all: None)."""
    problem = _fill(rng.choice(PROBLEMS[label][:n_problems]), rng)
    if rng.random() < 0.1:
        problem += " " + ASIDES[rng.choice([k for k in ASIDES if k != label])]
    problem = problem[0].upper() + problem[1:] + rng.choice([".", ".", "!", "?"])
    parts = [rng.choice(OPENINGS), problem, _fill(rng.choice(DETAILS), rng), rng.choice(CLOSINGS)]
    return " ".join(part for part in parts if part)


def main() -> None:
    rng = random.Random(15)
    labels = sorted(PROBLEMS)
    for name, per_class, n_problems in (("tickets.csv", 100, 9), ("tickets_test.csv", 50, None)):
        rows = [
            (label, message(label, rng, n_problems)) for label in labels for _ in range(per_class)
        ]
        rng.shuffle(rows)
        with (HERE / name).open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "text", "label"])
            start = 1 if name == "tickets.csv" else 1001
            for i, (label, text) in enumerate(rows, start=start):
                writer.writerow([f"t{i}", text, label])
    unlabeled = [message(rng.choice(labels), rng) for _ in range(1500)]
    (HERE / "tickets_unlabeled.txt").write_text("\n".join(unlabeled) + "\n", encoding="utf-8")
    write_topic_files(labels)


def topics(text: str) -> tuple[str, ...]:
    """The classes a message is about, read back from the phrase lists it was composed of:
    its problem's class, then the class of its aside if it has one (none for a message
    with no problem in it)."""
    found = [label for label, pattern in PATTERNS.items() if pattern.search(text)]
    found += [label for label, aside in ASIDES.items() if aside in text]
    return tuple(found)


# Each problem as a pattern over messages: its placeholders stand for any words.
PATTERNS = {
    label: re.compile(
        "|".join(".+?".join(map(re.escape, re.split(r"\{\w+\}", p))) for p in problems),
        re.IGNORECASE,
    )
    for label, problems in PROBLEMS.items()
}


def write_topic_files(labels: list[str]) -> None:
    """Two files for the pages that need more than the tutorial's: the labeled messages
    tagged with every class they are about, and 20 messages about nothing with no tags
    (``tickets_multilabel.csv``, for ``--multilabel``); and the logits of an imaginary
    teacher that knows the phrase lists, one row per text of every file (``tickets_logits.csv``,
    for ``run --teacher-logits``: 4 for a message's problem, 1 for its aside, -2 otherwise),
    so that those runs need no teacher model and take seconds."""
    with (HERE / "tickets.csv").open(newline="", encoding="utf-8") as f:
        labeled = [row["text"] for row in csv.DictReader(f)]
    with (HERE / "tickets_test.csv").open(newline="", encoding="utf-8") as f:
        test = [row["text"] for row in csv.DictReader(f)]
    unlabeled = (HERE / "tickets_unlabeled.txt").read_text(encoding="utf-8").splitlines()
    rng = random.Random(16)
    about_nothing = [
        " ".join(p for p in (rng.choice(OPENINGS), _fill(rng.choice(DETAILS[:10]), rng)) if p)
        for _ in range(20)
    ]
    with (HERE / "tickets_logits.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", *labels])
        for text in dict.fromkeys(unlabeled + test + labeled + about_nothing):
            about = topics(text)
            writer.writerow(
                [text, *(4 if about[:1] == (c,) else 1 if c in about else -2 for c in labels)]
            )
    rows = [(text, topics(text)) for text in labeled] + [(text, ()) for text in about_nothing]
    rng.shuffle(rows)
    with (HERE / "tickets_multilabel.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", "tags"])
        for i, (text, tags) in enumerate(rows, start=1):
            writer.writerow([f"m{i}", text, "|".join(tags)])


if __name__ == "__main__":
    main()

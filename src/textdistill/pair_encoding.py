"""Token ids (and token types) of what a transformer teacher reads: single texts or pairs.

A pair goes through the tokenizer's own pair encoding: ``[CLS] a [SEP] b [SEP]`` with token
types 0 then 1 for BERT-like models, ``<s> a </s></s> b </s>`` for RoBERTa, whatever the
tokenizer writes otherwise. Its special tokens and token types are read off the tokenizer's
encoding of the whole pair, never assumed.

Truncation shares the budget between the sides the way the tokenizer's ``longest_first``
does (the longer side gives up tokens first, see :func:`share_budget`), and within each side
the teacher's strategy (head, tail, head+tail) picks which tokens stay: a long answer paired
with a short question loses words from the answer only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from textdistill.runtime.pairs import split_pairs


@dataclass(frozen=True)
class Encoded:
    """Unpadded token ids per text, and their token types where the model takes them."""

    ids: list[list[int]]
    token_types: list[list[int]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: Sequence[int]) -> Encoded:
        """The rows at ``rows``, in that order (a batch)."""
        types = None if self.token_types is None else [self.token_types[i] for i in rows]
        return Encoded([self.ids[i] for i in rows], types)


def share_budget(first: int, second: int, budget: int) -> tuple[int, int]:
    """How many content tokens each side keeps when both must fit in ``budget``.

    Longest first: a side shorter than half the budget keeps all its tokens and the other
    side gets the rest; two long sides split it evenly (the odd token to the first side).

    >>> share_budget(3, 100, 10), share_budget(100, 3, 10), share_budget(40, 30, 11)
    ((3, 7), (7, 3), (6, 5))
    >>> share_budget(4, 5, 10)
    (4, 5)
    """
    budget = max(budget, 0)
    if first + second <= budget:
        return first, second
    half = budget // 2
    if first <= half:
        return first, budget - first
    if second <= half:
        return budget - second, second
    return budget - half, half


def uses_token_types(tokenizer: Any) -> bool:
    """Whether the model reads token types (BERT does; RoBERTa and DistilBERT reject them)."""
    return "token_type_ids" in getattr(tokenizer, "model_input_names", ())


def encode_pairs(
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    keep: Any,
    strategy: str,
) -> Encoded:
    """The pair encoding of joined pairs (:mod:`textdistill.runtime.pairs`), truncated to
    ``max_length`` tokens. ``keep(ids, budget, strategy)`` picks a side's kept tokens.

    Each pair is encoded whole, untruncated, by the tokenizer; the two sides' content tokens
    are located in it from the sides encoded alone, and what lies around them (special
    tokens) is kept as the tokenizer wrote it. A tokenizer whose pair encoding does not
    contain the sides' own tokens (one that merges across the boundary) is truncated by the
    tokenizer itself instead, longest first.
    """
    firsts, seconds = split_pairs(texts)
    if not texts:
        return Encoded([], [] if uses_token_types(tokenizer) else None)
    plain = {"add_special_tokens": False, "return_attention_mask": False}
    alone_a = tokenizer(firsts, **plain)["input_ids"]
    alone_b = tokenizer(seconds, **plain)["input_ids"]
    whole = tokenizer(
        firsts, seconds, truncation=False, return_attention_mask=False, return_token_type_ids=True
    )
    with_types = uses_token_types(tokenizer)
    ids_out: list[list[int]] = []
    types_out: list[list[int]] = []
    for row, (ids, types) in enumerate(
        zip(whole["input_ids"], whole["token_type_ids"], strict=True)
    ):
        a, b = list(alone_a[row]), list(alone_b[row])
        layout = _layout(list(ids), a, b)
        if layout is None:
            fallback = tokenizer(
                firsts[row],
                seconds[row],
                truncation="longest_first",
                max_length=max_length,
                return_attention_mask=False,
                return_token_type_ids=True,
            )
            ids_out.append(list(fallback["input_ids"]))
            types_out.append(list(fallback["token_type_ids"]))
            continue
        start_a, start_b = layout
        ids, types = list(ids), list(types)
        n_special = len(ids) - len(a) - len(b)
        keep_a, keep_b = share_budget(len(a), len(b), max_length - n_special)
        kept_a, kept_b = keep(a, keep_a, strategy), keep(b, keep_b, strategy)
        end_a, end_b = start_a + len(a), start_b + len(b)
        pieces = [
            (ids[:start_a], types[:start_a]),
            (kept_a, [types[start_a]] * len(kept_a) if a else []),
            (ids[end_a:start_b], types[end_a:start_b]),
            (kept_b, [types[start_b]] * len(kept_b) if b else []),
            (ids[end_b:], types[end_b:]),
        ]
        ids_out.append([i for piece, _ in pieces for i in piece])
        types_out.append([t for _, piece in pieces for t in piece])
    return Encoded(ids_out, types_out if with_types else None)


def _layout(ids: list[int], a: list[int], b: list[int]) -> tuple[int, int] | None:
    """Where side ``a`` and, after it, side ``b`` start in the pair's ids, or None when the
    pair encoding does not hold them as they were encoded alone."""
    for start_a in range(len(ids) - len(a) - len(b) + 1):
        if ids[start_a : start_a + len(a)] != a:
            continue
        for start_b in range(len(ids) - len(b), start_a + len(a) - 1, -1):
            if ids[start_b : start_b + len(b)] == b:
                return start_a, start_b
        return None
    return None

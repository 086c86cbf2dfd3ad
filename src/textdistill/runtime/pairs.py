"""A sentence pair as one string, so that every stage that keys, caches or moves texts takes
pairs unchanged.

A pair ``(text, text_pair)`` travels as ``text + PAIR_SEPARATOR + text_pair``: the logits
store, content hashes, deduplication, splits and run caches all key on strings already, and
the joined string keys on the ordered pair (``(a, b)`` and ``(b, a)`` are two inputs, as they
are to a teacher reading ``[CLS] a [SEP] b [SEP]``). Only the components that *read* a text
split it again: the teacher (the tokenizer's own pair encoding), the pair featurizer, the
augmenter and the interfaces that show a pair to people.

The separator is the ASCII unit separator (U+001F), a control character that text files do
not carry; a side that contains it is refused where pairs are made (:func:`join_pair`), so a
joined string always splits back into exactly the two sides it was made of.
"""

from __future__ import annotations

from collections.abc import Sequence

PAIR_SEPARATOR = "\x1f"


class PairError(ValueError):
    """A text that should be a pair is not one, or a side cannot be part of one."""


def join_pair(text: str, text_pair: str) -> str:
    """The one string that stands for the ordered pair.

    >>> join_pair("A man sleeps.", "Nobody sleeps.").split(PAIR_SEPARATOR)
    ['A man sleeps.', 'Nobody sleeps.']
    >>> join_pair("a\\x1fb", "c")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    textdistill.runtime.pairs.PairError: the first text of a pair contains ... U+001F, ...
    """
    for side, value in (("first", text), ("second", text_pair)):
        if PAIR_SEPARATOR in value:
            raise PairError(
                f"the {side} text of a pair contains the control character U+001F, which "
                "separates the sides of a pair; remove it"
            )
    return text + PAIR_SEPARATOR + text_pair


def is_pair(text: str) -> bool:
    """Whether ``text`` is a joined pair."""
    return PAIR_SEPARATOR in text


def split_pair(text: str) -> tuple[str, str]:
    """The two sides of a joined pair.

    >>> split_pair(join_pair("a", "b"))
    ('a', 'b')
    """
    first, separator, second = text.partition(PAIR_SEPARATOR)
    if not separator or PAIR_SEPARATOR in second:
        raise PairError(f"expected a text pair (two sides), found {_shown(text)}")
    return first, second


def split_pairs(texts: Sequence[str]) -> tuple[list[str], list[str]]:
    """The first and the second sides of joined pairs; a row that is no pair is named."""
    firsts, seconds = [], []
    for row, text in enumerate(texts, start=1):
        first, separator, second = text.partition(PAIR_SEPARATOR)
        if not separator or PAIR_SEPARATOR in second:
            raise PairError(
                f"text {row}: expected a text pair (this model compares two texts), found "
                f"{_shown(text)}"
            )
        firsts.append(first)
        seconds.append(second)
    return firsts, seconds


def as_pair_texts(items: Sequence[str | Sequence[str]]) -> list[str]:
    """Joined pairs from ``(text, text_pair)`` tuples (or already joined strings), so the
    Python API takes pairs as people hold them: ``model.predict([("a", "b")])``."""
    out = []
    for row, item in enumerate(items, start=1):
        if isinstance(item, str):
            out.append(item)
        elif len(item) == 2 and all(isinstance(side, str) for side in item):
            try:
                out.append(join_pair(item[0], item[1]))
            except PairError as error:
                raise PairError(f"text {row}: {error}") from None
        else:
            raise PairError(f"text {row}: expected a (text, text_pair) pair of strings")
    return out


def are_pairs(texts: Sequence[str], what: str = "texts") -> bool:
    """True when every text is a pair, False when none is; a mix is an error, because a
    model reads either single texts or pairs, never both."""
    flags = {is_pair(text) for text in texts}
    if len(flags) > 1:
        first = next(i for i, text in enumerate(texts, start=1) if not is_pair(text))
        raise PairError(
            f"{what}: some rows are text pairs and others single texts (row {first} is a single "
            "text); a model reads one kind"
        )
    return flags == {True}


def shown(text: str) -> str:
    """A pair as people read it, ``first ⟂ second`` (single texts unchanged), for reports."""
    return text.replace(PAIR_SEPARATOR, " ⟂ ")


def _shown(text: str, width: int = 80) -> str:
    value = repr(text)
    return value if len(value) <= width else value[: width - 3] + "..."

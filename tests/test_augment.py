"""Tang et al.'s augmentation: masking, same-class replacement, n-gram sampling, no repeats."""

from __future__ import annotations

from pathlib import Path

import pytest

from textdistill.augment import augment, mask_token_of, resolve_tagger, shape_tagger, spacy_tagger

SENTENCES = [
    "a gorgeous , moving film that quietly works",
    "the plot is clumsy and the acting painfully wooden",
    "it runs long , but the ending is wonderfully earned",
    "a tedious mess",
]


def test_synthetic_texts_are_new_distinct_and_reproducible() -> None:
    out = augment(SENTENCES, n_iter=20, random_state=3)
    assert len(out) == len(set(out)) and not set(out) & set(SENTENCES)
    assert 0 < len(out) <= 20 * len(SENTENCES)
    assert out == augment(SENTENCES, n_iter=20, random_state=3)
    assert out != augment(SENTENCES, n_iter=20, random_state=4)
    assert any("[MASK]" in text for text in out)


def test_masking_uses_the_given_token() -> None:
    assert augment(
        ["one two three"], n_iter=5, p_mask=1.0, p_pos=0.0, p_ng=0.0, mask_token="<mask>"
    ) == ["<mask> <mask> <mask>"]


def test_replacements_keep_the_word_class() -> None:
    words = [sentence.split() for sentence in SENTENCES]
    classes = {
        w: c
        for ws, cs in zip(words, shape_tagger(words), strict=True)
        for w, c in zip(ws, cs, strict=True)
    }
    out = augment(SENTENCES, n_iter=30, p_mask=0.0, p_pos=1.0, p_ng=0.0, random_state=0)
    assert out
    by_length = {len(ws): ws for ws in words}
    for text in out:
        new = text.split()
        original = by_length[len(new)]  # no n-gram sampling: same length as its source
        assert [classes[w] for w in new] == [classes[w] for w in original]


def test_ngram_sampling_keeps_a_contiguous_piece_of_one_to_five_words() -> None:
    out = augment(SENTENCES, n_iter=40, p_mask=0.0, p_pos=0.0, p_ng=1.0, random_state=1)
    assert out
    for text in out:
        assert 1 <= len(text.split()) <= 5
        assert any(f" {text} " in f" {sentence} " for sentence in SENTENCES)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="n_iter"):
        augment(SENTENCES, n_iter=0)
    with pytest.raises(ValueError, match="p_mask"):
        augment(SENTENCES, p_mask=0.7, p_pos=0.7)
    with pytest.raises(ValueError, match="tagger must be"):
        resolve_tagger("nltk")


def test_the_mask_token_comes_from_the_teachers_tokenizer(tiny_bert_dir: Path) -> None:
    assert mask_token_of(tiny_bert_dir) == "[MASK]"


def test_spacy_tags_parts_of_speech_when_installed() -> None:
    tagger = spacy_tagger()
    if tagger is None:
        pytest.skip("spaCy or its English pipeline is not installed (the augment extra)")
    assert resolve_tagger("auto")[0] == "spacy"
    tags = tagger([["a", "gorgeous", "film"], ["it", "runs"]])
    assert tags == [["DT", "JJ", "NN"], ["PRP", "VBZ"]]


def test_each_synthetic_text_names_the_text_it_was_made_from() -> None:
    from textdistill.augment import augment_with_sources

    texts, sources = augment_with_sources(
        SENTENCES, n_iter=10, p_mask=0.3, p_pos=0.0, p_ng=0.0, random_state=2
    )
    assert texts == augment(SENTENCES, n_iter=10, p_mask=0.3, p_pos=0.0, p_ng=0.0, random_state=2)
    assert len(sources) == len(texts) and sorted(sources) == sources  # input order
    for text, source in zip(texts, sources, strict=True):
        original = SENTENCES[source].split()
        words = text.split()
        # masking only: the same length, each word either kept or masked
        assert len(words) == len(original)
        assert all(w in (o, "[MASK]") for w, o in zip(words, original, strict=True))

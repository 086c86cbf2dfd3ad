"""Scripts written without spaces (Chinese, Japanese, Thai, Korean) are read as characters,
identically by the C fast path and pure Python, while English features stay what they were."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textdistill.runtime import ArtifactError, LinearModel, load
from textdistill.runtime import artifact as artifact_module
from textdistill.runtime import featurizer as featurizer_module
from textdistill.runtime.featurizer import (
    TOKEN_PATTERN,
    UNSPACED_BLOCKS,
    UNSPACED_MARKS,
    NgramFeaturizer,
    choose_unspaced,
    tokenize,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
needs_c = pytest.mark.skipif(
    featurizer_module._ngrams is None, reason="the C extension is not built"
)

CHINESE = [
    "这个手机很好用，电池也耐用！",
    "质量太差了，再也不买了。",
    "物流很快，包装完好，好评",
    "屏幕有点暗，但是价格便宜",
    "iPhone很好，就是贵了点？",
    "客服态度很差，退货也麻烦",
]
JAPANESE = [
    "この映画はとても面白かったです。",
    "サービスが悪くて、二度と行きません！",
    "ラーメンが美味しい店々を巡る",
    "ガ\u3099ギグ",  # a voicing mark combined with the letter before it
]
THAI = ["สวัสดีครับ อาหารอร่อยมาก", "บริการแย่มาก ไม่ประทับใจ", "ราคา 500 บาท คุ้มค่า"]
KOREAN = ["이 영화 정말 재미있어요", "배송이 너무 느려요 ㅠㅠ"]
MIXED = [
    "Great phone 很好用 5星 don't 买",
    "<br />东京タワー Tokyo tower 東京!",
    "a'很 很'a 好'好 o'neil's",
    "葛\U000e0100城 𠮷野家 ",  # an ideographic variation sequence, an ideograph beyond the BMP
    "",
    "!!??",
    "。、「」",  # CJK punctuation only: no token
]
REAL = CHINESE + JAPANESE + THAI + KOREAN + MIXED


def test_each_letter_of_those_scripts_is_a_token() -> None:
    # The full-width "！" is punctuation, not the "!" token.
    assert tokenize("这个手机很好用，电池也耐用！", "characters") == list(
        "这个手机很好用电池也耐用"
    )
    assert tokenize("质量太差了，再也不买了。", "characters") == list("质量太差了再也不买了")
    assert tokenize("iPhone很好，就是贵了点？", "characters") == ["iphone", *"很好就是贵了点"]
    # Thai vowel and tone marks stay with their consonant; digits of other scripts stay words.
    assert tokenize("สวัสดีครับ ราคา 500", "characters") == [
        "ส", "วั", "ส", "ดี", "ค", "รั", "บ", "ร", "า", "ค", "า", "500",
    ]  # fmt: skip
    assert tokenize("ガ\u3099ギグ", "characters") == ["ガ\u3099", "ギ", "グ"]
    assert tokenize("東京タワー Tokyo!", "characters") == [*"東京タワー", "tokyo", "!"]
    assert tokenize("a'很 很'a o'neil's", "characters") == ["a", "很", "很", "a", "o'neil's"]
    assert tokenize("이 영화", "characters") == ["이", "영", "화"]
    # The word mode is the word regex, unchanged: a whole clause is one "word".
    assert tokenize("质量太差了，再也不买了。") == ["质量太差了", "再也不买了"]


def test_character_unigrams_and_bigrams_are_the_features() -> None:
    featurizer = NgramFeaturizer.fit(["很好", "不好"], max_n=2, min_df=1)
    assert featurizer.unspaced == "characters"
    assert sorted(featurizer.vocabulary) == sorted(["好", "很", "不", "很 好", "不 好"])
    ids, counts, _ = featurizer.counts(["很好很好，不好"])
    found = {featurizer.vocabulary[i]: int(c) for i, c in zip(ids, counts, strict=True)}
    # Bigrams join neighbouring characters across punctuation, as word bigrams do.
    assert found == {"很": 2, "好": 3, "不": 1, "很 好": 2, "不 好": 1}  # "好 不" is unseen


def test_the_mode_is_chosen_from_the_scripts_of_the_training_texts() -> None:
    english = ["a good film", "a bad plot"] * 100
    assert choose_unspaced(CHINESE) == "characters"
    assert choose_unspaced(THAI) == "characters"
    assert choose_unspaced(JAPANESE) == "characters"
    assert choose_unspaced(english) == "words"
    assert choose_unspaced([*english, "很好"]) == "words"  # one stray text in 201
    assert choose_unspaced([*english, *CHINESE]) == "characters"  # 3% of the texts
    assert choose_unspaced(["。、「」 ok"] * 10) == "words"  # punctuation is not a letter
    assert choose_unspaced([]) == "words"
    assert NgramFeaturizer.fit(iter(CHINESE), min_df=1).unspaced == "characters"  # a generator
    assert NgramFeaturizer.fit(CHINESE, min_df=1, unspaced="words").unspaced == "words"
    with pytest.raises(ValueError, match="unspaced must be one of"):
        NgramFeaturizer.fit(CHINESE, min_df=1, unspaced="chars")


def _counts_both(featurizer: NgramFeaturizer, texts: list[str]) -> tuple[tuple, tuple]:
    fast = featurizer.counts(texts)
    assert isinstance(featurizer._fast, featurizer_module._ngrams.Vocabulary), "C path inactive"
    return fast, featurizer._counts_python(texts)


def _assert_same(fast: tuple, slow: tuple) -> None:
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)


@needs_c
@pytest.mark.parametrize("char_ngrams", [None, (1, 2), (2, 4)])
@pytest.mark.parametrize("max_n", [1, 2, 3])
def test_c_and_python_agree_on_real_chinese_japanese_thai_korean(
    max_n: int, char_ngrams: tuple[int, int] | None
) -> None:
    featurizer = NgramFeaturizer.fit(REAL, max_n=max_n, char_ngrams=char_ngrams, min_df=1)
    assert featurizer.unspaced == "characters"
    _assert_same(*_counts_both(featurizer, REAL))


@needs_c
@pytest.mark.parametrize("char_ngrams", [None, (1, 3)])
def test_the_fused_c_path_gives_the_same_rows_and_logits(
    char_ngrams: tuple[int, int] | None,
) -> None:
    featurizer = NgramFeaturizer.fit(REAL, max_n=2, char_ngrams=char_ngrams, min_df=1)
    reference = NgramFeaturizer.from_spec(featurizer.spec(), featurizer.vocabulary, featurizer.idf)
    reference._fast = False  # the pure-Python path
    rng = np.random.default_rng(0)
    coef = rng.normal(size=(featurizer.n_features, 3)).astype(np.float32)
    bias = rng.normal(size=3).astype(np.float32)
    fast, slow = featurizer.transform(REAL), reference.transform(REAL)
    assert featurizer.uses_c_path and not reference.uses_c_path
    for name in ("data", "indices", "indptr"):
        assert getattr(fast, name).tobytes() == getattr(slow, name).tobytes(), name
    expected = slow.matmul(coef) + bias
    assert featurizer.linear(REAL, coef, bias).tobytes() == expected.tobytes()


def _edges(ranges: tuple[tuple[int, int], ...]) -> list[str]:
    """The code points at and just beyond each end of ``ranges``: where a C table and a
    regex class that disagreed by one would show."""
    codes = {c for low, high in ranges for c in (low - 1, low, low + 1, high - 1, high, high + 1)}
    return [chr(c) for c in sorted(codes) if not 0xD800 <= c <= 0xDFFF]


EDGES = _edges(UNSPACED_BLOCKS) + _edges(UNSPACED_MARKS)


@needs_c
def test_c_and_python_agree_at_every_block_and_mark_boundary() -> None:
    # Each boundary character alone, after a letter of each kind, and before a mark.
    texts = [
        *EDGES,
        *(f"好{c}\u0e34a{c}'{c}b" for c in EDGES),
        *(f"{c}\u0e31\u3099" for c in EDGES),
    ]
    featurizer = NgramFeaturizer.fit(texts, max_n=2, char_ngrams=(1, 3), min_df=1)
    assert featurizer.unspaced == "characters"
    _assert_same(*_counts_both(featurizer, texts))


MIXED_ALPHABET = st.one_of(
    st.sampled_from(EDGES),
    st.sampled_from("好很不买了质量のはタワーสวัดีค한국어"),
    st.sampled_from("\u0e31\u0e48\u3099\ufe0f"),
    st.sampled_from("ab'<>!? _\u00e9x1，。"),
    st.characters(),
)


@needs_c
@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=MIXED_ALPHABET, max_size=50), min_size=1, max_size=6))
def test_any_mixed_script_text_counts_identically(texts: list[str]) -> None:
    for char_ngrams in (None, (2, 3)):
        featurizer = NgramFeaturizer.fit(
            [*texts, "好", "a b"], max_n=2, char_ngrams=char_ngrams, min_df=1, unspaced="characters"
        )
        _assert_same(*_counts_both(featurizer, texts))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(), max_size=50), min_size=1, max_size=6))
def test_text_without_those_scripts_gets_the_word_features(texts: list[str]) -> None:
    """The characters mode changes nothing but the letters of those scripts."""
    texts = [t for t in texts if featurizer_module._UNSPACED_LETTER.search(t) is None] or ["x"]
    for text in texts:
        assert tokenize(text, "characters") == tokenize(text)


def _chinese_model() -> LinearModel:
    featurizer = NgramFeaturizer.fit(CHINESE * 2, max_n=2, min_df=1)
    rng = np.random.default_rng(18)
    coef = rng.normal(size=(featurizer.n_features, 2))
    return LinearModel(featurizer, coef, np.array([0.2, -0.2]), ["neg", "pos"])


def test_the_choice_is_recorded_and_an_older_reader_refuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _chinese_model()
    model.save(tmp_path / "zh")
    manifest = json.loads((tmp_path / "zh" / "model.json").read_text(encoding="utf-8"))
    assert manifest["format_version"] == 4
    assert manifest["featurizer"]["unspaced_scripts"] == "characters"
    assert manifest["featurizer"]["token_pattern"] != TOKEN_PATTERN
    loaded = load(tmp_path / "zh")
    assert isinstance(loaded, LinearModel) and loaded.featurizer.unspaced == "characters"
    np.testing.assert_array_equal(loaded.decision_function(REAL), model.decision_function(REAL))
    monkeypatch.setattr(artifact_module, "FORMAT_VERSION", 3)
    with pytest.raises(ArtifactError, match=r"artifact format 4 .* upgrade textdistill"):
        load(tmp_path / "zh")


def test_a_spec_whose_pattern_does_not_match_its_mode_is_refused() -> None:
    spec = _chinese_model().featurizer.spec()
    with pytest.raises(ValueError, match="tokenised with"):
        NgramFeaturizer.from_spec({**spec, "token_pattern": TOKEN_PATTERN}, ["好"], np.ones(1))
    with pytest.raises(ValueError, match="unspaced must be one of"):
        NgramFeaturizer.from_spec({**spec, "unspaced_scripts": "pieces"}, ["好"], np.ones(1))


def test_a_neural_bag_student_keeps_the_mode_through_save_and_load(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from textdistill.runtime import NeuralModel
    from textdistill.students.neural import build_network, to_numpy

    featurizer = NgramFeaturizer.fit(CHINESE, min_df=1)
    network = build_network(
        "bag", featurizer.n_features, 2, embedding_dim=8, lstm_units=4, hidden_units=6, dropout=0
    )
    model = NeuralModel("bag", featurizer, to_numpy(network, "bag"), ["neg", "pos"])
    model.save(tmp_path / "bag")
    loaded = load(tmp_path / "bag")
    assert isinstance(loaded, NeuralModel)
    assert isinstance(loaded.featurizer, NgramFeaturizer)
    assert loaded.featurizer.unspaced == "characters"
    np.testing.assert_array_equal(loaded.decision_function(REAL), model.decision_function(REAL))


# ----------------------------------------------------------------- English stays bit-identical
def test_an_english_artifact_written_before_the_change_predicts_the_same_logits() -> None:
    """tests/fixtures/english_linear_format1 was saved by the textdistill before this mode
    existed (commit d7d7642), with the logits it gave on 100 SST-2 sentences."""
    model = load(FIXTURES / "english_linear_format1")
    assert isinstance(model, LinearModel) and model.featurizer.unspaced == "words"
    texts = (FIXTURES / "english_linear_format1_texts.txt").read_text(encoding="utf-8")
    expected = np.load(FIXTURES / "english_linear_format1_logits.npy")
    got = model.decision_function(texts.splitlines())
    assert got.tobytes() == expected.tobytes()


def test_a_new_english_artifact_is_written_as_before(tmp_path: Path) -> None:
    old = json.loads((FIXTURES / "english_linear_format1" / "model.json").read_text())
    model = load(FIXTURES / "english_linear_format1")
    assert isinstance(model, LinearModel)
    refit = NgramFeaturizer.fit(["a good film", "a bad film"] * 3, char_ngrams=(2, 4))
    assert refit.unspaced == "words" and refit.spec() == old["featurizer"]
    model.save(tmp_path / "again")
    new = json.loads((tmp_path / "again" / "model.json").read_text())
    assert new["format_version"] == 1 and new["featurizer"] == old["featurizer"]
    for name in ("coef.npy", "idf.npy", "intercept.npy", "vocabulary.json"):
        assert new["files"][name] == old["files"][name]


# Digests of the vocabulary, idf and features of 200 IMDB reviews, computed by the textdistill
# before this mode existed (commit d7d7642), with and without character n-grams.
ENGLISH_DIGESTS = {
    None: "6e85d71d05d87679bf39f51d5bab25fe47ac937cd0c799087c0f5b1ba3cde9f7",
    (2, 5): "eb8c8006a59ff682f5a2e4c6ccc842000c68359c02bdf8c92e8be9c697521c23",
}


@pytest.mark.skipif(not (DATA / "imdb_train.csv.gz").exists(), reason="shared data absent")
@pytest.mark.parametrize("pure", [False, True])
@pytest.mark.parametrize("char_ngrams", list(ENGLISH_DIGESTS))
def test_english_features_are_bit_identical_to_before(
    char_ngrams: tuple[int, int] | None, pure: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(featurizer_module, "_PURE_PYTHON", pure)
    with gzip.open(DATA / "imdb_train.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        texts = [row["text"] for _, row in zip(range(600), csv.DictReader(handle), strict=False)]
    featurizer = NgramFeaturizer.fit(texts[:400], max_n=2, char_ngrams=char_ngrams, min_df=2)
    assert featurizer.unspaced == "words"
    X = featurizer.transform(texts[400:])
    digest = hashlib.sha256()
    digest.update(json.dumps(featurizer.vocabulary, ensure_ascii=False).encode())
    digest.update(featurizer.idf.tobytes())
    for array in (X.data, X.indices, X.indptr):
        digest.update(np.ascontiguousarray(array).tobytes())
    assert digest.hexdigest() == ENGLISH_DIGESTS[char_ngrams]


def test_the_mode_can_be_imposed_on_the_linear_student_and_the_run() -> None:
    from textdistill.pipeline import StudentConfig
    from textdistill.students.linear import LinearStudent

    labels = ["neg", "pos"] * 3
    words = LinearStudent(unspaced="words", min_df=1).fit(CHINESE, labels)
    assert words.model_.featurizer.unspaced == "words"
    assert words.get_params()["unspaced"] == "words"
    assert LinearStudent(min_df=1).fit(CHINESE, labels).model_.featurizer.unspaced == "characters"
    assert StudentConfig(unspaced="characters").unspaced == "characters"
    with pytest.raises(ValueError, match=r"\[student\] unspaced must be one of"):
        StudentConfig(unspaced="chars")

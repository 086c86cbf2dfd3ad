"""The neural student: torch training, numpy runtime, ONNX export, all agreeing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from textdistill.runtime import ArtifactError, NeuralModel, NgramFeaturizer, load
from textdistill.runtime.neural import TokenSequencer
from textdistill.students.neural import (
    NeuralStudent,
    _Inputs,
    build_network,
    to_numpy,
)
from textdistill.students.targets import n_held_out, regression_targets

ARCHITECTURES = ("bag", "bilstm")
WORDS = ["good", "bad", "film", "plot", "great", "awful", "fun", "boring", "!", "?", "the"]
WORDS += ["a", "of", "don't", "café"]


def _random_texts(n: int = 60, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(1, 40))) for _ in range(n)]
    return [*texts, "", "   ", "zzz unknown xyzzy", "GREAT Film<br />!!"]


def _random_model(architecture: str, texts: list[str], seed: int = 0) -> tuple[object, NeuralModel]:
    """A randomly initialised torch network and the numpy model holding its weights."""
    import torch

    torch.manual_seed(seed)
    featurizer: NgramFeaturizer | TokenSequencer
    if architecture == "bag":
        featurizer = NgramFeaturizer.fit(texts, min_df=1)
    else:
        featurizer = TokenSequencer.fit(texts, min_count=1, max_length=25)
    network = build_network(
        architecture,
        featurizer.n_features,
        3,
        embedding_dim=16,
        lstm_units=8,
        hidden_units=12,
        dropout=0.0,
    )
    network.eval()
    # Non-zero biases everywhere, so a bias the runtime dropped would show.
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    weights = to_numpy(network, architecture)
    return network, NeuralModel(architecture, featurizer, weights, ["a", "b", "c"], temperature=1.7)


def _toy_student(toy_sentiment: tuple[list[str], list[str]], **params: object) -> NeuralStudent:
    texts, labels = toy_sentiment
    logits = np.array([[-2.0, 2.0] if y == "pos" else [2.0, -2.0] for y in labels])
    defaults: dict[str, object] = {
        "min_df": 1,
        "hidden_units": 16,
        "epochs": 40,
        "patience": 40,
        "learning_rate": 1e-2,
    }
    return NeuralStudent(**{**defaults, **params}).fit(texts, logits, classes=["neg", "pos"])


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_torch_and_numpy_forward_agree(architecture: str) -> None:
    import torch

    texts = _random_texts()
    network, model = _random_model(architecture, texts)
    inputs = _Inputs(model.featurizer, texts)
    with torch.no_grad():
        expected = network(*inputs.batch(np.arange(len(texts)))).numpy()
    np.testing.assert_allclose(model.decision_function(texts), expected, atol=1e-5, rtol=0)
    assert np.abs(expected).max() > 0.1  # not trivially zero


def test_bilstm_result_does_not_depend_on_the_batch() -> None:
    texts = _random_texts(300)  # more than one runtime batch of 256
    _, model = _random_model("bilstm", texts)
    together = model.decision_function(texts)
    alone = np.vstack([model.decision_function([text]) for text in texts[::37]])
    np.testing.assert_allclose(together[::37], alone, atol=1e-5, rtol=0)


def test_sequencer_truncates_and_pads() -> None:
    sequencer = TokenSequencer.fit(["a b c d e"], min_count=1, max_length=3)
    ids, lengths = sequencer.encode(["a b c d e", "e zz", ""])
    assert lengths.tolist() == [3, 2, 1]
    assert ids.shape == (3, 3)
    assert [sequencer.vocabulary[i] for i in ids[1]] == ["e", "<unk>", "<pad>"]
    assert ids[2].tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="starts with"):
        TokenSequencer(["a", "b"])


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_fit_save_load_through_the_runtime(
    architecture: str, toy_sentiment: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    texts, labels = toy_sentiment
    student = _toy_student(toy_sentiment, architecture=architecture, embedding_dim=16, lstm_units=8)
    assert np.mean(np.array(student.predict(texts)) == np.array(labels)) >= 0.95
    student.save(tmp_path / "student")
    loaded = load(str(tmp_path / "student"))
    assert isinstance(loaded, NeuralModel) and loaded.architecture == architecture
    np.testing.assert_array_equal(loaded.decision_function(texts), student.decision_function(texts))
    probabilities = loaded.predict_proba(texts[:5])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert loaded.metadata["selection"]["best_epoch"] == student.best_epoch_
    assert loaded.metadata["params"]["architecture"] == architecture


def test_keeps_the_epoch_with_the_lowest_validation_mse(
    toy_sentiment: tuple[list[str], list[str]],
) -> None:
    student = _toy_student(toy_sentiment, epochs=12, patience=2)
    history = student.history_
    best = min(history, key=lambda row: row["validation_mse"])
    assert student.best_epoch_ == best["epoch"]
    # It stopped `patience` epochs after the best one, or at the last epoch.
    assert len(history) == min(12, student.best_epoch_ + 2)
    assert student.selection_["n_validation"] == n_held_out(0.1, len(toy_sentiment[0]), floor=False)


def test_seeded_fits_are_identical(toy_sentiment: tuple[list[str], list[str]]) -> None:
    first = _toy_student(toy_sentiment, epochs=3).model_.weights
    second = _toy_student(toy_sentiment, epochs=3).model_.weights
    other = _toy_student(toy_sentiment, epochs=3, random_state=1).model_.weights
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    assert not np.array_equal(first["output"], other["output"])


def test_gold_rows_are_scaled_one_hot_logits() -> None:
    targets = regression_targets(np.array([[3.0, 1.0, -1.0]]), np.array([2]), 3)
    np.testing.assert_allclose(targets[0], [2.0, 0.0, -2.0])
    # Winning margin of the gold row (3 - 0) equals the teacher's centred max times k/(k-1).
    np.testing.assert_allclose(targets[1], [-1.0, -1.0, 2.0])


def test_bad_arguments_say_what_is_wrong(toy_sentiment: tuple[list[str], list[str]]) -> None:
    texts, _ = toy_sentiment
    logits = np.zeros((len(texts), 2))
    with pytest.raises(ValueError, match="architecture"):
        NeuralStudent(architecture="transformer").fit(texts, logits, classes=["a", "b"])
    with pytest.raises(ValueError, match="do not match"):
        NeuralStudent().fit(texts, logits[:3], classes=["a", "b"])
    with pytest.raises(ValueError, match=r"\['c'\] are not among"):
        NeuralStudent().fit(texts, logits, classes=["a", "b"], gold_texts=["x"], gold_labels=["c"])
    with pytest.raises(RuntimeError, match="not fitted"):
        NeuralStudent().predict(["x"])
    with pytest.raises(TypeError, match="wrap it in a list"):
        _random_model("bag", _random_texts())[1].predict("one text")  # type: ignore[arg-type]


def test_inconsistent_weights_are_refused(tmp_path: Path) -> None:
    texts = _random_texts()
    _, model = _random_model("bag", texts)
    weights = dict(model.weights)
    weights["output"] = weights["output"][:, :2]
    with pytest.raises(ValueError, match="output has shape"):
        NeuralModel("bag", model.featurizer, weights, model.labels)
    with pytest.raises(ValueError, match="reads a TokenSequencer"):
        NeuralModel("bilstm", model.featurizer, model.weights, model.labels)
    # An artifact whose manifest names another architecture: refused, not guessed at.
    model.save(tmp_path / "m")
    from textdistill.runtime.artifact import MANIFEST, _manifest_checksum

    manifest_path = tmp_path / "m" / MANIFEST
    import json

    manifest = json.loads(manifest_path.read_text())
    manifest["architecture"] = "bilstm"
    manifest["checksum"] = _manifest_checksum(manifest)
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="inconsistent artifact"):
        load(str(tmp_path / "m"))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_onnx_export_matches_numpy(architecture: str, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from textdistill.export import OnnxStudent, export_onnx

    texts = _random_texts()
    _, model = _random_model(architecture, texts)
    model.save(tmp_path / "student")
    exported = OnnxStudent(export_onnx(tmp_path / "student", tmp_path / "student.onnx"))
    logits, probabilities = exported.run(texts)
    np.testing.assert_allclose(logits, model.decision_function(texts), atol=1e-5, rtol=0)
    np.testing.assert_allclose(probabilities, model.predict_proba(texts), atol=1e-5, rtol=0)
    assert exported.predict(texts) == model.predict(texts)


def test_run_with_a_neural_student_then_predict_export_and_cascade(
    tiny_bert_dir: Path,
    tmp_path: Path,
    toy_sentiment: tuple[list[str], list[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`textdistill run --student neural`, then every consumer of the student artifact."""
    import csv
    import json

    from textdistill.cascade import Cascade
    from textdistill.cli import main

    texts, labels = toy_sentiment
    labeled = tmp_path / "labeled.csv"
    with labeled.open("w", newline="") as handle:
        csv.writer(handle).writerows([("text", "label"), *zip(texts, labels, strict=True)])
    unlabeled = tmp_path / "unlabeled.txt"
    unlabeled.write_text("".join(t + " again\n" for t in texts))
    config = tmp_path / "run.toml"
    config.write_text(f"""
[teacher]
# settings at which the tiny random BERT learns the toy task (at 1 epoch it stays at chance);
# one thread, so the accuracy floors below hold on any core count
model = "{tiny_bert_dir}"
epochs = 10
learning_rate = 3e-3
batch_size = 8
max_length = 32
num_threads = 1

[student]
kind = "neural"
min_df = 1
""")
    out = tmp_path / "run"
    argv = ["run", "--config", str(config), "--labeled", str(labeled)]
    argv += ["--unlabeled", str(unlabeled), "--out", str(out), "--no-progress"]
    assert main([*argv, "--architecture", "bilstm"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["student"]["kind"] == "neural"
    assert metrics["student"]["selection"]["architecture"] == "bilstm"
    model = load(str(out / "student"))
    assert isinstance(model, NeuralModel) and model.architecture == "bilstm"
    # On these 16 balanced test rows the teacher and the student both get 0.9375 and agree on
    # 0.875 (seeds 1 and 2: 0.875 and 0.75 for the teacher, 0.875 and 0.6875 for the student).
    # A model answering one class gets 0.5.
    systems = metrics["systems"]
    assert systems["teacher"]["accuracy"] >= 0.8, metrics["teacher"]["history"]
    assert systems["student"]["accuracy"] >= 0.8
    assert systems["student"]["agreement_with_teacher"] >= 0.8
    capsys.readouterr()
    assert main(["predict", str(out / "student"), "what a superb film", "--format", "jsonl"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in {"neg", "pos"}
    assert Cascade.load(out / "cascade").predict(["what a superb film"])[0] in {"neg", "pos"}
    pytest.importorskip("onnx")
    assert main(["export", str(out / "student"), "-o", str(tmp_path / "s.onnx")]) == 0


def test_an_unknown_student_kind_is_an_error(tmp_path: Path) -> None:
    from textdistill.pipeline import StudentConfig

    with pytest.raises(ValueError, match="kind must be one of"):
        StudentConfig(kind="forest")
    with pytest.raises(ValueError, match="architecture must be"):
        StudentConfig(kind="neural", architecture="gru")


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_served_like_the_linear_student(architecture: str, tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from textdistill.serve import create_app

    texts = _random_texts()
    _, model = _random_model(architecture, texts)
    model.save(tmp_path / "student")
    with TestClient(create_app(tmp_path / "student")) as client:
        answer = client.post("/predict", json={"texts": texts[:3]}).json()
        metadata = client.get("/metadata").json()
    assert [p["label"] for p in answer["predictions"]] == model.predict(texts[:3])
    assert metadata["kind"] == "neural" and metadata["n_features"] == model.featurizer.n_features

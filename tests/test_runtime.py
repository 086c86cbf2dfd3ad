"""The numpy runtime: featurizer, artifact format, linear model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textdistill.runtime import ArtifactError, LinearModel, NgramFeaturizer, load, tokenize
from textdistill.runtime.artifact import FORMAT_VERSION, MANIFEST

DOCS = [
    "A great movie, great cast! Loved it.",
    "Terrible plot<br />and the acting? Awful.",
    "Don't watch it: a great waste of time.",
    "great great great",
    "the the the plot",
]


def _model(tmp_path: Path | None = None) -> LinearModel:
    featurizer = NgramFeaturizer.fit(DOCS, max_n=2, min_df=1)
    rng = np.random.default_rng(0)
    model = LinearModel(
        featurizer,
        rng.normal(size=(featurizer.n_features, 2)),
        np.array([0.1, -0.1]),
        ["neg", "pos"],
        metadata={"note": "test"},
    )
    if tmp_path is not None:
        model.save(tmp_path / "model")
    return model


def test_tokenize_drops_markup_keeps_contractions_and_marks() -> None:
    assert tokenize("Don't<br />GO!") == ["don't", "go", "!"]
    assert tokenize("") == []


def test_featurizer_matches_scikit_learn_tfidf() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    ours = NgramFeaturizer.fit(DOCS, max_n=2, min_df=1, max_features=None)
    theirs = TfidfVectorizer(
        tokenizer=tokenize,
        lowercase=False,
        token_pattern=None,
        ngram_range=(1, 2),
        sublinear_tf=True,
    ).fit(DOCS)
    assert set(ours.vocabulary) == set(theirs.vocabulary_)
    expected = theirs.transform(DOCS).toarray()
    got = ours.transform(DOCS).to_scipy().toarray()
    columns = [theirs.vocabulary_[term] for term in ours.vocabulary]
    np.testing.assert_allclose(got, expected[:, columns], rtol=1e-5, atol=1e-6)


def test_featurizer_caps_features_by_document_frequency() -> None:
    featurizer = NgramFeaturizer.fit(DOCS, max_n=2, min_df=1, max_features=3)
    # "great" is in 3 documents; ties at 2 are broken alphabetically
    assert featurizer.vocabulary == ["great", "a", "a great"]
    with pytest.raises(ValueError, match="min_df"):
        NgramFeaturizer.fit(["one", "two"], min_df=2)


def test_sparse_matmul_equals_dense_product() -> None:
    featurizer = NgramFeaturizer.fit(DOCS, max_n=3, min_df=1)
    X = featurizer.transform([*DOCS, "", "nothing known here"])
    W = np.random.default_rng(1).normal(size=(featurizer.n_features, 3))
    np.testing.assert_allclose(X.matmul(W), X.to_scipy().toarray() @ W, rtol=1e-5, atol=1e-6)
    assert X.n_rows == len(DOCS) + 2


def test_model_roundtrip_gives_identical_outputs(tmp_path: Path) -> None:
    model = _model(tmp_path)
    loaded = load(str(tmp_path / "model"))
    np.testing.assert_array_equal(loaded.decision_function(DOCS), model.decision_function(DOCS))
    assert loaded.predict(DOCS) == model.predict(DOCS)
    probabilities = loaded.predict_proba(DOCS)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert loaded.metadata == {"note": "test"}
    assert set(p.name for p in (tmp_path / "model").iterdir()) == {
        MANIFEST,
        "coef.npy",
        "intercept.npy",
        "idf.npy",
        "vocabulary.json",
        "README.md",  # the model card, outside the manifest
    }


def test_predict_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError, match="wrap it in a list"):
        _model().predict("one text")  # type: ignore[arg-type]


def test_truncated_weights_are_detected(tmp_path: Path) -> None:
    _model(tmp_path)
    weights = tmp_path / "model" / "coef.npy"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(ArtifactError, match=r"coef\.npy: checksum mismatch"):
        load(str(tmp_path / "model"))


def test_altered_manifest_is_detected(tmp_path: Path) -> None:
    _model(tmp_path)
    manifest_path = tmp_path / "model" / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["labels"] = ["pos", "neg"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="manifest was altered"):
        load(str(tmp_path / "model"))


def test_newer_format_is_refused_with_advice(tmp_path: Path) -> None:
    _model(tmp_path)
    _rewrite_manifest(tmp_path / "model", format_version=FORMAT_VERSION + 1)
    with pytest.raises(ArtifactError, match="upgrade textdistill"):
        load(str(tmp_path / "model"))


def test_manifest_cannot_point_outside_the_artifact(tmp_path: Path) -> None:
    _model(tmp_path)
    files = json.loads((tmp_path / "model" / MANIFEST).read_text())["files"]
    _rewrite_manifest(tmp_path / "model", files={**files, "../secret.npy": "0" * 64})
    with pytest.raises(ArtifactError, match="not a plain file name"):
        load(str(tmp_path / "model"))


def test_missing_artifact_and_wrong_directory(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no such artifact"):
        load(str(tmp_path / "nope"))
    with pytest.raises(ArtifactError, match=r"model\.json is missing"):
        load(str(tmp_path))


def test_saving_over_an_artifact_replaces_it_whole(tmp_path: Path) -> None:
    _model(tmp_path)
    (tmp_path / "model" / "stale.txt").write_text("old")
    _model(tmp_path)
    assert not (tmp_path / "model" / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_unicode_text_predicts_deterministically(text: str) -> None:
    model = _MODEL
    first = model.decision_function([text])
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, model.decision_function([text]))
    assert model.predict([text])[0] in {"neg", "pos"}


_MODEL = _model()


def _rewrite_manifest(root: Path, **changes: object) -> None:
    from textdistill.runtime.artifact import _manifest_checksum

    manifest_path = root / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest.update(changes)
    manifest["checksum"] = _manifest_checksum(manifest)
    manifest_path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "changes",
    [{"labels": "neg,pos"}, {"labels": [0, 1]}, {"featurizer": None}, {"calibration": 3}],
)
def test_a_consistent_checksum_over_wrong_fields_is_still_refused(
    tmp_path: Path, changes: dict[str, object]
) -> None:
    _model(tmp_path)
    _rewrite_manifest(tmp_path / "model", **changes)
    with pytest.raises(ArtifactError):
        load(str(tmp_path / "model"))


def test_an_object_array_is_an_artifact_error(tmp_path: Path) -> None:
    from textdistill.runtime.artifact import _sha256_file

    _model(tmp_path)
    weights = tmp_path / "model" / "intercept.npy"
    np.save(weights, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    manifest = json.loads((tmp_path / "model" / MANIFEST).read_text())
    _rewrite_manifest(
        tmp_path / "model", files={**manifest["files"], "intercept.npy": _sha256_file(weights)}
    )
    with pytest.raises(ArtifactError, match="not a plain numeric array"):
        load(str(tmp_path / "model"))

"""Temperature scaling and calibration error; the temperature travels with the artifact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from textdistill.calibration import (
    calibration_report,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
)
from textdistill.runtime import LinearModel, NgramFeaturizer, load, softmax


def _overconfident(n: int = 3000, scale: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), labels] += 1.0
    return logits * scale, labels


def test_fitted_temperature_minimises_held_out_nll() -> None:
    logits, labels = _overconfident()
    best = fit_temperature(logits, labels)
    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 400))
    by_grid = grid[np.argmin([negative_log_likelihood(logits, labels, t) for t in grid])]
    assert best == pytest.approx(by_grid, rel=0.03)
    assert best > 2  # the logits were inflated 5x
    report = calibration_report(logits, labels, best)
    assert report["ece_after"] < report["ece_before"] / 2
    assert report["nll_after"] < report["nll_before"]
    assert sum(b["count"] for b in report["reliability_after"]) == len(labels)


def test_temperature_never_changes_a_prediction() -> None:
    logits, _ = _overconfident()
    assert (softmax(logits, 3.7).argmax(axis=1) == logits.argmax(axis=1)).all()


def test_ece_of_a_perfectly_calibrated_model_is_small() -> None:
    rng = np.random.default_rng(2)
    p = rng.uniform(0.5, 1.0, 20000)
    labels = (rng.uniform(size=p.size) > p).astype(int)  # label 0 with probability p
    probabilities = np.stack([p, 1 - p], axis=1)
    assert expected_calibration_error(probabilities, labels) < 0.02
    with pytest.raises(ValueError):
        fit_temperature(np.zeros((0, 2)), np.zeros(0, dtype=int))


def test_artifact_keeps_the_temperature_and_onnx_applies_it(tmp_path: Path) -> None:
    texts = ["good film", "bad film", "good plot", "bad plot"]
    featurizer = NgramFeaturizer.fit(texts, min_df=1)
    coef = np.random.default_rng(0).normal(size=(featurizer.n_features, 2))
    LinearModel(featurizer, coef, np.zeros(2), ["neg", "pos"], temperature=2.5).save(tmp_path / "m")
    model = load(str(tmp_path / "m"))
    assert model.temperature == 2.5
    np.testing.assert_allclose(
        model.predict_proba(texts), softmax(model.decision_function(texts), 2.5)
    )
    pytest.importorskip("onnxruntime")
    from textdistill.export import OnnxStudent, export_onnx

    onnx = OnnxStudent(export_onnx(tmp_path / "m", tmp_path / "m.onnx"))
    np.testing.assert_allclose(onnx.predict_proba(texts), model.predict_proba(texts), atol=1e-6)
    with pytest.raises(ValueError, match="temperature must be positive"):
        LinearModel(featurizer, coef, np.zeros(2), ["neg", "pos"], temperature=0.0)


def test_the_temperature_search_moves_past_the_edge_of_its_first_bracket() -> None:
    """Logits 1,000 times too small want T near 0.001, far below the first bracket's 0.05."""
    from textdistill.calibration import T_MIN, fit_temperature

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 4000)
    true_logits = np.stack([-(2 * labels - 1.0), 2 * labels - 1.0], axis=1) * 2.0
    noisy = true_logits + rng.normal(scale=1.5, size=true_logits.shape)
    fitted = fit_temperature(noisy / 200, labels)
    assert fitted < T_MIN / 2
    assert fitted == pytest.approx(fit_temperature(noisy, labels) / 200, rel=0.02)

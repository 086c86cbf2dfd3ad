"""numpy-only inference: load a student artifact and predict.

Nothing here imports torch, transformers or scikit-learn, so ``pip install textdistill``
(no extras) is enough to serve a trained student.
"""

from typing import TypeAlias

from textdistill.runtime.artifact import ArtifactError, read_manifest
from textdistill.runtime.featurizer import NgramFeaturizer, SparseRows, tokenize
from textdistill.runtime.linear import LinearModel, softmax
from textdistill.runtime.neural import NeuralModel

# Every kind of student artifact: each has predict, predict_proba, decision_function,
# probabilities, labels, temperature and featurizer.
Model: TypeAlias = LinearModel | NeuralModel

__all__ = [
    "ArtifactError",
    "LinearModel",
    "Model",
    "NeuralModel",
    "NgramFeaturizer",
    "SparseRows",
    "load",
    "read_manifest",
    "softmax",
    "tokenize",
]


def load(path: str) -> Model:
    """Load any student artifact written by textdistill."""
    kind = read_manifest(path).get("kind")
    if kind == "linear":
        return LinearModel.load(path)
    if kind == "neural":
        return NeuralModel.load(path)
    raise ArtifactError(f"{path}: unknown artifact kind {kind!r}")

"""numpy-only inference: load a student artifact and predict.

Nothing here imports torch, transformers or scikit-learn, so ``pip install textdistill``
(no extras) is enough to serve a trained student.
"""

from typing import TypeAlias

from textdistill.runtime.artifact import ArtifactError, read_manifest
from textdistill.runtime.dense import DenseModel
from textdistill.runtime.featurizer import NgramFeaturizer, SparseRows, tokenize
from textdistill.runtime.linear import LinearModel
from textdistill.runtime.neural import NeuralModel
from textdistill.runtime.outputs import Prediction, sigmoid, softmax

# Every kind of student artifact: each has predict, predict_proba, decision_function,
# probabilities, labels_of, labels, temperature, multilabel, thresholds and featurizer.
Model: TypeAlias = LinearModel | NeuralModel | DenseModel

__all__ = [
    "ArtifactError",
    "DenseModel",
    "LinearModel",
    "Model",
    "NeuralModel",
    "NgramFeaturizer",
    "Prediction",
    "SparseRows",
    "load",
    "read_manifest",
    "sigmoid",
    "softmax",
    "tokenize",
]


def load(path: str) -> Model:
    """Load any student artifact written by textdistill: a folder, or ``hf://OWNER/NAME``
    (``@REVISION`` optional) for one on the Hugging Face Hub (the ``hub`` extra)."""
    if str(path).startswith("hf://"):
        from textdistill.hub import download  # only here: the runtime stays numpy-only

        path = str(download(str(path)))
    kind = read_manifest(path).get("kind")
    if kind == "linear":
        return LinearModel.load(path)
    if kind == "neural":
        return NeuralModel.load(path)
    if kind == "dense":
        return DenseModel.load(path)
    raise ArtifactError(f"{path}: unknown artifact kind {kind!r}")

"""numpy-only inference: load a student artifact and predict.

Nothing here imports torch, transformers or scikit-learn, so ``pip install textdistill``
(no extras) is enough to serve a trained student.
"""

from textdistill.runtime.artifact import ArtifactError, read_manifest
from textdistill.runtime.featurizer import NgramFeaturizer, SparseRows, tokenize
from textdistill.runtime.linear import LinearModel, softmax

__all__ = [
    "ArtifactError",
    "LinearModel",
    "NgramFeaturizer",
    "SparseRows",
    "load",
    "read_manifest",
    "softmax",
    "tokenize",
]


def load(path: str) -> LinearModel:
    """Load any student artifact written by textdistill."""
    kind = read_manifest(path).get("kind")
    if kind == "linear":
        return LinearModel.load(path)
    raise ArtifactError(f"{path}: unknown artifact kind {kind!r}")

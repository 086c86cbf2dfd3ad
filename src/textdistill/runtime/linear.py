"""A linear classifier over n-gram features: the deployable student, numpy only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textdistill.runtime.artifact import ArtifactError, artifact_root, load_artifact, save_artifact
from textdistill.runtime.featurizer import NgramFeaturizer
from textdistill.runtime.outputs import LabelOutputs
from textdistill.runtime.pair_features import PairFeaturizer, featurizer_from_spec

KIND = "linear"


class LinearModel(LabelOutputs):
    """``logits = features(text) @ coef + intercept``; labels are names.

    The features are a text's n-grams, or for a model of text pairs the pair features of
    :mod:`textdistill.runtime.pair_features` (texts are then joined pairs or
    ``(text, text_pair)`` tuples).

    One logit per class (two for a binary task, like the teacher), so that logits can be
    compared with the teacher's one for one. ``multilabel`` models read each logit as its own
    yes/no against a per-label threshold (:mod:`textdistill.runtime.outputs`).
    """

    def __init__(
        self,
        featurizer: NgramFeaturizer | PairFeaturizer,
        coef: np.ndarray,
        intercept: np.ndarray,
        labels: Sequence[str],
        *,
        temperature: float = 1.0,
        multilabel: bool = False,
        thresholds: Sequence[float] | np.ndarray | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        coef = np.asarray(coef, dtype=np.float32)
        intercept = np.asarray(intercept, dtype=np.float32)
        if coef.shape != (featurizer.n_features, len(labels)) or intercept.shape != (len(labels),):
            raise ValueError(
                f"coef {coef.shape} and intercept {intercept.shape} do not fit "
                f"{featurizer.n_features} features and {len(labels)} labels"
            )
        self.featurizer = featurizer
        self.coef = coef
        self.intercept = intercept
        self._set_outputs(labels, temperature, multilabel, thresholds)
        self.metadata = dict(metadata or {})

    @property
    def pairs(self) -> bool:
        """Whether the model reads text pairs."""
        return isinstance(self.featurizer, PairFeaturizer)

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Raw logits, float32 ``[n, k]``."""
        return self.featurizer.linear(_as_texts(texts), self.coef, self.intercept)

    def save(self, path: str | Path) -> None:
        save_artifact(
            path,
            kind=KIND,
            arrays={"coef": self.coef, "intercept": self.intercept, "idf": self.featurizer.idf},
            documents={"vocabulary": self.featurizer.vocabulary},
            meta={
                **self._outputs_meta(),
                "featurizer": self.featurizer.spec(),
                "metadata": self.metadata,
            },
            format_version=max(self._format_version, self.featurizer.format_version),
        )

    @classmethod
    def load(cls, path: str | Path) -> LinearModel:
        manifest, arrays, documents = load_artifact(path)
        if manifest.get("kind") != KIND:
            raise ArtifactError(f"{path}: a {manifest.get('kind')!r} artifact, not {KIND!r}")
        labels = manifest.get("labels")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise ArtifactError(f"{path}: `labels` must be a list of names, got {labels!r:.80}")
        try:
            featurizer = featurizer_from_spec(
                manifest["featurizer"], documents["vocabulary"], arrays["idf"]
            )
            model = cls(
                featurizer,
                arrays["coef"],
                arrays["intercept"],
                manifest["labels"],
                **cls._outputs_from_manifest(manifest),
                metadata=manifest.get("metadata"),
            )
        except (KeyError, ValueError, TypeError, AttributeError) as error:
            raise ArtifactError(f"{path}: inconsistent artifact ({error!r})") from None
        model.source = artifact_root(path)
        return model


def _as_texts(texts: Sequence[str]) -> Sequence[str]:
    """Accept one string as a one-document batch would be a classic footgun: refuse it."""
    if isinstance(texts, str):
        raise TypeError("expected a sequence of texts, got one str: wrap it in a list")
    return texts

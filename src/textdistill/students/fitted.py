"""The inference half every student shares: it hands texts to its fitted runtime model.

A student's learned state is one runtime artifact (``model_``); predicting through it is the
same for every kind, so the kinds differ only in how they fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textdistill.runtime.outputs import Prediction


class FittedModelMethods:
    """``decision_function``, ``predict_proba``, ``predict`` and ``save`` through ``model_``."""

    _NOT_FITTED_HINT = "call fit() first"

    def _fitted(self) -> Any:
        model = getattr(self, "model_", None)
        if model is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; {self._NOT_FITTED_HINT}")
        return model

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._fitted().decision_function(texts))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._fitted().predict_proba(texts))

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        return list(self._fitted().predict(texts))

    def save(self, path: str | Path) -> None:
        self._fitted().save(path)

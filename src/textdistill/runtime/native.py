"""The optional C fast paths, loaded where setup.py could build them.

Each extension has a pure-Python (numpy) twin that gives identical results, so a missing
compiler costs speed, never answers. An extension built from an older source (a checkout
whose build was not redone) is not used: a warning says how to get the fast path back.
"""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType

# TEXTDISTILL_PURE_PYTHON=1 forces the pure-Python paths of every extension (to compare, or to
# debug).
PURE_PYTHON = os.environ.get("TEXTDISTILL_PURE_PYTHON", "") not in {"", "0"}


def extension(name: str, version: int) -> ModuleType | None:
    """``textdistill.runtime.<name>`` if it is built and speaks interface ``version``."""
    try:
        module = importlib.import_module(f"textdistill.runtime.{name}")
    except ImportError:  # pragma: no cover - depends on the build
        return None
    if getattr(module, "VERSION", 1) != version:  # pragma: no cover - a stale build
        warnings.warn(
            f"{module.__file__} is a stale build of textdistill's C extension; using the "
            "pure-Python path. Rebuild it: python setup.py build_ext --inplace",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return module

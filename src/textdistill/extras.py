"""How to install an optional extra, said the way that works where textdistill runs.

From PyPI, ``pip install 'textdistill[onnx]'``; from a clone (an editable install, or the
source tree on ``sys.path``), that command would fetch the released package instead of
using the checkout, so the hint says ``pip install -e '.[onnx]'`` there.
"""

from __future__ import annotations

from pathlib import Path

# src/textdistill/extras.py -> the checkout's root, where pyproject.toml names the project
_CHECKOUT = Path(__file__).resolve().parent.parent.parent


def from_a_clone(root: Path = _CHECKOUT) -> bool:
    """Whether this textdistill is a source checkout (its pyproject.toml beside src/)."""
    pyproject = root / "pyproject.toml"
    try:
        return pyproject.is_file() and 'name = "textdistill"' in pyproject.read_text("utf-8")
    except OSError:
        return False


def install_hint(extra: str, root: Path = _CHECKOUT) -> str:
    """``pip install 'textdistill[EXTRA]'``, or ``pip install -e '.[EXTRA]'`` from a clone.

    >>> install_hint("onnx", Path("/nonexistent"))
    "pip install 'textdistill[onnx]'"
    """
    if from_a_clone(root):
        return f"pip install -e '.[{extra}]' (in the clone at {root})"
    return f"pip install 'textdistill[{extra}]'"

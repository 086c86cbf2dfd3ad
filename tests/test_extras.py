"""Install hints name the command that works where textdistill runs: PyPI or a clone."""

from __future__ import annotations

from pathlib import Path

from textdistill import cli, export
from textdistill.extras import from_a_clone, install_hint


def test_a_clone_is_told_to_install_the_checkout(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "textdistill"\n')
    assert from_a_clone(tmp_path)
    assert (
        install_hint("onnx", tmp_path) == f"pip install -e '.[onnx]' (in the clone at {tmp_path})"
    )


def test_an_installed_package_is_told_to_install_from_pypi(tmp_path: Path) -> None:
    assert not from_a_clone(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    assert install_hint("onnx", tmp_path) == "pip install 'textdistill[onnx]'"


def test_the_hints_of_this_checkout_say_pip_install_e() -> None:
    # the tests run from a clone, so every hint built at import time must say so
    for hint in (cli.TRAIN_HINT, export.ONNX_HINT):
        assert "pip install -e '.[" in hint, hint

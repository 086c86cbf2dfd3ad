"""Install hints name the command that works where textdistill runs: PyPI or a clone."""

from __future__ import annotations

import ast
from pathlib import Path

import textdistill
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
    from textdistill import serve
    from textdistill.students import dense, neural

    for hint in (
        cli.TRAIN_HINT,
        export.ONNX_HINT,
        serve.SERVE_HINT,
        dense.TRAIN_HINT,
        neural.TRAIN_HINT,
    ):
        assert "pip install -e '.[" in hint, hint


# Modules that may spell the command: install_hint itself, and the model card, read on the Hub
# by people who install from PyPI whatever built it.
FOR_PYPI_READERS = {"extras.py", "runtime/model_card.py"}


def test_no_message_spells_out_a_pypi_install_command() -> None:
    # a hint written as a literal says "pip install 'textdistill[...]'" even in a clone, where
    # that fetches the released package instead of using the checkout; install_hint knows
    package = Path(textdistill.__file__).parent
    literal = []
    for module in sorted(package.rglob("*.py")):
        if module.relative_to(package).as_posix() in FOR_PYPI_READERS:
            continue
        tree = ast.parse(module.read_text("utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        literal += [
            f"{module.name}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "textdistill[" in node.value
            and id(node) not in docstrings
        ]
    assert not literal, literal

"""MkDocs hooks: the pages that are generated rather than written.

* ``cli.md``: the command-line reference, read from ``textdistill.cli.build_parser()`` at
  build time, so a flag added to the parser is documented by the next build and a flag
  removed from it disappears from the docs.
* ``results.md``: every ``benchmarks/results/*.json`` rendered by
  ``benchmarks/results_page.py``, with its plots copied into the site.

A page opts in with a marker comment (``<!-- generated: cli-reference -->`` or
``<!-- generated: results -->``); on GitHub the file shows its short introduction instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
IMAGE_PREFIX = "assets/results/"
CLI_MARKER = "<!-- generated: cli-reference -->"
RESULTS_MARKER = "<!-- generated: results -->"


def _cell(text: str) -> str:
    """Help text as literal Markdown: one line, nothing read as a link, HTML or emphasis."""
    text = " ".join(text.split()).replace("\\", "\\\\")
    for char in "|[]*_`":
        text = text.replace(char, "\\" + char)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _expanded_help(action: argparse.Action, prog: str) -> str:
    """The help string with ``%(default)s``-style fields filled, as ``--help`` prints it."""
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    fields = {**vars(action), "prog": prog}
    if action.choices is not None:
        fields["choices"] = ", ".join(map(str, action.choices))
    return action.help % fields


def _argument_name(action: argparse.Action) -> str:
    if action.option_strings:
        names = ", ".join(f"`{name}`" for name in action.option_strings)
        if action.nargs == 0:
            return names
        if action.choices is not None:
            value = "{" + ",".join(map(str, action.choices)) + "}"
        else:
            value = action.metavar or action.dest.upper()
        suffix = " ..." if action.nargs in ("+", "*") else ""
        return f"{names} `{value}{suffix}`"
    name = action.metavar or action.dest
    return f"`{name}`" + (" (zero or more)" if action.nargs == "*" else "")


def _default(action: argparse.Action) -> str:
    default = action.default
    if default is None or default is False or default == argparse.SUPPRESS:
        return ""
    if isinstance(action, argparse._StoreTrueAction | argparse._VersionAction):
        return ""
    return f"`{default}`"


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _verb_section(name: str, parser: argparse.ArgumentParser) -> list[str]:
    lines = [f"## `{parser.prog}`", ""]
    if parser.description:
        lines += [_cell(parser.description), ""]
    usage = parser.format_usage().removeprefix("usage: ").strip()
    lines += ["```text", usage, "```", ""]
    for group in parser._action_groups:
        actions = [
            a
            for a in group._group_actions
            if a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)
        ]
        if not actions:
            continue
        title = group.title or "arguments"
        lines += [
            f"**{_cell(title)}**",
            "",
            "| argument | default | meaning |",
            "| --- | --- | --- |",
        ]
        for action in actions:
            meaning = _cell(_expanded_help(action, parser.prog))
            lines.append(f"| {_argument_name(action)} | {_default(action)} | {meaning} |")
        lines.append("")
    return lines


def cli_reference(parser: argparse.ArgumentParser) -> str:
    """Markdown for every verb of ``parser``: description, usage and one table per group."""
    lines = [
        "# Command-line reference",
        "",
        "Generated from `textdistill.cli.build_parser()` when the documentation is built; "
        "`textdistill VERB --help` prints the same.",
        "",
    ]
    if parser.description:
        lines += [_cell(parser.description), ""]
    verbs = _verbs(parser)
    lines += [f"- [`{parser.prog} {name}`](#textdistill-{name})" for name in verbs]
    lines.append("")
    for name, verb in verbs.items():
        lines += _verb_section(name, verb)
    return "\n".join(lines)


def _results_page_module() -> Any:
    """``benchmarks/results_page.py``, loaded by path (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "results_page", ROOT / "benchmarks" / "results_page.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("results_page", module)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------- hooks
def on_files(files: Any, config: Any) -> Any:
    """Copy the benchmark plots into the site, where the results page links them."""
    from mkdocs.structure.files import File

    for plot in sorted(RESULTS_DIR.glob("*.png")):
        files.append(File.generated(config, IMAGE_PREFIX + plot.name, abs_src_path=str(plot)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace a marked page's content with what is generated for it."""
    if CLI_MARKER in markdown:
        from textdistill.cli import build_parser

        return cli_reference(build_parser())
    if RESULTS_MARKER in markdown:
        return _results_page_module().render(RESULTS_DIR, IMAGE_PREFIX)
    return markdown

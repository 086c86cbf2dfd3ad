"""The documentation's promises: its shell commands run, its generated pages render, and
the README stays a front page.

Every ```` ```bash ```` block in README.md and docs/*.md is run, in that order, in one
scratch directory that has the repository's ``examples/`` in it, so a command that works
here works from a clone. ``textdistill`` (and ``.venv/bin/textdistill``, as the README writes
it) is this interpreter's textdistill. A block that cannot run in a test says why, in a
``<!-- not run by the tests: REASON -->`` line right above it; a block without one is run.

A block that starts ``textdistill serve`` starts a server, as a reader would in one terminal,
and the page's later blocks talk to it, as from another; it is stopped at the end of the
page. Its port, 8000 on the page, is replaced by a free one.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
SKIP = re.compile(r"<!-- not run by the tests: (?P<why>.*?) -->")
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\n(?P<body>.*?)^```$", re.M | re.S)
SERVE = re.compile(r"^(?:\.venv/bin/)?textdistill serve\b")


@dataclass
class Block:
    path: Path
    line: int
    lang: str
    body: str
    skip_reason: str | None

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _documents() -> list[Path]:
    """README first (its run is the tutorial's), then the tutorial, then the other pages."""
    pages = sorted(DOCS.glob("*.md"), key=lambda p: (p.name != "tutorial.md", p.name))
    return [README, *pages]


def code_blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.fullmatch(before.strip())
        blocks.append(
            Block(
                path=path,
                line=text.count("\n", 0, match.start()) + 1,
                lang=match["lang"],
                body=match["body"],
                skip_reason=skip["why"].strip() if skip else None,
            )
        )
    return blocks


def shell_blocks() -> list[Block]:
    return [b for path in _documents() for b in code_blocks(path) if b.lang in ("bash", "sh")]


# ------------------------------------------------------------------------- fast checks
def test_readme_is_a_front_page() -> None:
    size = len(README.read_bytes())
    assert size <= 12_000, f"README.md is {size:,} bytes; the limit is 12,000 (move it to docs/)"


def test_pages_speak_to_a_user_not_of_how_the_numbers_were_planned() -> None:
    """No page speaks of an issue's targets or of a lent machine (words of the notes the
    work was planned in, which a reader has not seen), and the README's install lines name
    the hub extra beside the other verbs' extras."""
    leaked = re.compile(r"\bissue's|\bthe [\w-]+ issue\b|\blent\b", re.IGNORECASE)
    for path in _documents():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert not leaked.search(line), f"{path.name}:{number}: {line}"
    install = README.read_text(encoding="utf-8").split("## Install", 1)[1].split("##", 1)[0]
    for extra in ("train", "serve", "onnx", "hub"):
        assert f'pip install "textdistill[{extra}]"' in install, extra


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    readme = README.read_text(encoding="utf-8")
    test_commands = [
        b.body.strip()
        for b in code_blocks(README)
        if b.lang == "bash" and "python -m pytest" in b.body
    ]
    assert len(test_commands) == 1, test_commands
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_commands[0] in ci, "the README's test command is not a line of .ci/run"
    assert "mkdocs build --strict" in "\n".join(ci)
    assert "demo" in readme


def test_every_shell_block_runs_or_says_why_not() -> None:
    blocks = shell_blocks()
    assert len(blocks) >= 10
    for block in blocks:
        if block.skip_reason is not None:
            assert len(block.skip_reason) >= 10, f"{block}: say why it is not run"
            # data a clone lacks is no reason on its own: a command that takes a few minutes
            # at most runs in the tests, on files of examples/
            if "../shared" in block.skip_reason:
                assert re.search(r"minute|hour", block.skip_reason), f"{block}: how long?"
    run = [b for b in blocks if b.skip_reason is None]
    assert any(b.path == README for b in run), "the README's own-data commands must run"
    assert any(b.path.name == "tutorial.md" for b in run)
    for block in run:
        assert "../shared" not in block.body, f"{block}: runs on files a clone does not have"


def test_commands_that_the_example_files_can_run_are_run() -> None:
    """The pages beyond the tutorial (multilabel data, logits computed elsewhere, labeling
    with Ray, text pairs through run, predict, serve and export) run on files shipped in
    examples/, so their commands are tested rather than skipped; and every example file a
    run block names exists."""
    run = [b for b in shell_blocks() if b.skip_reason is None]
    commands = "\n".join(b.body for b in run)
    for needed in ("--multilabel", "--label-separator", "--teacher-logits", "textdistill label"):
        assert needed in commands, f"no command that runs uses {needed}"
    pairs = [b.body for b in run if b.path.name == "pairs.md"]
    for verb, needed in (
        ("run", "--text-pair-column"),
        ("predict", "--text-pair "),
        ("predict", "--text-pair-column"),
        ("serve", ""),
        ("export", ""),
    ):
        assert any(f"textdistill {verb}" in body and needed in body for body in pairs), (
            f"no command of docs/pairs.md that runs is a pair {verb} ({needed})"
        )
    assert any('"text_pair"' in body for body in pairs), "no pair request to serve runs"
    for block in run:
        for name in re.findall(r"\bexamples/[\w./-]*\w", block.body):
            assert (ROOT / name).exists(), f"{block}: {name} is not in the repository"


def test_the_pair_example_files_are_what_their_script_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/ticket_pairs*.csv are made by examples/make_pairs.py (seeded), not by hand."""
    import importlib

    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    make_pairs = importlib.import_module("make_pairs")
    monkeypatch.setattr(make_pairs, "HERE", tmp_path)
    make_pairs.main()
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(p.name for p in (ROOT / "examples").glob("ticket_pairs*.csv"))
    for name in written:
        assert (tmp_path / name).read_bytes() == (ROOT / "examples" / name).read_bytes(), name


def test_skip_marker_is_recognised() -> None:
    """The parser reads the marker only on the line right above a fence."""
    text = (
        "a\n\n<!-- not run by the tests: needs a GPU somewhere -->\n```bash\nfalse\n```\n\n"
        "<!-- not run by the tests: far away -->\n\nprose\n\n```bash\ntrue\n```\n"
    )
    path = ROOT / "tests" / "_marker_probe.md"
    path.write_text(text, encoding="utf-8")
    try:
        first, second = code_blocks(path)
    finally:
        path.unlink()
    assert first.skip_reason == "needs a GPU somewhere" and first.body == "false\n"
    assert second.skip_reason is None and second.body == "true\n"


def test_example_config_is_the_documented_one() -> None:
    documented = [b.body for b in code_blocks(DOCS / "run.md") if b.lang == "toml"]
    shipped = (ROOT / "examples" / "run.toml").read_text(encoding="utf-8")
    assert documented == [shipped]
    config = tomllib.loads(shipped)
    for key in ("labeled", "unlabeled", "test"):
        assert (ROOT / config["data"][key]).is_file(), config["data"][key]


# ------------------------------------------------------------------- running the blocks
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _workdir(tmp: Path) -> dict[str, str]:
    """A scratch directory like a clone's root, and an environment whose textdistill is ours."""
    (tmp / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    bin_dir = tmp / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    shim = bin_dir / "textdistill"
    shim.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -c "import sys; '
        f'from textdistill.cli import main; sys.exit(main())" "$@"\n'
    )
    shim.chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


def _wait_for(port: int, server: subprocess.Popen[bytes], block: Block) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"{block}: the server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{block}: the server did not answer within 120 s")


@pytest.mark.slow
def test_documented_commands_run(tmp_path: Path) -> None:
    """Each runnable block, in document order, exits 0 (the tutorial's run uses the real
    default teacher on the example files: a few minutes on 2 cores)."""
    env = _workdir(tmp_path)
    by_page: dict[Path, list[Block]] = {}
    for block in shell_blocks():
        if block.skip_reason is None:
            by_page.setdefault(block.path, []).append(block)
    for blocks in by_page.values():
        port = _free_port()
        servers: list[subprocess.Popen[bytes]] = []
        try:
            for block in blocks:
                body = block.body.replace("8000", str(port))
                if SERVE.match(body):
                    command = body.split("#", 1)[0].strip()
                    if "--port" not in command:
                        command += f" --port {port}"
                    server = subprocess.Popen(
                        ["bash", "-c", f"exec {command}"],
                        cwd=tmp_path,
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    servers.append(server)
                    _wait_for(port, server, block)
                    continue
                done = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", body],
                    cwd=tmp_path,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=1200,
                )
                assert done.returncode == 0, (
                    f"{block} exited {done.returncode}:\n{block.body}\n"
                    f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
                )
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
    assert (tmp_path / "runs" / "tickets" / "student" / "model.json").is_file()


# ------------------------------------------------------------------- generated pages
def _hooks():  # type: ignore[no-untyped-def]
    """docs/hooks.py, loaded by path as MkDocs loads it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_documents_every_option() -> None:
    import argparse

    from textdistill.cli import build_parser

    parser = build_parser()
    page = _hooks().cli_reference(parser)
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(verbs.choices) >= {"demo", "run", "label", "predict", "export", "serve"}
    for name, verb in verbs.choices.items():
        assert f"## `textdistill {name}`" in page
        section = page.split(f"## `textdistill {name}`", 1)[1].split("\n## ", 1)[0]
        for action in verb._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for flag in action.option_strings or [action.metavar or action.dest]:
                assert f"`{flag}`" in section, f"{name}: {flag} missing from the reference"


def test_api_reference_shows_every_runtime_model_with_what_it_inherits() -> None:
    """Each model class that load() returns is in the API reference with the members it
    inherits (predict, push_to_hub, classes_): mkdocstrings shows a class's own members
    unless told otherwise, and a member without a docstring not at all."""
    import inspect
    import typing

    from textdistill.runtime import Model
    from textdistill.runtime.outputs import LabelOutputs

    api = (DOCS / "api.md").read_text(encoding="utf-8")
    for cls in typing.get_args(Model):
        block = re.search(
            rf"^::: textdistill\.runtime\.{cls.__name__}\n((?: {{4}}.*\n)+)", api, re.M
        )
        assert block is not None, f"{cls.__name__} is not in docs/api.md"
        assert "inherited_members: true" in block.group(1), cls.__name__
    for name in ("predict", "predict_proba", "push_to_hub", "classes_"):
        assert inspect.getdoc(getattr(LabelOutputs, name)), name


def test_cli_reference_escapes_help_text() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="textdistill")
    verbs = parser.add_subparsers(dest="verb")
    verb = verbs.add_parser("x", description="writes OUTPUT/<fingerprint>/ files")
    verb.add_argument("--config", help="a file with [data] [run] tables | or not (%(default)s)")
    page = _hooks().cli_reference(parser)
    assert "OUTPUT/&lt;fingerprint&gt;/" in page
    assert "\\[data\\] \\[run\\] tables \\| or not (None)" in page


def test_results_page_renders_any_rows_with_provenance(tmp_path: Path) -> None:
    import json

    hooks = _hooks()
    page_module = hooks._results_page_module()
    (tmp_path / "short_text.json").write_text(
        json.dumps(
            {
                "benchmark": "short_text",
                "command": "python benchmarks/short_text.py --data ../shared/data",
                "commit": "abc1234",
                "machine": {"cpu_model": "Intel(R) Xeon(R) Processor", "cpu_count": 2},
                "rows": [
                    {"dataset": "sst2", "student": "dense", "n_transfer": 23223,
                     "student_accuracy": 0.83142, "docs_per_s": 12345.6, "search": [{}]},
                    {"dataset": "trec", "student": "linear", "n_transfer": 900,
                     "student_accuracy": 0.7669, "docs_per_s": None},
                ],
            }
        )
    )  # fmt: skip
    (tmp_path / "bare.json").write_text(json.dumps({"rows": [{"a|b": "x|y"}]}))
    (tmp_path / "short_text_curve.png").write_bytes(b"\x89PNG")
    page = page_module.render(tmp_path, "assets/results/")
    short = page.split("## short_text", 1)[1]
    assert "- command: `python benchmarks/short_text.py --data ../shared/data`" in short
    assert "- commit: `abc1234`" in short
    assert "`cpu_model`: Intel(R) Xeon(R) Processor" in short
    assert "| dataset | student | n_transfer | student_accuracy | docs_per_s |" in short
    assert "| sst2 | dense | 23,223 | 0.8314 | 12,346 |" in short
    assert "| trec | linear | 900 | 0.7669 | – |" in short
    assert "Nested fields not shown, see the JSON: `search`." in short
    assert "![short_text_curve](assets/results/short_text_curve.png)" in short
    bare = page.split("## bare", 1)[1].split("## short_text", 1)[0]
    for field in ("command", "commit", "machine", "versions"):
        assert f"- {field}: **not recorded**" in bare
    assert "- source:" not in bare and "- source:" not in short  # the older bare "commit"
    (tmp_path / "short_text.json").write_text(
        json.dumps(
            {
                "benchmark": "short_text",
                "source": {"commit": "f" * 40, "dirty": True, "modified": ["src/x.py"]},
                "versions": {"numpy": "2.0.0"},
                "rows": [{"a": 1}],
            }
        )
    )
    short = page_module.render(tmp_path, "assets/results/").split("## short_text", 1)[1]
    assert f"`commit`: {'f' * 40}" in short and "`dirty`: yes" in short
    assert "`numpy`: 2.0.0" in short and "- commit:" not in short
    assert "| a\\|b |" in bare and "| x\\|y |" in bare
    (tmp_path / "bare.json").write_text(json.dumps({"written_by_hand": "typed up", "rows": []}))
    bare = page_module.render(tmp_path, "assets/results/").split("## bare", 1)[1]
    assert "**Written by hand**: typed up" in bare and "written_by_hand" not in bare


def test_every_results_file_was_recorded_by_its_script_or_says_it_was_not() -> None:
    """A script's file (``results_file.write_results``, or its older form) names the machine's
    platform; a file typed up from a run's output says so, and why, in ``written_by_hand``.

    That note names the script whose output it was typed from and how to regenerate the file
    with it, and the file still says what ran, at which commit, on what machine (typed, so
    unchecked): a bare "by hand" would leave a reader with numbers and no source.
    """
    import json

    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        content = json.loads(path.read_text(encoding="utf-8"))
        recorded = "platform" in content.get("machine", {})
        by_hand = content.get("written_by_hand")
        assert recorded != bool(by_hand), path.name
        if recorded:
            continue
        script = f"benchmarks/{content.get('benchmark', path.stem)}.py"
        assert isinstance(by_hand, str) and script in by_hand, (path.name, script)
        assert (ROOT / script).is_file() and "Regenerate with" in by_hand, path.name
        for field in ("command", "commit", "machine"):
            assert content.get(field), (path.name, field)


def test_results_page_covers_every_results_file() -> None:
    page = _hooks()._results_page_module().render()
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        assert f"File: `benchmarks/results/{path.name}`" in page
    for plot in sorted((ROOT / "benchmarks" / "results").glob("*.png")):
        assert f"({plot.name})" in page or f"results/{plot.name})" in page


# Results files written before results_file recorded the machine in full (CPU model and
# flags, RAM, load, library versions, the commit and whether the tree was dirty): their
# numbers stand as recorded, with less provenance, until their script runs again. A file
# leaves this set when it is rerun; no file may join it.
RECORDED_BEFORE_FULL_PROVENANCE = {
    "multilabel_quality.json",
    "neural_student.json",
    "ray_labeling.json",
    "seed_protocol.json",
    "seed_protocol_gpu_teacher.json",
    "streaming_student.json",
    "student_quality.json",
    "student_quality_gpu_teacher.json",
}
FULL_MACHINE = ("cpu_model", "cpu_flags", "ram_bytes", "logical_cpus", "load_average_at_start")


def test_every_results_file_written_by_a_script_records_its_machine_versions_and_commit() -> None:
    import json

    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        content = json.loads(path.read_text(encoding="utf-8"))
        if content.get("written_by_hand"):
            continue
        machine, source = content.get("machine", {}), content.get("source")
        full = (
            all(machine.get(field) is not None for field in FULL_MACHINE)
            and bool(content.get("versions"))
            and isinstance(source, dict)
            and bool(source.get("commit"))
            and "dirty" in source
        )
        if path.name in RECORDED_BEFORE_FULL_PROVENANCE:
            assert not full, f"{path.name} was rerun: take it out of the list"
        else:
            assert full, f"{path.name}: written without the full machine record"

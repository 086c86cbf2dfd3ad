"""scripts/check-skips: CI fails on a skip that .ci/allowed-skips does not allow and explain."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check-skips"

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="tests.test_faults" name="test_a_full_disk[120]">
  <skipped type="pytest.skip" message="needs root on Linux to mount a tmpfs">x</skipped>
</testcase>
<testcase classname="tests.test_augment" name="test_spacy_tags_parts_of_speech_when_installed">
  <skipped type="pytest.skip" message="spaCy is not installed">x</skipped>
</testcase>
<testcase classname="tests.test_augment" name="test_passes"/>
</testsuite></testsuites>
"""


def _check(tmp_path: Path, allowed: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "report.xml").write_text(REPORT)
    (tmp_path / "allowed").write_text(allowed)
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "report.xml"), str(tmp_path / "allowed")],
        cwd=ROOT,  # node ids are resolved against the checkout's test files
        capture_output=True,
        text=True,
    )


def test_an_unexpected_skip_fails_and_is_named_with_its_reason(tmp_path: Path) -> None:
    done = _check(tmp_path, "# comment\ntests/test_faults.py::test_a_full_disk[[]*] | no root\n")
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        "unexpected skip: tests/test_augment.py::test_spacy_tags_parts_of_speech_when_installed:"
        " spaCy is not installed"
    )
    assert "test_a_full_disk" not in done.stderr


def test_allowed_skips_pass(tmp_path: Path) -> None:
    done = _check(
        tmp_path,
        "tests/test_faults.py::test_a_full_disk* | no root\n"
        "tests/test_augment.py::test_spacy_* | spaCy absent\n",
    )
    assert done.returncode == 0, done.stderr
    assert "skips: 2, all allowed" in done.stdout


def test_an_allowed_skip_needs_a_reason(tmp_path: Path) -> None:
    done = _check(tmp_path, "tests/test_augment.py::test_spacy_*\n")
    assert done.returncode == 1 and "needs ' | ' and a reason" in done.stderr


def test_the_ci_allow_list_names_only_tests_that_exist() -> None:
    """A stale line would silently allow a future skip of a renamed test."""
    globs = [
        line.partition(" | ")[0].strip()
        for line in (ROOT / ".ci" / "allowed-skips").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert globs
    for glob in globs:
        path, _, name = glob.partition("::")
        function = name.split("[")[0].rstrip("*")
        assert f"def {function}(" in (ROOT / path).read_text(), glob

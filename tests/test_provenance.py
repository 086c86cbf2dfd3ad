"""Provenance: the CPU, versions and commit a results file records must be the real ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from textdistill.provenance import cpuinfo, machine, provenance, source, versions

CPUINFO = """\
processor\t: 0
model name\t: Example(R) CPU 9000
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse2 avx2 avx512f amx_tile
processor\t: 1
model name\t: Example(R) CPU 9000
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse2 avx2 avx512f amx_tile
processor\t: 2
model name\t: Example(R) CPU 9000
physical id\t: 0
core id\t\t: 1
flags\t\t: fpu sse2 avx2 avx512f amx_tile
"""


def test_cpuinfo_reads_model_flags_and_physical_cores(tmp_path: Path) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    model, flags, cores = cpuinfo(path)
    assert model == "Example(R) CPU 9000"
    assert {"avx2", "avx512f", "amx_tile"} <= flags and "avx512_bf16" not in flags
    assert cores == 2  # three logical CPUs (two are hyperthreads of one core)
    assert cpuinfo(tmp_path / "absent") == (None, set(), None)


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="reads Linux's /proc/cpuinfo")
def test_machine_names_this_cpu() -> None:
    record = machine(load_at_start=(1.0, 2.0, 3.0))
    text = Path("/proc/cpuinfo").read_text()
    model = next(
        line.split(":", 1)[1].strip() for line in text.splitlines() if "model name" in line
    )
    assert record["cpu_model"] == model
    flags = set(next(line for line in text.splitlines() if line.startswith("flags")).split())
    assert record["cpu_flags"]["avx2"] == ("avx2" in flags)
    assert record["cpu_flags"]["amx_tile"] == ("amx_tile" in flags)
    assert record["logical_cpus"] == os.cpu_count()
    assert record["cpus_available"] == len(os.sched_getaffinity(0))
    assert record["ram_bytes"] > 2**28
    assert record["load_average_at_start"] == [1.0, 2.0, 3.0]
    assert len(record["load_average_at_end"]) == 3


def test_versions_are_the_installed_ones() -> None:
    found = versions()
    assert found["python"] == ".".join(map(str, sys.version_info[:3]))
    assert found["numpy"] == metadata.version("numpy")
    assert found["textdistill"] == metadata.version("textdistill")
    assert set(found) >= {"torch", "transformers", "onnxruntime"}


def test_recording_provenance_does_not_import_torch() -> None:
    code = (
        "import sys; from textdistill.provenance import provenance; provenance(); "
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_source_is_the_real_commit_and_flags_edits(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "benchmarks" / "results").mkdir(parents=True)
    (repo / "src" / "code.py").write_text("x = 1\n")
    (repo / "benchmarks" / "results" / "a.json").write_text("{}\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    head = _git(repo, "rev-parse", "HEAD")

    clean = source(repo / "src")  # from a subdirectory: the whole checkout is looked at
    assert clean == {"commit": head, "dirty": False, "modified": []}
    assert len(clean["commit"]) == 40

    (repo / "scratch.txt").write_text("untracked")  # untracked files are not code that ran
    (repo / "benchmarks" / "results" / "a.json").write_text('{"new": 1}\n')  # an output
    assert source(repo / "src")["dirty"] is False

    (repo / "src" / "code.py").write_text("x = 2\n")
    edited = source(repo / "benchmarks")
    assert edited == {"commit": head, "dirty": True, "modified": ["src/code.py"]}

    _git(repo, "add", "src/code.py")  # staged but not committed is still not the commit
    assert source(repo)["dirty"] is True

    assert source(tmp_path) == {"commit": None, "dirty": None, "modified": None}


def test_results_file_records_provenance(tmp_path: Path) -> None:
    """The benchmarks' writer: provenance, command and rows in one JSON, load taken at start."""
    bench = Path(__file__).resolve().parent.parent / "benchmarks"
    code = (
        "import sys, pathlib, results_file;"
        "results_file.RESULTS_DIR = pathlib.Path(sys.argv[1]);"
        "results_file.write_results('demo', [{'x': 1}], note='n')"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=bench,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(bench), *sys.path])},
        check=True,
    )
    written = json.loads((tmp_path / "demo.json").read_text())
    assert written["rows"] == [{"x": 1}] and written["note"] == "n"
    assert written["machine"]["cpu_model"] == provenance()["machine"]["cpu_model"]
    assert len(written["machine"]["load_average_at_start"]) == 3
    assert written["versions"]["numpy"] == metadata.version("numpy")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=bench, capture_output=True, text=True
    ).stdout.strip()
    assert written["source"]["commit"] == (head or None)

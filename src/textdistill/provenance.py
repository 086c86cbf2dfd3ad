"""Where a number came from: the machine, the libraries and the source that produced it.

A throughput figure means little without the CPU behind it (bf16 labeling is 2-3x fp32 with
AMX and about 5x *slower* without it), the threads it used, whether other work was running,
and the exact code. Every benchmark JSON and every run's ``metrics.json`` carries this record
so a reader can tell a quiet 2-core Xeon from a busy laptop, and a commit from an edited tree.

Only the standard library is used and nothing heavy is imported: library versions come from
the installed distributions' metadata, so recording provenance never loads torch.

>>> record = provenance(load_at_start=(0.5, 0.25, 0.125))
>>> record["machine"]["load_average_at_start"]
[0.5, 0.25, 0.125]
>>> sorted(record) == ["machine", "source", "versions"]
True
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

# The instruction-set extensions that change what a teacher or student costs on a CPU.
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")

# The distributions whose versions move the numbers (absent ones are recorded as None).
LIBRARIES = ("numpy", "torch", "transformers", "onnxruntime", "scikit-learn", "textdistill")

# Outputs that benchmarks rewrite: edits there do not change what the code computes.
OUTPUTS = "benchmarks/results"

# Environment variables that cap the threads numerical libraries use.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def cpuinfo(path: Path = Path("/proc/cpuinfo")) -> tuple[str | None, set[str], int | None]:
    """CPU model, flags and physical core count from /proc/cpuinfo (Linux); empty elsewhere.

    ``platform.processor()`` is empty on Linux, so the model name is read from here.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, set(), None
    model: str | None = None
    flags: set[str] = set()
    cores: set[tuple[str, str]] = set()
    physical = core = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and model is None:
            model = value
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
        elif key == "physical id":
            physical = value
        elif key == "core id":
            core = value
            cores.add((physical, core))
    return model, flags, len(cores) or None


def _ram_bytes() -> int | None:
    """Total physical memory, from sysconf where the platform has it."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def machine(load_at_start: tuple[float, float, float] | None = None) -> dict[str, Any]:
    """The CPU (model, flags, cores), RAM, thread limits and load of this machine.

    ``load_at_start`` is the 1/5/15-minute load average taken when the measured work began
    (a benchmark's start); the load now is recorded beside it, so a run that shared the
    machine with other work says so.
    """
    model, flags, physical_cores = cpuinfo()
    torch = sys.modules.get("torch")  # only if the caller already loaded it
    return {
        "platform": platform.platform(),
        "cpu_model": model or platform.processor() or None,
        "cpu_flags": {flag: flag in flags for flag in CPU_FLAGS},
        "physical_cores": physical_cores,
        "logical_cpus": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "thread_variables": {name: os.environ.get(name) for name in THREAD_VARIABLES},
        "ram_bytes": _ram_bytes(),
        "load_average_at_start": list(load_at_start) if load_at_start is not None else None,
        "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def versions() -> dict[str, str | None]:
    """Python and the installed versions of the libraries that move the numbers."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def source(directory: Path) -> dict[str, Any]:
    """The git commit of the checkout holding ``directory``, and which tracked files had edits.

    ``dirty`` counts modified tracked files only, outside the benchmarks' results (a
    benchmark's earlier output is not code); untracked scratch files do not change what the
    committed code computes. Outside a git checkout (an installed wheel) all are None.
    """

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=directory, check=False
        )

    unknown = {"commit": None, "dirty": None, "modified": None}
    try:
        head = git("rev-parse", "HEAD")
    except OSError:  # no git on this machine
        return unknown
    if head.returncode != 0:
        return unknown
    listed = git("diff", "HEAD", "--name-only", "-z", "--", ":(top)", f":(top,exclude){OUTPUTS}")
    modified = sorted(name for name in listed.stdout.split("\0") if name)
    return {"commit": head.stdout.strip(), "dirty": bool(modified), "modified": modified}


def provenance(
    load_at_start: tuple[float, float, float] | None = None, directory: Path | None = None
) -> dict[str, Any]:
    """``machine``, ``versions`` and ``source`` in one record, for a results file or a run.

    ``directory`` is any path inside the checkout whose code ran (default: this package's).
    """
    return {
        "machine": machine(load_at_start),
        "versions": versions(),
        "source": source(directory or Path(__file__).resolve().parent),
    }

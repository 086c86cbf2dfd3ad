"""Faults a nightly job meets: SIGKILL at any moment, a full disk, a read-only directory, two
jobs on one run directory, damaged or edited outputs, a directory from a newer textdistill.

The SIGKILL tests run the real command line (``python -m textdistill.cli run``) in a
subprocess with the tiny BERT teacher, freeze it with SIGSTOP at the moment of interest (so
what is on disk can be inspected while nothing moves), then kill it with SIGKILL, which no
handler can catch: what a crashed machine or an out-of-memory killer leaves behind.

Labeling is slowed only by its batch size: ``label_batch_size = 4`` in the ``[run]`` table of
the TOML file turns 2,000 texts into 500 chunks, a few seconds of work.

Logits of a resumed run are compared with those of an uninterrupted one with a tolerance
(1e-5), not for equality: texts are scored in length-sorted batches padded to their longest
member, and a resumed run groups the remaining texts into different batches. Padding is
masked out, but a different padded width changes the order of floating-point sums, so a
logit may move in its last bits (about 1e-7 here).
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import textdistill
from conftest import _make_toy_sentiment
from textdistill.cli import main
from textdistill.logits_store import LogitsStore
from textdistill.pipeline import TEACHER_CHECKPOINT
from textdistill.run_directory import RunDirectory, RunDirectoryError
from textdistill.runtime import load

N_UNLABELED = 2000
LABEL_BATCH = 4
TOLERANCE = 1e-5
TOML = f"""
[run]
label_batch_size = {LABEL_BATCH}
seed = 0

[teacher]
epochs = 3
max_length = 32
learning_rate = 0.001
batch_size = 8
precision = "fp32"   # the auto choice is timed; these runs compare logits across run dirs

[student]
min_df = 1
kind = "linear"   # faults are the subject here; the dense fit would add a minute to every run
"""


# ------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> SimpleNamespace:
    """Input files and the command-line arguments every run of this module shares."""
    root = tmp_path_factory.mktemp("faults")
    texts, labels = _make_toy_sentiment()
    labeled = root / "labeled.jsonl"
    labeled.write_text(
        "".join(
            json.dumps({"text": t, "label": y}) + "\n" for t, y in zip(texts, labels, strict=True)
        )
    )
    more, _ = _make_toy_sentiment(n_per_class=N_UNLABELED // 2, seed=1)
    unlabeled_texts = [f"{text} number {i}" for i, text in enumerate(more)]
    unlabeled = root / "unlabeled.txt"
    unlabeled.write_text("".join(t + "\n" for t in unlabeled_texts))
    config = root / "run.toml"
    config.write_text(TOML)
    arguments = [
        "run",
        "--config",
        str(config),
        "--labeled",
        str(labeled),
        "--unlabeled",
        str(unlabeled),
        "--teacher",
        str(tiny_bert_dir),
        "--no-progress",
    ]
    return SimpleNamespace(root=root, arguments=arguments, unlabeled=unlabeled_texts)


def _command(workspace: SimpleNamespace, out: Path, extra: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "textdistill.cli",
        *workspace.arguments,
        "--out",
        str(out),
        *extra,
    ]


class Run:
    """A ``textdistill run`` subprocess whose output goes to files (a pipe could fill up)."""

    def __init__(
        self,
        workspace: SimpleNamespace,
        out: Path,
        logs: Path | None = None,
        env: dict[str, str] | None = None,
        extra: list[str] | None = None,
    ) -> None:
        self.out, self.workspace, self.extra = out, workspace, extra or []
        logs = logs or out.parent
        logs.mkdir(parents=True, exist_ok=True)
        index = len(list(logs.glob(f"{out.name}.*.stderr")))
        self.stderr_path = logs / f"{out.name}.{index}.stderr"
        self.stdout_path = logs / f"{out.name}.{index}.stdout"
        with self.stderr_path.open("wb") as err, self.stdout_path.open("wb") as std:
            self.process = subprocess.Popen(
                _command(workspace, out, self.extra),
                stdout=std,
                stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_until(self, condition: Callable[[], bool], timeout: float = 300.0) -> None:
        """Poll ``condition`` every millisecond; fail if the run ends or time runs out first."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                pytest.fail(
                    f"the run ended (exit {self.process.returncode}) too early:\n{self.stderr}"
                )
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"timed out waiting for the run:\n{self.stderr}")
            time.sleep(0.001)

    def freeze(self) -> None:
        """SIGSTOP: nothing on disk changes until :meth:`kill` (or :meth:`thaw`)."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        self.process.kill()  # SIGKILL, even while stopped
        self.process.wait(timeout=30)

    def finish(self, timeout: float = 900.0) -> int:
        """The exit status; a run still going after ``timeout`` seconds is killed, not left
        behind to compete with the next test."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise


def _store_directory(out: Path) -> Path | None:
    found = (
        [p for p in (out / "logits").glob("*") if p.is_dir()] if (out / "logits").is_dir() else []
    )
    return found[0] if found else None


def _chunks(out: Path) -> list[Path]:
    store = _store_directory(out)
    return sorted(store.glob("chunk-*.npz")) if store else []


def _rows(chunks: list[Path]) -> int:
    total = 0
    for chunk in chunks:
        with np.load(chunk, allow_pickle=False) as content:
            total += len(content["hashes"])
    return total


def _metrics(out: Path) -> dict[str, Any]:
    return json.loads((out / "metrics.json").read_text())


def _unlabeled_logits(out: Path, workspace: SimpleNamespace) -> np.ndarray:
    metrics = _metrics(out)
    store = LogitsStore(
        out / "logits",
        fingerprint=metrics["teacher"]["fingerprint"],
        n_classes=len(metrics["teacher"]["classes"]),
    )
    return store.get(workspace.unlabeled)


def _kept(stderr: str) -> int:
    """How many already scored texts the labeling log line says were kept (0 if none)."""
    found = re.search(
        r"labeling unlabeled set: \d+ distinct texts to score \(\d+ given, (\d+)", stderr
    )
    return int(found.group(1)) if found else 0


@pytest.fixture(scope="module")
def reference(workspace: SimpleNamespace) -> Path:
    """One uninterrupted run: what every interrupted run must end up equal to."""
    out = workspace.root / "reference"
    run = Run(workspace, out)
    assert run.finish() == 0, run.stderr
    return out


# ----------------------------------------------------------------------------- SIGKILL
def test_sigkill_during_labeling_loses_at_most_the_batch_in_flight(
    workspace: SimpleNamespace, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    saved_rows = 0
    # Three kills at different points of labeling (500 chunks in all), each rerun resuming
    # from what the previous one saved, then a run to the end.
    for kill_at_chunk in (1, 150, 350):
        run = Run(workspace, out)
        run.wait_until(lambda n=kill_at_chunk: len(_chunks(out)) >= n)
        run.freeze()
        chunks = _chunks(out)
        store = _store_directory(out)
        assert store is not None
        in_flight = list(store.glob(".chunk-*.tmp"))
        run.kill()
        # Every batch is saved before the next one is scored: at most one unsaved batch.
        assert len(in_flight) <= 1
        assert _kept(run.stderr) == saved_rows, run.stderr  # nothing saved was scored again
        saved_rows = _rows(chunks)
        assert saved_rows >= kill_at_chunk * LABEL_BATCH
        assert not (out / "stages" / "student.json").exists()
        assert not (out / "metrics.json").exists()
        if kill_at_chunk > 1:
            assert "teacher: unchanged, reusing" in run.stderr

    final = Run(workspace, out)
    assert final.finish() == 0, final.stderr
    assert _kept(final.stderr) == saved_rows, final.stderr
    labeling = _metrics(out)["teacher"]["labeling"]
    assert labeling["n_cached"] == saved_rows
    assert labeling["n_scored"] == N_UNLABELED - saved_rows

    # The same teacher (a fixed seed on a CPU gives the same weights) and the same logits.
    assert _metrics(out)["teacher"]["fingerprint"] == _metrics(reference)["teacher"]["fingerprint"]
    np.testing.assert_allclose(
        _unlabeled_logits(out, workspace),
        _unlabeled_logits(reference, workspace),
        rtol=0,
        atol=TOLERANCE,
    )
    # No text was stored twice (a batch saved twice would show here), none is missing.
    stored = _rows(_chunks(out))
    assert stored == len(
        LogitsStore(
            out / "logits", fingerprint=_metrics(out)["teacher"]["fingerprint"], n_classes=2
        )
    )
    assert not list((out / "stages").glob("*.started"))


def _checkpoint_epoch(path: Path) -> int | None:
    """The last finished epoch saved in a fine-tuning checkpoint, or None if there is none."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as handle:
        return int(json.loads((handle.metadata() or {})["textdistill"])["epoch"])


def test_sigkill_during_fine_tuning_resumes_after_the_last_epoch_and_student_fit_restarts(
    workspace: SimpleNamespace, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    stages = out / "stages"
    checkpoint = out / TEACHER_CHECKPOINT

    first = Run(workspace, out)
    first.wait_until(checkpoint.exists)  # an epoch finished, the next one is running
    first.freeze()
    assert not (stages / "teacher.json").exists(), "the kill came after fine-tuning"
    finished = _checkpoint_epoch(checkpoint)
    first.kill()
    assert finished is not None and 1 <= finished <= 3
    assert not (out / "teacher" / "teacher.json").exists()

    second = Run(workspace, out)
    second.wait_until((stages / "student.started").exists)
    second.freeze()
    assert not (stages / "student.json").exists(), "the kill came after the student fit"
    second.kill()
    assert re.search(
        r"teacher: the previous fine-tuning did not finish \(started \d{4}-\d\d-\d\dT.*\); "
        "continuing after its last finished epoch",
        second.stderr,
    ), second.stderr
    assert f"resuming fine-tuning after epoch {finished} of 3" in second.stderr, second.stderr
    assert not checkpoint.exists()  # removed once the fine-tuning ended

    third = Run(workspace, out)
    assert third.finish() == 0, third.stderr
    assert "student: the previous fit did not finish" in third.stderr
    assert "teacher: unchanged, reusing" in third.stderr
    assert "did not finish" not in third.stderr.replace(
        "student: the previous fit did not finish", ""
    )
    assert "resuming fine-tuning" not in third.stderr
    assert not list(stages.glob("*.started"))
    assert not [p for p in out.iterdir() if ".tmp-" in p.name or ".old-" in p.name]

    # Resumed and restarted cleanly: the same teacher (bit for bit: the fingerprint hashes the
    # weights) and the same student as the uninterrupted run.
    assert _metrics(out)["teacher"]["fingerprint"] == _metrics(reference)["teacher"]["fingerprint"]
    texts = workspace.unlabeled[:200]
    np.testing.assert_allclose(
        load(str(out / "student")).decision_function(texts),
        load(str(reference / "student")).decision_function(texts),
        rtol=0,
        atol=TOLERANCE,
    )


# ------------------------------------------------------------- runs sharing a logits cache
LABELING = "labeling unlabeled set: "


def _sharing_runs(
    workspace: SimpleNamespace, root: Path, cache: Path
) -> tuple[Run, Run, list[str]]:
    """Two runs started together on one logits cache, with overlapping unlabeled sets (the
    first 1,500 and the last 1,500 texts: 1,000 in both). Whichever reaches labeling first is
    held (SIGSTOP) until the other reaches it too, so that they label at the same time."""
    runs = []
    for name, texts in (("a", workspace.unlabeled[:1500]), ("b", workspace.unlabeled[500:])):
        unlabeled = root / f"unlabeled-{name}.txt"
        unlabeled.write_text("".join(t + "\n" for t in texts))
        arguments = list(workspace.arguments)
        arguments[arguments.index("--unlabeled") + 1] = str(unlabeled)
        runs.append(
            Run(
                SimpleNamespace(arguments=arguments),
                root / f"run-{name}",
                extra=["--logits-cache", str(cache)],
            )
        )
    first, second = runs
    deadline = time.monotonic() + 300
    while not any(LABELING in run.stderr for run in runs):
        assert all(run.process.poll() is None for run in runs), first.stderr + second.stderr
        assert time.monotonic() < deadline, "neither run reached labeling"
        time.sleep(0.001)
    leader, follower = (first, second) if LABELING in first.stderr else (second, first)
    leader.freeze()
    follower.wait_until(lambda: LABELING in follower.stderr, timeout=300)
    leader.thaw()
    return first, second, workspace.unlabeled


def _cache_store(cache: Path) -> Path:
    [store] = [p for p in cache.iterdir() if p.is_dir()]
    return store


def _stored_hashes(store: Path) -> list[bytes]:
    hashes = []
    for chunk in store.glob("chunk-*.npz"):
        with np.load(chunk, allow_pickle=False) as content:
            hashes.extend(row.tobytes() for row in content["hashes"])
    return hashes


def _lone_runs_hashes(reference: Path) -> set[bytes]:
    """What a lone run on all the texts stores: the unlabeled set, the test set (timed) and the
    teacher's calibration split."""
    store = _store_directory(reference)
    assert store is not None
    hashes = _stored_hashes(store)
    assert len(hashes) == len(set(hashes)) > N_UNLABELED
    return set(hashes)


def _cache_logits(cache: Path, out: Path, texts: list[str]) -> np.ndarray:
    teacher = _metrics(out)["teacher"]
    store = LogitsStore(cache, fingerprint=teacher["fingerprint"], n_classes=2)
    return store.get(texts)


def test_two_runs_sharing_a_logits_cache_split_the_labeling_and_store_each_text_once(
    workspace: SimpleNamespace, reference: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    first, second, texts = _sharing_runs(workspace, tmp_path, cache)
    assert first.finish() == 0, first.stderr
    assert second.finish() == 0, second.stderr
    fingerprint = _metrics(reference)["teacher"]["fingerprint"]
    for run in (first, second):  # one teacher, so one store: the runs did share it
        assert _metrics(run.out)["teacher"]["fingerprint"] == fingerprint
    scored = [_metrics(run.out)["teacher"]["labeling"]["n_scored"] for run in (first, second)]
    # Each scored its own 500 texts and part of the 1,000 shared ones; no text twice.
    assert sum(scored) == N_UNLABELED and min(scored) > 500, scored
    hashes = _stored_hashes(_cache_store(cache))
    assert len(hashes) == len(set(hashes))  # every text stored once...
    assert set(hashes) == _lone_runs_hashes(reference)  # ...and each one a lone run stores
    np.testing.assert_allclose(
        _cache_logits(cache, first.out, texts),
        _unlabeled_logits(reference, workspace),
        rtol=0,
        atol=TOLERANCE,
    )
    assert not list((_cache_store(cache) / "claims").iterdir())


def test_sigkill_of_one_of_two_runs_sharing_a_cache_loses_at_most_its_batch_in_flight(
    workspace: SimpleNamespace, reference: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    first, second, texts = _sharing_runs(workspace, tmp_path, cache)
    first.wait_until(lambda: len(_stored_hashes(_cache_store(cache))) >= 600, timeout=300)
    first.freeze()
    store = _cache_store(cache)
    stored_at_kill = set(_stored_hashes(store))
    [claim] = store.glob(f"claims/{first.process.pid}-*.claim")
    content = claim.read_bytes()
    in_flight = {content[i : i + 16] for i in range(0, len(content), 16)} - stored_at_kill
    first.kill()
    assert len(in_flight) <= LABEL_BATCH  # all it loses: the batch it was scoring

    # The survivor takes over the dead run's claim (no wait for ever) and finishes; the
    # killed run, run again, finds the rest of its texts stored or scores them.
    assert second.finish() == 0, second.stderr
    again = Run(first.workspace, first.out, extra=first.extra)
    assert again.finish() == 0, again.stderr
    hashes = _stored_hashes(store)
    assert len(hashes) == len(set(hashes))  # nothing saved was scored again
    assert set(hashes) == _lone_runs_hashes(reference)
    assert stored_at_kill <= set(hashes)
    np.testing.assert_allclose(
        _cache_logits(cache, second.out, texts),
        _unlabeled_logits(reference, workspace),
        rtol=0,
        atol=TOLERANCE,
    )
    assert not list((store / "claims").iterdir())  # the dead run's claim was removed


# ------------------------------------------------------------------- full disk, read only
def _mount(*arguments: str) -> None:
    finished = subprocess.run(["mount", *arguments], capture_output=True, text=True)
    if finished.returncode != 0:
        pytest.skip(f"mount is not permitted here ({finished.stderr.strip()})")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs (root and CAP_SYS_ADMIN needed; skipped elsewhere)."""
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root on Linux to mount a tmpfs")
    point = tmp_path / "disk"
    point.mkdir()
    _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point))
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def _one_error_line(stderr: str) -> str:
    """The error of a failed run: exactly one line that is not progress, and no traceback."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("textdistill run: error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def _no_half_written_files(out: Path) -> None:
    """Nothing a rerun would trust is incomplete: no temporary files (except at most the
    batch in flight of a killed writer, never read), every chunk verifies, every completed
    stage's outputs match their recorded sha256s."""
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".tmp") or ".tmp-" in p.name]
    assert leftovers == []
    store = _store_directory(out)
    if store is not None:
        for chunk in store.glob("chunk-*.npz"):
            with np.load(chunk, allow_pickle=False) as content:
                assert len(content["hashes"]) == len(content["logits"])
    for marker in (out / "stages").glob("*.json"):
        record = json.loads(marker.read_text())
        for name, digest in record.get("outputs", {}).items():
            import hashlib

            assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("free_kb", [120, 450])
def test_a_full_disk_is_one_clear_line_and_a_rerun_after_making_room_completes(
    workspace: SimpleNamespace, reference: Path, tmpfs: Path, free_kb: int
) -> None:
    # 120 KB runs out while the teacher is saved; 450 KB during labeling.
    filler = tmpfs / "filler"
    filler.write_bytes(b"\0" * ((1024 - free_kb) * 1024))
    out = tmpfs / "run"
    run = Run(workspace, out)
    assert run.finish() == 1, run.stderr
    line = _one_error_line(run.stderr)
    assert "No space left on device" in line and str(tmpfs) in line, line
    assert "nothing half-written was kept" in line
    assert not (out / "metrics.json").exists()
    _no_half_written_files(out)

    filler.unlink()  # make room
    _mount("-o", "remount,size=16m", str(tmpfs))
    again = Run(workspace, out)
    assert again.finish() == 0, again.stderr
    np.testing.assert_allclose(
        _unlabeled_logits(out, workspace),
        _unlabeled_logits(reference, workspace),
        rtol=0,
        atol=TOLERANCE,
    )


def test_a_read_only_run_directory_is_one_clear_line_and_is_left_untouched(
    workspace: SimpleNamespace, reference: Path, tmpfs: Path
) -> None:
    _mount("-o", "remount,size=16m", str(tmpfs))
    out = tmpfs / "run"
    shutil.copytree(reference, out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    _mount("-o", "remount,ro", str(tmpfs))
    run = Run(workspace, out, logs=tmpfs.parent)
    assert run.finish() == 1, run.stderr
    line = _one_error_line(run.stderr)
    assert "Read-only file system" in line and str(out) in line, line
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


# ------------------------------------------- full disk, read only: without a mount
@pytest.fixture(scope="session")
def faulty_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/faulty_disk.c built into an LD_PRELOAD library: a full or read-only disk under
    one directory for every writer of a process (Python, numpy, torch, safetensors), with no
    mount and no privileges, so these faults are exercised on every Linux machine."""
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if sys.platform != "linux" or compiler is None:
        pytest.skip("needs Linux and a C compiler (the one that builds textdistill's extension)")
    library = tmp_path_factory.mktemp("faulty_disk") / "faulty_disk.so"
    source = Path(__file__).with_name("faulty_disk.c")
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O1", "-o", str(library), str(source), "-ldl"],
        check=True,
        capture_output=True,
    )
    return library


def _disk(library: Path, disk: Path, mode: str, budget: int = 0) -> dict[str, str]:
    return {
        "LD_PRELOAD": str(library),
        "FAULTY_DISK_DIR": str(disk.resolve()),
        "FAULTY_DISK_MODE": mode,
        "FAULTY_DISK_BYTES": str(budget),
    }


@pytest.mark.parametrize(
    ("budget_kb", "stage"),
    # The baseline and stage markers take about 21 KB, the fine-tuning's checkpoint after each
    # of the 3 epochs and the teacher together 1.1 to 1.5 MB, the logits of 2,000 texts about
    # 400 KB (measured: 1,100 KB runs out before the teacher is saved, 1,500 and 2,200 KB
    # during labeling): 80 KB runs out in fine-tuning, 1,800 KB during labeling. The stage
    # is checked, so a change of sizes fails here instead of passing.
    [(80, "teacher"), (1800, "labeling")],
)
def test_a_full_disk_without_a_mount_is_one_clear_line_and_a_rerun_completes(
    workspace: SimpleNamespace,
    reference: Path,
    faulty_disk: Path,
    tmp_path: Path,
    budget_kb: int,
    stage: str,
) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    out = disk / "run"
    logs = tmp_path / "logs"  # the run's stderr must not land on the full disk
    run = Run(workspace, out, logs=logs, env=_disk(faulty_disk, disk, "full", budget_kb * 1024))
    assert run.finish() == 1, run.stderr
    line = _one_error_line(run.stderr)
    assert "No space left on device" in line and str(disk) in line, line
    assert "nothing half-written was kept" in line
    assert not (out / "metrics.json").exists()
    _no_half_written_files(out)
    stages = out / "stages"
    assert (stages / "baseline.json").exists()
    assert (stages / "teacher.json").exists() == (stage == "labeling"), sorted(stages.iterdir())
    if stage == "labeling":
        assert 0 < len(_chunks(out)) < N_UNLABELED // LABEL_BATCH

    again = Run(workspace, out, logs=logs)  # room made: the same command, no fault
    assert again.finish() == 0, again.stderr
    if stage == "labeling":
        assert "teacher: unchanged, reusing" in again.stderr
        assert _metrics(out)["teacher"]["labeling"]["n_cached"] > 0  # resumed, not redone
    np.testing.assert_allclose(
        _unlabeled_logits(out, workspace),
        _unlabeled_logits(reference, workspace),
        rtol=0,
        atol=TOLERANCE,
    )
    texts = workspace.unlabeled[:200]
    np.testing.assert_allclose(
        load(str(out / "student")).decision_function(texts),
        load(str(reference / "student")).decision_function(texts),
        rtol=0,
        atol=TOLERANCE,
    )


def test_a_read_only_run_directory_without_a_mount_is_one_clear_line_and_left_untouched(
    workspace: SimpleNamespace, reference: Path, faulty_disk: Path, tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    out = disk / "run"
    shutil.copytree(reference, out)
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in out.rglob("*")}
    run = Run(workspace, out, logs=tmp_path / "logs", env=_disk(faulty_disk, disk, "readonly"))
    assert run.finish() == 1, run.stderr
    line = _one_error_line(run.stderr)
    assert "Read-only file system" in line and str(out) in line, line
    assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in out.rglob("*")} == before


# -------------------------------------------------------------- write errors, in process
class _FailingOs:
    """``os`` for runtime/atomic.py whose ``replace`` fails for chosen file names."""

    def __init__(self, pattern: str, code: int) -> None:
        self.pattern = pattern
        self.code = code
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def replace(self, source: Any, target: Any) -> None:
        if fnmatch.fnmatch(Path(target).name, self.pattern):
            self.failures += 1
            raise OSError(self.code, os.strerror(self.code))
        os.replace(source, target)


@pytest.mark.parametrize(
    ("pattern", "code"),
    [
        ("chunk-*.npz", errno.ENOSPC),  # a logits chunk, during labeling
        ("student.json", errno.ENOSPC),  # a stage marker, after the student is saved
        ("metrics.json", errno.EROFS),  # the very last write
    ],
)
def test_a_failing_write_stops_with_one_line_and_the_rerun_trusts_only_complete_files(
    workspace: SimpleNamespace,
    reference: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    pattern: str,
    code: int,
) -> None:
    import textdistill.runtime.atomic as atomic

    out = tmp_path / "run"
    failing = _FailingOs(pattern, code)
    monkeypatch.setattr(atomic, "os", failing)
    assert main([*workspace.arguments, "--out", str(out)]) == 1
    assert failing.failures == 1
    err = capsys.readouterr().err
    line = _one_error_line(err)
    assert os.strerror(code) in line and "cannot write" in line and str(out) in line, line
    _no_half_written_files(out)
    stage = pattern.removesuffix(".json")
    assert not (out / "stages" / pattern).exists() or stage == "metrics"

    monkeypatch.setattr(atomic, "os", os)
    assert main([*workspace.arguments, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    if pattern == "student.json":  # the student was saved, but never marked complete
        assert "student: the previous fit did not finish" in err
    assert (
        _metrics(out)["teacher"]["labeling"]["n_scored"]
        + _metrics(out)["teacher"]["labeling"]["n_cached"]
        == N_UNLABELED
    )
    # What the rerun kept and what it computed again add up to the uninterrupted run's
    # teacher, logits and student.
    assert _metrics(out)["teacher"]["fingerprint"] == _metrics(reference)["teacher"]["fingerprint"]
    np.testing.assert_allclose(
        _unlabeled_logits(out, workspace),
        _unlabeled_logits(reference, workspace),
        rtol=0,
        atol=TOLERANCE,
    )
    texts = workspace.unlabeled[:200]
    np.testing.assert_allclose(
        load(str(out / "student")).decision_function(texts),
        load(str(reference / "student")).decision_function(texts),
        rtol=0,
        atol=TOLERANCE,
    )


# ----------------------------------------------------------- concurrency and versions
def test_a_second_run_on_a_directory_in_use_is_refused(
    workspace: SimpleNamespace, tmp_path: Path
) -> None:
    """Two ``textdistill run`` processes on one directory: the second stops at once, naming
    the first, and changes nothing the first has written."""
    out = tmp_path / "run"
    first = Run(workspace, out)
    first.wait_until((out / "stages" / "baseline.json").exists)
    first.freeze()  # it holds the directory, and nothing changes on disk meanwhile
    try:
        before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
        second = Run(workspace, out, logs=tmp_path / "logs")
        assert second.finish() == 1, second.stderr
        line = _one_error_line(second.stderr)
        assert f"in use by another textdistill run (pid {first.process.pid}" in line, line
        assert str(out) in line
        assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    finally:
        first.kill()


def test_a_run_directory_from_a_newer_textdistill_is_explained_and_left_untouched(
    workspace: SimpleNamespace, reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    marker = out / "stages" / "teacher.json"
    record = json.loads(marker.read_text())
    record["textdistill_version"] = "99.0.0"
    marker.write_text(json.dumps(record))
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.name != ".lock"}
    assert main([*workspace.arguments, "--out", str(out)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "written by textdistill 99.0.0" in line and "upgrade textdistill" in line, line
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.name != ".lock"} == before


# ------------------------------------------------------------------ damaged run outputs
def _damage(path: Path) -> None:
    """Flip one byte in the middle: a bad sector, a bad copy, a hand edit."""
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))


@pytest.mark.parametrize(
    ("victim", "expected"),
    [
        ("student/coef.npy", "student: {path} changed since the stage finished"),
        ("baseline/model.json", "baseline: {path} changed since the stage finished"),
        ("teacher/model.safetensors", "teacher: {path} changed since the stage finished"),
        ("student/vocabulary.json", "student: {path} is missing since the stage finished"),
        ("stages/student.json", "student: {path} is damaged; computing the stage again"),
    ],
)
def test_a_damaged_output_is_explained_and_computed_again_never_used(
    workspace: SimpleNamespace,
    reference: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    victim: str,
    expected: str,
) -> None:
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    path = out / victim
    if "missing" in expected:
        path.unlink()
    elif victim.startswith("stages/"):
        path.write_text(path.read_text()[:40])  # truncated
    else:
        _damage(path)
    assert main([*workspace.arguments, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert expected.format(path=path) in err, err
    load(str(out / "student"))  # verified again: every checksum matches
    load(str(out / "baseline"))
    metrics = _metrics(out)
    assert metrics["teacher"]["fingerprint"] == _metrics(reference)["teacher"]["fingerprint"]
    assert metrics["teacher"]["labeling"]["n_scored"] == 0  # the same teacher: cache reused


def test_a_damaged_logits_chunk_is_set_aside_and_only_its_texts_rescored(
    workspace: SimpleNamespace, reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    chunks = _chunks(out)
    victims = [chunks[0], chunks[-1]]  # the last chunk holds the test set's logits
    rows = _rows([chunks[0]])
    for chunk in victims:
        _damage(chunk)
    assert main([*workspace.arguments, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("its documents will be scored again") == 2, err
    assert len(list(_store_directory(out).glob("*.corrupt"))) == 2  # type: ignore[union-attr]
    assert _metrics(out)["teacher"]["labeling"]["n_scored"] == rows
    np.testing.assert_allclose(
        _unlabeled_logits(out, workspace),
        _unlabeled_logits(reference, workspace),
        rtol=0,
        atol=TOLERANCE,
    )


# ------------------------------------------------------------- the store and leftovers
def test_a_chunk_copied_from_another_teachers_store_is_set_aside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = [f"text {i}" for i in range(8)]
    LogitsStore(tmp_path, fingerprint="teacher-a", n_classes=2).fill(
        texts, lambda batch: np.ones((len(batch), 2)), progress=False
    )
    LogitsStore(tmp_path, fingerprint="teacher-b", n_classes=2)  # creates its directory
    for chunk in (tmp_path / "teacher-a").glob("chunk-*.npz"):
        shutil.copy(chunk, tmp_path / "teacher-b" / chunk.name)
    other = LogitsStore(tmp_path, fingerprint="teacher-b", n_classes=2)
    assert len(other) == 0
    assert "holds logits of another teacher (teacher-a)" in capsys.readouterr().err
    assert list((tmp_path / "teacher-b").glob("*.foreign"))


def test_a_store_from_a_newer_textdistill_is_refused_and_a_damaged_description_rebuilt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from textdistill.logits_store import FORMAT_VERSION, StoreError

    store = LogitsStore(tmp_path, fingerprint="t", n_classes=2)
    store.fill(["a", "b"], lambda batch: np.ones((len(batch), 2)), progress=False)
    info = tmp_path / "t" / "store.json"
    described = json.loads(info.read_text())
    assert described["format_version"] == FORMAT_VERSION
    info.write_text(json.dumps({**described, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(StoreError, match="written by a newer textdistill"):
        LogitsStore(tmp_path, fingerprint="t", n_classes=2)
    info.write_text('{"fingerprint": "t", "n_cla')  # torn by a bad disk
    reopened = LogitsStore(tmp_path, fingerprint="t", n_classes=2)
    assert "is damaged" in capsys.readouterr().err and len(reopened) == 2
    assert json.loads(info.read_text()) == described


def test_temporary_files_of_dead_writers_are_removed_and_nothing_else(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    hex32 = "0" * 32
    run = tmp_path / "run"
    (run / "stages").mkdir(parents=True)
    leftovers = [
        run / ".student.tmp-k2j3h4",  # a directory being built by write_directory_atomically
        run / ".teacher.old-1234",
        run / f".metrics.json.{pid}.{hex32}.tmp",
        run / "stages" / f".student.json.{pid}.{hex32}.tmp",
    ]
    leftovers[0].mkdir()
    (leftovers[0] / "coef.npy").write_bytes(b"half")
    leftovers[1].mkdir()
    for path in leftovers[2:]:
        path.write_bytes(b"half")
    kept = [run / "notes.tmp", run / "student", run / "stages" / "student.json"]
    kept[0].write_text("a user's file")
    kept[1].mkdir()
    kept[2].write_text("{}")
    with RunDirectory(run):
        pass
    assert [p for p in leftovers if p.exists()] == []
    assert all(p.exists() for p in kept)

    store = tmp_path / "logits" / "t"
    store.mkdir(parents=True)
    old = store / f".chunk-1-ab.npz.{pid}.{hex32}.tmp"
    fresh = store / f".chunk-2-cd.npz.{pid}.{hex32}.tmp"
    alive = store / f".chunk-3-ef.npz.{os.getpid()}.{hex32}.tmp"
    for path in (old, fresh, alive):
        path.write_bytes(b"half")
    long_ago = time.time() - 3600
    os.utime(old, (long_ago, long_ago))
    os.utime(alive, (long_ago, long_ago))
    LogitsStore(tmp_path / "logits", fingerprint="t", n_classes=2)
    # Only an old file of a dead process goes: a fresh one may be another machine's writer.
    assert (old.exists(), fresh.exists(), alive.exists()) == (False, True, True)


def test_a_closed_run_directory_leaves_no_lock_file_and_the_lock_still_excludes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finished or failed run removes its .lock; while one holds the directory another is
    refused; and a run that opened .lock just before the holder removed it does not end up
    holding a lock on the removed file (a third run would then get in beside it)."""
    from textdistill import run_directory

    with RunDirectory(tmp_path):
        assert (tmp_path / ".lock").is_file()
        with pytest.raises(RunDirectoryError, match="in use by another textdistill run"):
            RunDirectory(tmp_path)
    assert not (tmp_path / ".lock").exists()
    with pytest.raises(RuntimeError), RunDirectory(tmp_path):
        raise RuntimeError("a stage failed")
    assert not (tmp_path / ".lock").exists()

    first = RunDirectory(tmp_path)
    real_flock = run_directory.fcntl.flock

    def flock_once_the_first_has_closed(fd: int, operation: int) -> None:
        first.close()  # the holder finishes between the second's open and its flock
        real_flock(fd, operation)

    monkeypatch.setattr(run_directory.fcntl, "flock", flock_once_the_first_has_closed)
    second = RunDirectory(tmp_path)
    monkeypatch.setattr(run_directory.fcntl, "flock", real_flock)
    try:
        with pytest.raises(RunDirectoryError, match="in use by another textdistill run"):
            RunDirectory(tmp_path)
    finally:
        second.close()
    assert not (tmp_path / ".lock").exists()


def test_a_stage_computed_by_an_older_textdistill_is_recomputed_and_said(tmp_path: Path) -> None:
    said: list[str] = []
    with RunDirectory(tmp_path, log=said.append) as run:
        run.complete("student", "old-key", {"n": 1})
        marker = tmp_path / "stages" / "student.json"
        record = json.loads(marker.read_text())
        marker.write_text(json.dumps({**record, "textdistill_version": "0.0.1"}))
        assert run.cached("student", "new-key") is None
    assert said == [
        "student: computed by textdistill 0.0.1; computing it again with textdistill "
        f"{textdistill.__version__}"
    ]

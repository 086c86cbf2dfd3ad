"""A run directory whose stages are skipped when their inputs have not changed.

Each stage has a key: a hash of everything it depends on (content hashes of the data, its
configuration, the keys of the stages upstream, the textdistill version). The key, a few facts
about the result and the sha256 of every output file are written to ``stages/<name>.json``
*after* the stage's output is complete, so a crash mid-stage never leaves a marker that a
rerun would trust. A rerun also re-checks those sha256s, so an output damaged or edited since
(a truncated copy, a bad disk) is computed again instead of used.

A stage also writes ``stages/<name>.started`` when it begins and removes it when it completes:
a rerun that finds one knows the previous attempt was interrupted and says so, instead of
silently starting over.

Only one process may use a run directory at a time (an exclusive ``flock`` on ``.lock``, which
the kernel releases even when the holder is killed, and which the holder removes when it closes
the directory): two nightly jobs that overlap must not write the same stage outputs. Leftover
temporary files of a killed run are removed on open.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from textdistill.runtime.atomic import WriteError, write_file_atomically
from textdistill.runtime.model_card import CARD

try:  # POSIX; elsewhere runs are simply not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

MARKER_FORMAT = 1
"""Version of the ``stages/*.json`` layout; a marker of a newer format is refused."""

LOCK_FILE = ".lock"
# Names that only temporary files of textdistill's atomic writers have (see runtime/atomic.py
# and Teacher.save): ``.NAME.tmp-XXXX``, ``.NAME.old-XXXX`` and ``.NAME.<pid>.<uuid>.tmp``.
_TEMPORARY = re.compile(r"\..+\.(?:tmp-[^/]+|old-[^/]+|\d+\.[0-9a-f]{32}\.tmp)")


class RunDirectoryError(ValueError):
    """The run directory cannot be used: in use by another process, or from a newer version."""


def stage_key(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts.

    >>> stage_key({"a": 1}, "x") == stage_key({"a": 1}, "x") != stage_key({"a": 2}, "x")
    True
    """
    from textdistill import __version__

    payload = json.dumps([__version__, *parts], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def version_tuple(version: str) -> tuple[int, ...]:
    """The leading numbers of a version string, for ordering releases.

    >>> version_tuple("0.10.2") > version_tuple("0.9.7"), version_tuple("1.0.0rc1")
    (True, (1, 0, 0))
    """
    match = re.match(r"\d+(?:\.\d+)*", version.strip())
    return tuple(int(part) for part in match.group().split(".")) if match else ()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class RunDirectory:
    """The folder of one run: stage outputs, stage markers, metrics and report.

    ``log`` receives the explanations (an interrupted stage, a damaged output); use the
    instance as a context manager, or call :meth:`close`, to release the directory.
    """

    def __init__(self, root: str | Path, *, log: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise WriteError(error.errno, error.strerror, str(self.root)) from error
        self._log = log or (lambda message: None)
        self._lock: IO[str] | None = self._acquire()
        try:
            self._refuse_newer_markers()
            self._remove_temporaries()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ lifetime
    def _acquire(self) -> IO[str] | None:
        if fcntl is None:  # pragma: no cover - Windows
            return None
        lock_path = self.root / LOCK_FILE
        while True:
            try:
                handle = lock_path.open("a+", encoding="utf-8")
            except OSError as error:  # a read-only directory fails here, before any work
                raise WriteError(error.errno, error.strerror, str(lock_path)) from error
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                raise RunDirectoryError(
                    f"{self.root} is in use by another textdistill run ({holder}); wait for it "
                    "to finish or choose another --out directory"
                ) from None
            except BaseException:
                handle.close()
                raise
            # The holder removes the file on close (see close()); if that happened between our
            # open and our lock, ours is a lock on a file no other run can find: take the one
            # now at the path instead, so that two runs never both believe they hold it.
            try:
                current = lock_path.stat()
            except FileNotFoundError:
                current = None
            if current is not None and os.path.samestat(os.fstat(handle.fileno()), current):
                break
            handle.close()
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, since {_now()}\n")
        handle.flush()
        return handle

    def close(self) -> None:
        """Release the directory (the lock); the instance must not be used afterwards.

        The lock file is removed first, while the lock is still held, so a finished or failed
        run leaves no ``.lock`` behind (only a killed one does, and its lock is free); a run
        that opened the file just before is refused, or retries on a fresh file.
        """
        if self._lock is not None:
            # A directory made read-only meanwhile keeps the file: harmless, its lock is free.
            with contextlib.suppress(OSError):
                (self.root / LOCK_FILE).unlink(missing_ok=True)
            self._lock.close()  # closing the descriptor releases the flock
            self._lock = None

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _remove_temporaries(self) -> None:
        """Delete what a killed run left half-written (never trusted, but it fills the disk).

        Safe because this process holds the directory's lock: no other run is writing here.
        """
        for folder in (self.root, self.root / "stages"):
            if not folder.is_dir():
                continue
            for item in folder.iterdir():
                if not _TEMPORARY.fullmatch(item.name):
                    continue
                if item.is_dir() and not item.is_symlink():
                    shutil.rmtree(item, ignore_errors=True)
                else:
                    item.unlink(missing_ok=True)

    def _refuse_newer_markers(self) -> None:
        """A run directory written by a newer textdistill is explained, never overwritten."""
        from textdistill import __version__

        ours = version_tuple(__version__)
        for marker in sorted((self.root / "stages").glob("*.json")):
            record = self._read(marker)
            if record is None:
                continue
            written_by = str(record.get("textdistill_version", ""))
            fmt = record.get("format", 0)
            newer_format = isinstance(fmt, int) and fmt > MARKER_FORMAT
            if newer_format or version_tuple(written_by) > ours:
                raise RunDirectoryError(
                    f"{marker}: written by textdistill {written_by or '?'} (stage marker format "
                    f"{fmt}), newer than this textdistill {__version__} (format "
                    f"{MARKER_FORMAT}); upgrade textdistill, or use another --out directory "
                    "(this one is left untouched)"
                )

    # ------------------------------------------------------------------ stages
    def path(self, name: str) -> Path:
        return self.root / name

    def _marker(self, stage: str) -> Path:
        return self.root / "stages" / f"{stage}.json"

    def _started_marker(self, stage: str) -> Path:
        return self.root / "stages" / f"{stage}.started"

    @staticmethod
    def _read(marker: Path) -> dict[str, Any] | None:
        try:
            record = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return record if isinstance(record, dict) else None

    def cached(self, stage: str, key: str) -> dict[str, Any] | None:
        """The recorded facts of ``stage`` if it completed with this ``key`` and its outputs
        are intact, else None (after logging why, when that is not obvious)."""
        marker = self._marker(stage)
        if not marker.is_file():
            return None
        record = self._read(marker)
        if record is None:
            self._log(f"{stage}: {marker} is damaged; computing the stage again")
            return None
        if record.get("key") != key:
            from textdistill import __version__

            written_by = str(record.get("textdistill_version", ""))
            if written_by and written_by != __version__:
                self._log(
                    f"{stage}: computed by textdistill {written_by}; computing it again with "
                    f"textdistill {__version__}"
                )
            return None
        problem = self._damaged_output(record.get("outputs"))
        if problem is not None:
            self._log(
                f"{stage}: {problem} since the stage finished (damaged or edited); "
                "computing it again"
            )
            return None
        info = record.get("info", {})
        return info if isinstance(info, dict) else None

    def _damaged_output(self, outputs: Any) -> str | None:
        if not isinstance(outputs, dict):  # markers written before outputs were recorded
            return None
        for relative, expected in outputs.items():
            path = self.root / relative
            if not path.is_file():
                return f"{path} is missing"
            if _sha256(path) != expected:
                return f"{path} changed"
        return None

    def start(self, stage: str, activity: str, *, then: str = "starting it again") -> None:
        """Record that ``stage`` begins; say so when a previous attempt never finished.

        ``activity`` names the work in the message, e.g. "fine-tuning"; ``then`` says what
        happens now (a stage that checkpoints continues rather than starts again).
        """
        started = self._started_marker(stage)
        if started.is_file():
            record = self._read(started) or {}
            self._log(
                f"{stage}: the previous {activity} did not finish (started "
                f"{record.get('started', '?')}, pid {record.get('pid', '?')}); {then}"
            )
        payload = {"started": _now(), "pid": os.getpid()}
        write_file_atomically(started, json.dumps(payload).encode())

    def complete(
        self, stage: str, key: str, info: dict[str, Any], outputs: Iterable[str] = ()
    ) -> None:
        """Mark ``stage`` done with ``key``; call only once its output is fully written.

        ``outputs`` are files or folders (relative to the run directory) that the stage wrote;
        their sha256s are recorded so that a rerun notices when one is damaged.
        """
        from textdistill import __version__

        files: dict[str, str] = {}
        for name in outputs:
            path = self.root / name
            found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for item in found:
                if item.name == CARD:  # documentation, rewritten once the run is scored
                    continue
                files[item.relative_to(self.root).as_posix()] = _sha256(item)
        record = {
            "format": MARKER_FORMAT,
            "textdistill_version": __version__,
            "completed": _now(),
            "key": key,
            "info": info,
            "outputs": files,
        }
        payload = json.dumps(record, indent=2, default=str)
        write_file_atomically(self._marker(stage), payload.encode())
        self._started_marker(stage).unlink(missing_ok=True)

    def write_json(self, name: str, content: Any) -> Path:
        target = self.path(name)
        write_file_atomically(target, json.dumps(content, indent=2, default=str).encode())
        return target

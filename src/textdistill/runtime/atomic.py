"""Atomic writes: a crash leaves the old content or the new one, never a torn file.

A failed write (a full disk, a read-only directory, a quota) removes its temporary file and
raises :class:`WriteError`, an ``OSError`` whose message names the file and says that nothing
half-written was kept: the one line a user needs to fix the disk and rerun.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TextIO


class WriteError(OSError):
    """Writing a file or directory failed; nothing half-written was left in its place."""

    def __str__(self) -> str:
        return (
            f"cannot write {self.filename}: {self.strerror} (errno {self.errno}); nothing "
            "half-written was kept, so rerunning after fixing this resumes where it stopped"
        )


# What a write itself can fail with; an OSError of another kind raised by the caller's own code
# inside ``atomic_file`` (a network error while streaming a download) is not about writing.
_WRITE_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENOSPC", "EDQUOT", "EROFS", "EFBIG", "EIO", "EACCES", "EPERM")
    if hasattr(errno, name)
)


def _explained(error: OSError, target: Path) -> OSError:
    if isinstance(error, WriteError):
        return error
    return WriteError(error.errno, error.strerror or str(error), str(target))


@contextmanager
def atomic_file(target: str | Path) -> Iterator[BinaryIO]:
    """A temporary file beside ``target`` that replaces it only if the block succeeds.

    Readers and concurrent writers see either the old file or a complete new one. The data is
    synced before the rename so that a power cut cannot leave a renamed but empty file. The
    name is made unique by hand (not with ``tempfile.mkstemp``) so the file gets the usual
    umask-based permissions instead of owner-only ones.
    """
    target = Path(target)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    in_body = False
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("xb") as out:
            in_body = True
            yield out
            in_body = False
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if in_body and error.errno not in _WRITE_ERRNOS:
            raise
        raise _explained(error, target) from error
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_text_file(target: str | Path) -> Iterator[TextIO]:
    """:func:`atomic_file` as UTF-8 text (no newline translation, as the csv module wants).

    For outputs such as ``predict -o``: an interrupted or failed write leaves no partial file
    that a later job could take for a complete one.
    """
    with atomic_file(target) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        try:
            yield text
            text.flush()
        finally:
            text.detach()  # atomic_file syncs and closes the binary file


def write_file_atomically(path: str | Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through :func:`atomic_file`."""
    with atomic_file(path) as out:
        out.write(payload)


def write_directory_atomically(target: str | Path, fill: Callable[[Path], None]) -> None:
    """Build a directory in a temporary sibling with ``fill(tmp_dir)``, then swap it in.

    A crash leaves either the old directory or the new one, never a half-written one that a
    later run would trust.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as error:
        raise _explained(error, target) from error
    try:
        fill(tmp)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
            try:
                tmp.rename(target)
            except BaseException:
                old.rename(target)  # put the previous version back rather than lose both
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _explained(error, target) from error
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

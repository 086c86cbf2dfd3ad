"""Atomic writes: a crash leaves the old content or the new one, never a torn file."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_file(target: str | Path) -> Iterator[BinaryIO]:
    """A temporary file beside ``target`` that replaces it only if the block succeeds.

    Readers and concurrent writers see either the old file or a complete new one. The data is
    synced before the rename so that a power cut cannot leave a renamed but empty file. The
    name is made unique by hand (not with ``tempfile.mkstemp``) so the file gets the usual
    umask-based permissions instead of owner-only ones.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("xb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


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
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        fill(tmp)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

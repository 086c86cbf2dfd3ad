"""A resumable cache of a teacher's raw logits, keyed by teacher fingerprint and text hash.

Labeling is the expensive step (hours on a CPU), so every scored batch is written at once as
its own chunk file, atomically (temporary file + ``os.replace``): a run killed at any moment
loses at most the batch in flight, and a rerun scores only what is missing. Identical texts
are scored once. Chunks of another teacher live in another folder and are never mixed in.

Layout::

    ROOT/<fingerprint>/store.json        format version, teacher fingerprint, number of classes
    ROOT/<fingerprint>/chunk-*.npz       hashes (uint8 [n, 16]) + logits (float32 [n, k])
                                         + the teacher's fingerprint + a checksum of all three
    ROOT/<fingerprint>/shard-*.parquet   the same content as Parquet, written by distributed
                                         labeling (``textdistill label``, scale/shards.py)

**Several runs on one store.** Runs (or ``fill`` calls) that share a store at once split the
work instead of repeating it: before each batch, a writer takes the store's lock
(``store.lock``, an exclusive ``flock``), reads the chunks the others wrote since it last
looked, and *claims* a batch of texts that nobody stored or claimed, by writing their hashes
into its own claim file (``claims/<pid>-<uuid>.claim``), which it holds an exclusive ``flock`` on
for as long as it fills. Then it releases the lock, scores the batch and writes the chunk.
Texts another writer has claimed are left to it and waited for. A writer killed at any
moment releases its locks with its process: its claim is then seen as abandoned (its lock
can be taken), removed, and its texts claimed again; what it lost is the batch in flight.
The locks are ``flock``s, so the writers must share a machine (or a file system whose locks
work across machines); distributed labeling goes through ``textdistill label`` instead.

A chunk whose content does not match its checksum (a damaged disk, a hand edit) is moved
aside as ``*.corrupt``, one that names another teacher (copied from another store) as
``*.foreign``; either is reported and its documents scored again: never silently used. A store
written by a newer textdistill is refused with a message, not guessed at. Temporary files
that a killed writer left behind are removed when the store is opened.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import time
import uuid
import zipfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one writer at a time, as before
    fcntl = None  # type: ignore[assignment]

import numpy as np

from textdistill.runtime.atomic import WriteError, atomic_file, write_file_atomically

HASH_BYTES = 16
FORMAT_VERSION = 1
"""Version of the store's layout (store.json, chunks); a newer one is refused."""
# A temporary chunk or shard of runtime/atomic.py: ``.chunk-....npz.<pid>.<uuid>.tmp``.
_TEMPORARY = re.compile(r"\.(?:chunk-.*\.npz|shard-.*\.parquet)\.(\d+)\.[0-9a-f]{32}\.tmp")
_ABANDONED_AFTER_S = 60.0
_LOCK = "store.lock"
_CLAIMS = "claims"
_WAIT_S = (0.02, 0.5)  # first and longest pause while another writer scores our texts


class StoreError(ValueError):
    """The store cannot be used as asked (wrong teacher, wrong shape, missing logits)."""


def text_hash(text: str) -> bytes:
    """First 16 bytes of the sha256 of the UTF-8 text: collisions are not a practical risk."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:HASH_BYTES]


def chunk_checksum(hashes: np.ndarray, logits: np.ndarray, fingerprint: str | None) -> str:
    """sha256 of a chunk's content; chunks written before fingerprints were stored in them
    (``fingerprint=None``) are checked without it."""
    tag = b"" if fingerprint is None else fingerprint.encode()
    return hashlib.sha256(hashes.tobytes() + logits.tobytes() + tag).hexdigest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True


@dataclass(frozen=True)
class FillStats:
    """What one :meth:`LogitsStore.fill` did; goes into the run's metrics."""

    n_texts: int
    n_unique: int
    n_cached: int
    """Distinct texts not scored by this fill: stored before it, or meanwhile by another
    writer sharing the store (``n_by_others`` of them)."""
    n_scored: int
    seconds: float
    n_by_others: int = 0

    @property
    def docs_per_second(self) -> float:
        return self.n_scored / self.seconds if self.seconds > 0 and self.n_scored else 0.0


class LogitsStore:
    """Teacher logits for texts, on disk.

    >>> import tempfile
    >>> store = LogitsStore(tempfile.mkdtemp(), fingerprint="demo", n_classes=2)
    >>> stats = store.fill(["a", "b", "a"], lambda batch: np.ones((len(batch), 2)), progress=False)
    >>> (stats.n_unique, stats.n_scored), store.get(["b", "a"]).shape
    ((2, 2), (2, 2))
    """

    def __init__(self, root: str | Path, *, fingerprint: str, n_classes: int) -> None:
        if not fingerprint or "/" in fingerprint or fingerprint.startswith("."):
            raise StoreError(f"invalid teacher fingerprint {fingerprint!r}")
        self.directory = Path(root) / fingerprint
        self.fingerprint = fingerprint
        self.n_classes = n_classes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._check_info()
        self._remove_abandoned_temporaries()
        self._index: dict[bytes, np.ndarray] = {}
        self._read: set[str] = set()  # chunks and shards in the index (or set aside)
        self._load_chunks()

    def _check_info(self) -> None:
        """Refuse a store of another teacher, shape or newer format; rewrite a damaged one."""
        info_path = self.directory / "store.json"
        info = {"fingerprint": self.fingerprint, "n_classes": self.n_classes}
        if info_path.exists():
            try:
                found = json.loads(info_path.read_text(encoding="utf-8"))
                if not isinstance(found, dict):
                    raise ValueError(f"a JSON {type(found).__name__}, not an object")
            except (ValueError, UnicodeDecodeError) as error:
                # The directory name is the fingerprint and every chunk checks its own content,
                # teacher and shape, so the description can be rebuilt safely.
                print(
                    f"textdistill: {info_path} is damaged ({error}); rewritten",
                    file=sys.stderr,
                )
            else:
                version = found.get("format_version", 1)
                if not isinstance(version, int) or version > FORMAT_VERSION:
                    raise StoreError(
                        f"{info_path}: written by a newer textdistill (store format {version}; "
                        f"this one reads format {FORMAT_VERSION} at most); upgrade textdistill "
                        "or use another logits cache"
                    )
                found_info = {key: found.get(key) for key in info}
                if found_info != info:
                    raise StoreError(
                        f"{info_path}: this store holds logits of {found_info}, not of {info}; "
                        "use another directory or delete it"
                    )
                return
        payload = {"format_version": FORMAT_VERSION, **info}
        write_file_atomically(info_path, json.dumps(payload).encode())

    def _remove_abandoned_temporaries(self) -> None:
        """Delete half-written chunks of dead writers (never read, but they use disk).

        A writer on another machine sharing the cache cannot be seen, so a temporary file is
        only removed when its process is gone *and* it is older than any real write takes.
        """
        now = time.time()
        for item in self.directory.iterdir():
            match = _TEMPORARY.fullmatch(item.name)
            if match is None or _pid_alive(int(match.group(1))):
                continue
            try:
                if now - item.stat().st_mtime > _ABANDONED_AFTER_S:
                    item.unlink()
            except FileNotFoundError:
                pass

    def _load_chunks(self) -> None:
        """Read the chunks (and shards) not read yet: at opening, all of them; later, those
        that other writers added since."""
        for chunk in sorted(self.directory.glob("chunk-*.npz")):
            if chunk.name in self._read:
                continue
            try:
                with np.load(chunk, allow_pickle=False) as content:
                    hashes, logits = content["hashes"], content["logits"]
                    checksum = str(content["checksum"])
                    owner = str(content["fingerprint"]) if "fingerprint" in content else None
                if (
                    checksum != chunk_checksum(hashes, logits, owner)
                    or hashes.dtype != np.uint8
                    or hashes.shape[1:] != (HASH_BYTES,)
                    or logits.shape != (len(hashes), self.n_classes)
                ):
                    raise ValueError("checksum or shape mismatch")
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
                self._set_aside(chunk, ".corrupt", f"is damaged ({error})")
                continue
            if owner is not None and owner != self.fingerprint:
                self._set_aside(
                    chunk, ".foreign", f"holds logits of another teacher ({owner[:12]})"
                )
                continue
            self._remember(hashes, logits)
            self._read.add(chunk.name)
        self._load_shards()

    def _load_shards(self) -> None:
        """Parquet shards of distributed labeling: checked and set aside exactly like chunks."""
        shards = sorted(
            p for p in self.directory.glob("shard-*.parquet") if p.name not in self._read
        )
        if not shards:
            return
        from textdistill.scale.shards import ShardError, read_shard

        for path in shards:
            try:
                shard = read_shard(path)
                if shard.logits.shape[1] != self.n_classes:
                    raise ShardError(f"{shard.logits.shape[1]} classes, not {self.n_classes}")
            except ShardError as error:
                self._set_aside(path, ".corrupt", f"is damaged ({error})")
                continue
            if shard.fingerprint != self.fingerprint:
                self._set_aside(
                    path, ".foreign", f"holds logits of another teacher ({shard.fingerprint[:12]})"
                )
                continue
            self._remember(shard.hashes, shard.logits)
            self._read.add(path.name)

    def refresh(self) -> None:
        """Read the chunks and shards that another process (a Ray job) wrote since opening."""
        self._load_chunks()

    @staticmethod
    def _set_aside(chunk: Path, suffix: str, why: str) -> None:
        aside = chunk.with_suffix(suffix)
        try:
            chunk.rename(aside)
        except FileNotFoundError:  # another writer sharing the store set it aside first
            return
        print(
            f"textdistill: {chunk} {why}; moved to {aside.name}, "
            "its documents will be scored again",
            file=sys.stderr,
        )

    def _remember(self, hashes: np.ndarray, logits: np.ndarray) -> None:
        for key, row in zip(hashes, logits, strict=True):
            self._index[key.tobytes()] = row

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, text: str) -> bool:
        return text_hash(text) in self._index

    def stored_hashes(self) -> np.ndarray:
        """The hash of every stored text, uint8 ``[n, 16]`` (what a labeling job may skip)."""
        return np.frombuffer(b"".join(self._index), dtype=np.uint8).reshape(-1, HASH_BYTES)

    def coverage(self, texts: Sequence[str]) -> tuple[int, int]:
        """``(distinct texts, distinct texts already stored)``, e.g. to report a resume."""
        keys = {text_hash(text) for text in texts}
        return len(keys), sum(1 for key in keys if key in self._index)

    def missing(self, texts: Sequence[str]) -> list[str]:
        """Distinct texts with no logits yet, in first-seen order."""
        seen: set[bytes] = set()
        todo = []
        for text in texts:
            key = text_hash(text)
            if key not in self._index and key not in seen:
                seen.add(key)
                todo.append(text)
        return todo

    def fill(
        self,
        texts: Sequence[str],
        score: Callable[[list[str]], np.ndarray],
        *,
        batch_size: int = 64,
        progress: bool = True,
        description: str = "labeling",
    ) -> FillStats:
        """Score every text not yet stored with ``score(batch) -> float [len(batch), k]``.

        Texts are scored longest-first in batches of similar length (cheap padding, and the
        progress bar's rate only improves); each batch is saved before the next one starts.
        Writers sharing the store split the texts between them (see the module docstring).
        """
        started = time.perf_counter()
        todo = self.missing(texts)
        n_unique = len({text_hash(t) for t in texts})
        if not todo:  # nothing to write: not even the lock (the store may be read-only)
            return FillStats(len(texts), n_unique, n_unique, 0, time.perf_counter() - started)
        todo.sort(key=len, reverse=True)
        queue = deque((text_hash(text), text) for text in todo)
        n_scored = n_by_others = 0
        bar = _progress(len(todo), description, progress)
        try:
            with _Writer.open(self.directory) as writer:
                pause = _WAIT_S[0]
                while queue:
                    with writer.locked():
                        # Claims first, chunks second: a writer stores its last batch and
                        # drops its claim without the lock, so read in the other order, a
                        # batch landing between the two reads would be in neither.
                        taken = writer.claimed_by_others()
                        self._load_chunks()
                        batch, n_done = self._claim_batch(queue, writer, taken, batch_size)
                    n_by_others += n_done
                    if bar is not None and n_done:
                        bar.update(n_done)
                    if not batch:
                        if queue:  # every text left is another writer's batch in flight
                            writer.say_waiting(len(queue))
                            time.sleep(pause)
                            pause = min(2 * pause, _WAIT_S[1])
                        continue
                    pause = _WAIT_S[0]
                    chosen = [text for _, text in batch]
                    self.put(chosen, score(chosen))
                    n_scored += len(chosen)
                    if bar is not None:
                        bar.update(len(chosen))
        finally:
            if bar is not None:
                bar.close()
        return FillStats(
            len(texts),
            n_unique,
            n_unique - n_scored,
            n_scored,
            time.perf_counter() - started,
            n_by_others,
        )

    def _claim_batch(
        self, queue: deque[tuple[bytes, str]], writer: _Writer, taken: set[bytes], size: int
    ) -> tuple[list[tuple[bytes, str]], int]:
        """Take up to ``size`` texts from ``queue`` that are neither stored nor ``taken`` (in
        other writers' claims), and claim them; drop those stored meanwhile (their number is
        returned too). Texts other writers claimed go to the back of the queue, for when their
        batch lands (or their writer dies)."""
        batch: list[tuple[bytes, str]] = []
        n_done = rotated = 0
        while queue and len(batch) < size and rotated < len(queue):
            key, text = queue.popleft()
            if key in self._index:
                n_done += 1
            elif key in taken:
                queue.append((key, text))
                rotated += 1
            else:
                batch.append((key, text))
        writer.claim([key for key, _ in batch])
        return batch, n_done

    def _checked(self, texts: Sequence[str], logits: np.ndarray) -> np.ndarray:
        """``logits`` as float32, refused unless they are ``[len(texts), n_classes]``."""
        logits = np.asarray(logits, dtype=np.float32)
        if logits.shape != (len(texts), self.n_classes):
            raise StoreError(
                f"logits of shape {logits.shape} for {len(texts)} texts and "
                f"{self.n_classes} classes"
            )
        return logits

    def put(self, texts: Sequence[str], logits: np.ndarray) -> None:
        """Store ``logits`` of ``texts`` as one atomically written chunk."""
        logits = self._checked(texts, logits)
        # uint8 rows, not numpy's "S16": that type drops trailing zero bytes from a hash.
        hashes = np.frombuffer(b"".join(text_hash(t) for t in texts), dtype=np.uint8).reshape(
            len(texts), HASH_BYTES
        )
        name = f"chunk-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.npz"
        self._read.add(name)  # in the index already: not to be read back by a refresh
        with atomic_file(self.directory / name) as handle:
            np.savez(
                handle,
                hashes=hashes,
                logits=logits,
                fingerprint=np.array(self.fingerprint),
                checksum=np.array(chunk_checksum(hashes, logits, self.fingerprint)),
            )
        self._remember(hashes, logits)

    def put_new(self, texts: Sequence[str], logits: np.ndarray) -> int:
        """Store the logits of those ``texts`` that no writer has stored yet; return how many.

        For logits computed outside :meth:`fill` (a timed pass over the test set, an imported
        file). It is a :meth:`fill` whose "teacher" looks the rows up, so it takes the same
        claims: a text that a run sharing the store is scoring right now is waited for, not
        stored a second time beside that run's chunk.
        """
        logits = self._checked(texts, logits)
        row_of: dict[str, int] = {}
        for i, text in enumerate(texts):
            row_of.setdefault(text, i)
        stats = self.fill(
            list(row_of),
            lambda batch: logits[[row_of[text] for text in batch]],
            batch_size=max(1, len(row_of)),
            progress=False,
        )
        return stats.n_scored

    def get(self, texts: Sequence[str]) -> np.ndarray:
        """Logits ``float32 [len(texts), k]`` in the order of ``texts``."""
        out = np.empty((len(texts), self.n_classes), dtype=np.float32)
        for i, text in enumerate(texts):
            row = self._index.get(text_hash(text))
            if row is None:
                raise StoreError(f"no logits stored for text #{i} ({text[:60]!r}); call fill()")
            out[i] = row
        return out


class _Writer:
    """One fill's part in sharing a store: the store's lock, and this writer's claim file,
    locked from its creation (under the store's lock) until the fill ends or the process
    dies. Without ``fcntl`` (Windows) there is no sharing: every method does nothing."""

    def __init__(self, directory: Path, lock: IO[bytes] | None) -> None:
        self.claims = directory / _CLAIMS
        self._lock = lock
        self._claim: IO[bytes] | None = None
        self._claim_path: Path | None = None
        self._said_waiting = False

    @classmethod
    @contextlib.contextmanager
    def open(cls, directory: Path) -> Iterator[_Writer]:
        lock_path = directory / _LOCK
        lock = None
        if fcntl is not None:
            try:
                lock = lock_path.open("a+b")
            except OSError as error:
                raise WriteError(error.errno, error.strerror, str(lock_path)) from None
        writer = cls(directory, lock)
        try:
            yield writer
        finally:
            writer._close()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's lock: what is read and claimed inside is consistent."""
        if self._lock is None:
            yield
            return
        fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX)
        try:
            if self._claim is None:
                self._create_claim()
            yield
        finally:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)

    def _create_claim(self) -> None:
        path = self.claims / f"{os.getpid()}-{uuid.uuid4().hex}.claim"
        try:
            self.claims.mkdir(exist_ok=True)
            handle = path.open("w+b")
        except OSError as error:
            raise WriteError(error.errno, error.strerror, str(path)) from None
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # new, so nobody else holds it
        self._claim, self._claim_path = handle, path

    def claim(self, keys: list[bytes]) -> None:
        """Replace this writer's claim with ``keys`` (under the store's lock, so that no
        reader sees half of it)."""
        if self._claim is None:
            return
        try:
            self._claim.seek(0)
            self._claim.truncate()
            self._claim.write(b"".join(keys))
            self._claim.flush()
        except OSError as error:  # a full disk shows here first: a clear line, as for a chunk
            raise WriteError(error.errno, error.strerror, str(self._claim_path)) from None

    def claimed_by_others(self) -> set[bytes]:
        """Hashes in the claims of live writers; abandoned claims are removed on the way."""
        if self._lock is None or not self.claims.is_dir():
            return set()
        taken: set[bytes] = set()
        for path in self.claims.glob("*.claim"):
            if path == self._claim_path:
                continue
            try:
                handle = path.open("rb")
            except FileNotFoundError:  # its writer finished meanwhile
                continue
            with handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:  # its writer is alive
                    content = handle.read()
                    taken.update(
                        content[i : i + HASH_BYTES] for i in range(0, len(content), HASH_BYTES)
                    )
                else:  # nobody holds it: its writer died; its batch is free again
                    path.unlink(missing_ok=True)
        return taken

    def say_waiting(self, n_texts: int) -> None:
        if not self._said_waiting:
            self._said_waiting = True
            print(
                f"textdistill: {n_texts} of the texts to label are being scored by another "
                "run sharing this logits cache; waiting for them",
                file=sys.stderr,
            )

    def _close(self) -> None:
        if self._claim is not None and self._claim_path is not None:
            self._claim_path.unlink(missing_ok=True)
            self._claim.close()  # releases its flock
        if self._lock is not None:
            self._lock.close()


def _progress(total: int, description: str, enabled: bool) -> Any:
    if not enabled or total == 0:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=description, unit="doc", file=sys.stderr, smoothing=0.05)

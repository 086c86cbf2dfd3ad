"""Teacher logits as Parquet shards: what distributed labeling writes and the store reads.

A shard holds the logits of one batch of distinct texts, scored by one teacher::

    text_hash    fixed_size_binary(16)     first 16 bytes of sha256(text), as the store keys
    logits       fixed_size_list<float32>  the k raw class scores
    fingerprint  string (dictionary)       the teacher that wrote them

and, in the file's key-value metadata, the format version, the number of classes, the
fingerprint and a sha256 over hashes, logits and fingerprint (the very checksum of the
store's ``.npz`` chunks). Parquet, not ``.npz``, because it is what the rest of a data
platform reads (Spark, DuckDB, Ray Data, pandas) and what object stores hold well.

A shard is named after its *input*: ``shard-<sha256(fingerprint, hashes)>.parquet``. A task
that Ray retries after a worker died scores the same texts again and writes the same name, so
a shard is never stored twice; it appears whole or not at all (temporary file + rename on a
local or shared disk; a single PUT on an object store, which is atomic there).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from textdistill.logits_store import HASH_BYTES, chunk_checksum
from textdistill.runtime.atomic import atomic_file

FORMAT_VERSION = 1
SHARD_PREFIX = "shard-"
SHARD_SUFFIX = ".parquet"
_METADATA_KEY = b"textdistill.shard"


class ShardError(ValueError):
    """A shard file is damaged, of a newer format, or not a shard at all."""


@dataclass(frozen=True)
class Shard:
    """The content of one shard file, checked against its checksum."""

    hashes: np.ndarray  # uint8 [n, HASH_BYTES]
    logits: np.ndarray  # float32 [n, k]
    fingerprint: str


def shard_name(fingerprint: str, hashes: np.ndarray) -> str:
    """File name of the shard scoring ``hashes`` with this teacher (content-addressed).

    >>> name = shard_name("t", np.zeros((2, HASH_BYTES), dtype=np.uint8))
    >>> name.startswith("shard-") and name.endswith(".parquet"), len(name)
    (True, 46)
    """
    digest = hashlib.sha256(fingerprint.encode() + b"\0" + hashes.tobytes()).hexdigest()
    return f"{SHARD_PREFIX}{digest[:32]}{SHARD_SUFFIX}"


def _table(hashes: np.ndarray, logits: np.ndarray, fingerprint: str) -> Any:
    import pyarrow as pa

    n, k = logits.shape
    info = {
        "format_version": FORMAT_VERSION,
        "n_classes": k,
        "fingerprint": fingerprint,
        "checksum": chunk_checksum(hashes, logits, fingerprint),
    }
    columns = {
        "text_hash": pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(HASH_BYTES), n, [None, pa.py_buffer(hashes.tobytes())]
        ),
        "logits": pa.FixedSizeListArray.from_arrays(pa.array(logits.ravel()), k),
        "fingerprint": pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, dtype=np.int32)), pa.array([fingerprint])
        ),
    }
    table = pa.table(columns)
    return table.replace_schema_metadata({_METADATA_KEY: json.dumps(info).encode()})


def write_shard(
    directory: str, hashes: np.ndarray, logits: np.ndarray, fingerprint: str, filesystem: Any
) -> str:
    """Write one shard into ``directory`` of a pyarrow ``filesystem``; return its path.

    On a local (or mounted shared) disk the file is written beside its final name and renamed
    into place; elsewhere (S3, GCS) one upload is already all-or-nothing.
    """
    import pyarrow.fs
    import pyarrow.parquet as pq

    hashes = np.ascontiguousarray(hashes, dtype=np.uint8)
    logits = np.ascontiguousarray(logits, dtype=np.float32)
    table = _table(hashes, logits, fingerprint)
    path = posixpath.join(directory, shard_name(fingerprint, hashes))
    if isinstance(filesystem, pyarrow.fs.LocalFileSystem):
        with atomic_file(path) as out:
            pq.write_table(table, out)
    else:
        filesystem.create_dir(directory, recursive=True)
        with filesystem.open_output_stream(path) as out:
            pq.write_table(table, out)
    return path


def read_shard(path: str | Path, filesystem: Any = None) -> Shard:
    """Read and check one shard; :class:`ShardError` says what is wrong with a bad one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(str(path), filesystem=filesystem)
        raw = (table.schema.metadata or {}).get(_METADATA_KEY)
        if raw is None:
            raise ShardError("no textdistill shard metadata")
        info = json.loads(raw)
        version = info.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ShardError(
                f"written by a newer textdistill (shard format {version}; this one reads "
                f"format {FORMAT_VERSION} at most); upgrade textdistill"
            )
        k = int(info["n_classes"])
        fingerprint = str(info["fingerprint"])
        n = table.num_rows
        hashes_column = table.column("text_hash").combine_chunks()
        if n and hashes_column.type != pa.binary(HASH_BYTES):
            raise ShardError(f"text_hash is {hashes_column.type}, not binary({HASH_BYTES})")
        hashes = np.frombuffer(
            hashes_column.buffers()[1] or b"",
            dtype=np.uint8,
            count=n * HASH_BYTES,
            offset=hashes_column.offset * HASH_BYTES,
        ).reshape(n, HASH_BYTES)
        values = table.column("logits").combine_chunks().flatten().to_numpy()
        logits = np.asarray(values, dtype=np.float32).reshape(n, k)
    except ShardError:
        raise
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as error:
        raise ShardError(f"{path}: not a readable shard ({error})") from error
    if chunk_checksum(hashes, logits, fingerprint) != info.get("checksum"):
        raise ShardError(f"{path}: content does not match its checksum")
    return Shard(hashes.copy(), logits, fingerprint)


def is_shard_name(name: str) -> bool:
    """Whether a file name is a finished shard (not a temporary or set-aside file)."""
    return name.startswith(SHARD_PREFIX) and name.endswith(SHARD_SUFFIX)

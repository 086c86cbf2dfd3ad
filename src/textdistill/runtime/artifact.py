"""The on-disk artifact: one directory of ``.npy`` arrays and JSON, versioned and checksummed.

Why this format: ``.npy`` loads with ``allow_pickle=False`` (so a file can never run code),
JSON is readable by anyone, and a sha256 per file plus one over the manifest catches a
truncated copy or a hand edit before a wrong prediction does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from textdistill.runtime.atomic import write_directory_atomically
from textdistill.runtime.featurizer import UNSPACED_FORMAT_VERSION
from textdistill.runtime.model_card import CARD
from textdistill.runtime.model_card import render as render_card

# The newest format this textdistill reads. 2 adds multilabel models, 3 dense students, 4 n-gram
# featurizers that read scripts without spaces as characters, 5 linear students of text pairs
# (runtime/pair_features.py), 6 dense students with a max-pooled branch, 7 dense students of
# text pairs, 8 dense students whose max-pooled branch reads runs of words, 9 dense students
# that read unknown words as WordPiece pieces (runtime/word_pieces.py); linear and neural
# single-label artifacts of word featurizers are still written as 1, so that older readers keep
# loading them.
FORMAT_VERSION = 9
MANIFEST = "model.json"


class ArtifactError(ValueError):
    """An artifact is missing, damaged, or from a newer textdistill."""


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest_checksum(manifest: dict[str, Any]) -> str:
    body = {key: value for key, value in manifest.items() if key != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _safe_member(root: Path, name: str) -> Path:
    """Resolve a file named by a manifest, refusing anything that leaves the artifact.

    A plain name is not enough: a symbolic link inside the directory could point anywhere (a
    secret, or ``/dev/zero``, which would never finish hashing), so members must be regular
    files of the artifact itself.
    """
    if (
        not isinstance(name, str)
        or not name
        or "\0" in name
        or "\\" in name
        or name != Path(name).name
        or name in {".", ".."}
    ):
        raise ArtifactError(f"{root / MANIFEST}: file name {name!r} is not a plain file name")
    member = root / name
    if member.is_symlink():
        raise ArtifactError(f"{member}: a symbolic link; an artifact holds regular files only")
    if member.exists() and not member.is_file():
        raise ArtifactError(f"{member}: not a regular file")
    return member


def _json(content: Any, indent: int | None = None) -> str:
    """JSON that stays readable (UTF-8, not ``\\u`` escapes) unless a string holds a lone
    surrogate, which UTF-8 cannot encode but a JSON escape can carry."""
    text = json.dumps(content, ensure_ascii=False, indent=indent)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(content, ensure_ascii=True, indent=indent)
    return text


def save_artifact(
    path: str | Path,
    *,
    kind: str,
    arrays: dict[str, np.ndarray],
    documents: dict[str, Any],
    meta: dict[str, Any],
    format_version: int = 1,
) -> None:
    """Write arrays as ``NAME.npy``, JSON documents as ``NAME.json`` and a manifest.

    ``meta`` goes into the manifest as is (labels, featurizer spec, training metrics...).
    ``format_version`` is the oldest format that can describe the artifact: a reader older
    than it refuses the artifact rather than misreading it. A featurizer spec (``meta``'s
    ``featurizer``) that reads scripts without spaces as characters raises it to
    :data:`UNSPACED_FORMAT_VERSION`, whatever the model: an older reader would tokenise such
    text as words and predict from other features without a word of warning.
    """
    if not 1 <= format_version <= FORMAT_VERSION:
        raise ValueError(f"format_version must be 1..{FORMAT_VERSION}, got {format_version}")
    featurizer = meta.get("featurizer")
    if isinstance(featurizer, dict) and featurizer.get("unspaced_scripts", "words") != "words":
        format_version = max(format_version, UNSPACED_FORMAT_VERSION)
    from textdistill import __version__

    def fill(tmp: Path) -> None:
        files: dict[str, str] = {}
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
            files[f"{name}.npy"] = _sha256_file(tmp / f"{name}.npy")
        for name, document in documents.items():
            (tmp / f"{name}.json").write_text(_json(document), encoding="utf-8")
            files[f"{name}.json"] = _sha256_file(tmp / f"{name}.json")
        manifest = {
            "format_version": format_version,
            "textdistill_version": __version__,
            "kind": kind,
            "files": files,
            **meta,
        }
        manifest["checksum"] = _manifest_checksum(manifest)
        (tmp / MANIFEST).write_text(_json(manifest, indent=2), encoding="utf-8")
        # The model card: documentation beside the model, not listed in the manifest.
        # The card is for people: a label with a lone surrogate (UTF-8 cannot encode it; the
        # JSON files escape it) is shown as its \ud800 escape rather than failing the save.
        (tmp / CARD).write_text(render_card(manifest), encoding="utf-8", errors="backslashreplace")

    write_directory_atomically(Path(path), fill)


def artifact_root(path: str | Path) -> Path:
    """The artifact directory named by ``path``: the directory itself or its model.json."""
    root = Path(path)
    return root.parent if root.name == MANIFEST else root


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The verified manifest of the artifact at ``path`` (the directory or its model.json)."""
    root = artifact_root(path)
    manifest_path = root / MANIFEST
    if not root.is_dir():
        raise ArtifactError(f"{root}: no such artifact directory")
    if manifest_path.is_symlink():
        raise ArtifactError(f"{manifest_path}: a symbolic link; an artifact holds regular files")
    if not manifest_path.is_file():
        raise ArtifactError(f"{root}: not a textdistill artifact ({MANIFEST} is missing)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{manifest_path}: damaged manifest ({error})") from None
    if not isinstance(manifest, dict) or "format_version" not in manifest:
        raise ArtifactError(f"{manifest_path}: not a textdistill manifest (no format_version)")
    version = manifest["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactError(
            f"{root}: artifact format {version} was written by textdistill "
            f"{manifest.get('textdistill_version', '?')}; this textdistill reads format "
            f"{FORMAT_VERSION} at most: upgrade textdistill"
        )
    if manifest.get("checksum") != _manifest_checksum(manifest):
        raise ArtifactError(f"{manifest_path}: checksum mismatch: the manifest was altered")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise ArtifactError(f"{manifest_path}: 'files' must map file names to sha256 digests")
    return manifest


def load_artifact(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """Verify and read an artifact: ``(manifest, arrays, documents)``. Never unpickles."""
    root = artifact_root(path)
    manifest = read_manifest(root)
    arrays: dict[str, np.ndarray] = {}
    documents: dict[str, Any] = {}
    for name, expected in manifest["files"].items():
        member = _safe_member(root, name)
        if not member.is_file():
            raise ArtifactError(f"{member}: missing from the artifact")
        if _sha256_file(member) != expected:
            raise ArtifactError(f"{member}: checksum mismatch: the file is damaged or truncated")
        stem, suffix = member.stem, member.suffix
        if suffix == ".npy":
            try:
                arrays[stem] = np.load(member, allow_pickle=False)
            except ValueError as error:  # e.g. an object array, which would need pickle
                raise ArtifactError(f"{member}: not a plain numeric array ({error})") from None
        elif suffix == ".json":
            documents[stem] = json.loads(member.read_text(encoding="utf-8"))
        else:
            raise ArtifactError(f"{member}: unexpected file type in the artifact")
    return manifest, arrays, documents


def directory_size(path: str | Path) -> int:
    """Bytes on disk of every file below ``path``."""
    root = Path(path)
    if root.is_file():
        return root.stat().st_size
    return sum(item.stat().st_size for item in root.rglob("*") if item.is_file())

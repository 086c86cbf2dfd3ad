"""Student artifacts on the Hugging Face Hub: ``textdistill push`` and ``hf://OWNER/NAME``.

An artifact is a folder of ``.npy``/JSON files and a model card, so a Hub model repository
holds it as it is. Pushing checks that the folder loads first (a damaged artifact is never
uploaded); loading downloads the repository into textdistill's cache as plain files (not the
Hub cache's symbolic links, which the artifact loader refuses on purpose) and then verifies
every checksum as for any local artifact: a repository's content is not trusted.

Needs ``huggingface_hub`` (``pip install 'textdistill[hub]'``); the runtime imports this
module only for ``hf://`` paths, so the base install stays numpy-only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from textdistill.extras import install_hint

HF_PREFIX = "hf://"
HUB_HINT = f"Hugging Face Hub support needs huggingface_hub: {install_hint('hub')}"
# OWNER/NAME as the Hub allows them, optionally @REVISION (a branch, tag or commit).
_REPO = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<revision>[\w./-]+))?$")


def is_hub_path(path: str | os.PathLike[str]) -> bool:
    return str(path).startswith(HF_PREFIX)


def parse_repo(reference: str) -> tuple[str, str | None]:
    """``OWNER/NAME[@REVISION]`` (with or without ``hf://``) as ``(repo_id, revision)``.

    >>> parse_repo("hf://acme/tickets@v2")
    ('acme/tickets', 'v2')
    """
    match = _REPO.match(reference.removeprefix(HF_PREFIX))
    if match is None:
        raise ValueError(f"{reference!r}: expected OWNER/NAME or OWNER/NAME@REVISION")
    return match["repo"], match["revision"]


def _hub() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        raise ImportError(HUB_HINT) from None
    return huggingface_hub


def cache_dir() -> Path:
    """Where downloaded artifacts live: ``$TEXTDISTILL_CACHE/hub`` (``~/.cache/textdistill``)."""
    root = os.environ.get("TEXTDISTILL_CACHE") or Path.home() / ".cache" / "textdistill"
    return Path(root) / "hub"


def download(reference: str) -> Path:
    """The local folder of ``hf://OWNER/NAME[@REVISION]``, fetched or refreshed.

    ``snapshot_download`` with a ``local_dir`` writes real files and fetches only what
    changed; with ``HF_HUB_OFFLINE=1`` it serves what is already there.
    """
    repo_id, revision = parse_repo(reference)
    target = cache_dir() / repo_id.replace("/", "--") / (revision or "main")
    folder = _hub().snapshot_download(
        repo_id=repo_id, revision=revision, repo_type="model", local_dir=target
    )
    return Path(folder)


def run_metrics(artifact: str | Path, checksum: str) -> dict[str, Any] | None:
    """The ``metrics.json`` of the run that scored this artifact, or None.

    ``textdistill run`` writes its student to ``RUN/student`` and the test set's numbers to
    ``RUN/metrics.json``, with the student's manifest checksum. The numbers are used only
    when that checksum is ``checksum``: a student retrained by a later, unfinished run, or a
    model changed after loading, is not the one they measured.
    """
    path = Path(artifact).parent / "metrics.json"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    student = metrics.get("student") if isinstance(metrics, dict) else None
    if isinstance(student, dict) and student.get("checksum") == checksum:
        return metrics
    return None


def push(
    artifact: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    metrics: dict[str, Any] | None = None,
) -> str:
    """Upload the artifact folder to the model repository ``repo_id``; return its URL.

    The repository is created when it does not exist (``private`` then applies). The folder
    is loaded first, so an artifact that would not load is refused with the loader's error.

    The model card is written for the upload: it names ``repo_id`` in its usage lines and,
    when the artifact is a run's scored student (or ``metrics``, a run's ``metrics.json``,
    is given), states the test set's numbers. The folder itself is left as it is.
    """
    from textdistill.runtime import load, read_manifest
    from textdistill.runtime.model_card import CARD, render

    repo, branch = parse_repo(repo_id)
    load(str(artifact))  # an artifact that would not load is refused before any upload
    manifest = read_manifest(artifact)
    if metrics is None:
        metrics = run_metrics(artifact, manifest["checksum"])
    reference = f"{repo}@{revision or branch}" if revision or branch else repo
    hub = _hub()
    api = hub.HfApi(token=token)
    url = api.create_repo(repo_id=repo, repo_type="model", private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        upload = Path(tmp) / "artifact"
        shutil.copytree(artifact, upload)
        (upload / CARD).write_text(
            render(manifest, metrics, reference), encoding="utf-8", errors="backslashreplace"
        )
        api.upload_folder(
            repo_id=repo,
            repo_type="model",
            folder_path=str(upload),
            revision=revision or branch,
            commit_message=commit_message or "Upload a textdistill student",
        )
    return str(url)

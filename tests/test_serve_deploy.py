"""The server deployed: API keys, several workers, and swapping the artifact without downtime.

Everything here runs over a real socket: ``textdistill serve`` in a subprocess (what a user
starts), or, where a request must be held inside the model while the artifact is swapped,
uvicorn in a thread of the test process, where the model can be made to wait.
"""

from __future__ import annotations

import hmac
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from conftest import _make_toy_sentiment, build_toy_artifact  # noqa: E402
from textdistill import api_keys, serve  # noqa: E402
from textdistill.api_keys import ApiKeyError, read_api_keys  # noqa: E402
from textdistill.cli import main  # noqa: E402

KEY = "k" * 20 + "-first-key"
OTHER_KEY = "second-key-" + "x" * 16
AUTH = {"authorization": f"Bearer {KEY}"}


# ------------------------------------------------------------------------------- helpers
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _key_file(path: Path, *keys: str) -> Path:
    path.write_text("# keys of the toy server\n" + "".join(f"{key}\n\n" for key in keys))
    path.chmod(0o600)
    return path


def _swap(link: Path, target: Path) -> None:
    """Point ``link`` at ``target`` atomically (``ln -s`` beside it, then ``rename``)."""
    staged = link.with_name(link.name + ".new")
    staged.unlink(missing_ok=True)
    staged.symlink_to(target)
    os.replace(staged, link)


def _broken_copy(source: Path, destination: Path) -> Path:
    """A copy of an artifact with one array truncated: its checksum no longer matches."""
    shutil.copytree(source, destination)
    array = next(destination.glob("*.npy"))
    array.write_bytes(array.read_bytes()[:-8])
    return destination


def _model_id(artifact: Path) -> str:
    from textdistill.runtime import read_manifest

    return str(read_manifest(artifact)["checksum"])[:12]


@pytest.fixture
def versions(tmp_path: Path) -> dict[str, Path]:
    """Two models that label "great" oppositely, a broken one, and a link to the first."""
    one = build_toy_artifact(tmp_path / "v1")
    two = build_toy_artifact(tmp_path / "v2", flip=True)
    broken = _broken_copy(two, tmp_path / "v3-broken")
    link = tmp_path / "current"
    link.symlink_to(one)
    return {"one": one, "two": two, "broken": broken, "link": link}


class Server:
    """``textdistill serve`` in a subprocess; its output goes to a file that tests read."""

    def __init__(self, arguments: list[str], log: Path, env: dict[str, str] | None = None):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        command = [sys.executable, "-m", "textdistill.cli", "serve", *arguments]
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port), "--log-level", "warning"],
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            )

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, f"the server exited:\n{self.log}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{self.log}"
            time.sleep(0.05)

    def wait_for_health(self) -> None:
        def healthy() -> bool:
            try:
                return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        self.wait_until(healthy, "/health")

    def log_lines(self, pattern: str) -> list[re.Match[str]]:
        return [m for m in map(re.compile(pattern).search, self.log.splitlines()) if m]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - only if shutdown hangs
            self.process.kill()
            raise


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(*arguments: str, env: dict[str, str] | None = None, wait: bool = True) -> Server:
        server = Server(list(arguments), tmp_path / f"serve-{len(started)}.log", env)
        started.append(server)
        if wait:
            server.wait_for_health()
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def _workers(pid: int) -> set[int]:
    """The worker processes of the supervisor ``pid`` (not multiprocessing's helper)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in command:
            found.add(int(stat.parent.name))
    return found


# --------------------------------------------------------------------------- the key file
def test_key_file_errors_name_the_file_and_line(tmp_path: Path) -> None:
    cases = {
        "missing": (None, "cannot read the API key file"),
        "empty": ("# only a comment\n\n", "no API key in the file"),
        "short": (f"{KEY}\nshort-key\n", "line 2: key of 9 characters; at least 16"),
        "spaces": (f"{KEY} {OTHER_KEY}\n", "line 1: a key is visible ASCII without spaces"),
        "binary": (b"\xff\xfe", "not UTF-8 text"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if isinstance(content, str):
            path.write_text(content)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        with pytest.raises(ApiKeyError) as error:
            read_api_keys(path)
        assert str(error.value).startswith(str(path)) and message in str(error.value), name
    keys = read_api_keys(_key_file(tmp_path / "good", KEY, OTHER_KEY))
    assert len(keys) == 2
    assert keys.accepts(KEY.encode()) and keys.accepts(OTHER_KEY.encode())
    for wrong in (b"", KEY[:-1].encode(), KEY.encode() + b"x", KEY.upper().encode()):
        assert not keys.accepts(wrong)


def test_a_key_file_others_can_read_gets_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _key_file(tmp_path / "keys", KEY)
    read_api_keys(path)
    assert capsys.readouterr().err == ""
    path.chmod(0o644)
    read_api_keys(path)
    assert "readable by other users (mode 644); chmod 600 it" in capsys.readouterr().err


def test_keys_are_compared_in_constant_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every key is compared, as a fixed-size digest, whichever matches or whether any does:
    the time taken cannot tell a guesser how close the guess was."""
    keys = read_api_keys(_key_file(tmp_path / "keys", KEY, OTHER_KEY, "third-key-" + "z" * 10))
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(api_keys.hmac, "compare_digest", counting)
    for presented, expected in ((KEY, True), (OTHER_KEY, True), ("k", False), (KEY * 9, False)):
        calls.clear()
        assert keys.accepts(presented.encode()) is expected
        assert len(calls) == 3
        assert {len(a) for a, _ in calls} == {len(b) for _, b in calls} == {32}


# ------------------------------------------------------------------------ authentication
def test_every_endpoint_but_health_needs_a_key(
    versions: dict[str, Path], tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    keys = _key_file(tmp_path / "keys", KEY, OTHER_KEY)
    server = start_server(str(versions["one"]), "--api-key-file", str(keys))
    url = server.url
    assert httpx.get(f"{url}/health").status_code == 200
    refusals = [
        httpx.post(f"{url}/predict", json={"text": "great"}),
        httpx.post(f"{url}/predict", json={"text": "great"}, headers={"authorization": "Bearer"}),
        httpx.post(f"{url}/predict", json={"text": "x"}, headers={"authorization": KEY}),
        httpx.post(f"{url}/predict", json={"text": "x"}, headers={"authorization": f"Basic {KEY}"}),
        httpx.post(
            f"{url}/predict", json={"text": "x"}, headers={"authorization": f"Bearer {KEY[:-1]}"}
        ),
        httpx.post(
            f"{url}/predict", json={"text": "x"}, headers={"authorization": f"Bearer {KEY}x"}
        ),
        httpx.get(f"{url}/metadata"),
        httpx.get(f"{url}/docs"),
        httpx.get(f"{url}/openapi.json"),
        httpx.get(f"{url}/redoc"),
        httpx.post(f"{url}/reload"),
        httpx.get(f"{url}/no-such-route"),
        # Refused before the body is read: not a 413, however large it is.
        httpx.post(f"{url}/predict", content=b"x" * (9 * 1024 * 1024)),
    ]
    bodies = set()
    for response in refusals:
        assert response.status_code == 401, response.request
        assert response.headers["content-type"] == "application/json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        bodies.add(response.text)
    # One answer for every refusal, which says nothing about any key.
    [body] = bodies
    assert "Authorization: Bearer KEY" in body and KEY[:8] not in body and "second" not in body
    for key in (KEY, OTHER_KEY):
        headers = {"authorization": f"bearer  {key}"}  # the scheme in any case, two spaces
        answer = httpx.post(f"{url}/predict", json={"text": "a great film"}, headers=headers)
        assert answer.status_code == 200 and answer.json()["predictions"][0]["label"] == "pos"
    assert httpx.get(f"{url}/metadata", headers=AUTH).json()["labels"] == ["neg", "pos"]
    assert httpx.get(f"{url}/docs", headers=AUTH).status_code == 200
    assert "/reload" in httpx.get(f"{url}/openapi.json", headers=AUTH).json()["paths"]
    assert httpx.get(f"{url}/no-such-route", headers=AUTH).status_code == 404
    assert server.stop() == 0
    assert KEY not in server.log and "Traceback" not in server.log


def test_the_key_file_can_come_from_the_environment(
    versions: dict[str, Path], tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    keys = _key_file(tmp_path / "keys", KEY)
    server = start_server(str(versions["one"]), env={api_keys.API_KEY_FILE_ENV: str(keys)})
    assert httpx.get(f"{server.url}/metadata").status_code == 401
    assert httpx.get(f"{server.url}/metadata", headers=AUTH).status_code == 200
    assert server.stop() == 0


def test_beyond_loopback_a_key_file_or_insecure_is_required(
    versions: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    start_server: Callable[..., Server],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(api_keys.API_KEY_FILE_ENV, raising=False)
    for host in ("0.0.0.0", "::", "192.0.2.1"):
        assert main(["serve", str(versions["one"]), "--host", host]) == 1
        error = capsys.readouterr().err
        assert f"refusing to serve on {host}" in error and "--insecure" in error
        assert error.count("\n") == 1
    # --insecure: served with the old warning; a key file: served, with a word about TLS.
    insecure = start_server(str(versions["one"]), "--host", "0.0.0.0", "--insecure")
    assert httpx.post(f"{insecure.url}/predict", json={"text": "great"}).status_code == 200
    assert "with no authentication (--insecure)" in insecure.log
    keys = _key_file(tmp_path / "keys", KEY)
    guarded = start_server(str(versions["one"]), "--host", "0.0.0.0", "--api-key-file", str(keys))
    assert httpx.post(f"{guarded.url}/predict", json={"text": "great"}).status_code == 401
    assert "TLS proxy" in guarded.log
    assert insecure.stop() == 0 and guarded.stop() == 0


def test_a_bad_key_file_stops_the_server_with_one_line(
    versions: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "keys").write_text("short\n")
    for workers in ("1", "2"):
        arguments = ["serve", str(versions["one"]), "--workers", workers]
        assert main([*arguments, "--api-key-file", str(tmp_path / "keys")]) == 1
        assert "line 1: key of 5 characters" in capsys.readouterr().err


# --------------------------------------------------------------- reload, in-flight requests
class _Gate:
    """Holds every batch that contains "WAIT" inside the model until it is opened."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def wrap(self, model: Any) -> Any:
        original = model.decision_function

        def decision_function(texts: Any) -> np.ndarray:
            if any("WAIT" in text for text in texts):
                self.entered.set()
                assert self.opened.wait(30), "the gate was never opened"
            return np.asarray(original(texts))

        model.decision_function = decision_function
        return model


@pytest.fixture
def in_process_server(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., tuple[str, _Gate]]]:
    """``create_app`` served by uvicorn in a thread, its models behind a :class:`_Gate`."""
    gate = _Gate()
    real_load = serve.load
    monkeypatch.setattr(serve, "load", lambda path: gate.wrap(real_load(path)))
    servers: list[tuple[Any, threading.Thread]] = []

    def start(artifact: Path, **options: Any) -> tuple[str, _Gate]:
        app = serve.create_app(artifact, **options)
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "no server"
            time.sleep(0.01)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}", gate

    yield start
    gate.opened.set()
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=30)


def test_reload_swaps_the_model_while_a_request_finishes_on_the_old_one(
    versions: dict[str, Path],
    tmp_path: Path,
    in_process_server: Callable[..., tuple[str, _Gate]],
    capfd: pytest.CaptureFixture[str],
) -> None:
    keys = _key_file(tmp_path / "keys", KEY)
    url, gate = in_process_server(versions["link"], api_key_file=keys)
    one, two = _model_id(versions["one"]), _model_id(versions["two"])
    held: dict[str, Any] = {}

    def held_request() -> None:
        held["response"] = httpx.post(
            f"{url}/predict", json={"texts": ["WAIT", "a great film"]}, headers=AUTH, timeout=60
        )

    thread = threading.Thread(target=held_request)
    thread.start()
    assert gate.entered.wait(30)  # the request is inside the old model now

    _swap(versions["link"], versions["two"])
    reload = httpx.post(f"{url}/reload", headers=AUTH, timeout=60)
    assert reload.status_code == 200, reload.text
    assert reload.json()["status"] == "reloaded" and reload.json()["previous_model"] == one
    assert reload.json()["model"]["id"] == two
    # Served at once by the new model while the old one still holds the first request.
    now = httpx.post(f"{url}/predict", json={"text": "a great film"}, headers=AUTH).json()
    assert now["model"]["id"] == two and now["predictions"][0]["label"] == "neg"
    assert httpx.get(f"{url}/metadata", headers=AUTH).json()["id"] == two
    assert thread.is_alive()
    gate.opened.set()
    thread.join(30)
    finished = held["response"].json()
    assert finished["model"]["id"] == one
    assert finished["predictions"][1]["label"] == "pos"  # the old model's answer

    # Reloading an unchanged artifact loads nothing.
    again = httpx.post(f"{url}/reload", headers=AUTH).json()
    assert again["status"] == "unchanged" and again["model"]["id"] == two

    # A broken artifact is refused, and the model before it keeps serving.
    _swap(versions["link"], versions["broken"])
    refused = httpx.post(f"{url}/reload", headers=AUTH)
    assert refused.status_code == 409
    assert "checksum mismatch" in refused.json()["error"] and two in refused.json()["error"]
    still = httpx.post(f"{url}/predict", json={"text": "a great film"}, headers=AUTH).json()
    assert still["model"]["id"] == two and still["predictions"][0]["label"] == "neg"
    log = capfd.readouterr().err
    assert re.search(rf"reload \(POST /reload\) refused: ArtifactError: .*{two}", log)

    # The key file is read again too: a rotated key works at once, the removed one no longer.
    _swap(versions["link"], versions["one"])
    _key_file(keys, OTHER_KEY)
    rotated = httpx.post(f"{url}/reload", headers=AUTH)
    assert rotated.status_code == 200 and rotated.json()["model"]["id"] == one
    assert httpx.get(f"{url}/metadata", headers=AUTH).status_code == 401
    other = {"authorization": f"Bearer {OTHER_KEY}"}
    assert httpx.get(f"{url}/metadata", headers=other).status_code == 200
    # A reload whose key file is broken changes nothing, the model included.
    _swap(versions["link"], versions["two"])
    keys.write_text("short\n")
    assert httpx.post(f"{url}/reload", headers=other).status_code == 409
    assert httpx.get(f"{url}/metadata", headers=other).json()["id"] == one


# ------------------------------------------------------------ workers, SIGHUP, real process
@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_reloads_every_worker_and_a_broken_artifact_is_refused(
    versions: dict[str, Path], tmp_path: Path, start_server: Callable[..., Server], workers: int
) -> None:
    keys = _key_file(tmp_path / "keys", KEY)
    server = start_server(
        str(versions["link"]), "--workers", str(workers), "--api-key-file", str(keys)
    )
    one, two = _model_id(versions["one"]), _model_id(versions["two"])
    server.wait_until(
        lambda: len(server.log_lines(rf"worker (\d+): serving .*\(model {one}\)")) == workers,
        "every worker to load the model",
    )
    loaded = {int(m.group(1)) for m in server.log_lines(r"worker (\d+): serving ")}
    assert len(loaded) == workers  # once each
    if workers > 1:
        assert loaded == _workers(server.process.pid)  # the workers share one port

    def models(n: int = 20) -> set[tuple[str, str]]:
        """(model id, label of "a great film") over ``n`` fresh connections."""
        answers = set()
        for _ in range(n):
            with httpx.Client(headers=AUTH) as client:  # a new connection: any worker
                body = client.post(f"{server.url}/predict", json={"text": "a great film"})
                assert body.status_code == 200, body.text
                answers.add((body.json()["model"]["id"], body.json()["predictions"][0]["label"]))
        return answers

    assert models() == {(one, "pos")}
    _swap(versions["link"], versions["two"])
    server.process.send_signal(signal.SIGHUP)
    server.wait_until(
        lambda: len(server.log_lines(rf"reload \(SIGHUP\): now serving model {two}")) == workers,
        "every worker to reload",
    )
    assert models() == {(two, "neg")}

    _swap(versions["link"], versions["broken"])
    server.process.send_signal(signal.SIGHUP)
    server.wait_until(
        lambda: len(server.log_lines(rf"reload \(SIGHUP\) refused: .*{two}")) == workers,
        "every worker to refuse the broken artifact",
    )
    assert models() == {(two, "neg")}

    # POST /reload reaches one worker; it has the supervisor tell the others.
    _swap(versions["link"], versions["one"])
    answer = httpx.post(f"{server.url}/reload", headers=AUTH).json()
    assert answer["model"]["id"] == one and answer["workers"] == workers
    server.wait_until(
        lambda: (
            len({m.group(1) for m in server.log_lines(rf"(\d+): .*now serving model {one}")})
            == workers
        ),
        "every worker to reload after POST /reload",
    )
    assert models() == {(one, "pos")}
    assert server.process.poll() is None  # SIGHUP never ended a process
    if workers > 1:
        assert _workers(server.process.pid) == loaded  # nor replaced a worker
    assert server.stop() == 0
    assert "Traceback" not in server.log


def test_each_worker_loads_a_cascade_and_its_teacher_once(
    tiny_bert_dir: Path, tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    from textdistill.cascade import save_cascade
    from textdistill.teacher import Teacher

    texts, labels = _make_toy_sentiment(20)
    teacher = Teacher(model=str(tiny_bert_dir), epochs=1, max_length=16, num_threads=1)
    teacher.fit(texts, labels, progress=False).save(tmp_path / "teacher")
    student = build_toy_artifact(tmp_path / "student")
    save_cascade(
        tmp_path / "cascade",
        student=student,
        teacher=tmp_path / "teacher",
        threshold=1.01,  # every text goes to the teacher
        teacher_temperature=1.0,
        metrics={},
    )
    server = start_server(str(tmp_path / "cascade"), "--cascade", "--workers", "2")
    server.wait_until(
        lambda: len(server.log_lines(r"worker \d+: serving .* and its teacher")) == 2,
        "both workers to load the cascade",
    )
    for _ in range(10):
        with httpx.Client() as client:
            body = client.post(f"{server.url}/predict", json={"texts": ["great", "awful"]})
            assert [p["source"] for p in body.json()["predictions"]] == ["teacher"] * 2
    pids = {m.group(1) for m in server.log_lines(r"worker (\d+): serving .* and its teacher")}
    assert len(server.log_lines(r"worker \d+: serving ")) == 2 and len(pids) == 2
    assert server.stop() == 0


def test_a_worker_that_cannot_start_stops_the_server(
    tiny_bert_dir: Path, tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    """The supervisor checks the student before it starts workers; a teacher only a worker
    loads, and finds broken, stops everything with the worker's one line (no restart loop)."""
    from textdistill.cascade import save_cascade

    (tmp_path / "teacher").mkdir()
    save_cascade(
        tmp_path / "cascade",
        student=build_toy_artifact(tmp_path / "student"),
        teacher=tmp_path / "teacher",
        threshold=0.9,
        teacher_temperature=1.0,
        metrics={},
    )
    server = start_server(str(tmp_path / "cascade"), "--cascade", "--workers", "2", wait=False)
    assert server.process.wait(timeout=300) == 1, server.log
    assert re.search(r"worker \d+: cannot start: ", server.log)
    assert "a worker could not start" in server.log

"""The HTTP server: endpoints, limits, error codes, no 5xx on any input, a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conftest import build_toy_artifact  # noqa: E402
from textdistill import __version__  # noqa: E402
from textdistill.cli import main  # noqa: E402
from textdistill.runtime import ArtifactError, load  # noqa: E402
from textdistill.serve import BodyLimitMiddleware, create_app  # noqa: E402

JSON = {"content-type": "application/json"}
LIMITS = {"max_batch": 8, "max_text_chars": 500, "max_body_bytes": 4096}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_toy_artifact(tmp_path_factory.mktemp("serve") / "model")


@pytest.fixture(scope="module")
def client(artifact: Path) -> Iterator[TestClient]:
    with TestClient(create_app(artifact, **LIMITS)) as test_client:
        yield test_client


def _post(client: TestClient, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return client.post("/predict", content=body, headers=JSON if headers is None else headers)


def _assert_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    return body


# ------------------------------------------------------------------------------ endpoints
def test_health(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_metadata_describes_the_model_without_the_vocabulary(
    client: TestClient, artifact: Path
) -> None:
    body = client.get("/metadata").json()
    assert body["labels"] == ["neg", "pos"]
    assert body["kind"] == "linear" and body["format_version"] == 1
    assert body["textdistill_version"] == body["server_version"] == __version__
    assert body["metadata"] == {"selection": {"loss": "mse", "penalty": 0.1}, "n_rows": 4}
    assert body["featurizer"]["type"] == "word_ngram_tfidf" and body["featurizer"]["max_n"] == 2
    assert "vocabulary" not in json.dumps(body["featurizer"])
    assert body["n_features"] == load(str(artifact)).featurizer.n_features
    assert body["limits"] == LIMITS
    assert len(body["id"]) == 12


def test_predict_one_text_answers_a_list_of_one(client: TestClient) -> None:
    response = client.post("/predict", json={"text": "a great film"})
    assert response.status_code == 200
    body = response.json()
    [prediction] = body["predictions"]
    assert prediction["label"] == "pos"
    assert set(prediction["probabilities"]) == {"neg", "pos"}
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)
    assert "logits" not in prediction
    assert body["model"]["labels"] == ["neg", "pos"] and body["model"]["kind"] == "linear"


def test_predict_batch_matches_the_runtime_in_order(client: TestClient, artifact: Path) -> None:
    texts = ["great film", "awful film", "", "dull and boring", "moving, great"]
    response = client.post("/predict", json={"texts": texts, "logits": True})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    model = load(str(artifact))
    assert [p["label"] for p in predictions] == model.predict(texts)
    expected_logits = model.decision_function(texts)
    expected_probabilities = model.predict_proba(texts)
    for prediction, logits, probabilities in zip(
        predictions, expected_logits, expected_probabilities, strict=True
    ):
        assert [prediction["logits"][k] for k in ("neg", "pos")] == pytest.approx(logits.tolist())
        assert [prediction["probabilities"][k] for k in ("neg", "pos")] == pytest.approx(
            probabilities.tolist()
        )


def test_empty_text_and_empty_batch_are_valid(client: TestClient) -> None:
    [prediction] = client.post("/predict", json={"text": ""}).json()["predictions"]
    assert prediction["probabilities"] == {"neg": 0.5, "pos": 0.5}
    response = client.post("/predict", json={"texts": []})
    assert response.status_code == 200 and response.json()["predictions"] == []


@pytest.mark.parametrize(
    "text",
    [
        "Ünïcödé GREAT film 🎬",
        "素晴らしい映画",
        "\u0000great\u0000",
        "\ud800 lone surrogate",
        "\n\t ",
    ],
)
def test_any_unicode_is_predicted(client: TestClient, text: str) -> None:
    body = json.dumps({"texts": [text, "great"]}).encode()  # escapes, so surrogates survive
    response = _post(client, body)
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 2


def test_openapi_documents_the_schemas(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert {"PredictRequest", "PredictResponse", "MetadataResponse", "ErrorResponse"} <= set(
        schemas
    )
    responses = spec["paths"]["/predict"]["post"]["responses"]
    assert {"200", "400", "413", "415", "422"} <= set(responses)
    assert client.get("/docs").status_code == 200


# --------------------------------------------------------------------------------- limits
def test_too_many_texts_is_413(client: TestClient) -> None:
    assert client.post("/predict", json={"texts": ["x"] * 8}).status_code == 200
    body = _assert_error(client.post("/predict", json={"texts": ["x"] * 9}), 413)
    assert "at most 8" in body["error"]


def test_too_long_a_text_is_413(client: TestClient) -> None:
    assert client.post("/predict", json={"text": "é" * 500}).status_code == 200
    body = _assert_error(client.post("/predict", json={"texts": ["ok", "a" * 501]}), 413)
    assert "text 1" in body["error"] and "at most 500" in body["error"]


def test_declared_body_over_the_limit_is_413(client: TestClient) -> None:
    body = json.dumps({"text": "a" * 5000}).encode()
    _assert_error(_post(client, body), 413)


def test_streamed_body_over_the_limit_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        yield b'{"text": "'
        for _ in range(100):
            yield b"a" * 100
        yield b'"}'

    _assert_error(_post(client, chunks()), 413)  # type: ignore[arg-type]


def test_a_lying_client_cannot_make_the_server_buffer_more_than_the_limit() -> None:
    """Content-Length says 10 bytes, then the body never ends: reading stops at the limit."""
    reads = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        assert reads < 100, "the middleware kept reading"
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("an oversized body reached the app")

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"content-length", b"10")]}
    import anyio

    anyio.run(BodyLimitMiddleware(app, max_body_bytes=4096), scope, receive, send)
    assert reads == 5  # 5,000 bytes > 4,096: refused on the fifth chunk
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"].startswith("request body larger")


def test_invalid_content_length_is_400(client: TestClient) -> None:
    _assert_error(_post(client, b'{"text": "x"}', {**JSON, "content-length": "many"}), 400)


def test_limits_must_be_positive(artifact: Path) -> None:
    with pytest.raises(ValueError, match="max_batch"):
        create_app(artifact, max_batch=0)


def test_a_bad_artifact_fails_at_startup(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError):
        create_app(tmp_path / "missing")


# --------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "body",
    [
        b"{bad json",
        b'{"text": "unterminated',
        b"",
        b"\xff\xfe\x00",
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the JSON parser recurses
        b'{"text": ' + b"1" * 5000 + b"}",  # an integer too long to convert
    ],
    ids=["syntax", "unterminated", "empty", "not-utf8", "too-deep", "huge-int"],
)
def test_malformed_json_is_400(artifact: Path, body: bytes) -> None:
    with TestClient(create_app(artifact)) as client:  # default body limit: 8 MiB
        assert "malformed JSON" in _assert_error(_post(client, body), 400)["error"]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({}, "exactly one"),
        ({"text": "a", "texts": ["b"]}, "exactly one"),
        ({"text": None}, "exactly one"),
        ({"texts": "not a list"}, "texts"),
        ({"texts": ["ok", 3]}, "texts.1"),
        ({"text": 3}, "text"),
        ({"text": ["a"]}, "text"),
        ({"text": "a", "logits": "yes"}, "logits"),
        ({"text": "a", "extra": 1}, "extra"),
        ([{"text": "a"}], "object"),
        ("great", "object"),
        (None, "object"),
    ],
)
def test_schema_errors_are_422(client: TestClient, payload: Any, fragment: str) -> None:
    body = _assert_error(_post(client, json.dumps(payload).encode()), 422)
    assert fragment in body["error"]
    assert body["details"] and all({"loc", "msg", "type"} <= set(d) for d in body["details"])


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_declared_json_is_415(
    client: TestClient, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    _assert_error(_post(client, b'{"text": "great"}', headers), 415)


def test_unknown_routes_and_methods_answer_json(client: TestClient) -> None:
    _assert_error(client.get("/nope"), 404)
    response = client.get("/predict")
    _assert_error(response, 405)
    assert "POST" in response.headers["allow"]


_json_leaves = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
)
_json_values = st.recursive(
    _json_leaves,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_key = st.sampled_from(["text", "texts", "logits", "other"]) | st.text(max_size=6)
_bodies = st.one_of(
    st.dictionaries(_key, _json_values | st.lists(st.text(max_size=40), max_size=10), max_size=4)
    .map(json.dumps)
    .map(str.encode),
    _json_values.map(json.dumps).map(str.encode),
    st.binary(max_size=200),
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_bodies, content_type=st.sampled_from(["application/json", "text/plain", None]))
def test_no_body_ever_gets_a_5xx(client: TestClient, body: bytes, content_type: str | None) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    response = _post(client, body, headers)
    assert response.status_code < 500, response.text
    payload = response.json()
    if response.status_code == 200:
        assert len(payload["predictions"]) in range(LIMITS["max_batch"] + 1)
    else:
        assert response.status_code in {400, 413, 415, 422} and payload["error"]


# ------------------------------------------------------------------------------------ CLI
def test_cli_serve_reports_a_bad_artifact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", str(tmp_path / "missing")]) == 1
    assert "no such artifact" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_textdistill_serve_runs_as_a_real_server(artifact: Path, tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("textdistill")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "textdistill.cli"]
    port = _free_port()
    log = (tmp_path / "serve.log").open("w+")
    process = subprocess.Popen(
        [*command, "serve", str(artifact), "--port", str(port), "--log-level", "warning"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, Path(log.name).read_text()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.1)
        response = httpx.post(f"{url}/predict", json={"texts": ["a great film", "awful"]})
        assert response.status_code == 200
        assert [p["label"] for p in response.json()["predictions"]] == ["pos", "neg"]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            returncode = process.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover - only if shutdown hangs
            process.kill()
            raise
        log.close()
    assert returncode == 0, Path(log.name).read_text()

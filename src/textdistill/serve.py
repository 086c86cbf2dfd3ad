"""An HTTP server for a student artifact: ``textdistill serve ARTIFACT``.

Needs the ``serve`` extra (``pip install 'textdistill[serve]'``: FastAPI and uvicorn), which
only this module imports. The model is loaded and warmed up once, when the app is created;
no endpoint reads a file.

Endpoints (OpenAPI docs at ``/docs``):

* ``POST /predict``: ``{"text": "..."}`` or ``{"texts": ["...", ...]}``, optionally
  ``"logits": true``. The answer is always a list, one prediction per text (one for
  ``text``): ``{"predictions": [{"label", "probabilities", "logits"?}], "model": {...}}``.
* ``GET /health``: ``{"status": "ok"}``.
* ``GET /metadata``: labels, versions, kind, featurizer spec (no vocabulary), the training
  metadata of the manifest and the server's limits.

Errors are JSON ``{"error": "..."}`` (422 adds ``"details"``), never a 500 for bad input:

* 400: the body is not valid JSON (or is empty);
* 413: the body is larger than ``max_body_bytes`` (checked against ``Content-Length`` and
  again while reading, so a client that lies about it cannot make the server buffer more),
  more than ``max_batch`` texts, or a text longer than ``max_text_chars`` characters;
* 415: the ``Content-Type`` is not JSON (required: a browser cannot send it cross-site
  without a CORS preflight, so a page you visit cannot use a server on your machine);
* 422: valid JSON of the wrong shape (not an object, both or neither of ``text`` and
  ``texts``, a text that is not a string, an unknown field...).
"""

from __future__ import annotations

import ipaddress
import json
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from textdistill import __version__
from textdistill.cascade import CASCADE_FILE, Cascade
from textdistill.runtime import load, read_manifest

SERVE_HINT = "the HTTP server needs the serve extra: pip install 'textdistill[serve]'"

try:
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field, model_validator
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError(f"{SERVE_HINT} ({error})") from error

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BATCH = 256
DEFAULT_MAX_TEXT_CHARS = 100_000
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024


# ---------------------------------------------------------------------------- schemas
class PredictRequest(BaseModel):
    """Give exactly one of ``text`` and ``texts``."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"text": "a gorgeous, moving film"},
                {"texts": ["a gorgeous, moving film", "a tedious mess"], "logits": True},
            ]
        },
    )

    text: str | None = Field(default=None, description="one text to label")
    texts: list[str] | None = Field(default=None, description="a batch of texts to label")
    logits: bool = Field(default=False, description="also return the raw logits")

    @model_validator(mode="after")
    def _exactly_one(self) -> PredictRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError('give exactly one of "text" (a string) and "texts" (a list)')
        return self


class Prediction(BaseModel):
    label: str | list[str] = Field(
        description="the most probable label; for a multilabel model, the list of labels "
        "above their thresholds (maybe empty)"
    )
    probabilities: dict[str, float] = Field(
        description="probability of every label (multilabel: each its own yes/no)"
    )
    logits: dict[str, float] | None = Field(
        default=None, description='raw logit of every label (only with "logits": true)'
    )
    source: str | None = Field(
        default=None, description='which model answered, "student" or "teacher" (cascade only)'
    )


class ModelSummary(BaseModel):
    id: str = Field(description="first 12 hex digits of the artifact's manifest checksum")
    kind: str
    task: str = Field(description='"multiclass" (one label per text) or "multilabel"')
    labels: list[str]
    textdistill_version: str = Field(description="the textdistill that wrote the artifact")


class PredictResponse(BaseModel):
    predictions: list[Prediction] = Field(description="one per input text, in input order")
    model: ModelSummary


class HealthResponse(BaseModel):
    status: str = "ok"


class Limits(BaseModel):
    max_batch: int
    max_text_chars: int
    max_body_bytes: int


class MetadataResponse(BaseModel):
    id: str
    kind: str
    task: str = Field(description='"multiclass" (one label per text) or "multilabel"')
    labels: list[str]
    format_version: int = Field(description="artifact format version")
    textdistill_version: str = Field(description="the textdistill that wrote the artifact")
    server_version: str = Field(description="the textdistill running this server")
    n_features: int
    featurizer: dict[str, Any] = Field(description="featurizer spec (vocabulary left out)")
    metadata: dict[str, Any] = Field(description="training metadata from the manifest")
    limits: Limits


class ErrorResponse(BaseModel):
    error: str
    details: list[dict[str, Any]] | None = None


# ----------------------------------------------------------------------------- errors
class _AsciiJSONResponse(JSONResponse):
    """ASCII-escaped JSON, so that an echoed field name can always be encoded (even a lone
    surrogate, which JSON allows as ``"\\ud800"`` but UTF-8 cannot represent)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return _AsciiJSONResponse({"error": message, **extra}, status_code=status)


def _short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if not _is_json(request.headers.get("content-type")):
        return _error(415, "send the body as JSON with the header Content-Type: application/json")
    if any(e.get("type") == "json_invalid" for e in errors):
        reason = next(
            (e.get("ctx", {}).get("error") for e in errors if e.get("type") == "json_invalid"),
            None,
        )
        position = next((e["loc"][-1] for e in errors if e.get("type") == "json_invalid"), None)
        return _error(400, f"malformed JSON: {reason or 'decode error'} at position {position}")
    if any(e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",) for e in errors):
        return _error(400, "malformed JSON: the body is empty; expected a JSON object")
    details = []
    for e in errors[:20]:
        location = ".".join(_short(part, 40) for part in e.get("loc", ()) if part != "body")
        message = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        details.append({"loc": location or "(body)", "msg": message, "type": e.get("type", "")})
    summary = "; ".join(f"{d['loc']}: {d['msg']}" for d in details[:3])
    if len(errors) > 3:
        summary += f"; and {len(errors) - 3} more"
    return _error(422, f"invalid request: {summary}", details=details)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    if exc.status_code == 400 and detail == "There was an error parsing the body":
        detail = "malformed JSON: the body could not be parsed (invalid UTF-8, too deep...)"
    response = _error(exc.status_code, str(detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover
    return _error(500, f"internal error: {type(exc).__name__}")


# ------------------------------------------------------------------------- body limit
class BodyLimitMiddleware:
    """Refuse request bodies over ``max_body_bytes`` with a 413, without buffering them.

    A declared ``Content-Length`` over the limit is refused before a byte is read; a body
    without one (chunked) or one that keeps coming is counted while it is read and refused
    as soon as it passes the limit. An accepted body is handed on in one piece.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"request body larger than {self.max_body_bytes} bytes"
        for name, value in scope.get("headers", []):
            if name.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _error(400, "invalid Content-Length header")(scope, receive, send)
                    return
                if declared > self.max_body_bytes:
                    await self._refuse(too_large, scope, receive, send)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client is gone: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._refuse(too_large, scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(message: str, scope: Scope, receive: Receive, send: Send) -> None:
        response = _error(413, message)
        response.headers["connection"] = "close"  # the rest of the body is never read
        await response(scope, receive, send)


# -------------------------------------------------------------------------------- app
def create_app(
    artifact: str | Path,
    *,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    cascade: bool = False,
) -> FastAPI:
    """A FastAPI app serving the artifact at ``artifact``, loaded (and checked) right now.

    With ``cascade``, ``artifact`` is a cascade directory: the student answers, and texts it
    is unsure of go to the teacher (loaded now too, so a broken teacher fails at start-up).
    """
    for name, value in (
        ("max_batch", max_batch),
        ("max_text_chars", max_text_chars),
        ("max_body_bytes", max_body_bytes),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    cascade_model = Cascade.load(artifact) if cascade else None
    if cascade_model is not None:
        cascade_model.teacher()
        artifact = (
            Path(artifact) / json.loads((Path(artifact) / CASCADE_FILE).read_text())["student"]
        )
    manifest = read_manifest(artifact)
    model = load(str(artifact))
    model.decision_function([""])  # warm up (builds the C vocabulary) before any request
    labels = list(model.labels)
    summary = ModelSummary(
        id=str(manifest.get("checksum", ""))[:12],
        kind=str(manifest.get("kind")),
        task=model.task,
        labels=labels,
        textdistill_version=str(manifest.get("textdistill_version", "?")),
    )
    featurizer_spec = {
        key: value
        for key, value in dict(manifest.get("featurizer") or {}).items()
        if key != "vocabulary"
    }
    metadata = MetadataResponse(
        id=summary.id,
        kind=summary.kind,
        task=summary.task,
        labels=labels,
        format_version=int(manifest["format_version"]),
        textdistill_version=summary.textdistill_version,
        server_version=__version__,
        n_features=model.featurizer.n_features,
        featurizer=featurizer_spec,
        metadata=dict(manifest.get("metadata") or {}),
        limits=Limits(
            max_batch=max_batch, max_text_chars=max_text_chars, max_body_bytes=max_body_bytes
        ),
    )

    app = FastAPI(
        title="textdistill",
        version=__version__,
        summary=f"{summary.kind} student over labels {labels}",
        description=(__doc__ or "").split("\n\n", 1)[0],
    )
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=max_body_bytes)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
    errors: dict[int | str, dict[str, Any]] = {
        400: {"model": ErrorResponse, "description": "malformed JSON"},
        413: {"model": ErrorResponse, "description": "body, batch or a text over the limits"},
        415: {"model": ErrorResponse, "description": "Content-Type is not application/json"},
        422: {"model": ErrorResponse, "description": "JSON of the wrong shape"},
    }

    @app.post(
        "/predict",
        response_model=PredictResponse,
        response_model_exclude_none=True,
        responses=errors,
        summary="label one text or a batch",
    )
    def predict(request: PredictRequest) -> dict[str, Any]:
        """One prediction per text, in order (a list even for a single ``text``)."""
        texts = [request.text] if request.text is not None else request.texts or []
        if len(texts) > max_batch:
            raise HTTPException(413, f"{len(texts)} texts: at most {max_batch} per request")
        for i, text in enumerate(texts):
            if len(text) > max_text_chars:
                raise HTTPException(
                    413, f"text {i} has {len(text)} characters: at most {max_text_chars}"
                )
        predictions: list[dict[str, Any]] = []
        if texts:
            sources: list[str | None]
            if cascade_model is not None:
                result = cascade_model.predict_detailed(texts)
                logits, probabilities = result.logits, result.probabilities
                sources = list(result.sources)
            else:
                logits = model.decision_function(texts)
                probabilities = model.probabilities(logits)
                sources = [None] * len(texts)
            for row_logits, row_probabilities, source, chosen in zip(
                logits, probabilities, sources, model.labels_of(logits), strict=True
            ):
                prediction: dict[str, Any] = {
                    "label": chosen if isinstance(chosen, str) else list(chosen),
                    "probabilities": dict(zip(labels, map(float, row_probabilities), strict=True)),
                    "source": source,
                }
                if request.logits:
                    prediction["logits"] = dict(zip(labels, map(float, row_logits), strict=True))
                predictions.append(prediction)
        return {"predictions": predictions, "model": summary}

    @app.get("/health", response_model=HealthResponse, summary="liveness")
    def health() -> HealthResponse:
        return HealthResponse()

    @app.get("/metadata", response_model=MetadataResponse, summary="the served model")
    def get_metadata() -> MetadataResponse:
        return metadata

    return app


def serve(
    artifact: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    log_level: str = "info",
    cascade: bool = False,
    **limits: int,
) -> None:
    """Serve ``artifact`` with uvicorn until interrupted. ``limits``: see :func:`create_app`."""
    try:
        import uvicorn
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(f"{SERVE_HINT} ({error})") from error
    app = create_app(artifact, cascade=cascade, **limits)
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        print(
            f"[textdistill] serving on {host}: reachable from other machines, "
            "with no authentication",
            file=sys.stderr,
        )
    uvicorn.run(app, host=host, port=port, log_level=log_level)

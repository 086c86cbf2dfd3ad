"""An HTTP server for a student artifact: ``textdistill serve ARTIFACT``.

Needs the ``serve`` extra (``pip install 'textdistill[serve]'``: FastAPI and uvicorn), which
only this module and the two it uses (``api_keys``, ``serve_workers``) import. The model is
loaded and warmed up once per worker process, when the app is created; no endpoint reads a
file except ``/reload``, which reads the artifact the server was started with, again.

Endpoints (OpenAPI docs at ``/docs``):

* ``POST /predict``: ``{"text": "..."}`` or ``{"texts": ["...", ...]}``, optionally
  ``"logits": true``; a model of text pairs takes ``{"text": "...", "text_pair": "..."}`` or
  ``{"texts": [...], "text_pairs": [...]}`` (one second text per text). The answer is
  always a list, one prediction per text (one for ``text``):
  ``{"predictions": [{"label", "probabilities", "logits"?}], "model": {...}}``.
* ``GET /health``: ``{"status": "ok"}``; the one endpoint that never needs a key.
* ``GET /metadata``: labels, versions, kind, featurizer spec (no vocabulary), the training
  metadata of the manifest and the server's limits.
* ``POST /reload``: read the artifact (and the key file) again, as SIGHUP does.

With a key file (``--api-key-file``), every endpoint but ``/health`` needs
``Authorization: Bearer KEY`` (see :mod:`textdistill.api_keys`).

**Swapping the model without downtime.** Replace the artifact atomically (a symbolic link
switched with ``mv -T``, or a directory renamed over an empty one), then send SIGHUP (to the
supervisor with ``--workers``: it passes the signal to every worker) or ``POST /reload``.
The path is resolved once per reload, so a swap during the load cannot mix two versions;
a request holds the model it started on until it answers; the new model is loaded and
warmed up beside the old one and replaces it in one assignment. A new artifact that fails
to load (or a key file that fails to read) is refused with a log line, and the old model and
keys keep serving. An unchanged artifact is not loaded again.

Errors are JSON ``{"error": "..."}`` (422 adds ``"details"``), never a 500 for bad input:

* 400: the body is not valid JSON (or is empty);
* 401: a key file is in use and the request has no valid ``Authorization: Bearer`` key;
* 409: ``/reload`` refused the new artifact (the old one keeps serving);
* 413: the body is larger than ``max_body_bytes`` (checked against ``Content-Length`` and
  again while reading, so a client that lies about it cannot make the server buffer more),
  more than ``max_batch`` texts, or a text longer than ``max_text_chars`` characters;
* 415: the ``Content-Type`` is not JSON (required: a browser cannot send it cross-site
  without a CORS preflight, so a page you visit cannot use a server on your machine);
* 422: valid JSON of the wrong shape (not an object, both or neither of ``text`` and
  ``texts``, a text that is not a string, an unknown field...).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textdistill import __version__
from textdistill.api_keys import ApiKeys, BearerAuthMiddleware, read_api_keys
from textdistill.cascade import CASCADE_FILE, Cascade
from textdistill.extras import install_hint
from textdistill.runtime import Model, load, read_manifest
from textdistill.runtime.pairs import PairError, join_pair

SERVE_HINT = f"the HTTP server needs the serve extra: {install_hint('serve')}"

try:
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field, model_validator
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError(f"{SERVE_HINT} ({error})") from error

DEFAULT_MAX_BATCH = 256
DEFAULT_MAX_TEXT_CHARS = 100_000
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024


# ---------------------------------------------------------------------------- schemas
class PredictRequest(BaseModel):
    """Give exactly one of ``text`` and ``texts`` (with ``text_pair`` or ``text_pairs`` for a
    model of text pairs)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"text": "a gorgeous, moving film"},
                {"texts": ["a gorgeous, moving film", "a tedious mess"], "logits": True},
                {"text": "A man is sleeping.", "text_pair": "Nobody is sleeping."},
            ]
        },
    )

    text: str | None = Field(default=None, description="one text to label")
    texts: list[str] | None = Field(default=None, description="a batch of texts to label")
    text_pair: str | None = Field(
        default=None, description="a model of text pairs: the second text of `text`"
    )
    text_pairs: list[str] | None = Field(
        default=None, description="a model of text pairs: the second text of each of `texts`"
    )
    logits: bool = Field(default=False, description="also return the raw logits")

    @model_validator(mode="after")
    def _exactly_one(self) -> PredictRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError('give exactly one of "text" (a string) and "texts" (a list)')
        if self.text_pair is not None and self.text is None:
            raise ValueError('"text_pair" goes with "text"; use "text_pairs" with "texts"')
        if self.text_pairs is not None and (
            self.texts is None or len(self.text_pairs) != len(self.texts)
        ):
            raise ValueError('"text_pairs" needs "texts" of the same length (one pair each)')
        return self

    def inputs(self) -> list[str]:
        """The texts, or the joined text pairs (:mod:`textdistill.runtime.pairs`)."""
        if self.text is not None:
            if self.text_pair is None:
                return [self.text]
            return [join_pair(self.text, self.text_pair)]
        texts = self.texts or []
        if self.text_pairs is None:
            return texts
        return [join_pair(a, b) for a, b in zip(texts, self.text_pairs, strict=True)]


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


class ReloadResponse(BaseModel):
    status: str = Field(description='"reloaded", or "unchanged" when the artifact is the same')
    model: ModelSummary = Field(description="the model now serving")
    previous_model: str = Field(description="id of the model served before")
    workers: int = Field(description="worker processes; the others reload on SIGHUP")


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
@dataclass(frozen=True)
class ServedModel:
    """A loaded model and what the endpoints say about it, replaced whole by a reload: a
    request reads it once, so it answers with one model from start to end."""

    model: Model
    cascade: Cascade | None
    summary: ModelSummary
    metadata: MetadataResponse
    identity: str
    pairs: bool  # whether the model reads text pairs (requests must give text_pair[s])


def _student_path(root: Path, cascade: bool) -> Path:
    if not cascade:
        return root
    spec = json.loads((root / CASCADE_FILE).read_text(encoding="utf-8"))
    return root / spec["student"]


def _identity(root: Path, cascade: bool) -> str:
    """What tells two artifacts apart without loading them: the resolved directory, the
    student's verified manifest checksum and, for a cascade, its description file."""
    manifest = read_manifest(_student_path(root, cascade))
    parts = [str(root), str(manifest.get("checksum"))]
    if cascade:
        parts.append(hashlib.sha256((root / CASCADE_FILE).read_bytes()).hexdigest())
    return "\0".join(parts)


def load_served(artifact: str | Path, *, cascade: bool, limits: Limits) -> ServedModel:
    """Load, check and warm up the artifact (with a cascade, its teacher too)."""
    root = Path(artifact).resolve()  # once: a swap during the load cannot mix two versions
    cascade_model = Cascade.load(root) if cascade else None
    if cascade_model is not None:
        cascade_model.teacher()  # loaded now, so a broken teacher fails here, not in a request
        model = cascade_model.student
    else:
        model = load(str(root))
    student = _student_path(root, cascade)
    manifest = read_manifest(student)
    pairs = bool(getattr(model, "pairs", False))
    # warm up (builds the C vocabulary) before any request
    model.decision_function([join_pair("", "")] if pairs else [""])
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
        limits=limits,
    )
    return ServedModel(model, cascade_model, summary, metadata, _identity(root, cascade), pairs)


def log(message: str) -> None:
    """One line on stderr, naming the process (several workers write to one log). The line and
    its newline go in one write: ``print`` writes them apart, and two workers' lines then
    interleaved as one ("...model 71fb[textdistill] worker 2894: ...")."""
    sys.stderr.write(f"[textdistill] worker {os.getpid()}: {message}\n")
    sys.stderr.flush()


class ReloadRefused(RuntimeError):
    """The new artifact or key file could not be loaded; the old ones keep serving."""


@dataclass
class ModelSlot:
    """The model (and keys) a worker serves now, and the reload that replaces them."""

    artifact: Path
    cascade: bool
    limits: Limits
    api_key_file: Path | None
    current: ServedModel = field(init=False)
    keys: ApiKeys | None = field(init=False, default=None)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.keys = read_api_keys(self.api_key_file) if self.api_key_file else None
        self.current = load_served(self.artifact, cascade=self.cascade, limits=self.limits)
        teacher = " and its teacher" if self.cascade else ""
        log(f"serving {self.artifact}{teacher} (model {self.current.summary.id})")

    def reload(self, reason: str) -> tuple[str, ServedModel, ServedModel]:
        """Read the key file and the artifact again: ``(status, new, previous)``.

        All or nothing: if either fails, :class:`ReloadRefused` is raised and nothing changes.
        Any exception counts as a failure (a broken artifact or teacher can raise many kinds),
        and is reported in one line, not as a traceback.
        """
        with self._lock:
            previous = self.current
            try:
                keys = read_api_keys(self.api_key_file) if self.api_key_file else None
                root = self.artifact.resolve()
                unchanged = _identity(root, self.cascade) == previous.identity
                served = (
                    previous
                    if unchanged
                    else load_served(root, cascade=self.cascade, limits=self.limits)
                )
            except Exception as error:  # see the docstring
                message = (
                    f"reload ({reason}) refused: {type(error).__name__}: {error}; "
                    f"still serving model {previous.summary.id}"
                )
                log(message)
                raise ReloadRefused(message) from None
            self.keys, self.current = keys, served
            if unchanged:
                log(f"reload ({reason}): artifact unchanged (model {served.summary.id})")
                return "unchanged", served, previous
            log(
                f"reload ({reason}): now serving model {served.summary.id} "
                f"(was {previous.summary.id})"
            )
            return "reloaded", served, previous

    def reload_quietly(self, reason: str) -> None:
        """:meth:`reload` for a signal, which has nobody to answer: the log line is enough."""
        with suppress(ReloadRefused):
            self.reload(reason)


def create_app(
    artifact: str | Path,
    *,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    cascade: bool = False,
    api_key_file: str | Path | None = None,
    workers: int = 1,
    supervisor_pid: int | None = None,
) -> FastAPI:
    """A FastAPI app serving the artifact at ``artifact``, loaded (and checked) right now.

    With ``cascade``, ``artifact`` is a cascade directory: the student answers, and texts it
    is unsure of go to the teacher (loaded now too, so a broken teacher fails at start-up).
    With ``api_key_file``, every endpoint but ``/health`` needs one of its keys.
    ``workers``, ``supervisor_pid``: this app runs in one of ``workers`` processes started by
    ``supervisor_pid``; ``/reload`` sends it SIGHUP, so that every worker reloads, not only
    the one that got the request.
    """
    for name, value in (
        ("max_batch", max_batch),
        ("max_text_chars", max_text_chars),
        ("max_body_bytes", max_body_bytes),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    limits = Limits(
        max_batch=max_batch, max_text_chars=max_text_chars, max_body_bytes=max_body_bytes
    )
    slot = ModelSlot(Path(artifact), cascade, limits, Path(api_key_file) if api_key_file else None)
    first = slot.current.summary

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        try:  # the load runs in a thread: requests keep being answered meanwhile
            loop.add_signal_handler(
                signal.SIGHUP, lambda: loop.run_in_executor(None, slot.reload_quietly, "SIGHUP")
            )
            listening = True
        except (ValueError, RuntimeError, AttributeError):  # not the main thread (a test client)
            listening = False
        try:
            yield
        finally:
            if listening:
                loop.remove_signal_handler(signal.SIGHUP)

    app = FastAPI(
        title="textdistill",
        version=__version__,
        summary=f"{first.kind} student over labels {first.labels}",
        description=(__doc__ or "").split("\n\n", 1)[0],
        lifespan=lifespan,
    )
    app.state.slot = slot
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=max_body_bytes)
    # Added last, so it runs first: an unauthenticated body is never read.
    app.add_middleware(BearerAuthMiddleware, keys=lambda: slot.keys)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
    errors: dict[int | str, dict[str, Any]] = {
        400: {"model": ErrorResponse, "description": "malformed JSON"},
        401: {"model": ErrorResponse, "description": "missing or invalid API key"},
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
        served = slot.current  # read once: a reload meanwhile does not change this answer
        try:
            texts = request.inputs()
        except PairError as error:
            raise HTTPException(422, str(error)) from None
        paired = request.text_pair is not None or request.text_pairs is not None
        if texts and paired != served.pairs:
            wanted = "text pairs: give text_pair(s)" if served.pairs else "single texts"
            raise HTTPException(422, f"this model reads {wanted}")
        if len(texts) > max_batch:
            raise HTTPException(413, f"{len(texts)} texts: at most {max_batch} per request")
        for i, text in enumerate(texts):
            if len(text) > max_text_chars:
                raise HTTPException(
                    413, f"text {i} has {len(text)} characters: at most {max_text_chars}"
                )
        model, labels = served.model, served.summary.labels
        predictions: list[dict[str, Any]] = []
        if texts:
            sources: list[str | None]
            if served.cascade is not None:
                result = served.cascade.predict_detailed(texts)
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
        return {"predictions": predictions, "model": served.summary}

    @app.get("/health", response_model=HealthResponse, summary="liveness")
    def health() -> HealthResponse:
        return HealthResponse()

    @app.get("/metadata", response_model=MetadataResponse, summary="the served model")
    def get_metadata() -> MetadataResponse:
        return slot.current.metadata

    @app.post(
        "/reload",
        response_model=ReloadResponse,
        responses={
            401: errors[401],
            409: {"model": ErrorResponse, "description": "the new artifact was refused"},
        },
        summary="load the artifact again (after it was replaced)",
    )
    def reload_artifact() -> ReloadResponse:
        """What SIGHUP does; with several workers, the supervisor is signalled too."""
        try:
            status, served, previous = slot.reload("POST /reload")
        except ReloadRefused as error:
            raise HTTPException(409, str(error)) from None
        if workers > 1 and supervisor_pid is not None and os.getppid() == supervisor_pid:
            os.kill(supervisor_pid, signal.SIGHUP)  # it passes SIGHUP on to every worker
        return ReloadResponse(
            status=status, model=served.summary, previous_model=previous.summary.id, workers=workers
        )

    return app


@dataclass(frozen=True)
class AppFactory:
    """How a worker builds its app. Picklable: uvicorn's supervisor starts each worker with
    multiprocessing's spawn and calls this there, so every worker loads the artifact (and a
    cascade's teacher) once, itself."""

    artifact: Path
    cascade: bool
    limits: dict[str, int]
    api_key_file: Path | None
    workers: int
    supervisor_pid: int

    def __call__(self) -> FastAPI:
        # Until the app listens for SIGHUP (its default action ends the process), a reload
        # signal that arrives during the start-up is dropped: the load reads the new file.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        return create_app(
            self.artifact,
            cascade=self.cascade,
            api_key_file=self.api_key_file,
            workers=self.workers,
            supervisor_pid=self.supervisor_pid,
            **self.limits,
        )

    def in_worker(self) -> FastAPI:
        """:meth:`__call__` in a worker process: a failure is one log line and the exit
        status by which uvicorn's supervisor knows that restarting would fail again."""
        from uvicorn.config import STARTUP_FAILURE

        try:
            return self()
        except Exception as error:  # any failure to start is reported alike
            log(f"cannot start: {type(error).__name__}: {error}")
            sys.exit(STARTUP_FAILURE)


class ServeConfigError(ValueError):
    """The server was asked for something unsafe or impossible; nothing was started."""


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_exposure(host: str, api_key_file: Path | None, insecure: bool) -> None:
    """Refuse to serve beyond this machine with no key file unless ``insecure`` says so."""
    if _is_loopback(host):
        return
    if api_key_file is None and not insecure:
        raise ServeConfigError(
            f"refusing to serve on {host} (reachable from other machines) without "
            "authentication: give --api-key-file KEYS (or set TEXTDISTILL_API_KEY_FILE), "
            "or --insecure to serve without"
        )
    if api_key_file is None:
        print(
            f"[textdistill] serving on {host}: reachable from other machines, "
            "with no authentication (--insecure)",
            file=sys.stderr,
        )
    else:
        print(
            f"[textdistill] serving on {host} over plain HTTP: keys travel in clear text "
            "unless a TLS proxy is in front",
            file=sys.stderr,
        )


def serve(
    artifact: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    log_level: str = "info",
    cascade: bool = False,
    workers: int = 1,
    api_key_file: str | Path | None = None,
    insecure: bool = False,
    **limits: int,
) -> None:
    """Serve ``artifact`` with uvicorn until interrupted. ``limits``: see :func:`create_app`.

    With ``workers`` > 1, a supervisor binds the port and starts that many worker
    processes sharing it (see :mod:`textdistill.serve_workers`).
    """
    try:
        import uvicorn
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(f"{SERVE_HINT} ({error})") from error
    if not isinstance(workers, int) or workers < 1:
        raise ServeConfigError(f"workers must be a positive integer, got {workers!r}")
    keys = Path(api_key_file) if api_key_file else None
    check_exposure(host, keys, insecure)
    factory = AppFactory(Path(artifact), cascade, dict(limits), keys, workers, os.getpid())
    if workers == 1:
        uvicorn.run(factory(), host=host, port=port, log_level=log_level)
        return
    from textdistill.serve_workers import run_workers

    # Fail here, once and in one line, rather than in every worker: the key file and the
    # student are read now (the teacher, the slow part, only in the workers).
    if keys is not None:
        read_api_keys(keys)
    load(str(_student_path(Path(artifact).resolve(), cascade)))
    run_workers(factory, host=host, port=port, log_level=log_level, workers=workers)

"""Bearer-key authentication for ``textdistill serve``: the key file and an ASGI middleware.

The key file holds one key per line (blank lines and ``#`` comments are ignored), so keys
can be rotated without downtime: add the new key, reload the server (SIGHUP or
``POST /reload``), move the clients, remove the old key, reload again.

Why each choice:

* Keys are kept only as sha256 digests and a presented key is hashed before it is compared,
  with :func:`hmac.compare_digest` against *every* key (no early exit): the time an answer
  takes depends neither on how much of a key a client guessed, nor on its length, nor on
  which key matched.
* A refused request gets the same 401 whether the header was missing, malformed or held a
  wrong key: nothing in the answer helps a guesser. The request body is never read (an
  unauthenticated client cannot make the server buffer it) and the connection is closed.
* ``/health`` stays open, for load balancers and orchestrators; every other path needs a key,
  unknown ones included, so that routes cannot be probed without one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import stat
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

API_KEY_FILE_ENV = "TEXTDISTILL_API_KEY_FILE"
"""Environment variable naming the key file, for deployments that cannot change arguments."""
MIN_KEY_CHARS = 16
OPEN_PATHS = frozenset({"/health"})
# What an HTTP header can carry without quoting: visible ASCII, no spaces.
_KEY = re.compile(r"[\x21-\x7e]+")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ApiKeyError(ValueError):
    """The key file cannot be used (missing, unreadable, empty, or a key is malformed)."""


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


class ApiKeys:
    """The accepted keys (as digests) and where they were read from."""

    def __init__(self, digests: list[bytes], source: Path) -> None:
        if not digests:
            raise ApiKeyError(f"{source}: no API key in the file (one key per line)")
        self._digests = tuple(digests)
        self.source = source

    def __len__(self) -> int:
        return len(self._digests)

    def accepts(self, presented: bytes) -> bool:
        """Whether ``presented`` is one of the keys, in time independent of its content."""
        candidate = _digest(presented)
        found = False
        for digest in self._digests:
            found |= hmac.compare_digest(candidate, digest)
        return found


def read_api_keys(path: str | Path) -> ApiKeys:
    """Read and check the key file at ``path``; errors name the file and line.

    A file that other users can read is accepted with a warning: refusing it would stop a
    server at a restart for a permission that may be intended (a group of operators).
    """
    source = Path(path)
    try:
        content = source.read_bytes()
        mode = source.stat().st_mode
    except OSError as error:
        raise ApiKeyError(f"{source}: cannot read the API key file ({error.strerror})") from None
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiKeyError(f"{source}: not UTF-8 text (one key per line)") from None
    digests = []
    for number, line in enumerate(text.splitlines(), start=1):
        key = line.strip()
        if not key or key.startswith("#"):
            continue
        if not _KEY.fullmatch(key):
            raise ApiKeyError(
                f"{source}, line {number}: a key is visible ASCII without spaces "
                "(it travels in an HTTP header)"
            )
        if len(key) < MIN_KEY_CHARS:
            raise ApiKeyError(
                f"{source}, line {number}: key of {len(key)} characters; at least "
                f"{MIN_KEY_CHARS} (e.g. python -c 'import secrets; print(secrets.token_urlsafe())')"
            )
        digests.append(_digest(key.encode("ascii")))
    keys = ApiKeys(digests, source)
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        print(
            f"[textdistill] warning: {source} is readable by other users "
            f"(mode {stat.S_IMODE(mode):o}); chmod 600 it",
            file=sys.stderr,
        )
    return keys


def _bearer_token(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, token = bytes(value).strip().partition(b" ")
            token = token.strip()
            if scheme.lower() == b"bearer" and token:
                return token
            return None
    return None


_REFUSAL = json.dumps(
    {"error": "missing or invalid API key: send the header Authorization: Bearer KEY"}
).encode()


class BearerAuthMiddleware:
    """Answer 401 to any request but ``/health`` without a valid ``Authorization: Bearer``.

    ``keys`` is called on every request, so that a reload that replaces the keys takes
    effect at once without rebuilding the app.
    """

    def __init__(self, app: ASGIApp, keys: Callable[[], ApiKeys | None]) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        keys = self.keys()
        if scope["type"] != "http" or keys is None or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        token = _bearer_token(scope)
        if token is not None and keys.accepts(token):
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(_REFUSAL)).encode()),
                    (b"www-authenticate", b'Bearer realm="textdistill"'),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _REFUSAL})

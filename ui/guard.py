"""One guard in front of the API and the page: what is refused before any route or Gradio runs."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.service import token_accepted
from retrieval.settings import Settings
from ui.api import ErrorResponse

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Routes whose bodies are uploads, limited by their own per-file and per-upload checks.
UPLOAD_ROUTES = frozenset({("POST", "/api/documents"), ("POST", "/gradio_api/upload")})
GRADIO_PREFIX = "/gradio_api/"
# The page keeps the token the reader typed in this cookie, sent only to Gradio's upload route
# (ui/web.py): the browser's file upload carries no Authorization header.
UPLOAD_TOKEN_COOKIE = "sourcebook_token"
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class RequestGuard:
    """Refuse writes from other sites, oversized bodies, tokenless page uploads and events naming server files."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and _cross_site(scope):
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        headers = _headers(scope)
        preflight = method == "OPTIONS" and "access-control-request-method" in headers
        if (method not in SAFE_METHODS or preflight) and _cross_site(scope):
            # A preflight gets no Access-Control-Allow-* headers, so the browser sends nothing after it.
            origin = headers.get("origin") or f"Sec-Fetch-Site: {headers.get('sec-fetch-site')}"
            await _refuse(scope, receive, send, 403, "cross-site requests may not change anything here",
                          [f"the request comes from {origin}, not from this server ({_own_origin(scope)})"])
            return
        if (method, path) in UPLOAD_ROUTES:
            if path.startswith(GRADIO_PREFIX) and not self._token_offered(headers):
                await _refuse(scope, receive, send, 401, "uploading needs the API token: enter it on the page, "
                              "or send 'Authorization: Bearer <token>'", None)
                return
            await self.app(scope, receive, send)
            return
        body = await _read_body(scope, receive, self.settings.max_json_bytes)
        if body is None:
            limit = self.settings.max_json_bytes
            await _refuse(scope, receive, send, 413, f"the request body is over the {limit:,}-byte limit "
                          "(SOURCEBOOK_MAX_JSON_BYTES)", None)
            return
        if method == "POST" and path.startswith(GRADIO_PREFIX) and body:
            problem = _not_uploaded(body)
            if problem:
                await _refuse(scope, receive, send, 403, "the page only reads files uploaded to it", [problem])
                return
        await self.app(scope, _replay(body, receive), send)

    def _token_offered(self, headers: dict[str, str]) -> bool:
        token = self.settings.api_token
        scheme, _, bearer = headers.get("authorization", "").partition(" ")
        cookie = unquote(_cookies(headers.get("cookie", "")).get(UPLOAD_TOKEN_COOKIE, ""))
        return token_accepted(token, bearer if scheme.lower() == "bearer" else None) or token_accepted(token, cookie)


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}


def _own_origin(scope: Scope) -> str:
    """This server's origin as the request addressed it (scheme, and the Host header)."""
    scheme = {"ws": "http", "wss": "https"}.get(scope["scheme"], scope["scheme"])
    host = _headers(scope).get("host", "")
    return f"{scheme}://{host}".lower()


def _origin_key(origin: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of an origin, the default port filled in; None if it is not one."""
    try:
        parts = urlsplit(origin)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port


def _cross_site(scope: Scope) -> bool:
    """Whether the browser says the request comes from a page of another origin (or site)."""
    headers = _headers(scope)
    if headers.get("sec-fetch-site") in {"cross-site", "same-site"}:
        return True
    origin = headers.get("origin")
    if origin is None:
        # Not sent by a browser for another page (curl, scripts, same-origin navigation).
        return False
    # "null" (a sandboxed frame, a file:// page) or anything unparsable is another origin too.
    theirs = _origin_key(origin.lower())
    return theirs is None or theirs != _origin_key(_own_origin(scope))


def _cookies(header: str) -> dict[str, str]:
    pairs = (part.strip().partition("=") for part in header.split(";"))
    return {name: value for name, _, value in pairs if name}


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it is known to be over `limit` bytes."""
    declared = _headers(scope).get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body already read, then whatever comes next (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _not_uploaded(body: bytes) -> str | None:
    """What is wrong with a Gradio event's body: a file in it that is not in Gradio's upload folder."""
    # Imported here: only the page's routes get here, and the API alone does not need Gradio.
    from gradio.utils import get_upload_folder

    try:
        payload = json.loads(body)
    except ValueError:
        return "the body is not JSON"
    uploads = Path(get_upload_folder()).resolve()
    stack = [payload]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            path = value.get("path")
            if path is not None:
                # A URL would be downloaded, a server path copied: only Gradio's own uploads may be named.
                if not isinstance(path, str) or not Path(path).is_absolute():
                    return f"file {path!r} was not uploaded to this page"
                if not Path(path).resolve().is_relative_to(uploads):
                    return f"file {path!r} was not uploaded to this page"
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, error: str, detail: list | None) -> None:
    response = JSONResponse(ErrorResponse(error=error, detail=detail).model_dump(), status_code=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    await response(scope, receive, send)

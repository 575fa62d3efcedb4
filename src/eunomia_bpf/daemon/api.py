"""The HTTP API of eunomiad (v1), as ``docs/daemon-api.md`` specifies it: a FastAPI app.

Every route but ``GET /health`` depends on the bearer-token check (``auth``: anything
with ``verify(token) -> bool``, normally :class:`eunomia_bpf.daemon.auth.TokenStore`).
With ``config.auth = false`` (allowed only on unix sockets and loopback TCP, for tests)
there is no check.

Nothing here reads a host file the client names: a package comes as bytes, from an
http(s) URL, or by a bare name (no ``/``) searched like ``ecli run NAME`` does, in
``$EUNOMIA_PATH``, ``~/.eunomia-bpf/packages`` and the bundled packages (the daemon's
working directory is an empty one, see :mod:`eunomia_bpf.daemon.server`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Protocol

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

from ..errors import EunomiaError, PackageError, ResolveError
from .config import DaemonConfig
from .signing import SignatureError, verify_package
from .state import StateError
from .supervisor import (
    ACTIVE,
    CommandError,
    LimitError,
    NotFoundError,
    ProgramStateError,
    StartError,
    Supervisor,
)

__all__ = ["TokenVerifier", "create_app"]

KEEPALIVE_SECONDS = 15.0
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")


class TokenVerifier(Protocol):
    def verify(self, token: str) -> bool: ...


class StartRequest(BaseModel):
    """Exactly one of ``package`` (base64 of the package bytes), ``url`` or ``name``."""

    model_config = ConfigDict(extra="forbid")
    package: str | None = None
    url: str | None = None
    name: str | None = None
    args: list[str] = []
    signature: dict[str, Any] | None = None


def _status_of(exc: EunomiaError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, LimitError):
        return 429
    if isinstance(exc, ProgramStateError):
        return 409
    if isinstance(exc, StartError):
        return 422
    if isinstance(exc, (PackageError, ResolveError, CommandError)):
        return 400
    if isinstance(exc, SignatureError):
        return 403
    if isinstance(exc, StateError):
        return 500
    return 400 if type(exc) is EunomiaError else 500


class _Errors:
    """API errors answered, by status (for /metrics)."""

    def __init__(self) -> None:
        self.by_status: dict[int, int] = {}

    def response(self, status: int, message: str,
                 headers: dict[str, str] | None = None) -> JSONResponse:
        self.by_status[status] = self.by_status.get(status, 0) + 1
        return JSONResponse({"error": message}, status_code=status, headers=headers)


class _Metrics(Collector):
    def __init__(self, supervisor: Supervisor, errors: _Errors) -> None:
        self.supervisor = supervisor
        self.errors = errors

    def collect(self) -> list[Metric]:
        sup = self.supervisor
        programs = GaugeMetricFamily("eunomiad_programs", "Programs by status",
                                     labels=["status"])
        for state in (*sorted(ACTIVE), "failed"):
            programs.add_metric([state], sup.count([state]))
        events = CounterMetricFamily("eunomiad_events", "Events received from each program",
                                     labels=["id", "name"])
        lost = CounterMetricFamily("eunomiad_lost_events",
                                   "Events the kernel lost, by program", labels=["id", "name"])
        for p in sup.list_programs():
            events.add_metric([p.id, p.name], p.events)
            lost.add_metric([p.id, p.name], p.lost)
        failures = CounterMetricFamily("eunomiad_program_failures",
                                       "Workers that failed to load or died")
        failures.add_metric([], sup.failures)
        errors = CounterMetricFamily("eunomiad_api_errors",
                                     "API requests answered with an error", labels=["status"])
        for code, n in sorted(self.errors.by_status.items()):
            errors.add_metric([str(code)], n)
        return [programs, events, lost, failures, errors]


_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_ASGIApp = Callable[[_Scope, _Receive, _Send], Awaitable[None]]


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``limit`` bytes, whether it says its
    length or is chunked; the body is read (up to the limit) before the app sees it."""

    def __init__(self, app: _ASGIApp, limit: int, errors: _Errors) -> None:
        self.app = app
        self.limit = limit
        self.errors = errors

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", ()):
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> _Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        response = self.errors.response(
            413, f"read request: the body is larger than {self.limit} bytes (limits.max_body)")
        await response(scope, receive, send)


def _default_token_store(config: DaemonConfig) -> TokenVerifier:
    from .auth import TokenStore

    return TokenStore(config.tokens_path)


def create_app(config: DaemonConfig, supervisor: Supervisor,
               auth: TokenVerifier | None = None) -> FastAPI:
    """The daemon's ASGI app. ``auth`` checks bearer tokens (default: the token store
    at ``config.tokens_path``); unused when ``config.auth`` is false."""
    errors = _Errors()
    verifier = auth if auth is not None or not config.auth else _default_token_store(config)

    async def require_token(authorization: str | None = Header(default=None)) -> None:
        if not config.auth:
            return
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "missing bearer token (Authorization: Bearer <token>)")
        if verifier is None or not verifier.verify(token):
            raise HTTPException(401, "invalid or revoked token")

    app = FastAPI(title="eunomiad", version="1", openapi_url=None, docs_url=None,
                  redoc_url=None)
    api = APIRouter(dependencies=[Depends(require_token)])
    registry = CollectorRegistry()
    registry.register(_Metrics(supervisor, errors))

    @app.exception_handler(EunomiaError)
    async def on_error(request: Request, exc: EunomiaError) -> JSONResponse:
        return errors.response(_status_of(exc), str(exc))

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer realm="eunomiad"'} if exc.status_code == 401 \
            else None
        return errors.response(exc.status_code, str(exc.detail), headers)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return errors.response(400, f"read request: {where or 'body'}: "
                                    f"{first.get('msg', 'invalid')}".lower())

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "programs": len(supervisor.list_programs())}

    @api.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @api.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(registry),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    async def package_bytes(body: StartRequest) -> bytes:
        limit = config.limits.max_package_size
        given = [k for k in ("package", "url", "name") if getattr(body, k) is not None]
        if len(given) != 1:
            raise EunomiaError("start program: give exactly one of package, url or name")
        if body.package is not None:
            if len(body.package) * 3 // 4 > limit + 2:
                raise LimitError(f"start program: the package is larger than {limit} bytes "
                                 "(limits.max_package_size)")
            try:
                return base64.b64decode(body.package, validate=True)
            except (binascii.Error, ValueError):
                raise EunomiaError("start program: package is not valid base64") from None
        from ..resolve import resolve

        if body.url is not None:
            if not body.url.startswith(("http://", "https://")):
                raise EunomiaError("start program: url must be http:// or https://")
            found = await asyncio.to_thread(resolve, body.url, limit=limit)
            return found.data
        assert body.name is not None
        if not _NAME.match(body.name):
            raise EunomiaError(f"start program: {body.name!r} is not a package name (letters, "
                               "digits, '_.+-'; no paths)")
        found = await asyncio.to_thread(resolve, body.name, limit=limit)
        return found.data

    def verify_signature(data: bytes, signature: dict[str, Any] | None) -> None:
        verify_package(data, signature, config.trusted_keys, config.require_signed)

    @api.post("/v1/programs", status_code=201)
    async def start(body: StartRequest) -> dict[str, Any]:
        from ..package import read_package

        data = await package_bytes(body)
        if len(data) > config.limits.max_package_size:
            raise LimitError(f"start program: the package is larger than "
                             f"{config.limits.max_package_size} bytes (limits.max_package_size)")
        await asyncio.to_thread(verify_signature, data, body.signature)
        package = await asyncio.to_thread(read_package, data,
                                          max_size=config.limits.max_package_size)
        program = await supervisor.start(data, list(body.args), package.name)
        return program.info()

    @api.get("/v1/programs")
    async def list_programs() -> dict[str, Any]:
        return {"programs": [p.info() for p in supervisor.list_programs()]}

    @api.get("/v1/programs/{program_id}")
    async def get_program(program_id: str) -> dict[str, Any]:
        return supervisor.get(program_id).info()

    @api.delete("/v1/programs/{program_id}")
    async def stop_program(program_id: str) -> dict[str, Any]:
        program = await supervisor.stop(program_id)
        return {"id": program.id, "status": "stopped"}

    @api.post("/v1/programs/{program_id}/pause")
    async def pause(program_id: str) -> dict[str, Any]:
        return (await supervisor.pause(program_id)).info()

    @api.post("/v1/programs/{program_id}/resume")
    async def resume(program_id: str) -> dict[str, Any]:
        return (await supervisor.resume(program_id)).info()

    @api.get("/v1/programs/{program_id}/maps/{name}")
    async def read_map(program_id: str, name: str) -> dict[str, Any]:
        return {"map": name, "entries": await supervisor.read_map(program_id, name)}

    @api.get("/v1/programs/{program_id}/log")
    async def log(program_id: str, tail: int = 100) -> dict[str, Any]:
        return {"lines": supervisor.get(program_id).log_tail(tail)}

    @api.get("/v1/programs/{program_id}/events")
    async def events(program_id: str, cursor: int | None = None, follow: bool = True,
                     last_event_id: str | None = Header(default=None)) -> StreamingResponse:
        """Server-sent events: ``id: <seq>`` and ``data: <event JSON>``. The cursor is
        the last seq seen (the query's ``cursor``, else the ``Last-Event-ID`` header a
        reconnecting EventSource sends); everything buffered after it comes first."""
        program = supervisor.get(program_id)
        if cursor is None:
            cursor = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0

        async def stream(after: int) -> AsyncIterator[bytes]:
            yield f": events of {program.id}\n\n".encode()
            while True:
                batch = program.events_after(after)
                if batch:
                    after = batch[-1][0]
                    yield b"".join(b"id: %d\ndata: %s\n\n" % item for item in batch)
                    continue
                if not follow or program.done or supervisor.closing.is_set():
                    return
                seen = program.last_seq
                await program.wait_events(KEEPALIVE_SECONDS)
                if program.last_seq == seen and not program.done:
                    yield b": keepalive\n\n"

        return StreamingResponse(stream(cursor), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    app.include_router(api)
    app.add_middleware(BodyLimit, limit=config.limits.max_body, errors=errors)
    return app

"""A client of ``eunomiad``'s HTTP API (docs/daemon-api.md): start, list, inspect, pause,
resume and stop programs on a remote host, stream their events, read their maps and logs.

::

    with RemoteClient("unix:///run/eunomia/eunomiad.sock", token) as daemon:
        program = daemon.start(Path("opensnoop.package.json").read_bytes(), ["--targ_pid", "42"])
        for event in daemon.events(program["id"]):   # {"seq", "source", "event"}
            print(event["event"]["fname"])

URLs are ``http://host:port``, ``https://host:port`` (``cacert`` to trust the daemon's
certificate, ``cert``/``key`` for mutual TLS) or ``unix:///path/to/socket``. Every failure
is a :class:`RemoteError` with one line: the daemon's own ``error`` and the HTTP status, or
what went wrong with the connection. The HTTP stack (httpx) is imported here only, so
that a local ``ecli run`` never pays for it.
"""

from __future__ import annotations

import base64
import builtins
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from ._closing import Closing
from .errors import EunomiaError

__all__ = ["TERMINAL_STATUSES", "RemoteClient", "RemoteError", "package_signature"]

#: a program in one of these states produces no more events
TERMINAL_STATUSES = frozenset({"stopped", "failed"})
DEFAULT_TIMEOUT = 30.0
#: how long ``events`` keeps trying to reconnect a dropped stream before giving up
RECONNECT_FOR = 30.0


class RemoteError(EunomiaError):
    """A request to eunomiad failed: ``status`` is the HTTP status (None when the daemon
    could not be reached or did not answer)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _ssl_context(cacert: str | None, cert: str | None, key: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cacert)
    if cert:
        context.load_cert_chain(cert, key)
    return context


def _error_line(response: httpx.Response, method: str, path: str) -> str:
    """The daemon's own one-line ``error`` (already "verb object: cause"), or the request
    and the HTTP reason when the answer has none (a proxy, another server)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("error") if isinstance(body, dict) else None
    if not isinstance(detail, str) or not detail.strip():
        detail = f"{method} {path}: {response.reason_phrase or 'no reason given'}"
    return f"{detail.strip().splitlines()[0]} (HTTP {response.status_code})"


class RemoteClient(Closing):
    """One eunomiad, reached over TCP (optionally TLS/mTLS) or a unix socket."""

    def __init__(self, url: str, token: str | None = None, *, cacert: str | None = None,
                 cert: str | None = None, key: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urlsplit(url)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            if parts.scheme == "unix":
                socket_path = parts.path or parts.netloc
                if not socket_path:
                    raise RemoteError(f"connect {url}: no socket path (unix:///path/to/sock)")
                self.url = f"unix://{socket_path}"
                transport = httpx.HTTPTransport(uds=socket_path)
                self._http = httpx.Client(base_url="http://eunomiad", transport=transport,
                                          headers=headers, timeout=timeout)
            elif parts.scheme in ("http", "https") and parts.netloc:
                self.url = url.rstrip("/")
                verify: ssl.SSLContext | bool = True
                if parts.scheme == "https":
                    verify = _ssl_context(cacert, cert, key)
                # no Nagle: a request's headers and body are separate writes, and the
                # body would wait ~40 ms for the delayed ACK of the headers
                nodelay = httpx.HTTPTransport(
                    verify=verify, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
                self._http = httpx.Client(base_url=self.url, headers=headers,
                                          timeout=timeout, transport=nodelay)
            else:
                raise RemoteError(f"connect {url}: not a daemon URL (http://HOST:PORT, "
                                  "https://HOST:PORT or unix:///path/to/socket)")
        except (OSError, ssl.SSLError) as exc:
            raise RemoteError(f"connect {url}: TLS set-up: {exc}") from None

    # -- plumbing ---------------------------------------------------------------------------

    def _explain(self, exc: httpx.HTTPError) -> RemoteError:
        if isinstance(exc, httpx.ConnectError):
            cause = str(exc) or "cannot connect"
            if "refused" in cause.lower() or "No such file" in cause:
                cause = "connection refused (is eunomiad running there?)"
            return RemoteError(f"connect {self.url}: {cause}")
        if isinstance(exc, httpx.TimeoutException):
            return RemoteError(f"request {self.url}: timed out")
        return RemoteError(f"request {self.url}: {exc or type(exc).__name__}")

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise self._explain(exc) from None
        if response.status_code >= 400:
            raise RemoteError(_error_line(response, method, path), status=response.status_code)
        try:
            return response.json()
        except ValueError:
            raise RemoteError(f"{method} {path}: the daemon's answer is not JSON",
                              status=response.status_code) from None

    @staticmethod
    def _program_path(program_id: str, *rest: str) -> str:
        return "/".join(["/v1/programs", quote(program_id, safe=""),
                         *(quote(r, safe="") for r in rest)])

    # -- the API ------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        answer: dict[str, Any] = self._request("GET", "/health")
        return answer

    def start(self, package: bytes | str, args: Sequence[str] = (), *,
              signature: dict[str, Any] | None = None) -> dict[str, Any]:
        """Start a program from package bytes, an http(s) URL the daemon fetches, or a name
        the daemon resolves; ``args`` are the package's options. Returns the program."""
        body: dict[str, Any] = {"args": list(args)}
        if isinstance(package, bytes):
            body["package"] = base64.b64encode(package).decode()
        elif package.startswith(("http://", "https://")):
            body["url"] = package
        else:
            body["name"] = package
        if signature is not None:
            body["signature"] = signature
        program: dict[str, Any] = self._request("POST", "/v1/programs", json=body)
        return program

    def list(self) -> builtins.list[dict[str, Any]]:
        programs: builtins.list[dict[str, Any]] = self._request("GET", "/v1/programs")["programs"]
        return programs

    def get(self, program_id: str) -> dict[str, Any]:
        program: dict[str, Any] = self._request("GET", self._program_path(program_id))
        return program

    def stop(self, program_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._request("DELETE", self._program_path(program_id))
        return answer

    def pause(self, program_id: str) -> dict[str, Any]:
        program: dict[str, Any] = self._request("POST", self._program_path(program_id, "pause"))
        return program

    def resume(self, program_id: str) -> dict[str, Any]:
        program: dict[str, Any] = self._request("POST",
                                                self._program_path(program_id, "resume"))
        return program

    def log(self, program_id: str, tail: int | None = None) -> builtins.list[str]:
        params = {} if tail is None else {"tail": tail}
        lines: builtins.list[str] = self._request("GET", self._program_path(program_id, "log"),
                                         params=params)["lines"]
        return lines

    def read_map(self, program_id: str, name: str) -> builtins.list[dict[str, Any]]:
        """The entries of one map, ``[{"key": ..., "value": ...}]``."""
        entries: builtins.list[dict[str, Any]] = self._request(
            "GET", self._program_path(program_id, "maps", name))["entries"]
        return entries

    def events(self, program_id: str, cursor: int = 0, follow: bool = True, *,
               reconnect_for: float = RECONNECT_FOR) -> Iterator[dict[str, Any]]:
        """The program's events, ``{"seq", "source", "event"}``, from the first with a seq
        above ``cursor``. With ``follow`` the stream goes on until the program stops; a
        dropped connection is reopened from the last seq seen, so nothing still buffered
        by the daemon is missed or repeated (a daemon that restarted meanwhile counts
        from 1 again)."""
        path = self._program_path(program_id, "events")
        # the stream may be quiet for as long as the program sees nothing
        timeout = httpx.Timeout(self._http.timeout.connect or DEFAULT_TIMEOUT, read=None)
        failing_since: float | None = None
        while True:
            params = {"cursor": cursor, "follow": "true" if follow else "false"}
            try:
                with self._http.stream("GET", path, params=params, timeout=timeout) as resp:
                    if resp.status_code >= 400:
                        resp.read()
                        raise RemoteError(_error_line(resp, "GET", path),
                                          status=resp.status_code)
                    failing_since = None
                    for event in _parse_sse(resp.iter_raw()):
                        # the daemon sends what follows the cursor; after it restarted,
                        # its count begins again and it sends all it has
                        seq = event.get("seq")
                        if isinstance(seq, int):
                            cursor = seq
                        yield event
            except (httpx.TransportError, httpx.DecodingError) as exc:
                # dropped mid-stream or refused while the daemon restarts: try again
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > reconnect_for:
                    raise self._explain(exc) from None
                time.sleep(0.2)
                continue
            if not follow:
                return
            # the daemon closed the stream: the end of the program, or of the connection
            try:
                status = self.get(program_id).get("status")
            except RemoteError as exc:
                if exc.status == 404:  # stopped and forgotten: its stream was all there is
                    return
                raise
            if status in TERMINAL_STATUSES:
                # events sent between the close and the status check still count
                yield from self.events(program_id, cursor, follow=False)
                return

    def close(self) -> None:
        self._http.close()


def _parse_sse(chunks: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    """Server-Sent Events from raw chunks: the ``data:`` lines of a block (up to a blank
    line) make one event, the JSON the daemon sends. ``id:``, ``event:``, ``retry:`` and
    ``:`` comments (keep-alives) are not needed: every event carries its own seq.

    Whole chunks are split at once rather than line by line (httpx's ``iter_lines``):
    the stream carries hundreds of thousands of events a second."""
    pending = b""
    for chunk in chunks:
        buffer = pending + chunk
        if b"\r" in buffer:  # CRLF line ends (a "\r" may end one chunk, "\n" begin the next)
            buffer = buffer.replace(b"\r\n", b"\n")
        blocks = buffer.split(b"\n\n")
        pending = blocks.pop()
        for block in blocks:
            # the daemon's blocks are "id: N\ndata: {...}": one data line, last
            at = block.rfind(b"\ndata:")
            if at >= 0 and block.count(b"data:") == 1:
                data = block[at + 6:]
            else:
                lines = [line[5:].removeprefix(b" ") for line in block.split(b"\n")
                         if line.startswith(b"data:")]
                if not lines:
                    continue
                data = b"\n".join(lines)
            try:
                event = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise RemoteError(f"read events: not JSON: {data[:80]!r}") from None
            if type(event) is not dict:
                raise RemoteError(f"read events: not an object: {data[:80]!r}")
            yield event
    # an event cut off by the end of the stream is dropped, as SSE says: the reconnect
    # asks for it again by its seq


def package_signature(package: Path) -> dict[str, Any] | None:
    """The signature ``ecli sign`` wrote next to a package (``PACKAGE.sig``), if any."""
    from .daemon.signing import read_signature  # stdlib only; the daemon checks the shape

    sig = package.with_name(package.name + ".sig")
    return read_signature(sig) if sig.is_file() else None

"""Run eunomiad: bind the listeners, restore the desired programs, serve the API on
uvicorn until SIGTERM/SIGINT, then stop every worker (the desired state stays in SQLite
for the next start).

Unix sockets are created mode 0600 (root's, like the daemon); TCP listeners use TLS when
the config has a ``[tls]`` table. One uvicorn server serves the plain listeners, another
the TLS ones, on the same app and event loop; the daemon handles the signals itself so
that both stop together.

The daemon works in an empty directory (``<state_dir>/cwd``): a package name from a
client, searched like ``ecli run NAME``, can never find a file of the daemon's directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import stat
import sys
from collections.abc import Callable, Iterator
from typing import Any

from .config import ConfigError, DaemonConfig, Listen
from .state import StateStore
from .supervisor import Supervisor

__all__ = ["bind", "run", "serve"]


def bind(listen: Listen) -> socket.socket:
    """A listening socket for ``listen``; a stale unix socket file is replaced, a live
    one (another daemon) is an error."""
    if listen.kind == "tcp":
        try:
            family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
            # proto=IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that
            # say so (socket.create_server leaves 0), and without it Nagle + delayed ACKs
            # added ~44 ms to every request.
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((listen.host, listen.port))
                sock.listen(128)
            except BaseException:
                sock.close()
                raise
            return sock
        except OSError as exc:
            raise ConfigError(f"listen on {listen}: {exc.strerror or exc}") from None
    assert listen.path is not None
    path = listen.path
    try:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise ConfigError(f"listen on {listen}: the path exists and is not a socket")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(path))
            except OSError:
                path.unlink()  # left by a daemon that died
            else:
                raise ConfigError(f"listen on {listen}: another daemon is listening there")
            finally:
                probe.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        sock.listen(128)
        return sock
    except OSError as exc:
        raise ConfigError(f"listen on {listen}: {exc.strerror or exc}") from None


def _token_store(config: DaemonConfig) -> Any:
    """The bearer-token store; created with a first token on the very first start."""
    from .auth import TokenStore

    token = TokenStore.ensure_initial(config.tokens_path)
    if token:
        print(f"eunomiad: created {config.tokens_path} with the token 'admin' "
              f"(shown only now): {token}", file=sys.stderr, flush=True)
    return TokenStore(config.tokens_path)


def _tls_kwargs(config: DaemonConfig) -> dict[str, Any]:
    if not config.tls:
        return {}
    from .tls import tls_from_config

    return tls_from_config(config.tls)


@contextlib.contextmanager
def _unlink_unix_sockets(config: DaemonConfig) -> Iterator[None]:
    try:
        yield
    finally:
        for listen in config.listen:
            if listen.kind == "unix" and listen.path is not None:
                with contextlib.suppress(OSError):
                    listen.path.unlink()


async def serve(config: DaemonConfig, *, auth: Any = None,
                on_listening: Callable[[list[str]], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT; returns after every worker has stopped."""
    import uvicorn

    from .api import create_app

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # serve() below handles the signals for every listener

    if config.auth and auth is None:
        auth = _token_store(config)
    tls = _tls_kwargs(config)
    store = StateStore(config.state_dir)
    supervisor = Supervisor(config, store)
    app = create_app(config, supervisor, auth)
    workdir = config.state_dir / "cwd"
    workdir.mkdir(mode=0o700, exist_ok=True)
    os.chdir(workdir)

    plain: list[tuple[Listen, socket.socket]] = []
    secure: list[tuple[Listen, socket.socket]] = []
    with _unlink_unix_sockets(config):
        for listen in config.listen:
            sock = bind(listen)
            (secure if listen.kind == "tcp" and tls else plain).append((listen, sock))
        await supervisor.restore()
        servers = []
        for group, ssl_kwargs in ((plain, {}), (secure, tls)):
            if group:
                uv_config = uvicorn.Config(app, lifespan="off", log_level="warning",
                                           access_log=False, timeout_graceful_shutdown=5,
                                           **ssl_kwargs)
                servers.append((_Server(uv_config), [sock for _, sock in group]))

        loop = asyncio.get_running_loop()

        def request_exit() -> None:
            supervisor.closing.set()  # event streams end, new starts are refused
            for program in supervisor.list_programs():
                program._wake()
            for server, _ in servers:
                server.should_exit = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, request_exit)
        addresses = [_address(listen, sock) for listen, sock in plain + secure]
        try:
            tasks = [asyncio.create_task(server.serve(sockets=socks))
                     for server, socks in servers]
            await asyncio.sleep(0)
            for address in addresses:
                print(f"eunomiad: listening on {address}", file=sys.stderr, flush=True)
            if on_listening:
                on_listening(addresses)
            await asyncio.gather(*tasks)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await supervisor.shutdown()
            store.close()


def _address(listen: Listen, sock: socket.socket) -> str:
    if listen.kind == "tcp":
        host, port = sock.getsockname()[:2]
        return str(Listen("tcp", host=host, port=port))
    return str(listen)


def run(config: DaemonConfig, **kwargs: Any) -> None:
    asyncio.run(serve(config, **kwargs))

"""``ecli --remote URL ...``: run packages on an eunomiad and manage what runs there.

Where the daemon and the credentials come from, first found wins:

* ``--remote URL`` / ``--token TOKEN`` (global options, before the command);
* ``$EUNOMIA_REMOTE`` / ``$EUNOMIA_TOKEN``;
* ``~/.config/eunomia/client.toml`` (``$XDG_CONFIG_HOME``): ``remote``, ``token`` (or
  ``token_file``), ``cacert``, ``cert``, ``key``.

``ecli run`` goes to a daemon only when ``--remote`` or ``$EUNOMIA_REMOTE`` says so: the
config file's ``remote`` is the default of ``ecli remote ...`` and never turns a local run
into a remote one. The HTTP client is imported only when a daemon is used.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    import threading

    from ..output import JsonLinesSink, TextTableSink
    from ..remote import RemoteClient
    from ..sampler import MapSample
    from ..spec import ObjectSpec

__all__ = ["remote_command", "remote_options", "remote_requested", "run_remote"]

F = TypeVar("F", bound=Callable[..., Any])

_given: dict[str, str | None] = {"remote": None, "token": None}


def _remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None and param.name:
        _given[param.name] = value


def remote_options(command: F) -> F:
    """``--remote URL`` and ``--token TOKEN`` on the ``ecli`` group."""
    command = click.option(
        "--remote", metavar="URL", expose_value=False, callback=_remember,
        help="Run on the eunomiad at URL (http://HOST:PORT, https://..., "
             "unix:///path/to/sock) instead of this kernel [env: EUNOMIA_REMOTE].")(command)
    command = click.option(
        "--token", metavar="TOKEN", expose_value=False, callback=_remember,
        help="Bearer token for --remote [env: EUNOMIA_TOKEN].")(command)
    return command


def remote_requested() -> bool:
    """Whether ``ecli run`` should go to a daemon (``--remote`` or ``$EUNOMIA_REMOTE``)."""
    return bool(_given["remote"] or os.environ.get("EUNOMIA_REMOTE"))


class ClientSettings:
    """Where the daemon is and how to prove who we are."""

    def __init__(self, url: str, token: str | None = None, cacert: str | None = None,
                 cert: str | None = None, key: str | None = None) -> None:
        self.url, self.token = url, token
        self.cacert, self.cert, self.key = cacert, cert, key


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "eunomia" / "client.toml"


def _read_config(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise click.ClickException(f"read {path}: {exc}") from None


def settings() -> ClientSettings:
    """The daemon URL and credentials: flags, then environment, then the config file."""
    path = config_path()
    config = _read_config(path)

    def text(name: str) -> str | None:
        value = config.get(name)
        if value is not None and not isinstance(value, str):
            raise click.ClickException(f"read {path}: {name} must be a string")
        return value or None

    url = _given["remote"] or os.environ.get("EUNOMIA_REMOTE") or text("remote")
    if not url:
        raise click.UsageError("no daemon given: use --remote URL, $EUNOMIA_REMOTE or "
                               f"'remote = \"URL\"' in {path}")
    token = _given["token"] or os.environ.get("EUNOMIA_TOKEN") or text("token")
    token_file = text("token_file")
    if not token and token_file:
        try:
            token = Path(token_file).expanduser().read_text().strip()
        except OSError as exc:
            raise click.ClickException(f"read token file {token_file}: "
                                       f"{exc.strerror or exc}") from None
    files = {k: str(Path(v).expanduser()) if (v := text(k)) else None
             for k in ("cacert", "cert", "key")}
    return ClientSettings(url, token, **files)


def connect() -> RemoteClient:
    from ..remote import RemoteClient

    s = settings()
    return RemoteClient(s.url, s.token, cacert=s.cacert, cert=s.cert, key=s.key)


# -- ecli --remote URL run PACKAGE -------------------------------------------------------------

class _ToSend:
    def __init__(self, package: bytes | str, spec: ObjectSpec | None,
                 signature: dict[str, Any] | None) -> None:
        self.package = package      # bytes, or a URL or a name for the daemon to resolve
        self.spec = spec            # known when the client has the bytes
        self.signature = signature


def _package_to_send(ref: str) -> _ToSend:
    from ..package import read_package
    from ..remote import package_signature
    from ..resolve import resolve
    from ..spec import ObjectSpec

    if ref.startswith(("http://", "https://")):
        return _ToSend(ref, None, None)
    path = Path(ref).expanduser()
    local = ref == "-" or path.is_file() or os.sep in ref or ref.endswith((".json", ".yaml"))
    if not local:
        return _ToSend(ref, None, None)
    data = resolve(ref).data
    spec = ObjectSpec.from_package(read_package(data))
    return _ToSend(data, spec, None if ref == "-" else package_signature(path))


def _spec_of_name(name: str) -> ObjectSpec | None:
    """The spec of the package NAME would find here, if any: the daemon resolves the name
    itself, but the same package (e.g. a bundled one) gives the help and column widths."""
    from ..errors import EunomiaError
    from ..package import read_package
    from ..resolve import resolve
    from ..spec import ObjectSpec

    try:
        return ObjectSpec.from_package(read_package(resolve(name).data))
    except EunomiaError:
        return None


def _local_help(ref: str, spec: ObjectSpec | None) -> str:
    from ..args import format_help

    if spec is None:
        raise click.UsageError(f"{ref} --help: the package is not here; the daemon resolves "
                               "it (give a package file to see its options)")
    return format_help(spec)


def _sample(source: str, events: list[dict[str, Any]], spec: ObjectSpec | None) -> MapSample:
    from ..sampler import MapSample, histogram_slots

    entries = [{"key": e.get("key"), "value": e.get("value")} for e in events]
    kind, unit = "default_kv", "(unit)"
    map_spec = next((m for m in spec.maps if m.name == source), None) if spec else None
    if map_spec is not None and map_spec.sample:
        kind = str(map_spec.sample.get("type", kind))
        unit = str(map_spec.sample.get("unit", unit))
    elif entries and histogram_slots(entries[0]["value"]) is not None:
        kind = "log2_hist"
    return MapSample(source, kind, unit, entries)


def _write_batch(sink: TextTableSink | JsonLinesSink, source: str,
                 events: list[dict[str, Any]], spec: ObjectSpec | None) -> None:
    """Consecutive events of one source, as the local run hands them to the sink."""
    first = events[0]
    if set(first) == {"trace"} or set(first) == {"line"}:
        sink.lines([str(next(iter(e.values()))) for e in events])
    elif set(first) == {"map", "key", "value"} and first["map"] == source:
        sink.samples(_sample(source, events, spec))
    else:
        names = list(first)
        columns = {n: [e.get(n) for e in events] for n in names}
        sink.records(source, names, columns, len(events))


def run_remote(ref: str, package_args: Sequence[str], *, as_json: bool,
               duration: float | None, header: bool,
               unsupported: Sequence[str] = ()) -> None:
    """Start PACKAGE on the daemon, print its events as ``ecli run`` does, and stop it on
    Ctrl-C, SIGTERM or after ``duration``."""
    import threading

    from ..output import JsonLinesSink, TextTableSink
    from ..output.text import column_widths
    from ..remote import RemoteError

    if unsupported:
        raise click.UsageError(f"{', '.join(unsupported)}: not available with --remote")
    to_send = _package_to_send(ref)
    spec = to_send.spec
    if spec is None and isinstance(to_send.package, str) and "://" not in to_send.package:
        spec = _spec_of_name(to_send.package)
    if any(a in ("-h", "--help") for a in package_args):
        click.echo(_local_help(ref, spec))
        return
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    client = connect()
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    program: dict[str, Any] | None = None
    try:
        program = client.start(to_send.package, list(package_args),
                               signature=to_send.signature)
        program_id = str(program["id"])
        sources = [str(s) for s in program.get("sources") or []]
        out = sys.stdout.buffer
        sink: JsonLinesSink | TextTableSink
        if as_json:
            sink = JsonLinesSink(out, label_sources=len(sources) > 1)
        else:
            widths = {} if spec is None else {
                e.map_name: column_widths(spec.btf, e.type_id) for e in spec.exports}
            sink = TextTableSink(out, header=header, widths=widths)
            sink.label_sources = len(sources) > 1
        attached = ", ".join(program.get("attach") or []) or "nothing"
        click.echo(f"ecli: running {program.get('name', ref)} on {client.url} "
                   f"(id {program_id}): attached {attached}; events from "
                   f"{', '.join(sources) or 'maps only'}; Ctrl-C to stop", err=True)
        _stream(client, program_id, sink, spec, stop, duration)
        program = client.get(program_id)
        if program.get("status") == "failed":
            raise RemoteError(f"program {program_id} failed on {client.url}: "
                              f"{program.get('exit_reason') or 'no reason given'}")
    finally:
        lost = 0
        if program is not None:  # a run through ecli leaves nothing behind on the daemon
            try:
                lost = int(client.get(str(program["id"])).get("lost") or 0)
                client.stop(str(program["id"]))
            except RemoteError as exc:
                if exc.status != 404:
                    click.echo(f"ecli: stop {program['id']}: {exc}", err=True)
        client.close()
        for s, handler in old.items():
            signal.signal(s, handler)
        if lost:
            click.echo(f"ecli: {lost} events were lost (the consumer fell behind)", err=True)


_END = object()


def _stream(client: RemoteClient, program_id: str, sink: TextTableSink | JsonLinesSink,
            spec: ObjectSpec | None, stop: threading.Event, duration: float | None) -> None:
    """Read the SSE stream in a thread (it blocks while the program is quiet) and write
    what has arrived, batch by batch, until the stream ends, a signal or ``duration``."""
    import queue
    import threading

    events: queue.Queue[Any] = queue.Queue()

    def reader() -> None:
        from ..errors import EunomiaError

        try:
            for event in client.events(program_id):
                events.put(event)
                if stop.is_set():
                    break
        except EunomiaError as exc:  # handed to the main thread, which reports it
            events.put(exc)
        finally:
            events.put(_END)

    threading.Thread(target=reader, name="eunomia-remote-events", daemon=True).start()
    deadline = None if duration is None else time.monotonic() + duration
    while not stop.is_set():
        wait = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
        if wait <= 0:
            return
        try:
            items = [events.get(timeout=wait)]
        except queue.Empty:
            continue
        while True:
            try:
                items.append(events.get_nowait())
            except queue.Empty:
                break
        ended = _write_items(items, sink, spec)
        sink.flush()
        if ended:
            return


def _write_items(items: list[Any], sink: TextTableSink | JsonLinesSink,
                 spec: ObjectSpec | None) -> bool:
    """Write queued events grouped by source; True once the stream has ended."""
    run: list[dict[str, Any]] = []
    source = ""
    for item in [*items, None]:
        if isinstance(item, dict) and item.get("source", "") == source and run:
            run.append(item["event"])
            continue
        if run:
            _write_batch(sink, source, run, spec)
            run = []
        if isinstance(item, dict):
            source = str(item.get("source", ""))
            run = [item["event"]]
        elif isinstance(item, BaseException):
            raise item
        elif item is _END:
            return True
    return False


# -- ecli remote ... ---------------------------------------------------------------------------

@click.group("remote", context_settings={"help_option_names": ["-h", "--help"]})
def remote_command() -> None:
    """Manage the programs running on an eunomiad (--remote URL, $EUNOMIA_REMOTE or
    ~/.config/eunomia/client.toml)."""


def _print_json(value: Any) -> None:
    import orjson

    click.echo(orjson.dumps(value).decode())


@remote_command.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per program.")
def list_command(as_json: bool) -> None:
    """The programs on the daemon: id, name, status, events, lost, start time."""
    with connect() as client:
        programs = client.list()
    if as_json:
        for p in programs:
            _print_json(p)
        return
    rows = [["ID", "NAME", "STATUS", "EVENTS", "LOST", "STARTED"]]
    rows += [[str(p.get("id")), str(p.get("name")), str(p.get("status")),
              str(p.get("events", 0)), str(p.get("lost", 0)), str(p.get("started_at") or "")]
             for p in programs]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


@remote_command.command("start", context_settings={
    "ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("package", metavar="PACKAGE")
@click.argument("package_args", nargs=-1, type=click.UNPROCESSED, metavar="[PACKAGE OPTIONS]")
def start_command(package: str, package_args: tuple[str, ...]) -> None:
    """Start PACKAGE on the daemon and leave it running there; print its id."""
    to_send = _package_to_send(package)
    with connect() as client:
        program = client.start(to_send.package, list(package_args),
                               signature=to_send.signature)
    click.echo(str(program["id"]))


@remote_command.command("stop")
@click.argument("program_id", metavar="ID")
def stop_command(program_id: str) -> None:
    """Stop a program and remove it from the kernel of the daemon's host."""
    with connect() as client:
        answer = client.stop(program_id)
    click.echo(f"{answer.get('id', program_id)} {answer.get('status', 'stopped')}")


@remote_command.command("status")
@click.argument("program_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="The program as one JSON object.")
def status_command(program_id: str, as_json: bool) -> None:
    """Everything the daemon knows of one program."""
    with connect() as client:
        program = client.get(program_id)
    if as_json:
        _print_json(program)
        return
    for key, value in program.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "-"
        click.echo(f"{key + ':':<12} {'-' if value is None else value}")


def _new_lines(seen: list[str], current: list[str]) -> list[str]:
    """The lines of ``current`` (a tail of the log) that follow ``seen`` (an earlier tail)."""
    for start in range(len(seen) + 1):
        overlap = seen[start:]
        if current[:len(overlap)] == overlap:
            return current[len(overlap):]
    return current


@remote_command.command("logs")
@click.argument("program_id", metavar="ID")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the "
              "program ends (or Ctrl-C).")
@click.option("--tail", type=click.IntRange(min=1), default=100, show_default=True,
              help="How many of the last lines to show.")
def logs_command(program_id: str, follow: bool, tail: int) -> None:
    """A program's log: its worker's messages and status changes."""
    from ..remote import TERMINAL_STATUSES

    with connect() as client:
        seen = client.log(program_id, tail)
        for line in seen:
            click.echo(line)
        try:
            while follow:
                time.sleep(0.5)
                current = client.log(program_id, max(tail, 1000))
                for line in _new_lines(seen, current):
                    click.echo(line)
                seen = current
                if client.get(program_id).get("status") in TERMINAL_STATUSES:
                    break
        except KeyboardInterrupt:  # the way to stop following: not an error
            pass


@remote_command.command("map")
@click.argument("program_id", metavar="ID")
@click.argument("name")
def map_command(program_id: str, name: str) -> None:
    """A map of a program: one {"key", "value"} JSON object per entry."""
    with connect() as client:
        entries = client.read_map(program_id, name)
    for entry in entries:
        _print_json(entry)

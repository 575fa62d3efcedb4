"""``ecli``: run eBPF packages and see their events decoded."""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from .. import __version__
from ._build import build_command, init_command, inspect_command
from ._common import run_click, setup_logging
from ._remote import remote_command, remote_options, remote_requested
from ._sign import keygen_command, sign_command

_state = {"verbose": False}

RUN_EPILOG = """\b
PACKAGE is a file path, '-' for standard input, an http(s) URL, or a bare name
looked up in ./, $EUNOMIA_PATH, ~/.eunomia-bpf/packages/ and the bundled packages.
Options after PACKAGE belong to the package: `ecli run PACKAGE --help` lists them.

\b
Examples:
  ecli run opensnoop
  ecli run --json --duration 10 execsnoop
  ecli run bootstrap.package.json --min_duration_ns 1000000
  cat package.json | ecli run -
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", is_flag=True, help="Show libbpf's log and full error details.")
@click.version_option(__version__, prog_name="ecli")
@remote_options
def ecli(verbose: bool) -> None:
    """Run CO-RE eBPF packages on this kernel and see their events decoded; build and
    inspect packages."""
    _state["verbose"] = _state["verbose"] or verbose
    setup_logging(_state["verbose"])


def _progress() -> Any:
    if not sys.stderr.isatty():
        return None
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    bar = Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(),
                   transient=True, console=None)
    task = bar.add_task("download", total=None)
    bar.start()

    def update(received: int, total: int | None) -> None:
        bar.update(task, completed=received, total=total)
        if total is not None and received >= total:
            bar.stop()

    return update


@ecli.command("run", epilog=RUN_EPILOG, context_settings={
    "ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event, per line.")
@click.option("--folded", is_flag=True, help="Count the events' stacks and print them at "
              "exit as folded stacks (comm;outer;...;inner COUNT), for flame graphs.")
@click.option("--duration", type=click.FloatRange(min=0), metavar="SECONDS",
              help="Stop after this many seconds (default: run until Ctrl-C).")
@click.option("--no-header", is_flag=True, help="Plain output without the column header.")
@click.option("--dump-maps", is_flag=True, help="At exit, print every map of the program "
              "(bpftrace style: @name[key]: value; objects with --json).")
@click.option("--ifname", metavar="NAME", help="Network interface for xdp/tc programs.")
@click.option("--ifindex", type=click.IntRange(min=1), help="Interface index for xdp/tc.")
@click.option("--cgroup", metavar="PATH", help="cgroup v2 directory for cgroup programs.")
@click.option("--btf", "btf_path", metavar="FILE", help="The kernel's BTF, for kernels "
              "without /sys/kernel/btf/vmlinux (e.g. a BTFHub file).")
@click.option("--metrics", "metrics_listen", metavar="[HOST:]PORT", help="Also serve "
              "Prometheus metrics at http://HOST:PORT/metrics (no HOST: every interface).")
@click.option("--label", "metric_labels", multiple=True, metavar="FIELD", help="Label the "
              "event counters of --metrics with this event field (repeatable).")
@click.option("--metrics-config", metavar="FILE", help="The metrics to export, in the "
              "eunomia exporter's YAML/TOML shape (instead of the default ones).")
@click.option("-v", "--verbose", is_flag=True, help="Show libbpf's log and the full "
              "verifier log on errors.")
@click.argument("package", metavar="PACKAGE")
@click.argument("package_args", nargs=-1, type=click.UNPROCESSED, metavar="[PACKAGE OPTIONS]")
def run_command(package: str, package_args: tuple[str, ...], as_json: bool,
                duration: float | None, no_header: bool, ifname: str | None,
                ifindex: int | None, cgroup: str | None, btf_path: str | None,
                verbose: bool, folded: bool = False, metrics_listen: str | None = None,
                metric_labels: tuple[str, ...] = (), metrics_config: str | None = None,
                dump_maps: bool = False) -> None:
    """Load PACKAGE into the kernel, attach it and print its events until stopped."""
    if verbose and not _state["verbose"]:
        _state["verbose"] = True
        setup_logging(True)
    if remote_requested():
        from ._remote import run_remote

        given = {"--folded": folded, "--metrics": metrics_listen, "--dump-maps": dump_maps,
                 "--ifname": ifname, "--ifindex": ifindex, "--cgroup": cgroup,
                 "--btf": btf_path, "--metrics-config": metrics_config}
        run_remote(package, package_args, as_json=as_json, duration=duration,
                   header=not no_header, unsupported=[k for k, v in given.items() if v])
        return
    from ..args import format_help
    from ..loader import AttachOptions
    from ..package import read_package
    from ..resolve import resolve
    from ..runner import Program

    found = resolve(package, progress=_progress() if package.startswith("http") else None)
    prog = Program(read_package(found.data), origin=found.origin, btf_path=btf_path,
                   attach=AttachOptions(ifindex=ifindex, ifname=ifname, cgroup=cgroup))
    if any(a in ("-h", "--help") for a in package_args):
        path = click.get_current_context().command_path  # "ecli run", or a wheel's script
        click.echo(format_help(prog.spec, program=None if path.endswith(" run") else path))
        return
    prog.set_arguments(list(package_args))
    if folded and not prog.stack_plans:
        raise click.UsageError(f"--folded: {prog.package.name} has no stack fields "
                               "(stack ids or a stack_trace interpreter)")
    from ._metrics import start_metrics

    metrics = start_metrics(prog, metrics_listen, metric_labels, metrics_config)
    _run(prog, as_json=as_json, duration=duration, header=not no_header, folded=folded,
         metrics=metrics, dump_maps=dump_maps)


def _run(prog: Any, *, as_json: bool, duration: float | None, header: bool,
         folded: bool = False, metrics: Any = None, dump_maps: bool = False) -> None:
    from ..output import FoldedSink, JsonLinesSink, TextTableSink
    from ..output.text import column_widths

    def on_signal(signum: int, frame: Any) -> None:
        prog.request_stop()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    out = sys.stdout.buffer
    try:
        prog.run()
        several = len(prog.sources) > 1
        sink: JsonLinesSink | TextTableSink | FoldedSink
        if folded:
            sink = FoldedSink(out)
        elif as_json:
            sink = JsonLinesSink(out, label_sources=several)
        else:
            widths = {e.map_name: column_widths(prog.spec.btf, e.type_id)
                      for e in prog.spec.exports}
            sink = TextTableSink(out, header=header, widths=widths)
            sink.label_sources = several
        linked = {link.program for link in prog.running.links}
        kinds = ", ".join(f"{p.name} ({p.section})" for p in prog.spec.programs
                          if p.name in linked) or "nothing"
        unlinked = [p.name for p in prog.spec.programs if p.name not in linked]
        if unlinked:
            kinds += f"; loaded but not attached: {', '.join(unlinked)}"
        until = "exits after its output" if prog.runs_once else "Ctrl-C to stop"
        click.echo(f"ecli: running {prog.package.name}: attached {kinds}; "
                   f"events from {', '.join(prog.sources) or 'maps only'}; {until}",
                   err=True)
        for batch in prog.batches(duration=duration):
            if metrics is not None:
                metrics.observe(batch)
            if batch.sample is not None:
                sink.samples(batch.sample)
            elif batch.layout is None:
                sink.lines(batch.lines)
            else:
                sink.records(batch.source, batch.names, batch.columns(), len(batch))
            sink.flush()
        if isinstance(sink, FoldedSink):
            sink.close()  # the stacks counted over the run
        if dump_maps:
            _dump_maps(prog, out, as_json=as_json)
    finally:
        lost = prog.lost
        if metrics is not None:
            metrics.close()
        prog.stop()
        for s, handler in old.items():
            signal.signal(s, handler)
        if lost:
            click.echo(f"ecli: {lost} events were lost (the consumer fell behind)", err=True)


def _dump_maps(prog: Any, out: Any, *, as_json: bool) -> None:
    """Every user map, as bpftrace prints its maps at exit (``{"map", "key", "value"}``
    objects with --json)."""
    from ..maps import dump_entries, format_dump_line
    from ..output import JsonLinesSink
    from ..sampler import MapSample

    for name, entries in dump_entries(prog.maps):
        if as_json:
            JsonLinesSink(out).samples(MapSample(name, "default_kv", "", [
                {"key": key, "value": value} for key, value in entries]))
        elif entries:
            lines = ["", *(format_dump_line(name, key, value) for key, value in entries), ""]
            out.write("\n".join(lines).encode())
    out.flush()


ecli.add_command(init_command)
ecli.add_command(build_command)
ecli.add_command(inspect_command)
ecli.add_command(remote_command)
ecli.add_command(keygen_command)
ecli.add_command(sign_command)


def main() -> None:
    """Console entry point."""
    run_click(ecli, "ecli", verbose=lambda: _state["verbose"])


if __name__ == "__main__":
    main()

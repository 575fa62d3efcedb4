"""``eunomiad``: the eunomia-bpf daemon (HTTP API, supervised workers, state in SQLite).

``eunomiad serve [--config FILE] [--listen unix:PATH|tcp:HOST:PORT]... [--state-dir DIR]``
"""

from __future__ import annotations

from pathlib import Path

import click

from ..daemon.install import install_service_command
from ._common import run_click, setup_logging
from ._token import token_group

__all__ = ["eunomiad", "main"]

_state = {"verbose": False}


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", is_flag=True, help="Full error details and debug logging.")
def eunomiad(verbose: bool) -> None:
    """eunomiad: run eBPF packages as a service, through an authenticated HTTP API."""
    _state["verbose"] = verbose
    setup_logging(verbose)


@eunomiad.command("serve")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file (default: /etc/eunomia/eunomiad.toml if present).")
@click.option("--listen", multiple=True, metavar="unix:PATH|tcp:HOST:PORT",
              help="Where to listen (repeatable; replaces the config's listen). "
                   "Default unix:/run/eunomia/eunomiad.sock.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="State directory: state.db and stored packages (default /var/lib/eunomia).")
def serve_command(config_path: Path | None, listen: tuple[str, ...],
                  state_dir: Path | None) -> None:
    """Serve the API until SIGTERM/SIGINT; restore the programs that should run."""
    from ..daemon.config import load_config
    from ..daemon.server import run

    run(load_config(config_path, listen=listen, state_dir=state_dir))


eunomiad.add_command(install_service_command)


eunomiad.add_command(token_group)


def main() -> None:
    """Console entry point."""
    run_click(eunomiad, "eunomiad", verbose=lambda: _state["verbose"])


if __name__ == "__main__":
    main()

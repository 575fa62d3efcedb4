"""``ecli run --metrics``: set up the Prometheus exporter beside the normal output.

prometheus-client, the config reader and the exporter are imported only when
``--metrics`` is given: a plain ``ecli run`` does not pay for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..output.metrics import MetricsExporter
    from ..runner import Program

__all__ = ["start_metrics"]


def start_metrics(prog: Program, listen: str | None, labels: Sequence[str],
                  config_path: str | None) -> MetricsExporter | None:
    """Check the metrics options against the program and start serving, before anything
    is loaded (a port in use costs no program load)."""
    if listen is None:
        if labels:
            raise click.UsageError("--label only makes sense with --metrics")
        if config_path is not None:
            raise click.UsageError("--metrics-config only makes sense with --metrics")
        return None
    from ..metrics_config import load_metrics_config, parse_listen_address
    from ..output.metrics import MetricsExporter

    host, port = parse_listen_address(listen)
    config = None
    if config_path is not None:
        config = load_metrics_config(config_path).for_program(prog.package.name, prog.spec.name)
    exporter = MetricsExporter(prog.spec, program=prog.package.name, labels=labels,
                               config=config)
    host, port = exporter.serve(host, port)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"ecli: serving metrics at http://{shown}:{port}/metrics", err=True)
    return exporter

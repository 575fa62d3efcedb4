"""``eunomiad token create|list|revoke``: the daemon's bearer tokens.

They edit the tokens file in place (atomically); a running daemon re-reads it on the next
request, so a revoked token stops working at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..daemon.auth import TokenStore

__all__ = ["token_group"]

_PATH_OPTIONS = [
    click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                 help="Daemon config file (default: /etc/eunomia/eunomiad.toml if present)."),
    click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
                 help="The daemon's state directory (tokens are <state-dir>/tokens)."),
    click.option("--tokens-file", type=click.Path(dir_okay=False, path_type=Path),
                 help="The tokens file itself (overrides the config)."),
]


def _with_store(func: Callable[..., None]) -> Callable[..., None]:
    """Add the options that locate the tokens file; pass the command a ``store``."""
    @functools.wraps(func)
    def command(config_path: Path | None, state_dir: Path | None, tokens_file: Path | None,
                **kwargs: Any) -> None:
        from ..daemon.auth import TokenStore
        from ..daemon.config import load_config

        if tokens_file is None:
            tokens_file = load_config(config_path, state_dir=state_dir).tokens_path
        func(store=TokenStore(tokens_file), **kwargs)

    for option in reversed(_PATH_OPTIONS):
        command = option(command)
    return command


@click.group("token")
def token_group() -> None:
    """Create, list and revoke the bearer tokens clients use."""


@token_group.command("create")
@click.argument("name")
@_with_store
def create_command(name: str, store: TokenStore) -> None:
    """Create a token called NAME and print it (it is shown only this once)."""
    token = store.create(name)
    click.echo(f"eunomiad: token {name!r} created in {store.path}; it is shown only once:",
               err=True)
    click.echo(token)


@token_group.command("list")
@_with_store
def list_command(store: TokenStore) -> None:
    """List the tokens' names and dates (never the tokens)."""
    infos = store.list()
    width = max([4, *(len(i.name) for i in infos)])
    click.echo(f"{'NAME':<{width}}  {'CREATED':<25}  REVOKED")
    for info in infos:
        click.echo(f"{info.name:<{width}}  {info.created_at:<25}  {info.revoked_at or '-'}")


@token_group.command("revoke")
@click.argument("name")
@_with_store
def revoke_command(name: str, store: TokenStore) -> None:
    """Revoke the token called NAME; a running daemon refuses it from the next request."""
    store.revoke(name)
    click.echo(f"eunomiad: token {name!r} revoked")

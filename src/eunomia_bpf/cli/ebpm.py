"""``ebpm``: install eBPF packages from git, URLs and paths, as ``ebpm.toml`` asks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from .. import __version__
from ._build import build_command, init_command
from ._common import run_click, setup_logging

_state = {"verbose": False}


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", is_flag=True, help="Full error details.")
@click.option("-C", "--directory", type=click.Path(file_okay=False, path_type=Path),
              default=".", help="The project directory (default: the current one).")
@click.version_option(__version__, prog_name="ebpm")
@click.pass_context
def ebpm(ctx: click.Context, verbose: bool, directory: Path) -> None:
    """Install eBPF packages named in ebpm.toml from git repositories, URLs and local
    paths into a content-addressed store, and run them."""
    _state["verbose"] = verbose
    setup_logging(verbose)
    ctx.obj = directory


def _report(result: object) -> None:
    from ..ebpm.resolver import InstallResult

    assert isinstance(result, InstallResult)
    for e in result.entries:
        what = e.version and f"v{e.version}" or e.sha256[:12]
        mark = "" if e.exposed else " (private)"
        click.echo(f"{e.name} {what} {e.source}{mark}")
    click.echo(f"ebpm: {len(result.entries)} packages installed"
               + ("; ebpm.lock written" if result.lock_changed else ""), err=True)


@ebpm.command("install")
@click.option("--locked", is_flag=True, help="Fail instead of changing ebpm.lock.")
@click.option("--offline", is_flag=True, help="Use only the local store and git cache.")
@click.pass_obj
def install_command(directory: Path, locked: bool, offline: bool) -> None:
    """Install every dependency of ebpm.toml and write ebpm.lock."""
    from ..ebpm.resolver import install

    _report(install(directory, locked=locked, offline=offline))


@ebpm.command("update")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--offline", is_flag=True, help="Use only the local store and git cache.")
@click.pass_obj
def update_command(directory: Path, names: tuple[str, ...], offline: bool) -> None:
    """Re-resolve NAME (default: everything) within its range and rewrite ebpm.lock."""
    from ..ebpm.resolver import install

    _report(install(directory, offline=offline, update=names))


@ebpm.command("list")
@click.pass_obj
def list_command(directory: Path) -> None:
    """The packages in ebpm.lock (or, without one, those installed in the store)."""
    from ..ebpm.lock import LOCK_NAME, read_lock
    from ..ebpm.store import Store

    entries = read_lock(directory / LOCK_NAME)
    if entries is None:
        for m in Store().index().values():
            click.echo(f"{m.name} {m.version and 'v' + m.version or m.sha256[:12]} {m.source}")
        return
    for e in entries:
        what = e.version and f"v{e.version}" or e.sha256[:12]
        click.echo(f"{e.name} {what} {e.source}" + ("" if e.exposed else " (private)"))


@ebpm.command("remove")
@click.argument("name")
@click.pass_obj
def remove_command(directory: Path, name: str) -> None:
    """Remove dependency NAME from ebpm.toml, ebpm.lock and the installed modules."""
    from ..ebpm.edit import remove_dependency
    from ..ebpm.resolver import install
    from ..ebpm.store import Store

    remove_dependency(directory, name)
    store = Store()
    with store.locked():
        index = store.index()
        index.pop(name, None)
        store.write_index(index)
    install(directory, update=None)
    click.echo(f"ebpm: removed {name}", err=True)


@ebpm.command("get")
@click.argument("target", metavar="NAME|URL|GIT")
@click.option("--name", help="Install it under this name (default: from the URL).")
@click.option("--version", "version", help="A semver range for a git source.")
@click.option("--module", help="Which module of a repository with several.")
@click.pass_obj
def get_command(directory: Path, target: str, name: str | None, version: str | None,
                module: str | None) -> None:
    """Add a dependency to ebpm.toml (created if needed) and install it.

    TARGET is a git URL (git://, ssh://, *.git), an http(s) URL of a package file, or a
    local path."""
    from ..ebpm.edit import add_dependency

    name = add_dependency(directory, target, name=name, version=version, module=module)
    from ..ebpm.resolver import install

    _report(install(directory))
    click.echo(f"ebpm: added {name}; run it with `ebpm run {name}`", err=True)


@ebpm.command("run", context_settings={"ignore_unknown_options": True,
                                       "allow_interspersed_args": False})
@click.argument("name")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run_command(name: str, args: tuple[str, ...]) -> None:
    """Run the installed module NAME (options before NAME are `ecli run`'s, after it the
    package's)."""
    from ..ebpm.sources import EbpmError
    from ..ebpm.store import Store
    from .ecli import ecli as ecli_group

    found = Store().installed(name)
    if found is None:
        raise EbpmError(f"run {name}: not installed (see `ebpm list`; install it with "
                        f"`ebpm get`)")
    ecli_group.main(["run", found[1], *args], prog_name="ebpm", standalone_mode=False)


@ebpm.command("publish")
@click.option("--remote", default="origin", show_default=True, help="The git remote to push to.")
@click.option("--no-push", is_flag=True, help="Commit and tag only.")
@click.pass_obj
def publish_command(directory: Path, remote: str, no_push: bool) -> None:
    """Build every module, commit packages/*.package.json, tag vX.Y.Z and push."""
    from ..ebpm.publish import publish

    done = publish(directory, remote=remote, push=not no_push)
    click.echo(f"ebpm: published {done.tag} ({done.commit[:12]}): {', '.join(done.modules)}",
               err=True)
    url = done.remote_url or "<git URL of this repository>"
    major_minor = re.sub(r"^(\d+\.\d+).*", r"\1", done.version)
    for module in done.modules:
        click.echo(f'{module} = {{ git = "{url}", version = "^{major_minor}", '
                   f'module = "{module}" }}')


@ebpm.command("wheel")
@click.argument("name")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("dist"), show_default=True, help="Where to write the wheel.")
def wheel_command(name: str, out_dir: Path) -> None:
    """Make the installed module NAME a pip-installable wheel ebpm-NAME: `import
    ebpm_NAME; ebpm_NAME.open_and_run(...)` and the console script NAME."""
    from ..ebpm.wheel import build_wheel, import_name

    built = build_wheel(name, out_dir)
    click.echo(str(built.path))
    click.echo(f"ebpm: {built.name} {built.version} (package sha256 {built.sha256[:12]}); "
               f"pip install it, then `import {import_name(name)}` or run `{name}`", err=True)


ebpm.add_command(init_command)
ebpm.add_command(build_command)


def _embedded_command(name: str, package_file: Path, sha256: str) -> click.Command:
    """`ecli run`'s own options and callback, with PACKAGE fixed and verified first:
    interspersed with the package's options, --help left to the package (as
    `ecli run PACKAGE --help`)."""
    from .ecli import run_command

    def callback(**options: Any) -> None:
        from ..ebpm.wheel import verified_package

        verified_package(package_file, sha256)
        assert run_command.callback is not None
        run_command.callback(package=str(package_file), **options)

    return click.Command(
        name, callback=callback, params=[p for p in run_command.params if p.name != "package"],
        context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True,
                          "help_option_names": []})


def embedded_main(name: str, package_file: Path, sha256: str) -> None:
    """The console script of a wheel made by `ebpm wheel`: `NAME [ecli run options]
    [package options]`."""
    from . import ecli as ecli_cli

    run_click(_embedded_command(name, package_file, sha256), name,
              verbose=lambda: ecli_cli._state["verbose"])


def main() -> None:
    """Console entry point."""
    run_click(ebpm, "ebpm", verbose=lambda: _state["verbose"])


if __name__ == "__main__":
    main()

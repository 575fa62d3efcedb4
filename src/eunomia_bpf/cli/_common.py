"""What every command-line tool shares: logging set-up and error -> one line + exit code."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from ..errors import EunomiaError, VerifierError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(name)s: %(message)s", stream=sys.stderr, force=True)
    # libbpf explains its failures at length; our error line summarises them, and
    # --verbose shows them all.
    logging.getLogger("eunomia_bpf.libbpf").setLevel(
        logging.DEBUG if verbose else logging.CRITICAL)


def fail(prog: str, message: str, code: int = EXIT_ERROR) -> NoReturn:
    click.echo(f"{prog}: error: {message}", err=True)
    raise SystemExit(code)


def run_guarded(prog: str, main: Callable[[], Any], *, verbose: Callable[[], bool]) -> None:
    """Run a click entry point; turn our errors into one clear line and exit non-zero."""
    try:
        main()
    except EunomiaError as exc:
        if verbose():
            if isinstance(exc, VerifierError):
                click.echo(exc.log.rstrip(), err=True)
            else:
                logging.getLogger(prog).debug("details", exc_info=exc)
        elif isinstance(exc, VerifierError):
            click.echo(f"{prog}: error: {exc}\n{prog}: (run with --verbose for the full "
                       f"verifier log)", err=True)
            raise SystemExit(EXIT_ERROR) from None
        fail(prog, str(exc))
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): not an error of ours
        try:
            sys.stdout = None
        finally:
            raise SystemExit(0) from None


def run_click(group: click.Command, prog: str, *, verbose: Callable[[], bool]) -> None:
    """The console entry point of a click group or command: usage errors exit 2, Ctrl-C 130, our
    errors one line and 1 (see :func:`run_guarded`)."""
    def invoke() -> None:
        try:
            group.main(standalone_mode=False, prog_name=prog)
        except click.exceptions.Abort:
            raise SystemExit(EXIT_INTERRUPTED) from None
        except click.ClickException as exc:
            exc.show()
            raise SystemExit(EXIT_USAGE) from None

    run_guarded(prog, invoke, verbose=verbose)

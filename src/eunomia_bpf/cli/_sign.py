"""``ecli keygen`` and ``ecli sign``: ed25519 signatures for packages sent to eunomiad.

Only click is imported at module level: ``ecli run`` imports this module to register the
commands and must not pay for ``cryptography``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["DEFAULT_KEY_DIR", "keygen_command", "sign_command"]

DEFAULT_KEY_DIR = Path("~/.config/eunomia/keys")

SIGN_EPILOG = """\b
Writes PACKAGE.sig (or --out FILE):
  {"key_id": "<16 hex>", "algorithm": "ed25519", "signature": "<base64>"}
A daemon with require_signed = true runs the package only when eunomia.pub is in its
trusted_keys directory and the signature matches the package's bytes.

\b
Examples:
  ecli keygen && scp ~/.config/eunomia/keys/eunomia.pub host:/etc/eunomia/trusted_keys/
  ecli sign opensnoop.package.json
"""


def _require_cryptography() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise click.ClickException("signing needs the 'cryptography' package: "
                                   "pip install 'eunomia-bpf[daemon]'") from None


@click.command("keygen")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_KEY_DIR, show_default=True,
              help="Directory for eunomia.key (private, 0600) and eunomia.pub.")
def keygen_command(out_dir: Path) -> None:
    """Create an ed25519 key pair for signing packages."""
    _require_cryptography()
    from ..daemon.signing import generate_keypair, public_key_id

    key_path, pub_path = generate_keypair(out_dir)
    click.echo(f"private key: {key_path} (keep it secret)")
    click.echo(f"public key:  {pub_path} (copy it to the daemon's trusted_keys directory)")
    click.echo(f"key id:      {public_key_id(pub_path)}")


@click.command("sign", epilog=SIGN_EPILOG)
@click.argument("package", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path),
              default=DEFAULT_KEY_DIR / "eunomia.key", show_default=True,
              help="The private key made by `ecli keygen`.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the signature (default: PACKAGE.sig).")
def sign_command(package: Path, key_path: Path, out_path: Path | None) -> None:
    """Sign PACKAGE (its exact bytes) with an ed25519 key."""
    _require_cryptography()
    from ..daemon.signing import sign_package

    signature = sign_package(package.read_bytes(), key_path)
    out = out_path or package.with_name(package.name + ".sig")
    out.write_text(json.dumps(signature, indent=2) + "\n")
    click.echo(f"signed {package} with key {signature['key_id']}: {out}")

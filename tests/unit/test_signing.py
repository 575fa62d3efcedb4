"""Package signatures: keygen, sign, and every way verification refuses a package."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from eunomia_bpf.cli.ecli import ecli
from eunomia_bpf.daemon.signing import (
    SignatureError,
    generate_keypair,
    load_trusted_keys,
    public_key_id,
    read_signature,
    sign_package,
    verify_package,
)

PACKAGE = b'{"bpf_object": "eJwLSS0uUUjOzytJzSsBAB3vBJg=", "meta": {}}'


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A key pair and a trusted-keys directory holding its public key."""
    key, pub = generate_keypair(tmp_path / "keys")
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    shutil.copy(pub, trusted / "alice.pub")
    return key, pub, trusted


def test_keygen_writes_a_private_key_and_refuses_to_overwrite(tmp_path: Path) -> None:
    key, pub = generate_keypair(tmp_path / "k")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pub.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    with pytest.raises(SignatureError, match="exists"):
        generate_keypair(tmp_path / "k")


def test_signature_has_the_contract_shape(keys: tuple[Path, Path, Path]) -> None:
    key, pub, _ = keys
    sig = sign_package(PACKAGE, key)
    assert set(sig) == {"key_id", "algorithm", "signature"}
    assert sig["algorithm"] == "ed25519"
    assert sig["key_id"] == public_key_id(pub)
    assert len(sig["key_id"]) == 16
    assert len(base64.b64decode(sig["signature"])) == 64
    # the key id is the sha256 of the raw public key, as the contract says
    from cryptography.hazmat.primitives import serialization

    raw = serialization.load_pem_public_key(pub.read_bytes()).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert sig["key_id"] == hashlib.sha256(raw).hexdigest()[:16]


def test_a_signed_package_verifies_with_a_trusted_key(keys: tuple[Path, Path, Path]) -> None:
    key, pub, trusted = keys
    sig = sign_package(PACKAGE, key)
    assert verify_package(PACKAGE, sig, trusted, require_signed=True) == public_key_id(pub)
    assert verify_package(PACKAGE, sig, trusted, require_signed=False) == public_key_id(pub)


def test_unsigned_packages_follow_the_policy(keys: tuple[Path, Path, Path]) -> None:
    _, _, trusted = keys
    assert verify_package(PACKAGE, None, trusted, require_signed=False) is None
    with pytest.raises(SignatureError,
                       match="^package is not signed and this daemon requires signatures$"):
        verify_package(PACKAGE, None, trusted, require_signed=True)


@pytest.mark.parametrize("require_signed", [True, False])
def test_a_tampered_package_is_refused_whatever_the_policy(
        keys: tuple[Path, Path, Path], require_signed: bool) -> None:
    key, _, trusted = keys
    sig = sign_package(PACKAGE, key)
    tampered = PACKAGE.replace(b"eJwL", b"eJwM")
    with pytest.raises(SignatureError, match=r"signature does not match the package \(tampered"):
        verify_package(tampered, sig, trusted, require_signed=require_signed)
    flipped = bytearray(base64.b64decode(sig["signature"]))
    flipped[0] ^= 1
    bad_sig = {**sig, "signature": base64.b64encode(bytes(flipped)).decode()}
    with pytest.raises(SignatureError, match="does not match"):
        verify_package(PACKAGE, bad_sig, trusted, require_signed=require_signed)


def test_an_unknown_key_is_refused_when_signatures_are_required(
        tmp_path: Path, keys: tuple[Path, Path, Path]) -> None:
    _, _, trusted = keys
    other_key, other_pub = generate_keypair(tmp_path / "mallory")
    sig = sign_package(PACKAGE, other_key)
    with pytest.raises(SignatureError, match=f"signed by unknown key {public_key_id(other_pub)}"):
        verify_package(PACKAGE, sig, trusted, require_signed=True)
    # allowed to run unsigned: a key we cannot check counts for nothing
    assert verify_package(PACKAGE, sig, trusted, require_signed=False) is None
    with pytest.raises(SignatureError, match="unknown key"):
        verify_package(PACKAGE, sig, tmp_path / "no-such-dir", require_signed=True)
    with pytest.raises(SignatureError, match="unknown key"):
        verify_package(PACKAGE, sig, None, require_signed=True)


@pytest.mark.parametrize("signature", [
    "a string",
    [],
    {},
    {"key_id": "0123456789abcdef", "algorithm": "rsa", "signature": "AA=="},
    {"key_id": "short", "algorithm": "ed25519", "signature": "AA=="},
    {"key_id": "0123456789ABCDEF", "algorithm": "ed25519", "signature": "AA=="},
    {"key_id": "0123456789abcdef", "algorithm": "ed25519", "signature": "not base64!"},
    {"key_id": "0123456789abcdef", "algorithm": "ed25519", "signature": "AA=="},
    {"key_id": "0123456789abcdef", "algorithm": "ed25519", "signature": 5},
])
@pytest.mark.parametrize("require_signed", [True, False])
def test_malformed_signatures_are_refused(keys: tuple[Path, Path, Path], signature: object,
                                          require_signed: bool) -> None:
    _, _, trusted = keys
    with pytest.raises(SignatureError, match="^malformed signature"):
        verify_package(PACKAGE, signature, trusted, require_signed)  # type: ignore[arg-type]


def test_bad_files_in_the_trusted_directory_are_skipped(
        tmp_path: Path, keys: tuple[Path, Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    key, pub, trusted = keys
    (trusted / "garbage.pub").write_text("not a key")
    (trusted / "notes.txt").write_text("ignored: not *.pub")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

    ec_pub = generate_private_key(SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (trusted / "ec.pem").write_bytes(ec_pub)
    assert list(load_trusted_keys(trusted)) == [public_key_id(pub)]
    assert "garbage.pub" in caplog.text and "not an ed25519" in caplog.text
    assert verify_package(PACKAGE, sign_package(PACKAGE, key), trusted, True)


def test_bad_private_keys(tmp_path: Path, keys: tuple[Path, Path, Path]) -> None:
    _, pub, _ = keys
    with pytest.raises(SignatureError, match="no such file|No such file"):
        sign_package(PACKAGE, tmp_path / "absent.key")
    with pytest.raises(SignatureError, match="not an unencrypted PEM private key"):
        sign_package(PACKAGE, pub)


def test_read_signature_files(tmp_path: Path) -> None:
    path = tmp_path / "x.sig"
    path.write_text("{not json")
    with pytest.raises(SignatureError, match="malformed signature"):
        read_signature(path)
    path.write_text("[1]")
    with pytest.raises(SignatureError, match="not a JSON object"):
        read_signature(path)


def test_ecli_keygen_and_sign(tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(ecli, ["keygen", "--out", str(tmp_path / "keys")])
    assert done.exit_code == 0, done.output
    key_id = public_key_id(tmp_path / "keys" / "eunomia.pub")
    assert key_id in done.output
    package = tmp_path / "p.package.json"
    package.write_bytes(PACKAGE)
    done = runner.invoke(ecli, ["sign", str(package), "--key", str(tmp_path / "keys/eunomia.key")])
    assert done.exit_code == 0, done.output
    sig = json.loads((tmp_path / "p.package.json.sig").read_text())
    assert sig["key_id"] == key_id
    assert verify_package(PACKAGE, sig, tmp_path / "keys", require_signed=True) == key_id
    done = runner.invoke(ecli, ["sign", str(package), "--key", str(tmp_path / "keys/eunomia.key"),
                                "--out", str(tmp_path / "elsewhere.sig")])
    assert done.exit_code == 0 and (tmp_path / "elsewhere.sig").is_file()
    done = runner.invoke(ecli, ["keygen", "--out", str(tmp_path / "keys")])
    assert done.exit_code != 0 and "exists" in str(done.exception)

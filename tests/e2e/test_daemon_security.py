"""eunomiad's security against real ``eunomiad serve`` processes on 127.0.0.1: bearer
tokens on every endpoint but /health, revocation while the daemon runs, package signatures
under ``require_signed``, and mutual TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from eunomia_bpf.daemon.auth import TokenStore
from eunomia_bpf.daemon.signing import generate_keypair, public_key_id, sign_package
from eunomia_bpf.resolve import bundled_dir
from tests.support import require_root

EUNOMIAD = [sys.executable, "-m", "eunomia_bpf.cli.eunomiad"]

#: every endpoint of docs/daemon-api.md but /health, with made-up ids
PROTECTED = [
    ("POST", "/v1/programs"),
    ("GET", "/v1/programs"),
    ("GET", "/v1/programs/p-nothing"),
    ("DELETE", "/v1/programs/p-nothing"),
    ("POST", "/v1/programs/p-nothing/pause"),
    ("POST", "/v1/programs/p-nothing/resume"),
    ("GET", "/v1/programs/p-nothing/events?cursor=0&follow=false"),
    ("GET", "/v1/programs/p-nothing/maps/events"),
    ("GET", "/v1/programs/p-nothing/log?tail=5"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml(config: dict[str, Any]) -> str:
    """Just enough TOML for these configs (JSON strings are TOML basic strings)."""
    lines, tables = [], []
    for key, value in config.items():
        if isinstance(value, dict):
            tables.append(f"\n[{key}]\n" + "".join(
                f"{k} = {json.dumps(v)}\n" for k, v in value.items()))
        else:
            lines.append(f"{key} = {json.dumps(value)}\n")
    return "".join(lines + tables)


class Daemon:
    """One ``eunomiad serve`` process of this test, on a free TCP port of 127.0.0.1."""

    def __init__(self, tmp: Path, *, tls: dict[str, str] | None = None,
                 **settings: Any) -> None:
        self.tmp = tmp
        self.state_dir = tmp / "state"
        self.port = _free_port()
        self.scheme = "https" if tls else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        config: dict[str, Any] = {"listen": [f"tcp:127.0.0.1:{self.port}"],
                                  "state_dir": str(self.state_dir), **settings}
        if tls:
            config["tls"] = tls
        self.config_path = tmp / "eunomiad.toml"
        self.config_path.write_text(_toml(config))
        self.log_path = tmp / "eunomiad.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*EUNOMIAD, "serve", "--config", str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def tokens_path(self) -> Path:
        return self.state_dir / "tokens"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, client: httpx.Client, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"eunomiad exited with {self.proc.returncode}: {self.output()}")
            try:
                if client.get(f"{self.url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"eunomiad not healthy after {timeout} s: {self.output()}")
            time.sleep(0.1)

    def token_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*EUNOMIAD, "token", *args, "--config", str(self.config_path)],
                              capture_output=True, text=True, timeout=60, check=False)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Starts daemons for this test and stops exactly those (by their own handles)."""
    if shutil.which("bpftool") is None:
        pytest.skip("eunomiad tests need bpftool for the leak check")
    started: list[Daemon] = []

    def start(client: httpx.Client | None = None, **settings: Any) -> Daemon:
        home = tmp_path / f"daemon{len(started)}"
        home.mkdir()
        daemon = Daemon(home, **settings)
        started.append(daemon)
        with client or httpx.Client(timeout=5) as c:
            daemon.wait_healthy(c)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def _token_in(output: str, tokens: Path) -> str:
    """The admin token the daemon printed at its first start (whatever the wording)."""
    store = TokenStore(tokens)
    for word in output.replace("'", " ").replace('"', " ").split():
        if len(word) >= 40 and store.verify(word):
            return word
    pytest.fail(f"the first start printed no valid token: {output}")


def _request(client: httpx.Client, url: str, method: str, path: str,
             token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body = {"name": "minimal"} if method == "POST" and path == "/v1/programs" else None
    return client.request(method, url + path, headers=headers, json=body)


def test_every_endpoint_needs_a_valid_unrevoked_token(serve: Any) -> None:
    daemon: Daemon = serve()
    # first start: a private tokens file with an admin token, printed once
    assert stat.S_IMODE(daemon.tokens_path.stat().st_mode) == 0o600
    admin = _token_in(daemon.output(), daemon.tokens_path)
    with httpx.Client(timeout=10) as client:
        health = client.get(f"{daemon.url}/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        for method, path in PROTECTED:
            for token in (None, "not-a-token", admin + "x", admin[:-1]):
                answer = _request(client, daemon.url, method, path, token)
                assert answer.status_code == 401, (method, path, token, answer.text)
                assert answer.json()["error"], (method, path)
        assert client.get(f"{daemon.url}/v1/programs",
                          headers={"Authorization": f"Basic {admin}"}).status_code == 401

        # a second token made with the CLI while the daemon runs works at once...
        created = daemon.token_cli("create", "ci")
        assert created.returncode == 0, created.stderr
        ci = created.stdout.strip()
        ok = {"Authorization": f"Bearer {ci}"}
        assert client.get(f"{daemon.url}/v1/programs", headers=ok).status_code == 200
        assert client.get(f"{daemon.url}/openapi.json", headers=ok).status_code == 200
        listed = daemon.token_cli("list")
        assert listed.returncode == 0 and "admin" in listed.stdout and "ci" in listed.stdout
        assert ci not in listed.stdout and admin not in listed.stdout

        # ...and once revoked, it is refused on every endpoint, without a restart
        revoked = daemon.token_cli("revoke", "ci")
        assert revoked.returncode == 0, revoked.stderr
        for method, path in PROTECTED:
            answer = _request(client, daemon.url, method, path, ci)
            assert answer.status_code == 401, (method, path, answer.text)
        admin_ok = {"Authorization": f"Bearer {admin}"}
        assert client.get(f"{daemon.url}/v1/programs", headers=admin_ok).status_code == 200
        again = daemon.token_cli("revoke", "ci")
        assert again.returncode != 0 and "already revoked" in again.stderr


def test_an_unsafe_tokens_file_stops_the_daemon_from_starting(tmp_path: Path) -> None:
    state = tmp_path / "state"
    TokenStore.ensure_initial(state / "tokens")
    os.chmod(state / "tokens", 0o644)
    port = _free_port()
    done = subprocess.run(
        [*EUNOMIAD, "serve", "--listen", f"tcp:127.0.0.1:{port}", "--state-dir", str(state)],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "group/others" in done.stderr and "Traceback" not in done.stderr


@pytest.fixture
def signing_keys(tmp_path: Path) -> tuple[Path, Path]:
    """A key pair whose public key the daemon trusts, and that trusted-keys directory."""
    key, pub = generate_keypair(tmp_path / "keys")
    trusted = tmp_path / "trusted-keys"
    trusted.mkdir()
    shutil.copy(pub, trusted / "release.pub")
    return key, trusted


def _start(client: httpx.Client, url: str, token: str, data: bytes,
           signature: dict[str, Any] | None) -> httpx.Response:
    import base64

    body: dict[str, Any] = {"package": base64.b64encode(data).decode(),
                            "args": ["--targ_pid", str(os.getpid())]}
    if signature is not None:
        body["signature"] = signature
    return client.post(f"{url}/v1/programs", json=body,
                       headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _flip_in_bpf_object(data: bytes) -> bytes:
    """The package with one base64 character of its object changed (still valid JSON and
    base64, so only the signature can tell)."""
    start = data.index(b'"bpf_object"')
    at = data.index(b'"', data.index(b":", start) + 1) + 200
    tampered = bytearray(data)
    tampered[at] = ord("B") if tampered[at] != ord("B") else ord("C")
    return bytes(tampered)


@pytest.mark.kernel
def test_require_signed_refuses_unsigned_and_tampered_packages_and_runs_signed_ones(
        serve: Any, signing_keys: tuple[Path, Path], tmp_path: Path, no_leaks: object) -> None:
    require_root()
    key, trusted = signing_keys
    daemon: Daemon = serve(trusted_keys=str(trusted), require_signed=True)
    token = TokenStore(daemon.tokens_path).create("signer-test")
    package = tmp_path / "bench_events.package.json"
    shutil.copy(bundled_dir() / "bench_events.package.json", package)
    signed = subprocess.run([sys.executable, "-m", "eunomia_bpf.cli.ecli", "sign", str(package),
                             "--key", str(key)], capture_output=True, text=True, check=False)
    assert signed.returncode == 0, signed.stderr
    data = package.read_bytes()
    signature = json.loads((tmp_path / "bench_events.package.json.sig").read_text())

    with httpx.Client(timeout=30) as client:
        unsigned = _start(client, daemon.url, token, data, None)
        assert unsigned.status_code == 403, unsigned.text
        assert unsigned.json()["error"] == ("package is not signed and this daemon requires "
                                            "signatures")

        tampered = _start(client, daemon.url, token, _flip_in_bpf_object(data), signature)
        assert tampered.status_code == 403, tampered.text
        assert "signature does not match the package (tampered?)" in tampered.json()["error"]

        other_key, other_pub = generate_keypair(tmp_path / "other")
        unknown = _start(client, daemon.url, token, data, sign_package(data, other_key))
        assert unknown.status_code == 403, unknown.text
        assert f"signed by unknown key {public_key_id(other_pub)}" in unknown.json()["error"]

        bad = _start(client, daemon.url, token, data, {**signature, "signature": "x"})
        assert bad.status_code == 403 and "malformed signature" in bad.json()["error"]

        auth = {"Authorization": f"Bearer {token}"}
        listed = client.get(f"{daemon.url}/v1/programs", headers=auth).json()["programs"]
        assert listed == []  # nothing refused was started or remembered

        started = _start(client, daemon.url, token, data, signature)
        assert started.status_code == 201, started.text
        program = started.json()
        deadline = time.monotonic() + 30
        while program["status"] == "starting" and time.monotonic() < deadline:
            time.sleep(0.1)
            program = client.get(f"{daemon.url}/v1/programs/{program['id']}",
                                 headers=auth).json()
        assert program["status"] == "running", program
        stopped = client.delete(f"{daemon.url}/v1/programs/{program['id']}", headers=auth)
        assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"


# -- mutual TLS -------------------------------------------------------------------------


def _write_pem(path: Path, pem: bytes, private: bool = False) -> str:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return str(path)


def _make_pki(out: Path) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the
    CA, as PEM files in ``out``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (x509.CertificateBuilder().subject_name(name("eunomia test CA"))
               .issuer_name(name("eunomia test CA")).public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=True, key_cert_sign=True, crl_sign=True,
                   content_commitment=False, key_encipherment=False, data_encipherment=False,
                   key_agreement=False, encipher_only=False, decipher_only=False),
                   critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                              critical=False)
               .sign(ca_key, hashes.SHA256()))

    def leaf(cn: str, usage: x509.ObjectIdentifier, *, ip: bool) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(name(cn))
                   .issuer_name(ca_cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       ca_key.public_key()), critical=False))
        if ip:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)

    server_cert, server_key = leaf("eunomiad", ExtendedKeyUsageOID.SERVER_AUTH, ip=True)
    client_cert, client_key = leaf("client", ExtendedKeyUsageOID.CLIENT_AUTH, ip=False)
    out.mkdir()
    return {
        "ca": _write_pem(out / "ca.crt", ca_cert.public_bytes(serialization.Encoding.PEM)),
        "server_cert": _write_pem(out / "server.crt", server_cert),
        "server_key": _write_pem(out / "server.key", server_key, private=True),
        "client_cert": _write_pem(out / "client.crt", client_cert),
        "client_key": _write_pem(out / "client.key", client_key, private=True),
    }


def _tls_client(pki: dict[str, str], *, with_cert: bool) -> httpx.Client:
    import ssl

    context = ssl.create_default_context(cafile=pki["ca"])
    if with_cert:
        context.load_cert_chain(pki["client_cert"], pki["client_key"])
    return httpx.Client(verify=context, timeout=10)


def test_mutual_tls_needs_a_client_certificate_and_a_token(serve: Any, tmp_path: Path) -> None:
    pki = _make_pki(tmp_path / "pki")
    daemon: Daemon = serve(_tls_client(pki, with_cert=True), tls={
        "cert": pki["server_cert"], "key": pki["server_key"], "client_ca": pki["ca"]})
    token = _token_in(daemon.output(), daemon.tokens_path)
    auth = {"Authorization": f"Bearer {token}"}
    with _tls_client(pki, with_cert=False) as anonymous:
        with pytest.raises(httpx.TransportError):
            anonymous.get(f"{daemon.url}/health")
        with pytest.raises(httpx.TransportError):
            anonymous.get(f"{daemon.url}/v1/programs", headers=auth)
    with httpx.Client(timeout=10) as plain, pytest.raises(httpx.TransportError):
        plain.get(f"http://127.0.0.1:{daemon.port}/health")
    with _tls_client(pki, with_cert=True) as client:
        answer = client.get(f"{daemon.url}/v1/programs", headers=auth)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"programs": []}
        assert client.get(f"{daemon.url}/v1/programs").status_code == 401  # cert alone: no


def test_tls_settings_are_checked_before_serving(tmp_path: Path) -> None:
    import ssl

    from eunomia_bpf.daemon.tls import TLSError, tls_from_config

    pki = _make_pki(tmp_path / "pki")
    assert tls_from_config({}) == {}
    kwargs = tls_from_config({"cert": pki["server_cert"], "key": pki["server_key"],
                              "client_ca": pki["ca"]})
    assert kwargs == {"ssl_certfile": pki["server_cert"], "ssl_keyfile": pki["server_key"],
                      "ssl_ca_certs": pki["ca"], "ssl_cert_reqs": ssl.CERT_REQUIRED}
    plain_tls = tls_from_config({"cert": pki["server_cert"], "key": pki["server_key"]})
    assert "ssl_cert_reqs" not in plain_tls
    with pytest.raises(TLSError, match="key must be set"):
        tls_from_config({"cert": pki["server_cert"]})
    with pytest.raises(TLSError, match="unknown key.*ca_file"):
        tls_from_config({"cert": pki["server_cert"], "key": pki["server_key"], "ca_file": "x"})
    with pytest.raises(TLSError, match="no such file"):
        tls_from_config({"cert": str(tmp_path / "absent.crt"), "key": pki["server_key"]})
    with pytest.raises(TLSError, match="load tls certificate .* with key"):
        tls_from_config({"cert": pki["server_cert"], "key": pki["client_key"]})  # mismatch
    with pytest.raises(TLSError, match="load tls client CA"):
        tls_from_config({"cert": pki["server_cert"], "key": pki["server_key"],
                         "client_ca": pki["server_key"]})
    os.chmod(pki["server_key"], 0o644)
    with pytest.raises(TLSError, match="group/others"):
        tls_from_config({"cert": pki["server_cert"], "key": pki["server_key"]})

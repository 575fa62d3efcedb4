"""The daemon's token file: creation, modes, revocation seen without restart, bad files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from eunomia_bpf.daemon.auth import AuthError, TokenStore


def test_first_start_creates_a_private_file_with_an_admin_token(tmp_path: Path) -> None:
    path = tmp_path / "state" / "tokens.json"
    token = TokenStore.ensure_initial(path)
    assert token and len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token not in path.read_text()  # only hashes on disk
    store = TokenStore(path)
    assert [t.name for t in store.list()] == ["admin"]
    assert store.verify(token)
    assert TokenStore.ensure_initial(path) is None  # second start: nothing new
    assert [t.name for t in store.list()] == ["admin"]


def test_several_tokens_each_verifies_and_revocation_is_seen_by_a_running_store(
        tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    admin = TokenStore.ensure_initial(path)
    assert admin
    daemon = TokenStore(path)  # the daemon's long-lived instance
    cli = TokenStore(path)  # what `eunomiad token ...` uses
    ci = cli.create("ci")
    assert ci != admin
    assert daemon.verify(ci) and daemon.verify(admin)
    assert not daemon.verify(ci + "x") and not daemon.verify("") and not daemon.verify(ci[:-1])
    cli.revoke("ci")
    assert not daemon.verify(ci)
    assert daemon.verify(admin)
    listed = {t.name: t.revoked for t in daemon.list()}
    assert listed == {"admin": False, "ci": True}
    with pytest.raises(AuthError, match="already revoked"):
        cli.revoke("ci")
    again = cli.create("ci")  # a revoked name may be reused; the old token stays dead
    assert daemon.verify(again) and not daemon.verify(ci)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_names_are_checked_and_unique(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    store.create("ci")
    with pytest.raises(AuthError, match="exists"):
        store.create("ci")
    for bad in ("", "-x", "a b", "x" * 65, "a/b"):
        with pytest.raises(AuthError, match="name"):
            store.create(bad)
    with pytest.raises(AuthError, match="no such token"):
        store.revoke("nobody")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "tokens.json"
    token = TokenStore.ensure_initial(path)
    assert token
    store = TokenStore(path)
    assert store.verify(token)
    os.chmod(path, mode)
    with pytest.raises(AuthError, match="group/others.*chmod 600"):
        TokenStore.ensure_initial(path)
    with pytest.raises(AuthError, match="group/others"):
        store.list()
    assert not store.verify(token)  # an unsafe file lets nobody in
    os.chmod(path, 0o600)
    assert store.verify(token)


@pytest.mark.parametrize("content", [
    "", "not json", "[]", '{"version": 2, "tokens": []}', '{"version": 1}',
    '{"version": 1, "tokens": [{"name": "a"}]}',
    ('{"version": 1, "tokens": [{"name": "a", "salt": "zz", "sha256": "00",'
     ' "created_at": "x", "revoked_at": null}]}'),
])
def test_malformed_files_are_refused_with_the_path(tmp_path: Path, content: str) -> None:
    path = tmp_path / "tokens.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content.encode())
    os.close(fd)
    store = TokenStore(path)
    with pytest.raises(AuthError, match=str(path)):
        store.list()
    with pytest.raises(AuthError):
        store.create("x")
    assert not store.verify("anything")


def test_duplicate_names_in_the_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    store = TokenStore(path)
    store.create("a")
    doc = json.loads(path.read_text())
    doc["tokens"].append(doc["tokens"][0])
    path.write_text(json.dumps(doc))
    with pytest.raises(AuthError, match="twice"):
        TokenStore(path).list()


def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    TokenStore.ensure_initial(real)
    link = tmp_path / "tokens.json"
    link.symlink_to(real)
    with pytest.raises(AuthError, match="read tokens"):
        TokenStore(link).list()


def test_a_missing_file_lets_nobody_in(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "absent.json")
    assert not store.verify("x")
    with pytest.raises(AuthError, match="no such file"):
        store.list()


def test_token_cli_create_list_revoke(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from eunomia_bpf.cli.eunomiad import eunomiad

    runner = CliRunner()
    where = ["--tokens-file", str(tmp_path / "tokens")]
    made = runner.invoke(eunomiad, ["token", "create", "ci", *where])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert TokenStore(tmp_path / "tokens").verify(token)
    listed = runner.invoke(eunomiad, ["token", "list", *where])
    assert listed.exit_code == 0 and "ci" in listed.stdout and token not in listed.stdout
    assert runner.invoke(eunomiad, ["token", "revoke", "ci", *where]).exit_code == 0
    assert not TokenStore(tmp_path / "tokens").verify(token)
    unknown = runner.invoke(eunomiad, ["token", "revoke", "nobody", *where])
    assert unknown.exit_code != 0 and "no such token" in str(unknown.exception)
    # without --tokens-file: <state_dir>/tokens of the daemon's config
    by_state = runner.invoke(eunomiad, ["token", "create", "x", "--state-dir", str(tmp_path / "s")])
    assert by_state.exit_code == 0 and (tmp_path / "s" / "tokens").is_file()

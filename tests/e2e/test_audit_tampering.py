"""Tampering with the audit trail behind the server's back, then `charter audit verify`.

A module-scoped server writes a trail (checkpoints every 5 records, the newest one also in the
witness file beside the signing key) and is stopped, which signs its head. Each test then works on
a copy of that data directory: it edits the SQLite database with the sqlite3 module as an attacker
with database access would, starts a server of its own on the copy, and runs the CLI.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from charter.client.client import Client
from charter.domain.audit import chain_hash
from charter.errors import PermissionDenied

from .support import ACME_YAML, PERSONAS, CliResult, ServerProcess, charter_env, init_org, run_cli

TARGET = 7  # a record in the middle of the trail


@dataclass(frozen=True)
class Pristine:
    data_dir: Path
    admin_token: str
    last_seq: int
    checkpoints: tuple[int, ...]
    witness_seq: int


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pristine]:
    root = tmp_path_factory.mktemp("tamper-pristine")
    data_dir, config_dir = root / "data", root / "config"
    config_dir.mkdir()
    token = init_org(data_dir, config_dir)
    server = ServerProcess(data_dir, config_dir, root / "server.log", token).start()
    try:
        with Client(server.url, token) as admin:
            admin.apply(ACME_YAML.read_text(), filename="examples/acme/charter.yaml")
            issued = {name: admin.create_token(name, expires_in_seconds=3600) for name in PERSONAS}
            for name in ("lena", "sam", "mei", "priya", "diego", "promotion-bot"):
                with Client(server.url, issued[name].secret) as persona, pytest.raises(PermissionDenied):
                    persona.audit_verify()
            for name, account, role in (("lena", "ml-dev", "lead-data-scientist"), ("mei", "ml-test", "ml-engineer")):
                with Client(server.url, issued[name].secret) as persona:
                    persona.assume_role(account, role)
            for name in ("diego", "promotion-bot"):
                admin.revoke_token(issued[name].token.id)
    finally:
        server.stop()  # a clean stop signs a checkpoint over the head of the trail
    with closing(sqlite3.connect(data_dir / "charter.db")) as db:
        last_seq = db.execute("SELECT max(seq) FROM audit_records").fetchone()[0]
        checkpoints = tuple(r[0] for r in db.execute("SELECT seq FROM audit_checkpoints ORDER BY seq"))
    witness = json.loads((data_dir / "keys" / "audit-head.json").read_text())
    # Not asserts: a broken setup must error every test, never pass as a detected tampering.
    if last_seq < 15:
        raise RuntimeError(f"the trail has {last_seq} records; too short to tamper in the middle and at the end")
    if witness["seq"] != last_seq:
        raise RuntimeError(f"the witness covers record {witness['seq']}, not the head {last_seq}")
    yield Pristine(data_dir, token, last_seq, checkpoints, witness["seq"])


Tamper = Callable[[sqlite3.Connection], None]


@pytest.fixture
def verify_after(pristine: Pristine, tmp_path: Path) -> Callable[[Tamper | None], CliResult]:
    """Copy the pristine trail, apply the tampering, serve the copy, run `charter audit verify`."""

    def run(tamper: Tamper | None) -> CliResult:
        data_dir, config_dir = tmp_path / "data", tmp_path / "config"
        shutil.copytree(pristine.data_dir, data_dir)
        config_dir.mkdir()
        if tamper is not None:
            db = sqlite3.connect(data_dir / "charter.db")
            try:
                tamper(db)
                db.commit()
            finally:
                db.close()
        server = ServerProcess(data_dir, config_dir, tmp_path / "server.log", pristine.admin_token).start()
        try:
            return run_cli(["audit", "verify"], charter_env(
                config_dir, CHARTER_SERVER=server.url, CHARTER_TOKEN=pristine.admin_token))
        finally:
            server.stop()

    return run


def _assert_names_first_bad(result: CliResult, seq: int, reason_part: str) -> None:
    assert result.returncode != 0, str(result)
    assert f"first bad record {seq}:" in result.stdout, str(result)
    assert reason_part in result.stdout, str(result)


def _rehash_from(db: sqlite3.Connection, start: int) -> None:
    """What an attacker who knows the hashing scheme does: recompute the chain from ``start`` on."""
    rows = db.execute("SELECT seq, id, time, actor, via, account, action, resource, outcome, policy, "
                      "request_id, details FROM audit_records WHERE seq >= ? ORDER BY seq", (start,)).fetchall()
    prev = db.execute("SELECT hash FROM audit_records WHERE seq = ?", (start - 1,)).fetchone()[0]
    for seq, rid, time, actor, via, account, action, resource, outcome, policy, request_id, details in rows:
        body = {"seq": seq, "id": rid,
                "time": datetime.fromisoformat(time).replace(tzinfo=UTC).isoformat(),
                "actor": actor, "via": via, "account": account, "action": action, "resource": resource,
                "outcome": outcome, "policy": policy, "request_id": request_id, "details": json.loads(details)}
        new_hash = chain_hash(prev, body)
        db.execute("UPDATE audit_records SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, new_hash, seq))
        prev = new_hash
    db.execute("UPDATE audit_head SET hash = ? WHERE id = 1", (prev,))


def test_untouched_trail_verifies(verify_after: Callable[[Tamper | None], CliResult], pristine: Pristine) -> None:
    result = verify_after(None)

    assert result.returncode == 0, str(result)
    assert f"{pristine.last_seq} records" in result.stdout


def test_modified_field_is_named(verify_after: Callable[[Tamper | None], CliResult]) -> None:
    result = verify_after(lambda db: db.execute(
        "UPDATE audit_records SET actor = 'mallory' WHERE seq = ?", (TARGET,)))

    _assert_names_first_bad(result, TARGET, "was modified")


def test_modified_outcome_is_named(verify_after: Callable[[Tamper | None], CliResult], pristine: Pristine) -> None:
    def allow_a_denial(db: sqlite3.Connection) -> None:
        seq = db.execute("SELECT min(seq) FROM audit_records WHERE outcome = 'denied'").fetchone()[0]
        db.execute("UPDATE audit_records SET outcome = 'allowed', policy = NULL WHERE seq = ?", (seq,))
        allow_a_denial.seq = seq  # type: ignore[attr-defined]

    result = verify_after(allow_a_denial)

    _assert_names_first_bad(result, allow_a_denial.seq, "was modified")  # type: ignore[attr-defined]


def test_deleted_middle_record_is_named(verify_after: Callable[[Tamper | None], CliResult]) -> None:
    result = verify_after(lambda db: db.execute("DELETE FROM audit_records WHERE seq = ?", (TARGET,)))

    _assert_names_first_bad(result, TARGET, "is missing")


def test_reordered_records_are_named(verify_after: Callable[[Tamper | None], CliResult]) -> None:
    def swap(db: sqlite3.Connection) -> None:
        db.execute("UPDATE audit_records SET seq = -1 WHERE seq = ?", (TARGET,))
        db.execute("UPDATE audit_records SET seq = ? WHERE seq = ?", (TARGET, TARGET + 1))
        db.execute("UPDATE audit_records SET seq = ? WHERE seq = -1", (TARGET + 1,))

    result = verify_after(swap)

    _assert_names_first_bad(result, TARGET, "does not follow")


def test_truncated_newest_records_are_detected(verify_after: Callable[[Tamper | None], CliResult],
                                               pristine: Pristine) -> None:
    keep = pristine.last_seq - 3

    result = verify_after(lambda db: db.execute("DELETE FROM audit_records WHERE seq > ?", (keep,)))

    _assert_names_first_bad(result, keep + 1, "truncated")


def test_truncation_with_checkpoints_and_head_rewound_is_caught_by_the_witness(
        verify_after: Callable[[Tamper | None], CliResult], pristine: Pristine) -> None:
    keep = pristine.last_seq - 3

    def truncate_cleanly(db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM audit_records WHERE seq > ?", (keep,))
        db.execute("DELETE FROM audit_checkpoints WHERE seq > ?", (keep,))
        head = db.execute("SELECT hash FROM audit_records WHERE seq = ?", (keep,)).fetchone()[0]
        db.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (keep, head))

    result = verify_after(truncate_cleanly)

    _assert_names_first_bad(result, keep + 1, "truncated")
    assert f"covers record {pristine.witness_seq}" in result.stdout


def test_rehashed_chain_is_caught_by_the_next_signed_checkpoint(
        verify_after: Callable[[Tamper | None], CliResult], pristine: Pristine) -> None:
    def rewrite(db: sqlite3.Connection) -> None:
        db.execute("UPDATE audit_records SET actor = 'mallory' WHERE seq = ?", (TARGET,))
        _rehash_from(db, TARGET)

    result = verify_after(rewrite)

    next_checkpoint = min(seq for seq in pristine.checkpoints if seq >= TARGET)
    _assert_names_first_bad(result, next_checkpoint, "differs from the signed checkpoint")


def test_rehashed_chain_without_checkpoints_is_caught_by_the_witness(
        verify_after: Callable[[Tamper | None], CliResult], pristine: Pristine) -> None:
    def rewrite(db: sqlite3.Connection) -> None:
        db.execute("UPDATE audit_records SET actor = 'mallory' WHERE seq = ?", (TARGET,))
        _rehash_from(db, TARGET)
        db.execute("DELETE FROM audit_checkpoints")

    result = verify_after(rewrite)

    _assert_names_first_bad(result, pristine.witness_seq, "differs from the signed checkpoint")


def test_forged_checkpoint_is_caught_by_its_signature(
        verify_after: Callable[[Tamper | None], CliResult], pristine: Pristine) -> None:
    forged = min(seq for seq in pristine.checkpoints if seq >= TARGET)

    result = verify_after(lambda db: db.execute(
        "UPDATE audit_checkpoints SET hash = ? WHERE seq = ?", ("f" * 64, forged)))

    _assert_names_first_bad(result, forged, "bad signature")


def test_record_whose_field_no_longer_parses_is_named(verify_after: Callable[[Tamper | None], CliResult]) -> None:
    result = verify_after(lambda db: db.execute(
        "UPDATE audit_records SET outcome = 'forgiven' WHERE seq = ?", (TARGET,)))

    _assert_names_first_bad(result, TARGET, "was modified")

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from charter.domain.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditRecord,
    Checkpoint,
    seal,
    verify_chain,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _chain(n: int) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    prev = GENESIS_HASH
    for i in range(1, n + 1):
        entry = AuditEntry("lena", "cht:x", "ml-dev", "iam:AssumeRole", f"crn:charter:ml-dev:iam:role/r{i}")
        record = seal(i, f"id-{i}", T0 + timedelta(seconds=i), entry, prev)
        records.append(record)
        prev = record.hash
    return records


def _checkpoint(record: AuditRecord) -> Checkpoint:
    return Checkpoint(record.seq, record.hash, T0, "k", "good")


def _ok(cp: Checkpoint) -> bool:
    return cp.signature == "good"


def test_an_untouched_chain_verifies() -> None:
    records = _chain(10)
    result = verify_chain(records, [_checkpoint(records[4])], _ok, _checkpoint(records[9]))
    assert result.ok and result.records == 10 and result.first_bad_seq is None


def test_a_modified_record_is_named() -> None:
    records = _chain(10)
    records[6] = replace(records[6], actor="mallory")
    result = verify_chain(records, [], _ok)
    assert not result.ok and result.first_bad_seq == 7 and "modified" in (result.reason or "")


def test_a_deleted_record_is_named() -> None:
    records = _chain(10)
    del records[3]
    result = verify_chain(records, [], _ok)
    assert not result.ok and result.first_bad_seq == 4


def test_reordered_records_are_named() -> None:
    records = _chain(10)
    a, b = records[2], records[5]
    records[2], records[5] = replace(b, seq=3), replace(a, seq=6)
    result = verify_chain(records, [], _ok)
    assert not result.ok and result.first_bad_seq == 3


def test_truncation_behind_a_checkpoint_is_detected() -> None:
    records = _chain(10)
    checkpoints = [_checkpoint(records[7])]
    result = verify_chain(records[:6], checkpoints, _ok)
    assert not result.ok and result.first_bad_seq == 7 and "truncated" in (result.reason or "")


def test_truncation_of_the_newest_records_is_caught_by_the_witness() -> None:
    records = _chain(10)
    result = verify_chain(records[:9], [], _ok, witness=_checkpoint(records[9]))
    assert not result.ok and result.first_bad_seq == 10


def test_a_rewritten_chain_fails_its_signed_checkpoint() -> None:
    records = _chain(6)
    checkpoint = _checkpoint(records[5])
    forged: list[AuditRecord] = []
    prev = GENESIS_HASH
    for r in records:  # an attacker re-seals every record after changing one
        entry = AuditEntry("mallory" if r.seq == 2 else r.actor, r.via, r.account, r.action, r.resource)
        forged.append(seal(r.seq, r.id, r.time, entry, prev))
        prev = forged[-1].hash
    result = verify_chain(forged, [checkpoint], _ok)
    assert not result.ok and result.first_bad_seq == 6


def test_a_checkpoint_with_a_bad_signature_fails_verification() -> None:
    records = _chain(3)
    bad = Checkpoint(3, records[2].hash, T0, "k", "forged")
    assert not verify_chain(records, [bad], _ok).ok

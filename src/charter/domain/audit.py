"""The tamper-evident audit trail: hash-chained records and signed checkpoints.

Each record's hash is SHA-256 over the previous hash and the record's canonical JSON (sequence
number included, so moving a record breaks the chain). Checkpoints sign a (seq, hash) head with a
key kept outside the database; the newest checkpoint is also kept outside it (the witness), so a
truncated table is caught even when the rows removed were the newest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

GENESIS_HASH = "0" * 64


class Outcome(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    FAILED = "failed"


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class AuditHead:
    """The end of the chain, and how far the newest signed checkpoint reaches."""

    seq: int = 0
    hash: str = GENESIS_HASH
    checkpoint_seq: int = 0


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What a caller asks to record; the trail adds sequence, time and hashes."""

    actor: str | None
    via: str | None
    account: str
    action: str
    resource: str
    outcome: Outcome = Outcome.ALLOWED
    policy: str | None = None
    request_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    id: str
    time: datetime
    actor: str | None
    via: str | None
    account: str
    action: str
    resource: str
    outcome: Outcome
    policy: str | None
    request_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": self.id,
            "time": self.time.isoformat(),
            "actor": self.actor,
            "via": self.via,
            "account": self.account,
            "action": self.action,
            "resource": self.resource,
            "outcome": str(self.outcome),
            "policy": self.policy,
            "request_id": self.request_id,
            "details": self.details,
        }

    def computed_hash(self) -> str:
        return chain_hash(self.prev_hash, self.body())

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "prev_hash": self.prev_hash, "hash": self.hash}


def chain_hash(prev_hash: str, body: dict[str, Any]) -> str:
    h = hashlib.sha256(prev_hash.encode())
    h.update(b"\n")
    h.update(canonical_json(body))
    return h.hexdigest()


def seal(seq: int, record_id: str, time: datetime, entry: AuditEntry, prev_hash: str) -> AuditRecord:
    draft = AuditRecord(
        seq, record_id, time, entry.actor, entry.via, entry.account, entry.action, entry.resource,
        entry.outcome, entry.policy, entry.request_id, dict(entry.details), prev_hash, "",
    )
    return replace(draft, hash=draft.computed_hash())


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    created_at: datetime
    key_id: str
    signature: str

    def message(self) -> bytes:
        return f"charter-audit-checkpoint\n{self.seq}\n{self.hash}\n{self.created_at.isoformat()}".encode()

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "hash": self.hash,
            "created_at": self.created_at.isoformat(),
            "key_id": self.key_id,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(
            int(data["seq"]), str(data["hash"]), datetime.fromisoformat(data["created_at"]),
            str(data["key_id"]), str(data["signature"]),
        )


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    records: int
    checkpoints: int
    first_bad_seq: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "checkpoints": self.checkpoints,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class UnreadableRecord:
    """A stored record whose fields no longer parse (tampered with outside Charter)."""

    seq: int
    reason: str


SignatureCheck = Callable[[Checkpoint], bool]


def verify_chain(
    records: Iterable[AuditRecord | UnreadableRecord],
    checkpoints: Iterable[Checkpoint],
    signature_ok: SignatureCheck,
    witness: Checkpoint | None = None,
) -> VerifyResult:
    """Walk the chain once and name the first record that is not what was written."""
    by_seq = {cp.seq: cp for cp in checkpoints}
    if witness is not None:
        by_seq.setdefault(witness.seq, witness)
    for cp in by_seq.values():
        if not signature_ok(cp):
            return VerifyResult(False, 0, len(by_seq), cp.seq, f"checkpoint at record {cp.seq} has a bad signature")
    expected_seq, prev, count, failure = 1, GENESIS_HASH, 0, None
    for record in records:
        count += 1
        if record.seq != expected_seq:
            failure = failure or (expected_seq, f"record {expected_seq} is missing (deleted or reordered)")
        elif isinstance(record, UnreadableRecord):
            failure = failure or (record.seq, f"record {record.seq} was modified ({record.reason})")
        elif record.prev_hash != prev:
            failure = failure or (record.seq, f"record {record.seq} does not follow record {record.seq - 1} (reordered, or its predecessor changed)")
        elif record.computed_hash() != record.hash:
            failure = failure or (record.seq, f"record {record.seq} was modified (its hash does not match its content)")
        elif (signed := by_seq.get(record.seq)) is not None and signed.hash != record.hash:
            failure = failure or (record.seq, f"record {record.seq} differs from the signed checkpoint")
        if failure or isinstance(record, UnreadableRecord):
            break
        expected_seq, prev = record.seq + 1, record.hash
    last_seq = expected_seq - 1
    if failure is None:
        beyond = [seq for seq in by_seq if seq > last_seq]
        if beyond:
            failure = (last_seq + 1, f"the trail ends at record {last_seq} but a signed checkpoint "
                       f"covers record {max(beyond)} (truncated)")
    if failure is not None:
        return VerifyResult(False, count, len(by_seq), failure[0], failure[1])
    return VerifyResult(True, count, len(by_seq))

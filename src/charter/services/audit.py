"""Appending to and verifying the audit trail. Appends run inside the caller's transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from charter.domain.audit import (
    AuditEntry,
    AuditRecord,
    Checkpoint,
    VerifyResult,
    seal,
    verify_chain,
)
from charter.errors import ServerError
from charter.services.ports import Clock, Signer, UnitOfWork, Witness


@dataclass
class AuditTrail:
    signer: Signer
    witness: Witness
    clock: Clock
    checkpoint_every: int = 64

    def append(self, uow: UnitOfWork, entry: AuditEntry) -> AuditRecord:
        # The head may be the one this process last committed, unread: the append is refused if the
        # chain has moved since, and then the head is read (locked) and the record sealed again.
        head = uow.audit.lock_head()
        record = seal(head.seq + 1, str(uuid.uuid4()), self.clock.now(), entry, head.hash)
        if not uow.audit.append(record, head):
            head = uow.audit.lock_head(fresh=True)
            record = seal(head.seq + 1, record.id, record.time, entry, head.hash)
            if not uow.audit.append(record, head):
                raise ServerError("the audit chain's head moved while it was locked")
        if record.seq - head.checkpoint_seq >= self.checkpoint_every:
            self._sign(uow, record.seq, record.hash)
        return record

    def checkpoint(self, uow: UnitOfWork) -> Checkpoint | None:
        """Sign the current head if records were added since the last checkpoint."""
        head = uow.audit.lock_head(fresh=True)
        if head.seq == 0 or head.checkpoint_seq >= head.seq:
            return None
        return self._sign(uow, head.seq, head.hash)

    def _sign(self, uow: UnitOfWork, seq: int, head_hash: str) -> Checkpoint:
        unsigned = Checkpoint(seq, head_hash, self.clock.now(), self.signer.key_id, "")
        checkpoint = Checkpoint(
            seq, head_hash, unsigned.created_at, self.signer.key_id, self.signer.sign(unsigned.message())
        )
        uow.audit.add_checkpoint(checkpoint)
        # The witness moves only once the checkpoint is durable; were it written first, a rollback
        # would leave it ahead of the database and look like truncation.
        uow.after_commit(lambda: self._advance_witness(checkpoint))
        return checkpoint

    def _advance_witness(self, checkpoint: Checkpoint) -> None:
        current = self.witness.read()
        if current is None or current.seq < checkpoint.seq:
            self.witness.write(checkpoint)

    def verify(self, uow: UnitOfWork) -> VerifyResult:
        return verify_chain(
            uow.audit.iterate(),
            uow.audit.checkpoints(),
            lambda cp: self.signer.verify(cp.message(), cp.signature, cp.key_id),
            self.witness.read(),
        )

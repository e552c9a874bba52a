"""Account requests: a lead data scientist or ML engineer asks for an account, the org admin
decides. An approval vends the account in one transaction with its blueprint's baseline.

Pending -> Approved or Rejected, both final; nobody decides their own request.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from charter.domain.crn import CRN
from charter.domain.names import check_name
from charter.domain.org import MANAGEMENT_ACCOUNT, AccountKind, Stage
from charter.errors import InvalidTransition, PermissionDenied, ValidationError

MAX_REASON = 2000
MAX_COMMENT = 4000


class RequestStatus(StrEnum):
    PENDING = "Pending"
    APPROVED = "Approved"
    REJECTED = "Rejected"


@dataclass(frozen=True, slots=True)
class AccountRequest:
    id: str
    account: str
    """The name of the account asked for."""
    ou: str
    kind: AccountKind
    stage: Stage | None
    blueprint: str
    reason: str
    requested_by: str
    created_at: datetime
    status: RequestStatus = RequestStatus.PENDING
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str = ""

    def __post_init__(self) -> None:
        check_name(self.account, "account")
        check_name(self.ou, "organizational unit")
        check_name(self.blueprint, "blueprint")
        if (self.kind is AccountKind.WORKLOAD) != (self.stage is not None):
            raise ValidationError("a workload account has a stage (dev, test or prod); other kinds have none",
                                  field="stage")
        if self.kind is AccountKind.MANAGEMENT:
            raise ValidationError("the management account exists once; it cannot be requested", field="kind")
        if not self.reason.strip():
            raise ValidationError("an account request needs a reason: say what the account is for",
                                  field="reason")
        if len(self.reason) > MAX_REASON:
            raise ValidationError(f"a reason has at most {MAX_REASON} characters", field="reason")

    @property
    def crn(self) -> CRN:
        return CRN(MANAGEMENT_ACCOUNT, "org", "account-request", self.id)

    def decide(self, status: RequestStatus, actor: str, comment: str, time: datetime) -> AccountRequest:
        """Pending -> Approved or Rejected, by someone other than the requester."""
        if status is RequestStatus.PENDING or self.status is not RequestStatus.PENDING:
            raise InvalidTransition(f"account request {self.id} is {self.status}: it cannot become {status}",
                                    request=self.id, status=str(self.status), requested=str(status))
        if actor == self.requested_by:
            raise PermissionDenied(f"{actor} requested {self.account}; someone else decides the request",
                                   policy="no-self-approved-account-requests", request=self.id)
        if status is RequestStatus.REJECTED and not comment.strip():
            raise ValidationError("a rejection says why: give a comment", field="comment")
        return replace(self, status=status, decided_by=actor, decided_at=time, comment=comment[:MAX_COMMENT])

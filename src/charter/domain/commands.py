"""Messages the service layer handles. Commands change state and are audited; queries only read.

Each has exactly one handler; a handler that fails leaves the state as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Message:
    pass


@dataclass(frozen=True, slots=True)
class Command(Message):
    pass


@dataclass(frozen=True, slots=True)
class Query(Message):
    pass


@dataclass(frozen=True, slots=True)
class PageRequest:
    after: str | None = None
    limit: int = 50


# --- organization -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class InitOrg(Command):
    name: str


@dataclass(frozen=True, slots=True)
class ApplyOrg(Command):
    document: str
    filename: str = "charter.yaml"


@dataclass(frozen=True, slots=True)
class PlanOrg(Query):
    document: str
    filename: str = "charter.yaml"


@dataclass(frozen=True, slots=True)
class GetOrg(Query):
    pass


@dataclass(frozen=True, slots=True)
class ListAccounts(Query):
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class GetAccount(Query):
    name: str


@dataclass(frozen=True, slots=True)
class ListPrincipals(Query):
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class GetPrincipal(Query):
    name: str


@dataclass(frozen=True, slots=True)
class ListRoleBindings(Query):
    account: str


@dataclass(frozen=True, slots=True)
class ListPolicies(Query):
    pass


# --- identity -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class WhoAmI(Query):
    pass


@dataclass(frozen=True, slots=True)
class CreateToken(Command):
    principal: str
    expires_in_seconds: int | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class ListTokens(Query):
    principal: str | None = None
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class RevokeToken(Command):
    token_id: str


@dataclass(frozen=True, slots=True)
class AssumeRole(Command):
    account: str
    role: str
    duration_seconds: int | None = None


# --- audit --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str | None = None
    account: str | None = None
    resource: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class ListAudit(Query):
    filter: AuditFilter = AuditFilter()
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class VerifyAudit(Query):
    pass

"""The organization: org units, accounts, principals and the role bindings that join them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from charter.domain.crn import CRN

if TYPE_CHECKING:
    from charter.domain.blueprints import Blueprint

MANAGEMENT_ACCOUNT = "management"
ADMIN_PRINCIPAL = "admin"


class AccountKind(StrEnum):
    MANAGEMENT = "management"
    SHARED_SERVICES = "shared-services"
    WORKLOAD = "workload"
    DATA_GOVERNANCE = "data-governance"


class Stage(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class PrincipalKind(StrEnum):
    PERSON = "person"
    SERVICE = "service"


class Role(StrEnum):
    """The personas of the default policy set. Organizations may declare more roles."""

    ORG_ADMIN = "org-admin"
    PLATFORM_ENGINEER = "platform-engineer"
    DATA_ENGINEER = "data-engineer"
    LEAD_DATA_SCIENTIST = "lead-data-scientist"
    DATA_SCIENTIST = "data-scientist"
    ML_ENGINEER = "ml-engineer"
    GOVERNANCE_OFFICER = "governance-officer"
    AUDITOR = "auditor"


BUILTIN_ROLES: dict[str, str] = {
    Role.ORG_ADMIN: "Administers the organization: units, accounts, principals, role bindings",
    Role.PLATFORM_ENGINEER: "Publishes templates, shares portfolios, manages buses and rules",
    Role.DATA_ENGINEER: "Registers datasets and approves subscriptions to them",
    Role.LEAD_DATA_SCIENTIST: "Leads a team: launches projects, approves dev packages",
    Role.DATA_SCIENTIST: "Runs pipelines, registers packages, edits model cards",
    Role.ML_ENGINEER: "Deploys models: launches deployment projects, approves central packages",
    Role.GOVERNANCE_OFFICER: "Approves model cards and production stages; reads the audit trail",
    Role.AUDITOR: "Reads the audit trail",
}


@dataclass(frozen=True, slots=True)
class Organization:
    name: str
    created_at: datetime
    policy_revision: int = 0

    @property
    def crn(self) -> CRN:
        return CRN(MANAGEMENT_ACCOUNT, "org", "organization", self.name)


@dataclass(frozen=True, slots=True)
class OrgUnit:
    name: str
    parent: str | None = None
    description: str = ""

    @property
    def crn(self) -> CRN:
        return CRN(MANAGEMENT_ACCOUNT, "org", "ou", self.name)


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    kind: AccountKind
    stage: Stage | None = None
    ou: str | None = None
    description: str = ""

    @property
    def crn(self) -> CRN:
        return CRN(MANAGEMENT_ACCOUNT, "org", "account", self.name)


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    kind: PrincipalKind = PrincipalKind.PERSON
    display_name: str = ""
    email: str = ""

    @property
    def crn(self) -> CRN:
        return CRN(MANAGEMENT_ACCOUNT, "iam", "principal", self.name)


@dataclass(frozen=True, slots=True)
class RoleDefinition:
    name: str
    description: str = ""
    builtin: bool = False

    @property
    def crn(self) -> CRN:
        return CRN(MANAGEMENT_ACCOUNT, "iam", "role", self.name)


@dataclass(frozen=True, slots=True, order=True)
class RoleBinding:
    principal: str
    account: str
    role: str
    managed_by: str | None = field(default=None, compare=False)
    """What created the binding when charter.yaml did not (a vended account's blueprint, a
    workspace): ``charter apply`` leaves it alone. Not part of a binding's identity."""

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "iam", "role-binding", f"{self.principal}.{self.role}")


@dataclass(frozen=True, slots=True)
class OrgPolicy:
    """A Cedar policy the organization adds to the default set."""

    id: str
    text: str
    description: str = ""

    @property
    def crn(self) -> CRN:
        return CRN(MANAGEMENT_ACCOUNT, "iam", "policy", self.id)


class TargetKind(StrEnum):
    HANDLER = "handler"
    BUS = "bus"
    WEBHOOK = "webhook"
    DEPLOYMENT = "deployment"
    """A deployment pipeline of the rule's account: each matching event starts one execution."""
    PIPELINE = "pipeline"
    """Start a run of the named pipeline in the rule's account, as the target's ``runAs``."""


@dataclass(frozen=True, slots=True, order=True)
class EventTarget:
    """Where a rule sends a matching event: a built-in handler, another account's bus, a webhook,
    a deployment pipeline of the rule's own account."""

    kind: TargetKind
    value: str
    run_as: str | None = None
    """For a handler or pipeline target: the service principal it acts as (``runAs`` in charter.yaml)."""
    max_attempts: int | None = None
    """This target's own retry limits (``maxAttempts``, ``maxAgeSeconds``); the settings' otherwise."""
    max_age_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class EventRule:
    """An EventBridge-style rule on one account's bus. ``pattern`` is the canonical JSON text of a
    pattern that ``charter.domain.patterns.compile_pattern`` accepts."""

    account: str
    name: str
    pattern: str
    targets: tuple[EventTarget, ...]
    description: str = ""
    enabled: bool = True
    managed_by: str | None = None
    """What created the rule when charter.yaml did not (a project, a blueprint, e.g.
    ``project:ml-dev/churn``); ``charter apply`` neither changes nor deletes it."""

    @property
    def key(self) -> str:
        return f"{self.account}/{self.name}"

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "events", "rule", self.name)


@dataclass(frozen=True, slots=True)
class BusPolicy:
    """Which other accounts may put events on an account's bus: account names or ``ou:<unit>``."""

    account: str
    allow: tuple[str, ...]
    managed_by: str | None = None
    """What created the policy when charter.yaml did not; ``charter apply`` leaves it alone."""

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "events", "event-bus", "default")

    def admits(self, state: OrgState, source: str) -> bool:
        if source == self.account or source in self.allow:
            return True
        account = state.accounts.get(source)
        chain = state.ou_ancestors(account.ou) if account else []
        return any(f"ou:{unit}" in self.allow for unit in chain)


@dataclass(slots=True)
class OrgState:
    """Everything ``charter apply`` manages, as it stands (or as a file wants it)."""

    units: dict[str, OrgUnit] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    principals: dict[str, Principal] = field(default_factory=dict)
    roles: dict[str, RoleDefinition] = field(default_factory=dict)
    bindings: set[RoleBinding] = field(default_factory=set)
    policies: dict[str, OrgPolicy] = field(default_factory=dict)
    bus_policies: dict[str, BusPolicy] = field(default_factory=dict)
    rules: dict[str, EventRule] = field(default_factory=dict)
    blueprints: dict[str, Blueprint] = field(default_factory=dict)

    def ou_ancestors(self, ou: str | None) -> list[str]:
        chain: list[str] = []
        while ou is not None and ou not in chain:
            chain.append(ou)
            parent = self.units.get(ou)
            ou = parent.parent if parent else None
        return chain

"""The authorization view of each resource kind: its CRN, Cedar entity type and attributes."""

from __future__ import annotations

from charter.domain.authz import Resource
from charter.domain.crn import CRN
from charter.domain.identity import ApiToken
from charter.domain.org import MANAGEMENT_ACCOUNT, Account, Organization, Principal


def organization(org: Organization) -> Resource:
    return Resource(org.crn, "Organization")


def account(acc: Account) -> Resource:
    # An account is read by its members; the resource lives in the account it describes.
    return Resource(CRN(acc.name, "org", "account", acc.name), "Account",
                    {"kind": str(acc.kind), "stage": str(acc.stage or "")})


def principal(p: Principal) -> Resource:
    return Resource(p.crn, "Principal", {"name": p.name, "kind": str(p.kind)})


def token_of(owner: str, token_id: str = "*") -> Resource:
    return Resource(CRN(MANAGEMENT_ACCOUNT, "iam", "token", token_id), "Token", {"owner": owner})


def token(t: ApiToken) -> Resource:
    return token_of(t.principal, t.id)


def role_bindings(account_name: str) -> Resource:
    return Resource(CRN(account_name, "iam", "role-binding", "*"), "RoleBinding")


def policies() -> Resource:
    return Resource(CRN(MANAGEMENT_ACCOUNT, "iam", "policy", "*"), "PolicySet")


def audit_trail(account: str | None = None) -> Resource:
    """The trail of one account, or the whole organization's (kept by the management account)."""
    return Resource(CRN(account or MANAGEMENT_ACCOUNT, "audit", "trail", "default"), "AuditTrail")


def session_for(account_name: str, role: str) -> Resource:
    return Resource(CRN(account_name, "iam", "role", role), "Role", {"role": role})

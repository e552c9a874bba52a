"""Every request's policy decision: build the request from the caller's bindings, ask the engine.

A ``decision_trace`` context variable lets an entrypoint prove that a request was decided at all
(the API refuses to answer a request that reached no decision).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from charter.domain.authz import Action, AuthzRequest, Decision, Resource
from charter.domain.identity import Identity
from charter.domain.org import MANAGEMENT_ACCOUNT, Role
from charter.errors import PermissionDenied
from charter.services.ports import PolicyEngine, UnitOfWork

# The management account is the organization's own: an org-admin bound there administers every account.
ORG_WIDE_ROLES = frozenset({str(Role.ORG_ADMIN)})

decision_trace: ContextVar[list[Decision] | None] = ContextVar("decision_trace", default=None)


@dataclass
class Authorizer:
    engine: PolicyEngine

    def decide(self, uow: UnitOfWork, identity: Identity, action: Action, resource: Resource) -> Decision:
        bound = uow.org.roles_of(identity.principal)
        roles = identity.scope_roles(resource.account, bound.get(resource.account, set()))
        org_roles = ORG_WIDE_ROLES & identity.scope_roles(MANAGEMENT_ACCOUNT, bound.get(MANAGEMENT_ACCOUNT, set()))
        member_of = sorted(a for a, rs in bound.items() if identity.scope_roles(a, rs))
        org = uow.org.get_org()
        request = AuthzRequest(
            principal=identity.principal,
            principal_kind=identity.principal_kind,
            roles=frozenset(roles),
            action=action,
            resource=resource,
            context={
                "session": identity.session is not None,
                "member_of": member_of,
                "account": resource.account,
            },
            org_roles=frozenset(org_roles),
        )
        decision = self.engine.decide(
            request, org.policy_revision if org else 0, uow.org.list_policies
        )
        trace = decision_trace.get()
        if trace is not None:
            trace.append(decision)
        return decision

    def require(self, uow: UnitOfWork, identity: Identity, action: Action, resource: Resource) -> Decision:
        decision = self.decide(uow, identity, action, resource)
        if not decision.allowed:
            raise PermissionDenied(
                f"{identity.principal} may not {action} on {resource.crn} "
                f"(denied by {decision.deciding_policy})",
                policy=decision.deciding_policy,
                action=str(action),
                resource=str(resource.crn),
                principal=identity.principal,
            )
        return decision

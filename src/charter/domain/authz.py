"""Authorization requests and decisions, independent of the policy engine that makes them.

Actions are named ``<service>:<Verb>`` and grouped (``Read``, ``org:Manage``, ``audit:Read`` …) so
that policies grant families of actions and new actions join a family instead of a policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from charter.domain.crn import CRN


class ActionGroup(StrEnum):
    READ = "Read"
    READ_DIRECTORY = "ReadDirectory"
    SELF_SERVICE = "SelfService"
    MANAGE_ORG = "org:Manage"
    READ_AUDIT = "audit:Read"
    READ_REGISTRY = "registry:Read"
    WRITE_REGISTRY = "registry:Write"
    DECIDE_PACKAGES = "registry:Decide"
    MANAGE_CATALOG = "catalog:Manage"
    READ_CATALOG = "catalog:Read"


class Action(StrEnum):
    """Every action the API authorizes, and the group it belongs to."""

    WHOAMI = "iam:WhoAmI"
    ASSUME_ROLE = "iam:AssumeRole"
    READ_ORG = "org:Read"
    LIST_ACCOUNTS = "org:ListAccounts"
    READ_ACCOUNT = "org:ReadAccount"
    LIST_PRINCIPALS = "iam:ListPrincipals"
    READ_PRINCIPAL = "iam:ReadPrincipal"
    LIST_ROLE_BINDINGS = "iam:ListRoleBindings"
    LIST_POLICIES = "iam:ListPolicies"
    APPLY_ORG = "org:Apply"
    PLAN_ORG = "org:Plan"
    CREATE_TOKEN = "iam:CreateToken"
    LIST_TOKENS = "iam:ListTokens"
    REVOKE_TOKEN = "iam:RevokeToken"
    LIST_AUDIT = "audit:ListRecords"
    VERIFY_AUDIT = "audit:Verify"
    CREATE_GROUP = "registry:CreateModelPackageGroup"
    LIST_GROUPS = "registry:ListModelPackageGroups"
    READ_GROUP = "registry:DescribeModelPackageGroup"
    UPLOAD_ARTIFACT = "registry:UploadArtifact"
    READ_ARTIFACT = "registry:GetArtifact"
    REGISTER_PACKAGE = "registry:RegisterModelPackage"
    LIST_PACKAGES = "registry:ListModelPackages"
    READ_PACKAGE = "registry:DescribeModelPackage"
    APPROVE_PACKAGE = "registry:ApproveModelPackage"
    REJECT_PACKAGE = "registry:RejectModelPackage"
    PROMOTE_PACKAGE = "registry:PromoteModelPackage"
    CREATE_PORTFOLIO = "catalog:CreatePortfolio"
    LIST_PORTFOLIOS = "catalog:ListPortfolios"
    READ_PORTFOLIO = "catalog:DescribePortfolio"
    PUBLISH_PRODUCT = "catalog:PublishProductVersion"
    LIST_PRODUCTS = "catalog:ListProducts"
    READ_PRODUCT = "catalog:DescribeProduct"
    LIST_PRODUCT_VERSIONS = "catalog:ListProductVersions"
    READ_PRODUCT_VERSION = "catalog:DescribeProductVersion"
    READ_PRODUCT_FILE = "catalog:GetProductFile"
    SHARE_PORTFOLIO = "catalog:SharePortfolio"
    UNSHARE_PORTFOLIO = "catalog:UnsharePortfolio"
    GRANT_PORTFOLIO = "catalog:GrantPortfolio"
    REVOKE_PORTFOLIO_GRANT = "catalog:RevokePortfolioGrant"
    LIST_IMPORTED = "catalog:ListImportedPortfolios"

    @property
    def groups(self) -> tuple[ActionGroup, ...]:
        return _GROUPS[self]


_GROUPS: dict[Action, tuple[ActionGroup, ...]] = {
    Action.WHOAMI: (ActionGroup.SELF_SERVICE,),
    Action.ASSUME_ROLE: (ActionGroup.SELF_SERVICE,),
    Action.READ_ORG: (ActionGroup.READ_DIRECTORY,),
    Action.LIST_ACCOUNTS: (ActionGroup.READ_DIRECTORY,),
    Action.READ_ACCOUNT: (ActionGroup.READ_DIRECTORY,),
    Action.LIST_PRINCIPALS: (ActionGroup.READ_DIRECTORY,),
    Action.READ_PRINCIPAL: (ActionGroup.READ_DIRECTORY,),
    Action.LIST_ROLE_BINDINGS: (ActionGroup.READ,),
    Action.LIST_POLICIES: (ActionGroup.READ_DIRECTORY,),
    Action.APPLY_ORG: (ActionGroup.MANAGE_ORG,),
    Action.PLAN_ORG: (ActionGroup.MANAGE_ORG,),
    Action.CREATE_TOKEN: (ActionGroup.MANAGE_ORG,),
    Action.LIST_TOKENS: (ActionGroup.MANAGE_ORG,),
    Action.REVOKE_TOKEN: (ActionGroup.MANAGE_ORG,),
    Action.LIST_AUDIT: (ActionGroup.READ_AUDIT,),
    Action.VERIFY_AUDIT: (ActionGroup.READ_AUDIT,),
    Action.CREATE_GROUP: (ActionGroup.WRITE_REGISTRY,),
    Action.LIST_GROUPS: (ActionGroup.READ, ActionGroup.READ_REGISTRY),
    Action.READ_GROUP: (ActionGroup.READ, ActionGroup.READ_REGISTRY),
    Action.UPLOAD_ARTIFACT: (ActionGroup.WRITE_REGISTRY,),
    Action.READ_ARTIFACT: (ActionGroup.READ, ActionGroup.READ_REGISTRY),
    Action.REGISTER_PACKAGE: (ActionGroup.WRITE_REGISTRY,),
    Action.LIST_PACKAGES: (ActionGroup.READ, ActionGroup.READ_REGISTRY),
    Action.READ_PACKAGE: (ActionGroup.READ, ActionGroup.READ_REGISTRY),
    Action.APPROVE_PACKAGE: (ActionGroup.DECIDE_PACKAGES,),
    Action.REJECT_PACKAGE: (ActionGroup.DECIDE_PACKAGES,),
    Action.PROMOTE_PACKAGE: (ActionGroup.WRITE_REGISTRY,),
    Action.CREATE_PORTFOLIO: (ActionGroup.MANAGE_CATALOG,),
    Action.LIST_PORTFOLIOS: (ActionGroup.READ,),
    Action.READ_PORTFOLIO: (ActionGroup.READ, ActionGroup.READ_CATALOG),
    Action.PUBLISH_PRODUCT: (ActionGroup.MANAGE_CATALOG,),
    Action.LIST_PRODUCTS: (ActionGroup.READ,),
    Action.READ_PRODUCT: (ActionGroup.READ, ActionGroup.READ_CATALOG),
    Action.LIST_PRODUCT_VERSIONS: (ActionGroup.READ, ActionGroup.READ_CATALOG),
    Action.READ_PRODUCT_VERSION: (ActionGroup.READ, ActionGroup.READ_CATALOG),
    Action.READ_PRODUCT_FILE: (ActionGroup.READ, ActionGroup.READ_CATALOG),
    Action.SHARE_PORTFOLIO: (ActionGroup.MANAGE_CATALOG,),
    Action.UNSHARE_PORTFOLIO: (ActionGroup.MANAGE_CATALOG,),
    Action.GRANT_PORTFOLIO: (ActionGroup.MANAGE_CATALOG,),
    Action.REVOKE_PORTFOLIO_GRANT: (ActionGroup.MANAGE_CATALOG,),
    Action.LIST_IMPORTED: (ActionGroup.READ,),
}


@dataclass(frozen=True, slots=True)
class Resource:
    """What a request touches: its CRN, its entity type and the attributes policies may test."""

    crn: CRN
    entity_type: str
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def account(self) -> str:
        return self.crn.account


@dataclass(frozen=True, slots=True)
class AuthzRequest:
    principal: str
    principal_kind: str
    roles: frozenset[str]
    action: Action
    resource: Resource
    context: dict[str, Any] = field(default_factory=dict)
    org_roles: frozenset[str] = frozenset()
    """Roles held organization-wide (org-admin in the management account): parents of the principal
    for every resource, but not roles *in* the resource's account (so they assume nothing there)."""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    policies: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def deciding_policy(self) -> str:
        """The policy to name in a denial: the forbid that matched, or the default deny."""
        return ", ".join(self.policies) if self.policies else "default-deny"

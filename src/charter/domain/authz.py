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
    READ_CARDS = "cards:Read"
    WRITE_CARDS = "cards:Write"
    REVIEW_CARDS = "cards:Review"
    MANAGE_EVENTS = "events:Manage"
    READ_DATA_CATALOG = "data:ReadCatalog"
    WRITE_DATA = "data:Write"
    REQUEST_DATA = "data:Request"
    DECIDE_SUBSCRIPTIONS = "data:Decide"
    READ_DATA = "data:ReadData"
    MANAGE_CATALOG = "catalog:Manage"
    READ_CATALOG = "catalog:Read"
    REQUEST_ACCOUNT = "org:Request"
    LAUNCH_PRODUCTS = "catalog:Launch"
    WRITE_PIPELINES = "pipelines:Write"
    MANAGE_ENDPOINTS = "endpoints:Manage"
    INVOKE_ENDPOINTS = "endpoints:Invoke"
    READ_METRICS = "endpoints:Metrics"
    START_DEPLOYMENTS = "deployments:Start"
    DECIDE_DEPLOYMENTS = "deployments:Decide"
    OPERATE_DEPLOYMENTS = "deployments:Operate"


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
    PUT_GROUP_POLICY = "registry:PutModelPackageGroupPolicy"
    UPLOAD_ARTIFACT = "registry:UploadArtifact"
    READ_ARTIFACT = "registry:GetArtifact"
    REGISTER_PACKAGE = "registry:RegisterModelPackage"
    LIST_PACKAGES = "registry:ListModelPackages"
    READ_PACKAGE = "registry:DescribeModelPackage"
    APPROVE_PACKAGE = "registry:ApproveModelPackage"
    REJECT_PACKAGE = "registry:RejectModelPackage"
    PROMOTE_PACKAGE = "registry:PromoteModelPackage"
    DESCRIBE_CARD = "cards:DescribeModelCard"
    LIST_CARDS = "cards:ListModelCards"
    EDIT_CARD = "cards:EditModelCard"
    SUBMIT_CARD = "cards:SubmitModelCard"
    APPROVE_CARD = "cards:ApproveModelCard"
    REJECT_CARD = "cards:RejectModelCard"
    ARCHIVE_CARD = "cards:ArchiveModelCard"
    LIST_EVENT_RULES = "events:ListRules"
    LIST_DELIVERIES = "events:ListDeliveries"
    REPLAY_DELIVERY = "events:ReplayDelivery"
    REGISTER_DATASET = "data:RegisterDataset"
    LIST_DATASETS = "data:ListDatasets"
    READ_DATASET = "data:DescribeDataset"
    LIST_DATASET_VERSIONS = "data:ListDatasetVersions"
    READ_DATASET_VERSION = "data:DescribeDatasetVersion"
    SUBSCRIBE = "data:Subscribe"
    LIST_SUBSCRIPTIONS = "data:ListSubscriptions"
    READ_SUBSCRIPTION = "data:DescribeSubscription"
    APPROVE_SUBSCRIPTION = "data:ApproveSubscription"
    REJECT_SUBSCRIPTION = "data:RejectSubscription"
    REVOKE_SUBSCRIPTION = "data:RevokeSubscription"
    READ_DATASET_DATA = "data:ReadDataset"
    LIST_DATASET_READS = "data:ListDatasetReads"
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
    REQUEST_ACCOUNT = "org:RequestAccount"
    LIST_ACCOUNT_REQUESTS = "org:ListAccountRequests"
    READ_ACCOUNT_REQUEST = "org:DescribeAccountRequest"
    APPROVE_ACCOUNT_REQUEST = "org:ApproveAccountRequest"
    REJECT_ACCOUNT_REQUEST = "org:RejectAccountRequest"
    LAUNCH_PRODUCT = "catalog:LaunchProduct"
    LIST_PROJECTS = "catalog:ListProjects"
    READ_PROJECT = "catalog:DescribeProject"
    UPDATE_PROJECT = "catalog:UpdateProject"
    TERMINATE_PROJECT = "catalog:TerminateProject"
    LIST_WORKSPACES = "catalog:ListWorkspaces"
    READ_WORKSPACE = "catalog:DescribeWorkspace"
    TERMINATE_WORKSPACE = "catalog:TerminateWorkspace"
    CREATE_PIPELINE = "pipelines:CreatePipeline"
    LIST_PIPELINES = "pipelines:ListPipelines"
    READ_PIPELINE = "pipelines:DescribePipeline"
    START_PIPELINE_RUN = "pipelines:StartPipelineRun"
    CANCEL_PIPELINE_RUN = "pipelines:CancelPipelineRun"
    LIST_PIPELINE_RUNS = "pipelines:ListPipelineRuns"
    READ_PIPELINE_RUN = "pipelines:DescribePipelineRun"
    READ_PIPELINE_LOGS = "pipelines:GetStepLog"
    DEPLOY_ENDPOINT = "endpoints:DeployEndpoint"
    ROLLBACK_ENDPOINT = "endpoints:RollbackEndpoint"
    DELETE_ENDPOINT = "endpoints:DeleteEndpoint"
    LIST_ENDPOINTS = "endpoints:ListEndpoints"
    READ_ENDPOINT = "endpoints:DescribeEndpoint"
    LIST_ENDPOINT_CAPTURES = "endpoints:ListCaptures"
    INVOKE_ENDPOINT = "endpoints:InvokeEndpoint"
    READ_METRICS = "endpoints:ReadMetrics"
    CREATE_DEPLOYMENT_PIPELINE = "deployments:CreateDeploymentPipeline"
    LIST_DEPLOYMENT_PIPELINES = "deployments:ListDeploymentPipelines"
    READ_DEPLOYMENT_PIPELINE = "deployments:DescribeDeploymentPipeline"
    START_DEPLOYMENT = "deployments:StartExecution"
    LIST_DEPLOYMENT_EXECUTIONS = "deployments:ListExecutions"
    READ_DEPLOYMENT_EXECUTION = "deployments:DescribeExecution"
    APPROVE_DEPLOYMENT = "deployments:ApproveProduction"
    REJECT_DEPLOYMENT = "deployments:RejectProduction"
    RETRY_DEPLOYMENT = "deployments:RetryExecution"
    ROLLBACK_DEPLOYMENT = "deployments:RollbackProduction"

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
    Action.PUT_GROUP_POLICY: (ActionGroup.WRITE_REGISTRY,),
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
    Action.DESCRIBE_CARD: (ActionGroup.READ, ActionGroup.READ_CARDS),
    Action.LIST_CARDS: (ActionGroup.READ, ActionGroup.READ_CARDS),
    Action.EDIT_CARD: (ActionGroup.WRITE_CARDS,),
    Action.SUBMIT_CARD: (ActionGroup.WRITE_CARDS,),
    Action.APPROVE_CARD: (ActionGroup.REVIEW_CARDS,),
    Action.REJECT_CARD: (ActionGroup.REVIEW_CARDS,),
    Action.ARCHIVE_CARD: (ActionGroup.REVIEW_CARDS,),
    Action.LIST_EVENT_RULES: (ActionGroup.READ,),
    Action.LIST_DELIVERIES: (ActionGroup.READ,),
    Action.REPLAY_DELIVERY: (ActionGroup.MANAGE_EVENTS,),
    # The catalogue (metadata) is published to the whole organization; the bytes are not (READ_DATA).
    Action.REGISTER_DATASET: (ActionGroup.WRITE_DATA,),
    Action.LIST_DATASETS: (ActionGroup.READ, ActionGroup.READ_DATA_CATALOG),
    Action.READ_DATASET: (ActionGroup.READ, ActionGroup.READ_DATA_CATALOG),
    Action.LIST_DATASET_VERSIONS: (ActionGroup.READ, ActionGroup.READ_DATA_CATALOG),
    Action.READ_DATASET_VERSION: (ActionGroup.READ, ActionGroup.READ_DATA_CATALOG),
    Action.SUBSCRIBE: (ActionGroup.REQUEST_DATA,),
    Action.LIST_SUBSCRIPTIONS: (ActionGroup.READ,),
    Action.READ_SUBSCRIPTION: (ActionGroup.READ,),
    Action.APPROVE_SUBSCRIPTION: (ActionGroup.DECIDE_SUBSCRIPTIONS,),
    Action.REJECT_SUBSCRIPTION: (ActionGroup.DECIDE_SUBSCRIPTIONS,),
    Action.REVOKE_SUBSCRIPTION: (ActionGroup.DECIDE_SUBSCRIPTIONS,),
    Action.READ_DATASET_DATA: (ActionGroup.READ_DATA,),
    Action.LIST_DATASET_READS: (ActionGroup.READ,),
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
    Action.REQUEST_ACCOUNT: (ActionGroup.REQUEST_ACCOUNT,),
    Action.LIST_ACCOUNT_REQUESTS: (ActionGroup.READ_DIRECTORY,),
    Action.READ_ACCOUNT_REQUEST: (ActionGroup.READ_DIRECTORY,),
    Action.APPROVE_ACCOUNT_REQUEST: (ActionGroup.MANAGE_ORG,),
    Action.REJECT_ACCOUNT_REQUEST: (ActionGroup.MANAGE_ORG,),
    Action.LAUNCH_PRODUCT: (ActionGroup.LAUNCH_PRODUCTS,),
    Action.LIST_PROJECTS: (ActionGroup.READ,),
    Action.READ_PROJECT: (ActionGroup.READ,),
    Action.UPDATE_PROJECT: (ActionGroup.LAUNCH_PRODUCTS,),
    Action.TERMINATE_PROJECT: (ActionGroup.LAUNCH_PRODUCTS,),
    Action.LIST_WORKSPACES: (ActionGroup.READ,),
    Action.READ_WORKSPACE: (ActionGroup.READ,),
    Action.TERMINATE_WORKSPACE: (ActionGroup.LAUNCH_PRODUCTS,),
    Action.CREATE_PIPELINE: (ActionGroup.WRITE_PIPELINES,),
    Action.LIST_PIPELINES: (ActionGroup.READ,),
    Action.READ_PIPELINE: (ActionGroup.READ,),
    Action.START_PIPELINE_RUN: (ActionGroup.WRITE_PIPELINES,),
    Action.CANCEL_PIPELINE_RUN: (ActionGroup.WRITE_PIPELINES,),
    Action.LIST_PIPELINE_RUNS: (ActionGroup.READ,),
    Action.READ_PIPELINE_RUN: (ActionGroup.READ,),
    Action.READ_PIPELINE_LOGS: (ActionGroup.READ,),
    Action.DEPLOY_ENDPOINT: (ActionGroup.MANAGE_ENDPOINTS,),
    Action.ROLLBACK_ENDPOINT: (ActionGroup.MANAGE_ENDPOINTS,),
    Action.DELETE_ENDPOINT: (ActionGroup.MANAGE_ENDPOINTS,),
    Action.LIST_ENDPOINTS: (ActionGroup.READ,),
    Action.READ_ENDPOINT: (ActionGroup.READ,),
    Action.LIST_ENDPOINT_CAPTURES: (ActionGroup.READ,),
    Action.INVOKE_ENDPOINT: (ActionGroup.INVOKE_ENDPOINTS,),
    Action.READ_METRICS: (ActionGroup.READ_METRICS,),
    # A deployment pipeline is created by launching its project (the launcher's permission).
    Action.CREATE_DEPLOYMENT_PIPELINE: (ActionGroup.LAUNCH_PRODUCTS,),
    Action.LIST_DEPLOYMENT_PIPELINES: (ActionGroup.READ,),
    Action.READ_DEPLOYMENT_PIPELINE: (ActionGroup.READ,),
    Action.START_DEPLOYMENT: (ActionGroup.START_DEPLOYMENTS,),
    Action.LIST_DEPLOYMENT_EXECUTIONS: (ActionGroup.READ,),
    Action.READ_DEPLOYMENT_EXECUTION: (ActionGroup.READ,),
    Action.APPROVE_DEPLOYMENT: (ActionGroup.DECIDE_DEPLOYMENTS,),
    Action.REJECT_DEPLOYMENT: (ActionGroup.DECIDE_DEPLOYMENTS,),
    Action.RETRY_DEPLOYMENT: (ActionGroup.OPERATE_DEPLOYMENTS,),
    Action.ROLLBACK_DEPLOYMENT: (ActionGroup.OPERATE_DEPLOYMENTS,),
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

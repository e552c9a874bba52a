"""The REST contract: request and response bodies, shared by the API (which emits them) and the
SDK (which parses them). Responses ignore unknown fields so older clients keep working."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(Model, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(None, description="Pass as `cursor` to get the next page; null on the last.")


class ErrorDetail(Model):
    type: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(Model):
    error: ErrorDetail


class OrgUnitOut(Model):
    name: str
    parent: str | None
    description: str
    crn: str


class AccountOut(Model):
    name: str
    kind: str
    stage: str | None
    ou: str | None
    description: str
    crn: str


class PrincipalOut(Model):
    name: str
    kind: str
    display_name: str
    email: str
    crn: str


class PrincipalDetail(PrincipalOut):
    bindings: dict[str, list[str]] = Field(description="Roles held, by account.")


class RoleBindingOut(Model):
    principal: str
    account: str
    role: str
    crn: str


class RoleOut(Model):
    name: str
    description: str
    builtin: bool


class PolicyOut(Model):
    id: str
    description: str
    text: str
    source: Literal["default", "organization"]


class PoliciesOut(Model):
    policies: list[PolicyOut]
    roles: list[RoleOut]


class OrganizationOut(Model):
    name: str
    crn: str
    created_at: datetime
    policy_revision: int
    units: list[OrgUnitOut]
    accounts: list[AccountOut]


class ApplyRequest(Request):
    document: str = Field(max_length=1024 * 1024, description="The charter.yaml text.")
    filename: str = Field("charter.yaml", max_length=255, description="Named in error messages.")
    plan: bool = Field(False, description="Only compute the changes; apply nothing.")


class ChangeOut(Model):
    kind: str
    action: Literal["create", "update", "delete"]
    name: str
    summary: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class ApplyOut(Model):
    applied: bool
    changes: list[ChangeOut]


class TokenCreate(Request):
    principal: str = Field(max_length=63)
    expires_in_seconds: int | None = Field(None, ge=1, le=10 * 365 * 86400)
    description: str = Field("", max_length=500)


class TokenOut(Model):
    id: str
    principal: str
    description: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    state: Literal["active", "expired", "revoked"]
    crn: str


class TokenIssued(Model):
    token: TokenOut
    secret: str = Field(description="The bearer token. Shown once; only its hash is kept.")


class SessionCreate(Request):
    account: str = Field(max_length=63)
    role: str = Field(max_length=63)
    duration_seconds: int | None = Field(None, ge=1, le=7 * 86400)


class SessionOut(Model):
    id: str
    principal: str
    account: str
    role: str
    created_at: datetime
    expires_at: datetime
    crn: str


class SessionIssued(Model):
    session: SessionOut
    secret: str = Field(description="The session's bearer token, scoped to one account and role.")


class WhoAmIOut(Model):
    principal: PrincipalOut
    via: str
    session: SessionOut | None
    bindings: dict[str, list[str]]


class AuditRecordOut(Model):
    seq: int
    id: str
    time: datetime
    actor: str | None
    via: str | None
    account: str
    action: str
    resource: str
    outcome: Literal["allowed", "denied", "failed"]
    policy: str | None
    request_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class VerifyOut(Model):
    ok: bool
    records: int
    checkpoints: int
    first_bad_seq: int | None
    reason: str | None


class Health(Model):
    status: Literal["ok"]
    version: str


class GroupCreate(Request):
    name: str = Field(max_length=63)
    description: str = Field("", max_length=4000)
    tags: dict[str, str] = Field(default_factory=dict)
    readers: list[str] = Field(default_factory=list, max_length=200,
                               description="Accounts, or ou:<unit>, that may read this group.")


class GroupOut(Model):
    account: str
    name: str
    description: str
    tags: dict[str, str]
    readers: list[str]
    crn: str


class BlobOut(Model):
    account: str
    sha256: str
    size: int


class ArtifactIn(Request):
    path: str = Field(max_length=512, description="Where the file sits in the package, e.g. model.skops.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="The digest an upload returned.")


class ArtifactOut(Model):
    path: str
    size: int
    sha256: str


class ColumnIn(Request):
    name: str = Field(max_length=128)
    dtype: str = Field(max_length=64)


class SignatureIn(Request):
    inputs: list[ColumnIn] = Field(max_length=10_000)
    outputs: list[ColumnIn] = Field(default_factory=list, max_length=10_000)


class LineageIn(Request):
    run: str | None = Field(None, max_length=200)
    run_started_by: str | None = Field(None, max_length=63)
    datasets: list[str] = Field(default_factory=list, max_length=200)
    product_version: str | None = Field(None, max_length=200)
    parameters: dict[str, str] = Field(default_factory=dict)


class PackageCreate(Request):
    format: str = Field(max_length=32, description="skops or onnx; pickle-based formats are refused.")
    artifacts: list[ArtifactIn] = Field(min_length=1, max_length=200)
    signature: SignatureIn | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    sample_payload: dict[str, Any] | None = None
    description: str = Field("", max_length=4000)
    tags: dict[str, str] = Field(default_factory=dict)
    lineage: LineageIn = Field(default_factory=LineageIn)


class StatusChangeOut(Model):
    status: str
    previous: str | None
    actor: str
    comment: str
    time: datetime
    digests: list[str]


class LineageOut(Model):
    registered_by: str
    run: str | None
    run_started_by: str | None
    datasets: list[str]
    product_version: str | None
    parameters: dict[str, str]


class PackageOut(Model):
    account: str
    group: str
    version: int
    status: Literal["PendingManualApproval", "Approved", "Rejected"]
    format: str
    artifacts: list[ArtifactOut]
    signature: dict[str, Any] | None
    metrics: dict[str, float]
    sample_payload: dict[str, Any] | None
    description: str
    tags: dict[str, str]
    origin: str | None
    lineage: LineageOut
    history: list[StatusChangeOut]
    created_at: datetime
    crn: str


class DecisionIn(Request):
    comment: str = Field("", max_length=4000)


class CardEdit(Request):
    document: dict[str, Any] = Field(description=(
        "The card's whole editable content, camelCase as in card files: overview, intendedUses, "
        "businessDetails, ethicalConsiderations, caveatsAndRecommendations. Sections left out are empty."))
    summary: str = Field("", max_length=10_000, description="What changed, kept with the version.")
    expected_version: int | None = Field(None, ge=0, description=(
        "The latest version you read (0: no card yet); the edit is refused (409) if the card moved on."))


class CardComment(Request):
    comment: str = Field("", max_length=10_000)


class CardApprove(Request):
    comment: str = Field("", max_length=10_000)
    version: int | None = Field(None, ge=1, description="The version you reviewed; 409 if another is under review.")


class CardVersionOut(Model):
    version: int
    author: str
    time: datetime
    summary: str
    package: str | None


class CardReviewOut(Model):
    status: str
    previous: str
    actor: str
    comment: str
    time: datetime
    version: int


class ModelCardOut(Model):
    account: str
    group: str
    crn: str
    status: Literal["Draft", "PendingReview", "Approved", "Archived"]
    approved_version: int | None
    latest_version: int
    version: int = Field(description="The version shown: the latest unless another was asked for.")
    version_status: str = Field(description="The shown version's own status; Superseded for an old draft.")
    version_crn: str
    author: str
    time: datetime
    summary: str
    package: str | None = Field(description="The model package the shown version documents.")
    document: dict[str, Any] = Field(description="The shown version's editable content (camelCase).")
    training: dict[str, Any] | None = Field(description="Filled from the documented package's lineage.")
    evaluation: dict[str, Any] | None = Field(description="The documented package's metrics and digests.")
    versions: list[CardVersionOut]
    history: list[CardReviewOut]


# --- events ---------------------------------------------------------------------------------

class EventTargetOut(Model):
    kind: str = Field(description="handler, bus, webhook, deployment or pipeline.")
    value: str = Field(description="The handler's name, the target account, the webhook URL, or the deployment "
                                   "pipeline or pipeline of the rule's account.")
    run_as: str | None = Field(None, description="The service principal a handler acts as.")


class EventRuleOut(Model):
    account: str
    name: str
    description: str
    enabled: bool
    pattern: dict[str, Any]
    targets: list[EventTargetOut]
    crn: str


class DeliveryOut(Model):
    id: str
    bus: str = Field(description="The account whose rule matched the event.")
    rule: str
    target: EventTargetOut
    status: str = Field(description="pending, delivering, succeeded or dead (the dead-letter queue).")
    attempts: int
    created_at: datetime
    updated_at: datetime | None
    next_attempt_at: datetime
    last_error: str | None
    event: dict[str, Any] = Field(description="The CloudEvent delivered.")
    crn: str


class EventRuleList(Model):
    items: list[EventRuleOut]


# --- governed data ------------------------------------------------------------------------

class ColumnOut(Model):
    name: str
    dtype: str


class DatasetVersionOut(Model):
    account: str
    dataset: str
    version: int
    format: Literal["csv", "parquet"]
    sha256: str
    size: int
    columns: list[ColumnOut]
    rows: int
    registered_by: str
    created_at: datetime
    crn: str


class DatasetOut(Model):
    account: str
    name: str
    description: str
    owner: str
    tags: dict[str, str]
    created_at: datetime
    crn: str
    latest: DatasetVersionOut | None = None


class SubscriptionCreate(Request):
    subscriber: str = Field(max_length=63, description="The account that will read the data.")
    reason: str = Field(min_length=1, max_length=2000, description="What the data is for.")
    project: str | None = Field(None, max_length=63, description="Limit the grant to one project.")


class SubscriptionDecisionIn(Request):
    comment: str = Field("", max_length=4000)
    expires_in_seconds: int | None = Field(None, ge=1, description="Approvals only: the grant's lifetime.")


class SubscriptionChangeOut(Model):
    status: str
    previous: str | None
    actor: str
    comment: str
    time: datetime


class GrantOut(Model):
    account: str
    project: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    active: bool


class SubscriptionOut(Model):
    id: str
    account: str
    dataset: str
    dataset_crn: str
    subscriber: str
    project: str | None
    requested_by: str
    reason: str
    status: Literal["Pending", "Approved", "Rejected", "Revoked"]
    decided_by: str | None
    decided_at: datetime | None
    comment: str
    expires_at: datetime | None
    revoked_by: str | None
    revoked_at: datetime | None
    created_at: datetime
    grant: GrantOut | None
    history: list[SubscriptionChangeOut]
    crn: str


class DatasetReadOut(Model):
    id: str
    account: str
    dataset: str
    version: int
    version_crn: str
    reader: str
    for_account: str
    project: str | None
    run: str | None
    subscription: str | None
    time: datetime


# --- catalog ------------------------------------------------------------------------------

class PortfolioCreate(Request):
    name: str = Field(max_length=63)
    description: str = Field("", max_length=4000)
    provider: str = Field("", max_length=200, description="Who maintains the portfolio.")


class PortfolioOut(Model):
    account: str
    name: str
    description: str
    provider: str
    crn: str


class ShareIn(Request):
    target: str = Field(max_length=66, description="ou:<unit> (the accounts in it and below it) or an account.")


class ShareOut(Model):
    account: str
    portfolio: str
    target: str


class GrantIn(Request):
    pattern: str = Field(max_length=63, description="A role name or an fnmatch pattern, e.g. *-data-scientist.")


class PortfolioGrantOut(Model):
    account: str
    portfolio: str
    pattern: str


class PortfolioDetail(PortfolioOut):
    shares: list[ShareOut]
    grants: list[PortfolioGrantOut]


class ProductOut(Model):
    account: str
    portfolio: str
    name: str
    kind: Literal["project", "workspace"]
    description: str
    latest_version: int
    crn: str


class ProductFileOut(Model):
    path: str
    size: int
    sha256: str


class SourceOut(Model):
    kind: Literal["directory", "git"]
    repository: str | None
    ref: str | None
    commit: str | None
    path: str | None


class ProductVersionOut(Model):
    account: str
    portfolio: str
    product: str
    version: int
    kind: Literal["project", "workspace"]
    description: str
    parameters: dict[str, Any] = Field(description="The JSON Schema (Draft 2020-12) of the launch parameters.")
    provisions: dict[str, Any]
    files: list[ProductFileOut]
    content_digest: str
    source: SourceOut
    published_by: str
    published_at: datetime
    crn: str


class ImportedPortfolioOut(Model):
    portfolio: PortfolioOut
    grants: list[str]
    launchable: list[ProductOut] = Field(description="The products the caller's roles here may launch.")


class ImportedOut(Model):
    account: str
    roles: list[str]
    portfolios: list[ImportedPortfolioOut]


# --- account vending ---------------------------------------------------------------------------

class AccountRequestIn(Request):
    account: str = Field(max_length=63, description="The new account's name.")
    ou: str = Field(max_length=63, description="The organizational unit it joins.")
    kind: str = Field("workload", max_length=32, description="workload, shared-services or data-governance.")
    stage: str | None = Field(None, max_length=16, description="dev, test or prod (workload accounts).")
    blueprint: str = Field(max_length=63, description="The blueprint (charter.yaml) giving its baseline.")
    reason: str = Field(max_length=2000, description="What the account is for.")


class AccountRequestDecision(Request):
    comment: str = Field("", max_length=4000, description="Required to reject.")


class AccountRequestOut(Model):
    id: str
    account: str
    ou: str
    kind: str
    stage: str | None
    blueprint: str
    reason: str
    requested_by: str
    created_at: datetime
    status: Literal["Pending", "Approved", "Rejected"]
    decided_by: str | None
    decided_at: datetime | None
    comment: str
    crn: str


# --- projects and workspaces ------------------------------------------------------------------

class ProjectCreate(Request):
    name: str = Field(max_length=63)
    product: str = Field(max_length=63, description="A product shared with the account and granted to your role.")
    version: int | None = Field(None, ge=1, description="The product version; the latest when omitted.")
    workspace: str | None = Field(None, max_length=63)
    parameters: dict[str, Any] = Field(default_factory=dict, description=(
        "Launch parameters. Text is read as JSON where the version's schema wants a number, boolean, "
        "array or object, so `--param threshold=0.8` and `{\"threshold\": 0.8}` are the same."))


class ProjectUpdateIn(Request):
    version: int | None = Field(None, ge=1, description="The version to move to; the latest when omitted.")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Overrides of the project's parameters.")


class ProvisionedResourceOut(Model):
    kind: Literal["model-package-group", "event-rule", "pipeline", "deployment-pipeline"]
    crn: str
    name: str
    details: dict[str, Any]


class ProjectUpdateOut(Model):
    at: datetime
    by: str
    from_version: int
    to_version: int
    parameters: dict[str, Any]
    added: list[str]
    changed: list[str]
    removed: list[str]
    kept: list[str]
    notes: list[str]


class ProjectOut(Model):
    account: str
    name: str
    crn: str
    product_account: str
    product: str
    version: int
    product_crn: str
    parameters: dict[str, Any]
    workspace: str | None
    launched_by: str
    status: Literal["Active", "Terminated"]
    resources: list[ProvisionedResourceOut]
    history: list[ProjectUpdateOut]
    created_at: datetime
    updated_at: datetime
    notes: list[str] = Field(default_factory=list, description="What the command kept rather than did (groups).")


class WorkspaceCreate(Request):
    name: str = Field(max_length=63)
    product: str = Field(max_length=63)
    version: int | None = Field(None, ge=1)
    parameters: dict[str, Any] = Field(default_factory=dict)


class WorkspaceMemberOut(Model):
    principal: str
    role: str
    bound: bool = Field(description="False when no such person exists (service principals are not bound) or it held the role already.")


class WorkspaceOut(Model):
    account: str
    name: str
    crn: str
    team: str
    product_account: str
    product: str
    version: int
    product_crn: str
    parameters: dict[str, Any]
    members: list[WorkspaceMemberOut]
    cost_centre: str
    business_unit: str
    environment: str
    tags: dict[str, str]
    data_access: list[str]
    launched_by: str
    status: Literal["Active", "Terminated"]
    created_at: datetime
    updated_at: datetime


# --- pipelines ------------------------------------------------------------------------------

class PipelineOut(Model):
    account: str
    name: str
    version: int
    digest: str = Field(description="SHA-256 of the definition's text.")
    code_sha256: str = Field(description="Digest of the code manifest (each file content-addressed).")
    definition: str
    defaults: dict[str, str] = Field(default_factory=dict, description=(
        "Parameter values it was created with (a project's launch), used by runs that do not set them."))
    created_by: str
    created_at: datetime
    crn: str


class PipelineRunStart(Request):
    parameters: dict[str, str] = Field(default_factory=dict, description="Overrides of the pipeline's parameters.")


class StepStateOut(Model):
    name: str
    kind: str
    upstream: list[str] = Field(description="The steps this one waits for.")
    status: Literal["Pending", "Running", "Succeeded", "Failed", "Cancelled", "Skipped"]
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    outputs: dict[str, str] = Field(description="Output name -> SHA-256 in the account's artifact store.")
    metrics: dict[str, Any]
    cached: bool
    error: str | None


class PipelineRunOut(Model):
    id: str
    account: str
    pipeline: str
    digest: str
    code_sha256: str
    parameters: dict[str, str]
    started_by: str
    status: Literal["Pending", "Running", "Succeeded", "Failed", "Cancelled", "SucceededNotRegistered"]
    reason: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool
    layers: list[list[str]] = Field(description="The steps in layers: each depends only on earlier ones.")
    steps: list[StepStateOut]
    crn: str


# --- endpoints ------------------------------------------------------------------------------

class VariantIn(Request):
    package: str = Field(description="Model package CRN, e.g. crn:charter:ml-shared-services:registry:"
                         "model-package/churn-ml-dev/1 (another account's, read under its group's policy).")
    weight: float = Field(1.0, gt=0, description="Share of the traffic, relative to the other variants.")
    name: str | None = Field(None, max_length=63, description="Default: <group>-v<version>.")


class EndpointDeploy(Request):
    variants: list[VariantIn] = Field(min_length=1, max_length=10)
    replicas: int = Field(1, ge=1, le=16, description="Worker processes per variant.")
    capture_percent: float = Field(0.0, ge=0, le=100, description="Data capture: the share of "
                                   "requests whose request and response are kept.")
    reason: str = Field("", max_length=2000)


class EndpointChange(Request):
    reason: str = Field("", max_length=2000)


class VariantOut(Model):
    name: str
    package: str
    weight: float
    format: str
    model_sha256: str
    inputs: list[ColumnOut] | None = None


class RevisionOut(Model):
    revision: int
    status: Literal["Updating", "InService", "Failed", "Superseded"]
    status_reason: str | None = None
    variants: list[VariantOut]
    replicas: int
    capture_percent: float
    created_by: str
    created_at: datetime
    reason: str
    finished_at: datetime | None = None
    rollback_of: int | None = None


class WorkerOut(Model):
    revision: int
    variant: str
    pid: int | None
    state: Literal["starting", "ready", "down"]
    serving: bool
    restarts: int


class EndpointOut(Model):
    account: str
    name: str
    crn: str
    status: Literal["Creating", "InService", "Updating", "Failed"]
    serving_revision: int | None
    latest_revision: int
    created_by: str
    created_at: datetime
    revisions: list[RevisionOut] = Field(description="Every configuration revision, oldest first.")
    workers: list[WorkerOut] = Field(default_factory=list, description="This server's worker processes.")


class CaptureOut(Model):
    sha256: str = Field(description="The batch's digest in the endpoint account's artifact store.")
    records: int
    size: int
    created_at: datetime


class InvocationOut(Model):
    predictions: list[Any]
    endpoint: str
    revision: int
    variant: str
    package: str


# --- deployments -----------------------------------------------------------------------------

class DeploymentPipelineOut(Model):
    account: str
    name: str
    crn: str
    project: str
    model_group: str = Field(description="The central model package group whose decisions start executions.")
    test_account: str
    prod_account: str
    endpoint: str = Field(description="The endpoint's name in the test and production accounts.")
    run_as: str = Field(description="The service principal every stage acts as.")
    integration_tests: dict[str, Any]
    approval: dict[str, Any]
    enabled: bool
    created_by: str
    created_at: datetime


class DeploymentStageOut(Model):
    name: Literal["deploy-test", "integration-tests", "approve-prod", "deploy-prod", "smoke-prod"]
    status: Literal["Pending", "InProgress", "AwaitingApproval", "Succeeded", "Failed", "Skipped"]
    started_at: datetime | None
    finished_at: datetime | None
    reason: str | None
    details: dict[str, Any] = Field(description="What the stage did: revisions, test checks and figures, approvals.")


class DeploymentApprovalOut(Model):
    principal: str
    decision: Literal["Approved", "Rejected"]
    comment: str
    at: datetime
    via: str | None


class DeploymentExecutionOut(Model):
    id: str
    account: str
    pipeline: str
    crn: str
    trigger: Literal["Approved", "Rejected"]
    event_id: str
    package: str = Field(description="The CRN of the central package deployed.")
    central_approver: str | None
    status: Literal["Pending", "InProgress", "AwaitingApproval", "RollingBack", "Succeeded", "Failed",
                    "Superseded", "RolledBack"]
    reason: str
    current_stage: str | None = Field(description="Where the execution stands (or stopped); null once all succeeded.")
    stages: list[DeploymentStageOut]
    approvals: list[DeploymentApprovalOut]
    approval_expires_at: datetime | None
    rollbacks: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


class DeploymentDecision(Request):
    comment: str = Field(max_length=2000, description="Required: what was checked.")
    execution: str | None = Field(None, max_length=64, description="The execution (default: the latest).")


class DeploymentAction(Request):
    execution: str | None = Field(None, max_length=64, description="The execution (default: the latest).")


class DeploymentRollback(Request):
    reason: str = Field(max_length=2000, description="Required: why production goes back.")
    execution: str | None = Field(None, max_length=64, description="The execution (default: the latest).")

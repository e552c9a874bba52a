"""Messages the service layer handles. Commands change state and are audited; queries only read.

Each has exactly one handler; a handler that fails leaves the state as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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
class Transfer(Query):
    """Moves bytes outside the database (an upload into the artifact store): it runs in a read-only
    transaction so no writer waits on it, and what it did — or why it was refused — is audited
    once that transaction has closed."""


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


# --- registry -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CreateModelPackageGroup(Command):
    account: str
    name: str
    description: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    readers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ListModelPackageGroups(Query):
    account: str
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class GetModelPackageGroup(Query):
    account: str
    name: str


@dataclass(frozen=True, slots=True)
class UploadArtifact(Transfer):
    """Stream bytes into an account's artifact store; the server names them by their SHA-256."""

    account: str
    chunks: Iterable[bytes]
    max_bytes: int
    inspect_as: str | None = None
    """A model format to check the file against now, so that registering it later is quick."""


@dataclass(frozen=True, slots=True)
class GetArtifact(Query):
    account: str
    sha256: str


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    path: str
    sha256: str


@dataclass(frozen=True, slots=True)
class RegisterModelPackage(Command):
    account: str
    group: str
    format: str
    artifacts: tuple[ArtifactRef, ...]
    signature: dict[str, Any] | None = None
    metrics: tuple[tuple[str, float], ...] = ()
    sample_payload: dict[str, Any] | None = None
    description: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    run: str | None = None
    run_started_by: str | None = None
    datasets: tuple[str, ...] = ()
    product_version: str | None = None
    parameters: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ListModelPackages(Query):
    account: str
    group: str
    status: str | None = None
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class GetModelPackage(Query):
    account: str
    group: str
    version: int


@dataclass(frozen=True, slots=True)
class GetLatestModelPackage(Query):
    """The newest version of a group in a status (by default the latest approved one)."""

    account: str
    group: str
    status: str = "Approved"


@dataclass(frozen=True, slots=True)
class DecideModelPackage(Command):
    account: str
    group: str
    version: int
    status: str
    comment: str = ""


# --- promotion ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CopyPackageArtifacts(Transfer):
    """Copy an approved source package's artifacts into another account's store, each verified by
    its digest on arrival. Runs outside any write transaction: a large model never stalls writers."""

    source: str
    """The source package's CRN."""
    account: str
    """The account receiving the copies (the central registry's)."""


@dataclass(frozen=True, slots=True)
class PromoteModelPackage(Command):
    """Register an approved source package in ``account``'s registry, once: the central group
    ``<group>-<source account>`` is created if missing and the model card records the package."""

    source: str
    account: str
    digests: tuple[str, ...] = ()
    """The digests the source approval was made on (from its event); empty to take the current."""
    event_id: str | None = None


# --- model cards --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class GetModelCard(Query):
    account: str
    group: str
    version: int | None = None
    """A version to show; the latest when None."""


@dataclass(frozen=True, slots=True)
class ListModelCards(Query):
    account: str
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class EditModelCard(Command):
    """Write a new version of a group's card from a document (the card's whole editable content,
    camelCase as in card files); the first edit of a group creates its card."""

    account: str
    group: str
    document: Any
    summary: str = ""
    expected_version: int | None = None
    """The latest version the editor read (0: the card should not exist yet); Conflict otherwise."""


@dataclass(frozen=True, slots=True)
class SubmitModelCard(Command):
    account: str
    group: str
    comment: str = ""


@dataclass(frozen=True, slots=True)
class ApproveModelCard(Command):
    account: str
    group: str
    comment: str = ""
    version: int | None = None
    """The version the approver read; Conflict if the card is reviewing another."""


@dataclass(frozen=True, slots=True)
class RejectModelCard(Command):
    account: str
    group: str
    comment: str


@dataclass(frozen=True, slots=True)
class ArchiveModelCard(Command):
    account: str
    group: str
    comment: str = ""


@dataclass(frozen=True, slots=True)
class ExportModelCard(Query):
    account: str
    group: str
    format: str = "markdown"
    """markdown, html or json."""
    version: int | None = None


# --- events -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ListEventRules(Query):
    account: str


@dataclass(frozen=True, slots=True)
class ListDeliveries(Query):
    """The deliveries of the rules on an account's bus; ``status`` "dead" is the dead-letter queue."""

    account: str
    status: str | None = None
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class ReplayDelivery(Command):
    """Send a dead delivery again: back to pending, attempts counted from zero."""

    account: str
    delivery_id: str


# --- governed data ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class UploadDataset(Transfer):
    """Stream a dataset file into its (data-governance) account's artifact store, profiling it
    first — outside any write transaction — so registering the version afterwards is quick. A file
    that does not profile (ragged CSV, not Parquet …) is refused before anything is stored."""

    account: str
    name: str
    format: str
    chunks: Iterable[bytes]
    max_bytes: int


@dataclass(frozen=True, slots=True)
class RegisterDatasetVersion(Command):
    """Register a stored, profiled file as the dataset's next version; the first one creates the
    dataset, owned by the caller."""

    account: str
    name: str
    format: str
    sha256: str
    description: str = ""
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ListDatasets(Query):
    account: str
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class GetDataset(Query):
    account: str
    name: str


@dataclass(frozen=True, slots=True)
class ListDatasetVersions(Query):
    account: str
    name: str
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class GetDatasetVersion(Query):
    account: str
    name: str
    version: int | None = None
    """None for the latest."""


@dataclass(frozen=True, slots=True)
class Subscribe(Command):
    account: str
    """The dataset's account."""
    dataset: str
    subscriber: str
    """The account that will read the data."""
    reason: str
    project: str | None = None


@dataclass(frozen=True, slots=True)
class ListSubscriptions(Query):
    """For a dataset-owning account, every subscription to its datasets; for any other account,
    its own requests."""

    account: str
    status: str | None = None
    dataset: str | None = None
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class GetSubscription(Query):
    account: str
    subscription_id: str


@dataclass(frozen=True, slots=True)
class DecideSubscription(Command):
    """Approve, reject or revoke a subscription (``status`` Approved, Rejected or Revoked)."""

    account: str
    subscription_id: str
    status: str
    comment: str = ""
    expires_in_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class ReadDataset(Command):
    """Read one version's bytes for ``for_account`` (and a project of it): a command, because
    every read is recorded as lineage in the same transaction as its audit record."""

    account: str
    dataset: str
    for_account: str
    version: int | None = None
    """None for the latest."""
    run: str | None = None
    project: str | None = None


@dataclass(frozen=True, slots=True)
class ListDatasetReads(Query):
    account: str
    dataset: str
    page: PageRequest = PageRequest()


# --- catalog ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CreatePortfolio(Command):
    account: str
    name: str
    description: str = ""
    provider: str = ""


@dataclass(frozen=True, slots=True)
class ListPortfolios(Query):
    account: str
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class GetPortfolio(Query):
    account: str
    name: str


@dataclass(frozen=True, slots=True)
class UnpackProductArchive(Transfer):
    """Stream a template's tar.gz into the portfolio account's artifact store, one blob per file,
    after checking every member (no links, devices, absolute or escaping paths, duplicates) and the
    product.yaml. Nothing is stored unless the whole archive passes. Registers nothing."""

    account: str
    portfolio: str
    chunks: Iterable[bytes]
    max_bytes: int
    path: str | None = None
    """The folder of the archive that holds the template (``git archive COMMIT SUB``), if any."""


@dataclass(frozen=True, slots=True)
class ProductFileRef:
    path: str
    sha256: str


@dataclass(frozen=True, slots=True)
class PublishProductVersion(Command):
    """Register a new version from files already in the account's store (see UnpackProductArchive)."""

    account: str
    portfolio: str
    files: tuple[ProductFileRef, ...]
    repository: str | None = None
    ref: str | None = None
    commit: str | None = None
    path: str | None = None


@dataclass(frozen=True, slots=True)
class ListProducts(Query):
    account: str
    portfolio: str | None = None
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class GetProduct(Query):
    account: str
    name: str


@dataclass(frozen=True, slots=True)
class ListProductVersions(Query):
    account: str
    product: str
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class GetProductVersion(Query):
    account: str
    product: str
    version: int


@dataclass(frozen=True, slots=True)
class GetProductFile(Query):
    account: str
    product: str
    version: int
    path: str


@dataclass(frozen=True, slots=True)
class SharePortfolio(Command):
    account: str
    portfolio: str
    target: str
    """``ou:<unit>`` (the accounts in it and below it) or an account name."""


@dataclass(frozen=True, slots=True)
class UnsharePortfolio(Command):
    account: str
    portfolio: str
    target: str


@dataclass(frozen=True, slots=True)
class GrantPortfolio(Command):
    account: str
    portfolio: str
    pattern: str
    """A role name or an fnmatch pattern (``*-data-scientist``) of the roles that may launch."""


@dataclass(frozen=True, slots=True)
class RevokePortfolioGrant(Command):
    account: str
    portfolio: str
    pattern: str


@dataclass(frozen=True, slots=True)
class ListImportedPortfolios(Query):
    """The portfolios shared with ``account`` and, per portfolio, what the caller may launch there."""

    account: str


# --- account vending ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RequestAccount(Command):
    account: str
    ou: str
    kind: str
    stage: str | None
    blueprint: str
    reason: str


@dataclass(frozen=True, slots=True)
class ListAccountRequests(Query):
    status: str | None = None
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class GetAccountRequest(Query):
    id: str


@dataclass(frozen=True, slots=True)
class DecideAccountRequest(Command):
    id: str
    approve: bool
    comment: str = ""


# --- projects and workspaces ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CreateProject(Command):
    """Launch a product (kind project) in ``account``: one transaction creates the project and
    everything its version provisions, or nothing."""

    account: str
    name: str
    product: str
    parameters: dict[str, Any]
    """Values by name; text is read as JSON where the schema wants a number, boolean, array or object."""
    version: int | None = None
    """None: the product's latest version."""
    workspace: str | None = None


@dataclass(frozen=True, slots=True)
class ListProjects(Query):
    account: str
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class GetProject(Query):
    account: str
    name: str


@dataclass(frozen=True, slots=True)
class UpdateProject(Command):
    """Move a project to another version of its product; ``parameters`` override the ones it has."""

    account: str
    name: str
    parameters: dict[str, Any]
    version: int | None = None


@dataclass(frozen=True, slots=True)
class TerminateProject(Command):
    account: str
    name: str


@dataclass(frozen=True, slots=True)
class CreateWorkspace(Command):
    account: str
    name: str
    product: str
    parameters: dict[str, Any]
    version: int | None = None


@dataclass(frozen=True, slots=True)
class ListWorkspaces(Query):
    account: str
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class GetWorkspace(Query):
    account: str
    name: str


@dataclass(frozen=True, slots=True)
class TerminateWorkspace(Command):
    account: str
    name: str


# --- pipelines ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CreatePipeline(Command):
    """Create a pipeline, or give an existing one a new definition and code (its next version)."""

    account: str
    name: str
    definition: str
    """The YAML (or JSON) document."""
    files: dict[str, bytes]
    """The template's code, path -> bytes, from an archive already checked."""
    defaults: dict[str, str] = field(default_factory=dict)
    """Parameter values every run gets unless it is started with others (a project's launch)."""


@dataclass(frozen=True, slots=True)
class ListPipelines(Query):
    account: str
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class GetPipeline(Query):
    account: str
    name: str


@dataclass(frozen=True, slots=True)
class StartPipelineRun(Command):
    account: str
    pipeline: str
    parameters: dict[str, str]
    idempotency_key: str | None = None
    """With a key, the same request again (a redelivered event) finds the run it started."""
    requested_at: datetime | None = None
    """When a keyed request was first made (an event's time): the run's id derives from both."""


@dataclass(frozen=True, slots=True)
class CancelPipelineRun(Command):
    account: str
    run_id: str


@dataclass(frozen=True, slots=True)
class ListPipelineRuns(Query):
    account: str
    pipeline: str
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class GetPipelineRun(Query):
    account: str
    run_id: str


@dataclass(frozen=True, slots=True)
class GetStepLog(Query):
    """A step's log: the stored one once the step ended, the live file while it runs."""

    account: str
    run_id: str
    step: str


@dataclass(frozen=True, slots=True)
class CreatePipelineFromArchive(Command):
    """``CreatePipeline`` from a tar.gz of the code with the definition at ``pipeline.yaml``."""

    account: str
    name: str
    chunks: Iterable[bytes]
    max_bytes: int


# --- endpoints ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class VariantSpec:
    package: str
    """A model package CRN, possibly in another account (read under its group's resource policy)."""
    weight: float = 1.0
    name: str | None = None
    """Defaults to ``<group>-v<version>``."""


@dataclass(frozen=True, slots=True)
class DeployEndpoint(Command):
    """Create an endpoint, or give it a new configuration revision rolled out blue/green."""

    account: str
    name: str
    variants: tuple[VariantSpec, ...]
    replicas: int = 1
    capture_percent: float = 0.0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RollbackEndpoint(Command):
    """A new revision with the configuration before the one that serves."""

    account: str
    name: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DeleteEndpoint(Command):
    account: str
    name: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class GetEndpoint(Query):
    account: str
    name: str


@dataclass(frozen=True, slots=True)
class ListEndpoints(Query):
    account: str
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class ListEndpointCaptures(Query):
    account: str
    name: str
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class AuthorizeInvocation(Query):
    """Only the decision that the caller may invoke the endpoint (the hot path reads nothing else)."""

    account: str
    name: str


@dataclass(frozen=True, slots=True)
class ReadMetrics(Query):
    pass


# --- deployments ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ListDeploymentPipelines(Query):
    account: str
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class GetDeploymentPipeline(Query):
    account: str
    name: str


@dataclass(frozen=True, slots=True)
class StartDeploymentExecution(Command):
    """Sent by the dispatcher for a rule's ``deployment:`` target: one execution per event."""

    account: str
    pipeline: str
    event_id: str
    subject: str
    """The CRN of the central package whose state changed."""
    status: str
    """Its new status: Approved deploys it, Rejected deploys the latest approved one again."""


@dataclass(frozen=True, slots=True)
class ListDeploymentExecutions(Query):
    account: str
    pipeline: str
    page: PageRequest = PageRequest()


@dataclass(frozen=True, slots=True)
class GetDeploymentExecution(Query):
    """One execution of a pipeline; the latest when ``execution`` is None."""

    account: str
    pipeline: str
    execution: str | None = None


@dataclass(frozen=True, slots=True)
class DecideDeployment(Command):
    """Approve or reject the production stage of an execution (the latest when None)."""

    account: str
    pipeline: str
    decision: str
    comment: str
    execution: str | None = None


@dataclass(frozen=True, slots=True)
class RetryDeployment(Command):
    account: str
    pipeline: str
    execution: str | None = None


@dataclass(frozen=True, slots=True)
class RollbackDeployment(Command):
    account: str
    pipeline: str
    reason: str
    execution: str | None = None


# --- abilities (what a user interface may offer) ----------------------------------------------

@dataclass(frozen=True, slots=True)
class Ability:
    """An action on one resource, named as a route names it: ``action`` is an ``Action`` value,
    ``account`` and ``name`` locate the resource, ``key`` is its version or id where it has one."""

    action: str
    account: str = ""
    name: str = ""
    key: str = ""


@dataclass(frozen=True, slots=True)
class CheckAbilities(Query):
    """Which of these actions the caller may take now, decided by the same policies and on the same
    resource attributes as the commands themselves (a console offers only those; the commands
    still decide again). An ability on a resource that does not exist is not held."""

    abilities: tuple[Ability, ...]

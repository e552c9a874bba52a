"""The ports: what the service layer needs from the outside world, as small Protocols.

Adapters implement them (SQLAlchemy, Cedar, Ed25519 files); the unit tests use in-memory fakes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Protocol, Self, TypeVar

from charter.domain.account_requests import AccountRequest, RequestStatus
from charter.domain.artifacts import BlobInfo
from charter.domain.audit import AuditHead, AuditRecord, Checkpoint, UnreadableRecord
from charter.domain.authz import AuthzRequest, Decision
from charter.domain.blueprints import Blueprint
from charter.domain.cards import ModelCard
from charter.domain.catalog import (
    Grant,
    ImportedPortfolio,
    Portfolio,
    Product,
    ProductVersion,
    Share,
)
from charter.domain.commands import AuditFilter
from charter.domain.datasets import (
    Dataset,
    DatasetRead,
    DatasetVersion,
    Subscription,
    SubscriptionStatus,
)
from charter.domain.deliveries import Delivery, DeliveryStatus
from charter.domain.deployments import DeploymentPipeline, Execution
from charter.domain.endpoints import Capture, Endpoint
from charter.domain.events import Event
from charter.domain.identity import ApiToken, Identity, Session
from charter.domain.org import (
    Account,
    BusPolicy,
    EventRule,
    Organization,
    OrgPolicy,
    OrgState,
    OrgUnit,
    Principal,
    RoleBinding,
    RoleDefinition,
)
from charter.domain.pipelines import Pipeline, PipelineRun
from charter.domain.projects import Project, Workspace
from charter.domain.registry import ApprovalStatus, ModelPackage, ModelPackageGroup

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_after: str | None


def paginate(items: list[T], limit: int, key: Callable[[T], str]) -> Page[T]:
    """A page from ``limit + 1`` fetched items: the extra one only says that more follow."""
    more = len(items) > limit
    items = items[:limit]
    return Page(items, key(items[-1]) if more and items else None)


class OrgRepository(Protocol):
    def get_org(self) -> Organization | None: ...
    def add_org(self, org: Organization) -> None: ...
    def set_policy_revision(self, revision: int) -> None: ...
    def load_state(self) -> OrgState: ...
    def get_account(self, name: str) -> Account | None: ...
    def list_accounts(self, after: str | None, limit: int) -> list[Account]: ...
    def get_principal(self, name: str) -> Principal | None: ...
    def list_principals(self, after: str | None, limit: int) -> list[Principal]: ...
    def roles_of(self, principal: str) -> dict[str, set[str]]: ...
    def list_bindings(self, account: str) -> list[RoleBinding]: ...
    def list_policies(self) -> list[OrgPolicy]: ...
    def put_unit(self, unit: OrgUnit) -> None: ...
    def put_account(self, account: Account) -> None: ...
    def put_principal(self, principal: Principal) -> None: ...
    def put_role(self, role: RoleDefinition) -> None: ...
    def delete_role(self, name: str) -> None: ...
    def add_binding(self, binding: RoleBinding) -> None: ...
    def delete_binding(self, binding: RoleBinding) -> None: ...
    def put_policy(self, policy: OrgPolicy) -> None: ...
    def delete_policy(self, policy_id: str) -> None: ...
    def put_bus_policy(self, policy: BusPolicy) -> None: ...
    def delete_bus_policy(self, account: str) -> None: ...
    def put_rule(self, rule: EventRule) -> None: ...
    def delete_rule(self, account: str, name: str) -> None: ...
    def list_rules(self, account: str) -> list[EventRule]: ...
    def put_blueprint(self, blueprint: Blueprint) -> None: ...
    def delete_blueprint(self, name: str) -> None: ...


class TokenRepository(Protocol):
    def add(self, token: ApiToken) -> None: ...
    def get(self, token_id: str) -> ApiToken | None: ...
    def find(self, principal: str | None, after: str | None, limit: int) -> list[ApiToken]: ...
    def revoke(self, token_id: str, at: datetime) -> None: ...


class SessionRepository(Protocol):
    def add(self, session: Session) -> None: ...
    def get(self, session_id: str) -> Session | None: ...


class AuditRepository(Protocol):
    def lock_head(self, *, fresh: bool = False) -> AuditHead:
        """The end of the chain. Read from the store (``fresh``, or the first time) it is locked
        until the transaction ends, so appends serialise; otherwise it may be the head this process
        last committed, unread, which ``append`` then checks."""
        ...

    def append(self, record: AuditRecord, head: AuditHead) -> bool:
        """Add ``record``, sealed after ``head``, and make it the head, if the chain still ends at
        ``head``; False, with nothing written, if it moved (another process appended): read the
        head ``fresh`` and seal again."""
        ...

    def find(self, flt: AuditFilter, after: int | None, limit: int) -> list[AuditRecord]: ...
    def iterate(self) -> Iterator[AuditRecord | UnreadableRecord]:
        """Every record in order; one whose stored fields no longer parse comes back unreadable."""
        ...
    def add_checkpoint(self, checkpoint: Checkpoint) -> None: ...
    def checkpoints(self) -> list[Checkpoint]: ...


class RegistryRepository(Protocol):
    def get_group(self, account: str, name: str) -> ModelPackageGroup | None: ...
    def add_group(self, group: ModelPackageGroup, created_at: datetime, created_by: str) -> None: ...
    def set_readers(self, account: str, name: str, readers: tuple[str, ...]) -> None:
        """Replace a group's resource policy (the accounts and OUs that may read it)."""
        ...
    def list_groups(self, account: str, after: str | None, limit: int) -> list[ModelPackageGroup]: ...

    def allocate_version(self, account: str, group: str) -> int:
        """The group's next version number, taken inside the caller's transaction: concurrent
        registrations queue on the group, and a rolled-back one gives its number back."""
        ...

    def add_package(self, package: ModelPackage) -> None: ...
    def get_package(self, account: str, group: str, version: int) -> ModelPackage | None: ...
    def list_packages(self, account: str, group: str, after: int | None, limit: int,
                      status: ApprovalStatus | None = None) -> list[ModelPackage]: ...
    def latest_package(self, account: str, group: str, status: ApprovalStatus) -> ModelPackage | None: ...
    def find_promoted(self, account: str, origin: str) -> ModelPackage | None:
        """The package of ``account`` promoted from the source package ``origin`` (a CRN), if any."""
        ...

    def save_decision(self, package: ModelPackage) -> None:
        """Persist a package's status and history after ``ModelPackage.decide``."""
        ...


class CardRepository(Protocol):
    """Model cards, each with its immutable versions."""

    def get(self, account: str, group: str) -> ModelCard | None: ...

    def get_latest(self, account: str, group: str) -> ModelCard | None:
        """The card holding its latest version only (``ModelCard.first``), to add a version to."""
        ...

    def documenting(self, account: str, group: str, package: str) -> int | None:
        """The number of the card's version that documents the package of that CRN, if any."""
        ...

    def add(self, card: ModelCard) -> None:
        """Store a new card with its versions; Conflict if the group already has one."""
        ...

    def save(self, card: ModelCard) -> None:
        """Store a card's next state (a new version, a status change, or both), adding the new
        version rows and never rewriting old ones. Conflict when the stored card is not the one
        this state was derived from: a stale read or a concurrent change."""
        ...

    def list(self, account: str, after: str | None, limit: int) -> list[ModelCard]:
        """An account's cards in group order, after the group named ``after``."""
        ...


class DatasetRepository(Protocol):
    def get_dataset(self, account: str, name: str) -> Dataset | None: ...
    def add_dataset(self, dataset: Dataset) -> None: ...
    def list_datasets(self, account: str, after: str | None, limit: int) -> list[Dataset]: ...

    def allocate_version(self, account: str, name: str) -> int:
        """The dataset's next version number, taken inside the caller's transaction: concurrent
        registrations queue on the dataset, and a rolled-back one gives its number back."""
        ...

    def add_version(self, version: DatasetVersion) -> None: ...
    def get_version(self, account: str, name: str, version: int) -> DatasetVersion | None: ...
    def latest_version(self, account: str, name: str) -> DatasetVersion | None: ...
    def list_versions(self, account: str, name: str, after: int | None, limit: int) -> list[DatasetVersion]: ...
    def add_subscription(self, subscription: Subscription) -> None: ...
    def get_subscription(self, subscription_id: str) -> Subscription | None: ...

    def save_subscription(self, subscription: Subscription) -> None:
        """Persist a subscription's status, decision and history after ``Subscription.transition``."""
        ...

    def list_subscriptions(self, *, account: str | None = None, subscriber: str | None = None,
                           dataset: str | None = None, status: SubscriptionStatus | None = None,
                           after: str | None = None, limit: int = 50) -> list[Subscription]:
        """Subscriptions to ``account``'s datasets and/or requested by ``subscriber``, by id."""
        ...

    def subscriptions_to(self, account: str, dataset: str, subscriber: str) -> list[Subscription]:
        """Every subscription of ``subscriber`` to one dataset (the grants a read checks)."""
        ...

    def add_read(self, read: DatasetRead) -> None: ...
    def list_reads(self, account: str, dataset: str, after: str | None, limit: int) -> list[DatasetRead]:
        """The reads of a dataset, oldest first, paged by read id (ids sort by time)."""
        ...

    def reads_for_run(self, for_account: str, run: str) -> list[DatasetRead]:
        """The reads made for ``run`` of ``for_account`` (a resumed pipeline run's lineage so far)."""
        ...


class CatalogRepository(Protocol):
    def get_portfolio(self, account: str, name: str) -> Portfolio | None: ...
    def add_portfolio(self, portfolio: Portfolio, created_at: datetime, created_by: str) -> None: ...
    def list_portfolios(self, account: str, after: str | None, limit: int) -> list[Portfolio]: ...
    def update_portfolio(self, portfolio: Portfolio) -> None:
        """Its description and provider (``charter apply``)."""
        ...
    def get_product(self, account: str, name: str) -> Product | None: ...
    def add_product(self, product: Product, created_at: datetime, created_by: str) -> None: ...
    def list_products(self, account: str, portfolio: str | None, after: str | None,
                      limit: int) -> list[Product]: ...

    def allocate_version(self, account: str, product: str, description: str) -> int:
        """The product's next version, taken inside the caller's transaction (no gaps); the
        product's description becomes the one of the version being published."""
        ...

    def add_version(self, version: ProductVersion) -> None: ...
    def get_version(self, account: str, product: str, version: int) -> ProductVersion | None: ...
    def list_versions(self, account: str, product: str, after: int | None, limit: int) -> list[ProductVersion]: ...
    def find_version_by_content(self, account: str, product: str, digest: str) -> ProductVersion | None:
        """The version of ``product`` holding exactly the files whose content digest is ``digest``."""
        ...

    def list_shares(self, account: str, portfolio: str) -> list[Share]: ...
    def add_share(self, share: Share) -> None: ...
    def delete_share(self, share: Share) -> None: ...
    def list_grants(self, account: str, portfolio: str) -> list[Grant]: ...
    def add_grant(self, grant: Grant) -> None: ...
    def delete_grant(self, grant: Grant) -> None: ...

    def imported(self, targets: Sequence[str], product: str | None = None) -> list[ImportedPortfolio]:
        """Every portfolio shared with one of ``targets`` (an account, ``ou:<unit>``), with its
        grants and products, in a fixed number of statements whatever their numbers; with
        ``product``, each portfolio's products are only the one of that name (if it holds it)."""
        ...


class AccountRequestRepository(Protocol):
    def add(self, request: AccountRequest) -> None: ...
    def get(self, request_id: str) -> AccountRequest | None: ...
    def save(self, request: AccountRequest) -> None:
        """Store a decision (status, decided_by, decided_at, comment)."""
        ...
    def list(self, status: RequestStatus | None, requested_by: str | None, after: str | None,
             limit: int) -> list[AccountRequest]: ...
    def pending_for(self, account: str) -> AccountRequest | None:
        """The pending request for an account of this name, if any."""
        ...


class ProjectRepository(Protocol):
    """Projects and workspaces launched from catalog products, by account and name."""

    def get_project(self, account: str, name: str) -> Project | None: ...
    def add_project(self, project: Project) -> None: ...
    def save_project(self, project: Project) -> None:
        """Store a project's version, parameters, status, resources and history."""
        ...
    def list_projects(self, account: str, after: str | None, limit: int) -> list[Project]: ...
    def get_workspace(self, account: str, name: str) -> Workspace | None: ...
    def add_workspace(self, workspace: Workspace) -> None: ...
    def save_workspace(self, workspace: Workspace) -> None: ...
    def list_workspaces(self, account: str, after: str | None, limit: int) -> list[Workspace]: ...


class OutboxRepository(Protocol):
    def add(self, event: Event) -> None: ...

    def claim_pending(self, limit: int) -> list[Event]:
        """Up to ``limit`` undispatched events, oldest first, locked until the transaction ends;
        on PostgreSQL rows another transaction holds are skipped (``FOR UPDATE SKIP LOCKED``)."""
        ...

    def mark_dispatched(self, event_ids: Sequence[str]) -> None: ...


class DeliveryRepository(Protocol):
    def add(self, delivery: Delivery) -> bool:
        """Insert a delivery unless one with its key exists; True when it was new."""
        ...

    def get(self, delivery_id: str) -> Delivery | None: ...

    def claim_due(self, now: datetime, lease_until: datetime, claim: str, limit: int) -> list[Delivery]:
        """Lease up to ``limit`` deliveries that are due (pending and at their next attempt, or
        delivering under a lease that ran out) to ``claim`` until ``lease_until``, counting the
        attempt; rows another transaction holds are skipped."""
        ...

    def finish(self, delivery: Delivery, claim: str) -> bool:
        """Store a claimed delivery's outcome (status, attempts, next attempt, error), releasing
        the lease; False, storing nothing, when ``claim`` no longer holds it."""
        ...

    def save(self, delivery: Delivery) -> None:
        """Store a delivery's state whoever holds it (a replay of a dead delivery)."""
        ...

    def list(self, bus: str, status: DeliveryStatus | None, after: str | None, limit: int) -> list[Delivery]:
        """The deliveries of rules on ``bus``'s account, oldest first, after the cursor ``after``."""
        ...


class PipelineRepository(Protocol):
    def get_pipeline(self, account: str, name: str) -> Pipeline | None: ...
    def put_pipeline(self, pipeline: Pipeline, code: dict[str, str]) -> None:
        """Insert or replace a pipeline with its code manifest (path -> SHA-256 of the blob)."""
        ...
    def code_of(self, account: str, code_sha256: str) -> dict[str, str] | None:
        """The code manifest stored under its digest."""
        ...
    def list_pipelines(self, account: str, after: str | None, limit: int) -> list[Pipeline]: ...
    def add_run(self, run: PipelineRun) -> None: ...
    def get_run(self, run_id: str) -> PipelineRun | None: ...
    def save_run(self, run: PipelineRun) -> None:
        """Store a run's status, reason, times, cancellation and step states."""
        ...
    def list_runs(self, account: str, pipeline: str, after: str | None, limit: int) -> list[PipelineRun]:
        """A pipeline's runs, newest first, after the run id ``after``."""
        ...
    def request_cancel(self, run_id: str) -> None:
        """Flag a run for cancellation (only the flag: its runner owns the rest of its state)."""
        ...
    def claim_pending_run(self) -> PipelineRun | None:
        """The oldest Pending run, locked until the transaction ends (skipping rows another
        transaction holds on PostgreSQL)."""
        ...
    def runs_with_status(self, status: str, limit: int) -> list[PipelineRun]: ...
    def get_cached(self, account: str, key: str) -> tuple[dict[str, str], dict[str, Any]] | None:
        """A step result stored under its cache key: output digests and metrics."""
        ...
    def put_cached(self, account: str, key: str, outputs: dict[str, str], metrics: dict[str, Any],
                   run_id: str, at: datetime) -> None: ...


class EndpointRepository(Protocol):
    def get(self, account: str, name: str, *, for_update: bool = False) -> Endpoint | None:
        """The endpoint with every revision, oldest first; ``for_update`` locks its row until the
        transaction ends, so two writers (a command, a rollout's end) never lose each other's change."""
        ...
    def add(self, endpoint: Endpoint) -> None: ...
    def save(self, endpoint: Endpoint) -> None:
        """Store the endpoint's serving revision and every revision (new ones inserted, the others'
        status updated)."""
        ...
    def delete(self, account: str, name: str) -> None: ...
    def list_endpoints(self, account: str, after: str | None, limit: int) -> list[Endpoint]: ...
    def all(self) -> list[Endpoint]:
        """Every endpoint of every account (what the serving supervisor reconciles)."""
        ...
    def add_capture(self, capture: Capture) -> None: ...
    def list_captures(self, account: str, endpoint: str, after: str | None, limit: int) -> list[Capture]:
        """An endpoint's capture batches, oldest first, after the digest ``after``."""
        ...


class DeploymentRepository(Protocol):
    """Deployment pipelines and their executions. Saves of an execution are conditional on the
    revision it was read at."""

    def get_pipeline(self, account: str, name: str) -> DeploymentPipeline | None: ...
    def put_pipeline(self, pipeline: DeploymentPipeline) -> None: ...
    def list_pipelines(self, account: str, after: str | None, limit: int) -> list[DeploymentPipeline]: ...
    def add_execution(self, execution: Execution) -> None: ...
    def get_execution(self, execution_id: str) -> Execution | None: ...
    def find_by_event(self, account: str, pipeline: str, event_id: str) -> Execution | None: ...

    def save_execution(self, execution: Execution) -> bool:
        """Store ``execution`` as the revision after ``execution.revision``; False, storing
        nothing, when the stored one is no longer at that revision (someone else moved it)."""
        ...

    def list_executions(self, account: str, pipeline: str, after: str | None, limit: int) -> list[Execution]:
        """A pipeline's executions, newest first, after the execution id ``after``."""
        ...

    def unfinished(self, account: str, pipeline: str) -> list[Execution]: ...

    def claim_runnable(self, now: datetime, limit: int) -> list[Execution]:
        """Executions to take up now (unclaimed, or a claim that ran out), locked until the
        transaction ends (rows another transaction holds are skipped on PostgreSQL)."""
        ...

    def has_runnable(self, now: datetime) -> bool: ...
    def any_enabled(self) -> bool:
        """Whether some account has a deployment pipeline that may start executions."""
        ...

    def claim_expired(self, now: datetime, limit: int) -> list[Execution]:
        """Executions whose approval request ran out, locked as ``claim_runnable`` locks."""
        ...


class UnitOfWork(Protocol):
    @property
    def org(self) -> OrgRepository: ...
    @property
    def tokens(self) -> TokenRepository: ...
    @property
    def sessions(self) -> SessionRepository: ...
    @property
    def audit(self) -> AuditRepository: ...
    @property
    def outbox(self) -> OutboxRepository: ...
    @property
    def registry(self) -> RegistryRepository: ...
    @property
    def cards(self) -> CardRepository: ...
    @property
    def deliveries(self) -> DeliveryRepository: ...
    @property
    def datasets(self) -> DatasetRepository: ...
    @property
    def catalog(self) -> CatalogRepository: ...
    @property
    def account_requests(self) -> AccountRequestRepository: ...
    @property
    def projects(self) -> ProjectRepository: ...
    @property
    def pipelines(self) -> PipelineRepository: ...
    @property
    def endpoints(self) -> EndpointRepository: ...
    @property
    def deployments(self) -> DeploymentRepository: ...

    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def after_commit(self, callback: Callable[[], None]) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, readonly: bool = False) -> UnitOfWork:
        """A new unit of work; a read-only one may run beside writers but cannot commit."""
        ...


class PolicyEngine(Protocol):
    def decide(
        self, request: AuthzRequest, revision: int, load_policies: Callable[[], Sequence[OrgPolicy]]
    ) -> Decision:
        """Decide with the default set plus the org's policies at ``revision`` (loaded on change)."""
        ...
    def default_policies(self) -> list[OrgPolicy]:
        """The shipped policy set, one entry per policy, named by its ``@id``."""
        ...

    def check(self, policies: Sequence[OrgPolicy]) -> dict[str, str]:
        """Parse errors by policy id; empty when every policy is valid Cedar."""
        ...


class Signer(Protocol):
    key_id: str

    def sign(self, message: bytes) -> str: ...
    def verify(self, message: bytes, signature: str, key_id: str) -> bool: ...


class Witness(Protocol):
    """The newest signed checkpoint, stored outside the database."""

    def read(self) -> Checkpoint | None: ...
    def write(self, checkpoint: Checkpoint) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class ArtifactStore(Protocol):
    """Content-addressed blobs, per account. Every key is derived from (account, SHA-256).

    Writes are atomic: a blob becomes visible only once complete and verified, and a refused or
    failed write leaves nothing behind. Digests are 64 lowercase hex digits (ValidationError
    otherwise); accounts are names as in ``charter.domain.names``.
    """

    local: bool
    """Whether its calls touch only this machine's disk (a file store), not the network."""

    def put(
        self,
        account: str,
        chunks: Iterable[bytes],
        *,
        expected_sha256: str | None = None,
        max_bytes: int | None = None,
    ) -> BlobInfo:
        """Store the streamed bytes under their SHA-256, computed here while streaming.

        ValidationError when they do not hash to ``expected_sha256``; TooLarge as soon as they
        exceed ``max_bytes``; either way nothing is stored. Putting a stored blob again is a no-op
        in effect. An exception raised by ``chunks`` propagates and leaves nothing either.
        """
        ...

    def open(self, account: str, sha256: str) -> Iterator[bytes]:
        """The blob's bytes in chunks; NotFound when absent (raised by the call, not on first read).

        The stream is verified as it is read: IntegrityError at its end when the stored bytes no
        longer hash to ``sha256``.
        """
        ...

    def stat(self, account: str, sha256: str) -> BlobInfo | None:
        """The stored blob's size, or None when the account holds no such blob."""
        ...

    def digests(self, account: str) -> Iterator[str]:
        """The digest of every blob the account holds (for backups), in no particular order."""
        ...

    def copy(self, src_account: str, dst_account: str, sha256: str) -> BlobInfo:
        """Make the blob of ``src_account`` available in ``dst_account``; idempotent and atomic.

        The bytes are hashed again on arrival: IntegrityError when they do not match (e.g. the
        source was corrupted), and then nothing new is left at the destination. NotFound when the
        source holds no such blob.
        """
        ...


class WebhookSender(Protocol):
    def send(self, url: str, event: dict[str, Any], delivery_id: str) -> None:
        """POST one CloudEvent, signed. Raises ``DeliveryError`` (permanent or not) when it fails."""
        ...


@dataclass(frozen=True, slots=True)
class StepJob:
    """One attempt of one step, every path derived by the server under its data directory."""

    run_id: str
    step: str
    attempt: int
    kind: str
    code_dir: str
    entry_point: str
    inputs: dict[str, dict[str, Any]]
    """Input name -> {"kind": "value", "value": str} | {"kind": "file", "path": str}."""
    outputs: dict[str, str]
    """Output name -> kind (artifact or metrics)."""
    output_dir: str
    log_path: str
    timeout_seconds: float


@dataclass(frozen=True, slots=True)
class StepResult:
    ok: bool
    outputs: dict[str, str]
    """Output name -> the file that holds it."""
    metrics: dict[str, Any]
    error: str | None = None
    log_tail: str = ""
    condition: tuple[bool, str] | None = None
    """A condition step's verdict and reason."""
    timed_out: bool = False
    cancelled: bool = False


class PipelineExecutor(Protocol):
    """Runs one step attempt to its end (or its timeout, or ``cancel``), in isolation."""

    max_parallel: int

    def run_step(self, job: StepJob, cancel: threading.Event) -> StepResult: ...


# --- endpoints ---------------------------------------------------------------------------------

class EndpointRuntime(Protocol):
    """Where invocations are served: the supervisor of the endpoint workers in this process."""

    def invoke(self, account: str, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Validate ``payload`` against the serving revision's signature, send it to a healthy
        worker of a variant chosen by weight, and return the predictions with the revision, the
        variant and its package. NotFound when nothing serves; ServiceUnavailable when no worker
        of the chosen variant is up."""
        ...

    async def ainvoke(self, account: str, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        """``invoke`` from an event loop, without blocking it."""
        ...

    def wake(self) -> None:
        """Reconcile now (a command changed what should be served)."""
        ...


class Worker(Protocol):
    """One endpoint worker process: a model loaded once, answering over a persistent local channel."""

    @property
    def pid(self) -> int | None: ...

    def alive(self) -> bool:
        """Started and not ended."""
        ...

    def ready(self) -> bool:
        """Its model is loaded and it listens."""
        ...

    def failure(self) -> str | None:
        """Why it ended (a model that failed to load, a crash), None while it runs."""
        ...

    def call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One request and its answer; ConnectionError when the worker is gone or does not answer."""
        ...

    async def acall(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """``call`` from an event loop, without blocking it."""
        ...

    def stop(self) -> None: ...


class WorkerLauncher(Protocol):
    def start(self, label: str, model_path: str, model_format: str) -> Worker:
        """A new worker process for the model file at ``model_path``; it loads in the background."""
        ...

    def warm(self) -> None:
        """Get ready to start workers quickly (the warm template), before the first is asked for."""
        ...

    def close(self) -> None: ...


class ServingMetrics(Protocol):
    def observe(self, account: str, endpoint: str, variant: str, seconds: float, error: bool) -> None: ...

    def render(self) -> tuple[bytes, str]:
        """The exposition (Prometheus text format) and its content type."""
        ...


# --- endpoints, as a deployment execution needs them ---------------------------------------

class RolloutStatus(StrEnum):
    UPDATING = "Updating"      # the revision's workers are starting / being health-checked
    IN_SERVICE = "InService"   # the revision serves all of the endpoint's traffic
    FAILED = "Failed"          # it never got healthy (reason says why); the previous one keeps serving
    SUPERSEDED = "Superseded"  # a later revision was asked for before this one finished


@dataclass(frozen=True, slots=True)
class Rollout:
    """Where one configuration revision of an endpoint stands (blue/green: a new revision takes
    traffic only once its workers are healthy)."""

    revision: int
    status: RolloutStatus
    reason: str | None
    serving_revision: int | None   # the revision that serves traffic now (None: nothing serves yet)
    serving_package: str | None    # its package CRN (single-variant endpoints), None when nothing serves


class EndpointOperations(Protocol):
    """What a deployment execution needs of the endpoints service. Every call acts as ``identity``
    (the deployment's runAs service principal) and is authorized and audited like a person's.
    Errors are charter.errors types (NotFound, PermissionDenied, ValidationError, Conflict...)."""

    def deploy(self, identity: Identity, account: str, endpoint: str, package: str, *,
               reason: str) -> int:
        """Create the endpoint, or update it blue/green, to serve the one package ``package`` (a
        model package CRN, possibly in another account, read under its group's resource policy).
        Returns the new configuration revision at once; the rollout goes on in the background."""
        ...

    def rollout(self, identity: Identity, account: str, endpoint: str, revision: int) -> Rollout: ...

    def revision_for(self, identity: Identity, account: str, endpoint: str, reason: str) -> int | None:
        """The latest revision of the endpoint made with exactly ``reason`` (by ``deploy`` or
        ``rollback``), None when there is none or no endpoint: how a deployment resumed after its
        server died finds the revision it had asked for before it could note the number."""
        ...

    def invoke(self, identity: Identity, account: str, endpoint: str,
               payload: dict[str, Any]) -> dict[str, Any]:
        """One invocation, ``{"instances": [[...], ...]}`` or ``{"inputs": {"col": [...]}}``;
        returns at least ``{"predictions": [...]}`` (one per row)."""
        ...

    def rollback(self, identity: Identity, account: str, endpoint: str, *, reason: str) -> int:
        """Go back to the configuration before the current one; returns the new revision."""
        ...
